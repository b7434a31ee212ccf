"""A reader for `aws ecr describe-images` output: the images a lifecycle policy is evaluated on.

Two paths accept exactly the same documents (property tests hold them to it):
- the fast one decodes the bytes straight into `EcrImage` structs with msgspec (typed, in C: no
  per-image dicts), then checks digests and tags over whole columns at once;
- the strict one decodes generic JSON and checks each element field by field, to name exactly what
  is wrong (`imageDetails[3].imagePushedAt: not a timestamp`). It runs only when the fast path
  refuses a document: because it is malformed, or because it uses a form only the strict path
  takes (a timestamp msgspec does not parse, a null or empty imageStatus, a null imageTags).

Timestamps: a number is seconds since the epoch; a string is RFC 3339 (what the AWS CLI and boto3
write: `2025-11-17T21:24:00+00:00`, `2025-11-17 21:24:00.123456Z`, lower-case `t`/`z`, fractions to
the microsecond, nearest), else any other ISO 8601 form Python reads (`2025-11-17`); without an offset
it is UTC. As msgspec reads them leniently, a string holding a number (`"1700000000"`) is also epoch
seconds, and the string `null` in an optional time means absent.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain, compress
from operator import attrgetter
from typing import cast

import msgspec

from boda.errors import PolicyError
from boda.policy.image import EcrImage, ImageStatus

_STATUSES: frozenset[str] = frozenset({"ACTIVE", "ARCHIVED", "ACTIVATING"})
_DIGEST = re.compile(r"(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")
# Docker's tag grammar, but up to ECR's 300 characters (the API's limit; Docker stops at 128).
MAX_TAG_CHARS = 300
_TAG = re.compile(rf"[\w][\w.-]{{0,{MAX_TAG_CHARS - 1}}}\Z", re.ASCII)
_HEX = str.maketrans("", "", "0123456789abcdef")
_TAG_CHARS = str.maketrans("", "", string.ascii_letters + string.digits + "_.-")
_TIMES = ("pushed_at", "last_pulled_at", "last_archived_at", "last_activated_at")


class _Document(msgspec.Struct):
    imageDetails: list[EcrImage]  # noqa: N815 - the name describe-images gives it


# Lenient: JSON numbers become datetimes (epoch seconds).
_DECODER = msgspec.json.Decoder(_Document, strict=False)


class _NotFast(Exception):
    """The fast path cannot vouch for the document; the strict path decides."""


def parse_images(data: bytes) -> list[EcrImage]:
    """Parse `aws ecr describe-images` JSON output (`{"imageDetails": [...]}`).

    Fields the engine does not use are ignored; malformed input raises PolicyError naming the
    element and field.
    """
    try:
        images = _DECODER.decode(data).imageDetails
        _vouch_for(images)
    except (msgspec.MsgspecError, RecursionError, _NotFast):
        images = _parse_strictly(data)
    digests = list(map(attrgetter("digest"), images))
    if len(set(digests)) != len(digests):
        seen: set[str] = set()
        for i, digest in enumerate(digests):
            if digest in seen:
                raise PolicyError(f"imageDetails[{i}].imageDigest: {digest} appears twice")
            seen.add(digest)
    return images


# --------------------------------------------------------------------------- the fast path


def _vouch_for(images: list[EcrImage]) -> None:
    """Check what the typed decoder does not (digest and tag syntax, UTC times); raise _NotFast."""
    if not _digests_ok(list(map(attrgetter("digest"), images))):
        raise _NotFast
    subjects = list(filter(None, map(attrgetter("subject"), images)))
    if subjects and not _digests_ok(subjects):
        raise _NotFast
    if not _tags_ok(list(chain.from_iterable(map(attrgetter("tags"), images)))):
        raise _NotFast
    if any(map(attrgetter("children"), images)):
        raise _NotFast  # a key describe-images never has, which the strict path ignores
    for name in _TIMES:
        _to_utc(images, name)


def _digests_ok(digests: Sequence[str]) -> bool:
    """`all(map(_DIGEST.match, digests))`, for a column of sha256 digests in a few passes of C code.

    Joined, the digests must be 71 characters apart, each `sha256:` then 64 lower-case hex digits:
    with the hex digits deleted, exactly `sh:` remains of each (`a256` are hex digits too).
    """
    count = len(digests)
    if set(map(len, digests)) == {71}:
        joined = "".join(digests)
        if joined.translate(_HEX) == "sh:" * count and all(
            joined[k::71] == char * count for k, char in enumerate("sha256:")
        ):
            return True
    return all(map(_DIGEST.match, digests))


def _tags_ok(tags: list[str]) -> bool:
    """`all(map(_TAG.match, tags))` in a few passes of C code over the tags joined by newlines."""
    if not tags:
        return True
    lines = "\n" + "\n".join(tags) + "\n"
    return (
        max(map(len, tags)) <= MAX_TAG_CHARS
        and lines.translate(_TAG_CHARS) == "\n" * (len(tags) + 1)  # only allowed characters, no newline
        and "\n\n" not in lines  # no empty tag
        and "\n." not in lines
        and "\n-" not in lines
    )


def _to_utc(images: list[EcrImage], name: str) -> None:
    """Make every time in field `name` aware UTC, in place (naive means UTC)."""
    times = list(map(attrgetter(name), images))
    zones = set(map(attrgetter("tzinfo"), filter(None, times)))
    if zones <= {UTC}:
        return
    try:
        for image, when in zip(compress(images, times), filter(None, times), strict=True):
            if when.tzinfo is not UTC:
                msgspec.structs.force_setattr(image, name, _utc(when))
    except OverflowError as exc:
        raise _NotFast from exc


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# --------------------------------------------------------------------------- the strict path


def _parse_strictly(data: bytes) -> list[EcrImage]:
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise PolicyError(f"images: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PolicyError("images: not valid JSON: arrays and objects nested too deeply") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("imageDetails"), list):
        raise PolicyError('images: expected a JSON object with an "imageDetails" list')
    return [_strict_image(i, detail) for i, detail in enumerate(doc["imageDetails"])]


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
    """An optional timestamp (see the module docstring), returned as aware UTC."""
    if value is None:
        return None
    try:
        when = _read_time(value)
        return None if when is None else _utc(when)
    except (ValueError, OverflowError) as exc:
        raise PolicyError(f"{where}: not a timestamp") from exc


def _read_time(value: object) -> datetime | None:
    """What the fast path's lenient decoder makes of `value`, else an ISO 8601 string; ValueError."""
    try:
        return msgspec.convert(value, datetime | None, strict=False)  # type: ignore[arg-type]
    except msgspec.ValidationError as exc:
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        raise ValueError("not a timestamp") from exc
