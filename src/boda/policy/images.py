"""The engine's image record, and a reader for `aws ecr describe-images` output.

`EcrImage` is a NamedTuple rather than a dataclass: a million of them must be cheap to build and to
read attributes from. Digests are plain strings here for the same reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, cast

from boda.errors import PolicyError, ReferenceError_
from boda.types import validate_tag

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is in the `fast` extra
    _loads = json.loads

ImageStatus = Literal["ACTIVE", "ARCHIVED", "ACTIVATING"]
_STATUSES: frozenset[str] = frozenset({"ACTIVE", "ARCHIVED", "ACTIVATING"})
_DIGEST = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


class EcrImage(NamedTuple):
    """One image (manifest) of a repository as a lifecycle policy sees it.

    `status` ACTIVATING (being restored from archive) is in neither storage class: no rule selects it.
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


def parse_images(data: bytes) -> list[EcrImage]:
    """Parse `aws ecr describe-images` JSON output (`{"imageDetails": [...]}`).

    Timestamps may be ISO 8601 (naive means UTC) or epoch seconds. Fields the engine does not use
    are ignored; malformed input raises PolicyError naming the element and field.
    """
    try:
        doc = _loads(data)
    except ValueError as exc:
        raise PolicyError(f"images: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("imageDetails"), list):
        raise PolicyError('images: expected a JSON object with an "imageDetails" list')
    images: list[EcrImage] = []
    seen: set[str] = set()
    for i, detail in enumerate(doc["imageDetails"]):
        where = f"imageDetails[{i}]"
        if not isinstance(detail, dict):
            raise PolicyError(f"{where}: not a JSON object")
        digest = _digest(detail.get("imageDigest"), f"{where}.imageDigest")
        if digest in seen:
            raise PolicyError(f"{where}.imageDigest: {digest} appears twice")
        seen.add(digest)
        status = detail.get("imageStatus") or "ACTIVE"
        if status not in _STATUSES:
            raise PolicyError(f"{where}.imageStatus: {status!r} is not ACTIVE, ARCHIVED or ACTIVATING")
        media_type = detail.get("imageManifestMediaType")
        if media_type is not None and not isinstance(media_type, str):
            raise PolicyError(f"{where}.imageManifestMediaType: not a string")
        subject = detail.get("subjectManifestDigest")
        images.append(
            EcrImage(
                digest=digest,
                tags=_tags(detail.get("imageTags"), f"{where}.imageTags"),
                pushed_at=_required_time(detail.get("imagePushedAt"), f"{where}.imagePushedAt"),
                last_pulled_at=_time(detail.get("lastRecordedPullTime"), f"{where}.lastRecordedPullTime"),
                status=cast(ImageStatus, status),
                last_archived_at=_time(detail.get("lastArchivedAt"), f"{where}.lastArchivedAt"),
                last_activated_at=_time(detail.get("lastActivatedAt"), f"{where}.lastActivatedAt"),
                media_type=media_type,
                subject=None if subject is None else _digest(subject, f"{where}.subjectManifestDigest"),
            )
        )
    return images


def _digest(value: object, where: str) -> str:
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise PolicyError(f"{where}: not a sha256 or sha512 digest")
    return value


def _tags(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyError(f"{where}: not a list")
    for j, tag in enumerate(value):
        if not isinstance(tag, str):
            raise PolicyError(f"{where}[{j}]: not a string")
        try:
            validate_tag(tag)
        except ReferenceError_ as exc:
            raise PolicyError(f"{where}[{j}]: {exc.message}") from None
    return tuple(value)


def _required_time(value: object, where: str) -> datetime:
    when = _time(value, where)
    if when is None:
        raise PolicyError(f"{where}: missing")
    return when


def _time(value: object, where: str) -> datetime | None:
    """An optional timestamp: ISO 8601 text or epoch seconds, returned as aware UTC."""
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            when = datetime.fromisoformat(value)
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise PolicyError(f"{where}: not a timestamp")
