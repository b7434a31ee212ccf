"""`boda policy eval`: an ECR lifecycle policy applied offline to `aws ecr describe-images` output.

Returns data only: ECR's lifecycle policy preview, plus `violations` (in-use images the policy
would expire), as structs that encode to JSON with ECR's names. The CLI prints it and exits 3 when
there are violations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec

from boda.errors import PolicyError, ReferenceError_, UsageError
from boda.policy.describe_images import parse_images
from boda.policy.document import parse_policy
from boda.policy.preview import PreviewAction, PreviewResult, PreviewSummary, preview
from boda.types import Digest

# The times an evaluation may be made at: none before the Unix epoch (no image was pushed then), and
# a year of headroom below the last time Python's datetime holds.
EARLIEST_NOW = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_NOW = datetime(9999, 1, 1, tzinfo=UTC)


def parse_now(text: str) -> datetime:
    """An evaluation time: ISO 8601 (`Z` accepted); without an offset it is UTC."""
    try:
        when = datetime.fromisoformat(text.strip())
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except ValueError as exc:
        raise UsageError(f"invalid time {text!r}: expected ISO 8601, e.g. 2025-01-31T12:00:00Z") from exc
    except OverflowError as exc:  # e.g. 9999-12-31T23:59:59-14:00 is past the last UTC time
        raise UsageError(_out_of_range(text)) from exc
    if not EARLIEST_NOW <= when < LATEST_NOW:
        raise UsageError(_out_of_range(text))
    return when


def _out_of_range(text: str) -> str:
    return f"time {text!r} is out of range: from {EARLIEST_NOW:%Y-%m-%d} to before {LATEST_NOW:%Y-%m-%d}"


class Violation(msgspec.Struct, frozen=True, rename="camel"):
    """An image in use that the policy would expire."""

    image_digest: str
    image_tags: tuple[str, ...]
    applied_rule_priority: int
    action: PreviewAction


class PolicyEvaluation(msgspec.Struct, frozen=True, rename="camel"):
    """ECR's lifecycle policy preview (previewResults, summary) plus `violations`."""

    preview_results: list[PreviewResult]
    summary: PreviewSummary
    violations: list[Violation]


def evaluate_offline(
    policy_path: Path, images_path: Path, now: datetime | None, in_use_path: Path | None
) -> PolicyEvaluation:
    """Evaluate the policy file on the images file at `now` (default: the current time)."""
    try:
        text = _read(policy_path, "policy").decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{policy_path}: the policy is not UTF-8 text") from exc
    try:
        policy = parse_policy(text)
    except PolicyError as exc:
        raise PolicyError(f"{policy_path}: {exc.message}") from exc
    try:
        images = parse_images(_read(images_path, "images"))
    except PolicyError as exc:
        raise PolicyError(f"{images_path}: {exc.message}") from exc
    in_use = _read_in_use(in_use_path) if in_use_path is not None else frozenset()
    result = preview(policy, images, now if now is not None else datetime.now(UTC))
    violations = [
        Violation(r.image_digest, r.image_tags, r.applied_rule_priority, r.action)
        for r in (result.preview_results if in_use else ())
        if r.action.type == "EXPIRE" and r.image_digest in in_use
    ]
    return PolicyEvaluation(result.preview_results, result.summary, violations)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from exc


def _read_in_use(path: Path) -> frozenset[str]:
    """Digests one per line; blank lines and `#` comments are ignored."""
    try:
        lines = _read(path, "in-use").decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: the in-use file is not UTF-8 text") from exc
    digests = set()
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            digests.add(str(Digest.parse(text)))
        except ReferenceError_ as exc:
            raise ReferenceError_(f"{path}:{number}: {exc.message}") from exc
    return frozenset(digests)
