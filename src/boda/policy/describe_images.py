"""A reader for `aws ecr describe-images` output: the images a lifecycle policy is evaluated on."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, cast

from boda.errors import PolicyError
from boda.policy.image import EcrImage, ImageStatus

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - orjson is in the `fast` extra
    _loads = json.loads

_STATUSES: frozenset[str] = frozenset({"ACTIVE", "ARCHIVED", "ACTIVATING"})
_DIGEST = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
# Docker's tag grammar, but up to ECR's 300 characters (the API's limit; Docker stops at 128).
MAX_TAG_CHARS = 300
_TAG = re.compile(rf"^[\w][\w.-]{{0,{MAX_TAG_CHARS - 1}}}\Z", re.ASCII)


def parse_images(data: bytes) -> list[EcrImage]:
    """Parse `aws ecr describe-images` JSON output (`{"imageDetails": [...]}`).

    Timestamps may be ISO 8601 (naive means UTC) or epoch seconds. Fields the engine does not use
    are ignored; malformed input raises PolicyError naming the element and field.

    Well-formed documents take a fast path that checks every field without building messages; the
    first element it rejects is parsed again, slowly, to say exactly what is wrong with it.
    """
    try:
        doc = _loads(data)
    except ValueError as exc:
        raise PolicyError(f"images: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PolicyError("images: not valid JSON: arrays and objects nested too deeply") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("imageDetails"), list):
        raise PolicyError('images: expected a JSON object with an "imageDetails" list')
    details = doc["imageDetails"]
    images: list[EcrImage] = []
    try:
        images.extend(map(_fast_image, details))
    except (_Malformed, AttributeError, TypeError, ValueError, OverflowError, OSError) as exc:
        for i, detail in enumerate(details):
            _strict_image(i, detail)
        raise AssertionError(
            "parse_images: the fast path rejected an element the strict one accepts"
        ) from exc
    digests = list(map(attrgetter("digest"), images))
    if len(set(digests)) != len(digests):
        seen: set[str] = set()
        for i, digest in enumerate(digests):
            if digest in seen:
                raise PolicyError(f"imageDetails[{i}].imageDigest: {digest} appears twice")
            seen.add(digest)
    return images


class _Malformed(Exception):
    """Raised by the fast path; the strict path then finds and names the problem."""


def _fast_time(value: object) -> datetime | None:
    if value is None:
        return None
    if value.__class__ is str:
        when = datetime.fromisoformat(value)  # type: ignore[arg-type]
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if value.__class__ in (int, float):
        return datetime.fromtimestamp(value, UTC)  # type: ignore[arg-type]
    raise _Malformed


def _fast_image(detail: dict[str, Any]) -> EcrImage:
    get = detail.get
    digest = get("imageDigest")
    if digest.__class__ is not str or not _digest_ok(digest):
        raise _Malformed
    tags = get("imageTags")
    if tags is None:
        tags = ()
    elif tags.__class__ is not list or not all(map(_tag_ok, tags)):
        raise _Malformed
    status = get("imageStatus") or "ACTIVE"
    media_type = get("imageManifestMediaType")
    subject = get("subjectManifestDigest")
    if (
        status.__class__ is not str
        or status not in _STATUSES
        or (media_type is not None and media_type.__class__ is not str)
        or (subject is not None and (subject.__class__ is not str or not _digest_ok(subject)))
    ):
        raise _Malformed
    pushed = _fast_time(get("imagePushedAt"))
    if pushed is None:
        raise _Malformed
    return EcrImage(
        digest,
        tuple(tags),
        pushed,
        _fast_time(get("lastRecordedPullTime")),
        cast(ImageStatus, status),
        _fast_time(get("lastArchivedAt")),
        _fast_time(get("lastActivatedAt")),
        media_type,
        (),
        subject,
    )


def _digest_ok(digest: str) -> bool:
    """`_DIGEST.match` without the regex: a third of the time, and parsing runs it a million times."""
    size = len(digest)
    return (
        (size == 71 and digest.startswith("sha256:")) or (size == 135 and digest.startswith("sha512:"))
    ) and not digest[7:].strip("0123456789abcdef")


def _tag_ok(tag: object) -> bool:
    return tag.__class__ is str and _TAG.match(tag) is not None  # type: ignore[arg-type]


def _strict_image(i: int, detail: object) -> EcrImage:
    """Parse one element, raising PolicyError that names the element and the field."""
    where = f"imageDetails[{i}]"
    if not isinstance(detail, dict):
        raise PolicyError(f"{where}: not a JSON object")
    digest = _digest(detail.get("imageDigest"), f"{where}.imageDigest")
    status = detail.get("imageStatus") or "ACTIVE"
    if not isinstance(status, str) or status not in _STATUSES:
        raise PolicyError(f"{where}.imageStatus: {status!r} is not ACTIVE, ARCHIVED or ACTIVATING")
    media_type = detail.get("imageManifestMediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise PolicyError(f"{where}.imageManifestMediaType: not a string")
    subject = detail.get("subjectManifestDigest")
    return EcrImage(
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
        if not _TAG.match(tag):
            raise PolicyError(
                f"{where}[{j}]: invalid tag {tag!r}: up to {MAX_TAG_CHARS} characters of letters, digits,"
                " '_', '.' and '-', not starting with '.' or '-'"
            )
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
