"""moto's ECR server with one gap closed: MOTO-TAG-MOVE (tests/fixtures/moto.py).

Real ECR keeps an image whose last tag moves to another image (PutImage of that tag elsewhere): the
image stays, untagged. That is how "untagged" images come to be when a tag such as `latest` is pushed
again, and what every "expire untagged" lifecycle rule exists for (AWS's lifecycle policy examples;
ECS version consistency, aws/amazon-ecs-agent #4226). moto instead deletes the image, so the untag
flow of native retention, which relies on that behaviour, is tested against this server; a test on
plain moto shows moto's behaviour and that boda detects the loss and stops.

The patch is the smallest that reproduces ECR: while PutImage runs, moto's removal of the moved tag
from its previous image takes the tag off that image instead of deleting an image left without tags.
Everything else (immutability, exclusion filters, last-tag deletes by BatchDeleteImage) is moto's.

Run: python ecr_semantics_server.py -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import sys
from typing import Any

from moto.ecr import models
from moto.server import main

_put_image = models.ECRBackend.put_image
_batch_delete_image = models.ECRBackend.batch_delete_image


def put_image(self: Any, *args: Any, **kwargs: Any) -> Any:
    self._moving_tag = True
    try:
        return _put_image(self, *args, **kwargs)
    finally:
        self._moving_tag = False


def batch_delete_image(
    self: Any, repository_name: str, registry_id: Any = None, image_ids: Any = None
) -> Any:
    if not getattr(self, "_moving_tag", False) or not image_ids or set(image_ids[0]) != {"imageTag"}:
        return _batch_delete_image(self, repository_name, registry_id, image_ids)
    tag = image_ids[0]["imageTag"]
    for image in self.repositories[repository_name].images:
        if tag in image.image_tags:
            image.image_tags.remove(tag)
            image.image_tag = image.image_tags[-1] if image.image_tags else None
    return {"imageIds": [], "failures": []}


models.ECRBackend.put_image = put_image  # type: ignore[method-assign]
models.ECRBackend.batch_delete_image = batch_delete_image  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
