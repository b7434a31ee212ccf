"""An evaluation in the shape of ECR's GetLifecyclePolicyPreview answer. Pure: no I/O.

The answer is made of msgspec structs whose JSON names are ECR's (`previewResults`, `imageDigest`,
...): a million rows are built by C-level maps from the evaluation's columns and encode straight to
JSON, without a dict per image.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import compress
from operator import attrgetter
from typing import Literal, cast

import msgspec

from boda.policy.columnar import evaluate_columns
from boda.policy.document import ActionType, LifecyclePolicy
from boda.policy.image import EcrImage


class PreviewAction(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    """`{"type": "EXPIRE"}` or `{"type": "TRANSITION", "targetStorageClass": "ARCHIVE"}`."""

    type: Literal["EXPIRE", "TRANSITION"]
    target_storage_class: Literal["ARCHIVE"] | None = None


EXPIRE = PreviewAction("EXPIRE")
TRANSITION = PreviewAction("TRANSITION", "ARCHIVE")


class PreviewResult(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    """One image the policy acts on. `image_pushed_at` is UTC (JSON: `2025-01-31T12:00:00Z`)."""

    image_digest: str
    image_tags: tuple[str, ...]
    image_pushed_at: datetime
    action: PreviewAction
    applied_rule_priority: int
    storage_class: Literal["STANDARD", "ARCHIVE"]


class TransitionCount(msgspec.Struct, frozen=True, rename="camel"):
    target_storage_class: Literal["ARCHIVE"]
    image_total_count: int


class PreviewSummary(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    """The counts; `transitioningImageTotalCounts` only when something is archived."""

    expiring_image_total_count: int
    transitioning_image_total_counts: list[TransitionCount] = msgspec.field(default_factory=list)


class Preview(msgspec.Struct, frozen=True, rename="camel"):
    """ECR's preview: results by appliedRulePriority, then in the order the images were given."""

    preview_results: list[PreviewResult]
    summary: PreviewSummary


_ACTIONS: dict[ActionType, PreviewAction] = {"expire": EXPIRE, "transition": TRANSITION}
_STORAGE_CLASSES = {"ACTIVE": "STANDARD", "ARCHIVED": "ARCHIVE", "ACTIVATING": "ARCHIVE"}


def preview(policy: LifecyclePolicy, images: Sequence[EcrImage], now: datetime) -> Preview:
    """Evaluate `policy` on `images` at `now` and answer in ECR's GetLifecyclePolicyPreview shape."""
    outcomes = evaluate_columns(policy, images, now)
    positions = list(compress(outcomes.positions, outcomes.actions))
    # Acted on: every image has an action and the acting rule's priority.
    priorities = cast(list[int], list(compress(outcomes.priorities, outcomes.actions)))
    actions = cast(list[ActionType], list(compress(outcomes.actions, outcomes.actions)))
    if len(set(priorities)) > 1:  # rule by rule; within a rule, the images stay in input order
        order = sorted(range(len(positions)), key=priorities.__getitem__)
        positions = list(map(positions.__getitem__, order))
        priorities = list(map(priorities.__getitem__, order))
        actions = list(map(actions.__getitem__, order))
    acted = list(map(images.__getitem__, positions))
    pushed = list(map(attrgetter("pushed_at"), acted))
    if set(map(attrgetter("tzinfo"), pushed)) - {UTC}:
        pushed = [when.astimezone(UTC) for when in pushed]
    rows = list(
        map(
            PreviewResult,
            map(attrgetter("digest"), acted),
            map(attrgetter("tags"), acted),
            pushed,
            map(_ACTIONS.__getitem__, actions),
            priorities,
            map(_STORAGE_CLASSES.__getitem__, map(attrgetter("status"), acted)),
        )
    )
    counts = Counter(actions)
    transitions = counts["transition"]
    summary = PreviewSummary(
        counts["expire"], [TransitionCount("ARCHIVE", transitions)] if transitions else []
    )
    return Preview(rows, summary)


def iso_utc(when: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
