"""An evaluation in the shape of ECR's GetLifecyclePolicyPreview answer. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from boda.policy.columnar import evaluate
from boda.policy.decision import Decision
from boda.policy.document import LifecyclePolicy
from boda.policy.image import EcrImage


def preview(
    policy: LifecyclePolicy,
    images: Sequence[EcrImage],
    now: datetime,
    decisions: Sequence[Decision] | None = None,
) -> dict[str, Any]:
    """The result in ECR's GetLifecyclePolicyPreview shape (previewResults and summary).

    `decisions` are those of `evaluate(policy, images, now)`, computed here when not given. Results
    are ordered by appliedRulePriority, then oldest image first.
    """
    if decisions is None:
        decisions = evaluate(policy, images, now)
    acted = {d.digest: d for d in decisions if d.action is not None}
    by_digest = {image.digest: image for image in images if image.digest in acted}
    results: list[dict[str, Any]] = []
    expiring = transitioning = 0
    for decision in sorted(acted.values(), key=lambda d: d.rule_priority or 0):
        image = by_digest[decision.digest]
        action: dict[str, str] = {"type": "EXPIRE"}
        if decision.action == "transition":
            action = {"type": "TRANSITION", "targetStorageClass": "ARCHIVE"}
            transitioning += 1
        else:
            expiring += 1
        results.append(
            {
                "imageDigest": image.digest,
                "imageTags": list(image.tags),
                "imagePushedAt": iso_utc(image.pushed_at),
                "action": action,
                "appliedRulePriority": decision.rule_priority,
                "storageClass": image.storage_class,
            }
        )
    summary: dict[str, Any] = {"expiringImageTotalCount": expiring}
    if transitioning:
        summary["transitioningImageTotalCounts"] = [
            {"targetStorageClass": "ARCHIVE", "imageTotalCount": transitioning}
        ]
    return {"previewResults": results, "summary": summary}


def iso_utc(when: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
