"""The expiry plan: policy decisions combined with protections. Pure: no I/O.

A protection always beats a rule. Protections are computed by digest and closed over the image
graph: every child of a kept index is kept, and every referrer (signature, SBOM, attestation) of a
kept image is kept. A referrer of an expired image expires with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from boda.policy.decision import Decision
from boda.policy.image import EcrImage
from boda.policy.preview import iso_utc

KEEP, EXPIRE = "keep", "expire"


@dataclass(frozen=True)
class Protection:
    """One reason an image must not be expired."""

    #: current | rollback | pinned | env-tag | running | unreadable | min-age | unknown-age | child | referrer
    kind: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """JSON form."""
        return {"type": "protection", "protection": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Facts:
    """What the ledger says must stay, by digest."""

    current: Mapping[str, str] = field(default_factory=dict)  # env -> digest
    rollback: Mapping[str, Sequence[str]] = field(default_factory=dict)  # env -> previous digests
    pins: Mapping[str, str] = field(default_factory=dict)  # digest -> reason
    min_age: timedelta = timedelta(0)
    unknown_age: frozenset[str] = frozenset()  # digests whose age nobody can prove
    #: Protections found outside the ledger, by digest: environment tags in the registry, images
    #: running in a runtime, manifests that cannot be read.
    held: Mapping[str, Sequence[Protection]] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanEntry:
    """One image of one repository with its verdict and every reason."""

    repository: str
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    action: str
    rule_priority: int | None
    reasons: tuple[dict[str, Any], ...]
    subject: str | None = None
    children: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            "pushedAt": iso_utc(self.pushed_at),
            "action": self.action,
            "appliedRulePriority": self.rule_priority,
            "subject": self.subject,
            "children": list(self.children),
            "reasons": list(self.reasons),
        }


def duration_text(duration: timedelta) -> str:
    """`1 day`, `12 hours`, `2 weeks`, `90 seconds`: the largest whole unit, for people."""
    seconds = int(duration.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds} second" if seconds == 1 else f"{seconds} seconds"


def direct_protections(
    images: Sequence[EcrImage], facts: Facts, now: datetime
) -> dict[str, list[Protection]]:
    """Protections that do not depend on the graph: deployed, rollback targets, pins, age."""
    out: dict[str, list[Protection]] = {}

    def add(digest: str, protection: Protection) -> None:
        out.setdefault(digest, []).append(protection)

    for env, digest in facts.current.items():
        add(digest, Protection("current", f"current in {env}"))
    for env, digests in facts.rollback.items():
        for i, digest in enumerate(digests, start=1):
            add(digest, Protection("rollback", f"rollback target {i} in {env}"))
    for digest, reason in facts.pins.items():
        add(digest, Protection("pinned", reason))
    for digest, held in facts.held.items():
        for protection in held:
            add(digest, protection)
    for image in images:
        if image.subject is not None:
            continue  # a referrer has no age of its own: it stays and goes with its subject
        if image.digest in facts.unknown_age:
            add(image.digest, Protection("unknown-age", "no push time is known; boda cannot prove it is old"))
        elif now - image.pushed_at < facts.min_age:
            add(image.digest, Protection("min-age", f"younger than {duration_text(facts.min_age)}"))
    return out


def plan_repository(
    repository: str,
    images: Sequence[EcrImage],
    decisions: Sequence[Decision],
    facts: Facts,
    now: datetime,
) -> list[PlanEntry]:
    """Keep or expire every image of one repository, with reasons; protections win."""
    by_digest = {image.digest: image for image in images}
    protections = direct_protections(images, facts, now)
    rule_of = {d.digest: d for d in decisions}
    wants_expire = {d.digest for d in decisions if d.action == "expire"}
    kept = {digest for digest in by_digest if digest not in wants_expire or digest in protections}
    referrers: dict[str, list[str]] = {}
    for image in images:
        if image.subject is not None:
            referrers.setdefault(image.subject, []).append(image.digest)
    # Close over the graph: children and referrers of kept images are kept, until nothing changes.
    pending = list(kept)
    while pending:
        digest = pending.pop()
        parent = by_digest.get(digest)
        linked: list[tuple[str, Protection]] = []
        if parent is not None:
            linked += [(c, Protection("child", f"child of kept index {digest}")) for c in parent.children]
        linked += [
            (r, Protection("referrer", f"referrer of kept image {digest}")) for r in referrers.get(digest, [])
        ]
        for other, protection in linked:
            if other not in by_digest:
                continue
            if other in wants_expire:
                protections.setdefault(other, []).append(protection)
            if other not in kept:
                kept.add(other)
                pending.append(other)
    entries = []
    for image in sorted(images, key=lambda i: (i.pushed_at, i.digest)):
        decision = rule_of.get(image.digest)
        reasons: list[dict[str, Any]] = []
        if decision is not None:
            reasons.append(
                {
                    "type": "rule",
                    "rulePriority": decision.rule_priority,
                    "action": decision.action,
                    "detail": decision.reason,
                }
            )
        reasons += [p.to_json() for p in protections.get(image.digest, [])]
        action = KEEP if image.digest in kept else EXPIRE
        if not reasons:
            reasons.append({"type": "no-rule", "detail": "no rule selects this image"})
        entries.append(
            PlanEntry(
                repository,
                image.digest,
                image.tags,
                image.pushed_at,
                action,
                decision.rule_priority if decision is not None else None,
                tuple(reasons),
                image.subject,
                image.children,
            )
        )
    return entries
