"""The `ecr` backend: Amazon ECR through boto3, blobs through ECR's `/v2/` API.

Manifests, tags, deletes and the inventory use the ECR API (explicit semantics, batching, no token
plumbing); blobs go through the registry API with an ECR authorization token, reusing the `oci`
backend. ECR-specific behaviour, relied on in these files:

* `manifest_head` and `referrers` read `describe_images`, never `batch_get_image`: ECR records a
  pull (`lastRecordedPullTime`) on every BatchGetImage, so reading manifests to check a tag would
  defeat `sinceImagePulled` lifecycle rules. describe_images knows no manifest size, so a head
  says the size is unknown, and a referrer's size is ECR's `imageSizeInBytes`; `manifest_get`
  returns the exact bytes.
* There is no untag in ECR: deleting an image's last tag deletes the image (see `tag_delete`).
* PutImage has a default quota of 10 calls per second and region; puts are spaced by a client-side
  token bucket at 8 per second. Every other call relies on botocore's adaptive retries.
* Cross-repository blob mounts work only when the account enabled `BLOB_MOUNTING`.

The rooms:

    client.py        the boto3 client: adaptive retries, endpoint resolution by the AWS chain
    errors.py        botocore and BatchDeleteImage failures as boda errors, one line each
    ratelimit.py     the token bucket that spaces PutImage calls
    repositories.py  creating repositories, reading and storing lifecycle policies and tag mutability
    previews.py      ECR's own lifecycle policy preview, polled to completion (or why there is none)
    snapshots.py     the short-lived inventory snapshot that answers `referrers`
    blobs.py         blobs through the `/v2/` API with ECR's authorization token
    registry.py      EcrRegistry: manifests, tags, deletes and the inventory

boto3 is imported here, and this package is imported only when an ECR registry is opened.
"""

from __future__ import annotations

from boda.registry.ecr.client import MAX_RETRIES, client_config
from boda.registry.ecr.ratelimit import PUT_IMAGE_RATE, TokenBucket
from boda.registry.ecr.registry import ACCEPTED_MEDIA_TYPES, BATCH_LIMIT, EcrRegistry
from boda.registry.ecr.repositories import RepositorySettings
from boda.registry.ecr.snapshots import SNAPSHOT_SECONDS

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "BATCH_LIMIT",
    "MAX_RETRIES",
    "PUT_IMAGE_RATE",
    "SNAPSHOT_SECONDS",
    "EcrRegistry",
    "RepositorySettings",
    "TokenBucket",
    "client_config",
]
