"""The image record a lifecycle policy sees: one manifest of a repository, with ECR's facts about it.

`EcrImage` is a NamedTuple rather than a dataclass: a million of them must be cheap to build and to
read attributes from. Digests are plain strings here for the same reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

ImageStatus = Literal["ACTIVE", "ARCHIVED", "ACTIVATING"]


class EcrImage(NamedTuple):
    """One image (manifest) of a repository as a lifecycle policy sees it.

    `status` ACTIVATING (being restored from archive) is in neither storage class: no rule selects it.
    `last_activated_at` is set once an archived image has been restored.
    `children` are the manifests an index lists; `subject` makes this image a referrer of another.
    """

    digest: str
    tags: tuple[str, ...]
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
