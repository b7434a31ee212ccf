"""The image record a lifecycle policy sees: one manifest of a repository, with ECR's facts about it.

`EcrImage` is a msgspec Struct: a million of them are cheap to build and to read, the cyclic garbage
collector does not track them (they hold only strings, tuples of strings and datetimes), and
`describe_images.py` decodes them straight from `aws ecr describe-images` JSON, whose field names
they carry (`imageDigest`, `imagePushedAt`, ...). Fields are given by keyword.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

ImageStatus = Literal["ACTIVE", "ARCHIVED", "ACTIVATING"]

# Field name -> the name describe-images gives it. `children` has none: ECR does not report them.
DESCRIBE_IMAGES_NAMES = {
    "digest": "imageDigest",
    "tags": "imageTags",
    "pushed_at": "imagePushedAt",
    "last_pulled_at": "lastRecordedPullTime",
    "status": "imageStatus",
    "last_archived_at": "lastArchivedAt",
    "last_activated_at": "lastActivatedAt",
    "media_type": "imageManifestMediaType",
    "subject": "subjectManifestDigest",
}


class EcrImage(msgspec.Struct, frozen=True, gc=False, kw_only=True, rename=DESCRIBE_IMAGES_NAMES):
    """One image (manifest) of a repository as a lifecycle policy sees it. Times are aware.

    `status` ACTIVATING (being restored from archive) is in neither storage class: no rule selects it.
    `last_activated_at` is set once an archived image has been restored.
    `children` are the manifests an index lists; `subject` makes this image a referrer of another.
    """

    digest: str
    tags: tuple[str, ...] = ()
    pushed_at: datetime
    last_pulled_at: datetime | None = None
    status: ImageStatus = "ACTIVE"
    last_archived_at: datetime | None = None
    last_activated_at: datetime | None = None
    media_type: str | None = None
    children: tuple[str, ...] = ()
    subject: str | None = None

    @property
    def storage_class(self) -> Literal["STANDARD", "ARCHIVE"]:
        """ECR's storage class name: ARCHIVE unless the image is ACTIVE."""
        return "STANDARD" if self.status == "ACTIVE" else "ARCHIVE"
