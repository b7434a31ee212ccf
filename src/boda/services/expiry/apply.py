"""Deleting what the plan expires, re-checking each image just before its deletion."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boda.policy.plan import PlanEntry
from boda.services.context import Context, identity
from boda.services.expiry.plan import ExpiryPlan, plan, require_known_app
from boda.services.expiry.protections import apps_sharing, merged_facts
from boda.services.runtime_scan import scan
from boda.types import Digest


@dataclass
class ApplyResult:
    """What `gc apply` did."""

    plan: ExpiryPlan
    applied: bool
    deleted: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "applied": self.applied,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "plan": self.plan.to_json(),
        }


def apply(
    ctx: Context,
    app: str,
    *,
    yes: bool = False,
    policy: Path | None = None,
    by: str | None = None,
    progress: Callable[[str], None] | None = None,
    skip_runtimes: Collection[str] = (),
) -> ApplyResult:
    """Delete what the plan expires, re-checking each image just before; without `yes` only plan."""
    if yes:
        require_known_app(ctx, app)
    expiry = plan(ctx, app, policy=policy, progress=progress, skip_runtimes=skip_runtimes)
    result = ApplyResult(expiry, applied=yes)
    if not yes or not expiry.expiring:
        return result
    actor = identity(by)
    known_tags: dict[str, set[str]] = {}
    for entry in expiry.entries:
        known_tags.setdefault(entry.repository, set()).update(entry.tags)
    # The runtimes once more, just before deleting: a deployment since the plan keeps its image.
    running = scan(ctx, None, skip=skip_runtimes) if expiry.runtimes and expiry.runtimes.runtimes else None
    for entry in expiry.expiring:
        held = running.in_use(entry.repository).get(Digest.parse(entry.digest)) if running else None
        if held:
            reason = f"{held[0].env}: {held[0].reason} now"
            result.skipped.append({"repository": entry.repository, "digest": entry.digest, "reason": reason})
            continue
        # Any read failing here raises: apply stops, and what was deleted before is in the ledger.
        why_not = _recheck(ctx, app, entry, known_tags.get(entry.repository, set()))
        if why_not:
            result.skipped.append({"repository": entry.repository, "digest": entry.digest, "reason": why_not})
            continue
        ctx.registry.manifest_delete(entry.repository, Digest.parse(entry.digest))
        ctx.ledger.record_event(
            action="expire",
            app=app,
            env=None,
            digest=Digest.parse(entry.digest),
            by=actor,
            reason=f"rule {entry.rule_priority}",
            detail={"repository": entry.repository, "tags": list(entry.tags)},
        )
        result.deleted.append(
            {"repository": entry.repository, "digest": entry.digest, "tags": list(entry.tags)}
        )
        if progress is not None:
            progress(f"deleted {entry.repository}@{entry.digest}")
    return result


def _recheck(ctx: Context, app: str, entry: PlanEntry, known_tags: set[str]) -> str | None:
    """Why `entry` must not be deleted now (None: go ahead). Raises when anything is unreadable.

    Re-reads the ledger's protections (of every app sharing the repository), the environment tags
    of the app's repository (strategy `tags`), the digest, and every tag that appeared since the
    plan.
    """
    facts = merged_facts(ctx, apps_sharing(ctx, entry.repository, app))
    protected = set(facts.current.values()) | set(facts.pins)
    for digests in facts.rollback.values():
        protected |= set(digests)
    if entry.digest in protected:
        return "protected now (promoted, rollback target or pinned since the plan was made)"
    registry = ctx.registry
    if ctx.config.strategy == "tags" and entry.repository == ctx.config.repository_for(app, None):
        for env in ctx.config.environments:
            head = registry.manifest_head(entry.repository, env.name)
            if head is not None and str(head.digest) == entry.digest:
                return f"tagged {env.name} in the registry now"
    if registry.manifest_head(entry.repository, entry.digest) is None:
        return "already gone"
    for tag in set(registry.tag_list(entry.repository)) - known_tags:
        head = registry.manifest_head(entry.repository, tag)
        if head is not None and str(head.digest) == entry.digest:
            return f"gained tag {tag} since the plan was made"
    return None


def apply_each(
    ctx: Context,
    app: str | None,
    *,
    yes: bool = False,
    policy: Path | None = None,
    by: str | None = None,
    progress: Callable[[str], None] | None = None,
    skip_runtimes: Collection[str] = (),
) -> list[ApplyResult]:
    """`apply` for `app`, or (None) for every app the ledger knows, one after another; the first
    failure stops the run (what was deleted before it is recorded)."""
    names = [app] if app is not None else ctx.ledger.apps()
    return [
        apply(ctx, name, yes=yes, policy=policy, by=by, progress=progress, skip_runtimes=skip_runtimes)
        for name in names
    ]
