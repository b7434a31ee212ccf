"""The expiry plan of an app: every image of every repository, keep or expire, with every reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boda.errors import NotFound
from boda.policy.ecr import evaluate
from boda.policy.plan import EXPIRE, Facts, PlanEntry, plan_repository
from boda.services.context import Context
from boda.services.expiry.inventory import read_inventory, repositories
from boda.services.expiry.policy_file import policy_for
from boda.services.expiry.protections import ledger_facts


def require_known_app(ctx: Context, app: str) -> None:
    """Expiry needs the app's history: without it boda cannot prove any of its images unused."""
    try:
        ctx.require_app(app)
    except NotFound as exc:
        raise NotFound(f"{exc.message}; refusing to plan expiry without its history", hint=exc.hint) from exc


@dataclass(frozen=True)
class ExpiryPlan:
    """The plan for one app: every image of every repository, keep or expire, with reasons."""

    app: str
    now: datetime
    entries: tuple[PlanEntry, ...]

    @property
    def expiring(self) -> list[PlanEntry]:
        """Entries to delete, in a safe order: parents before children, subjects before referrers."""
        doomed = [e for e in self.entries if e.action == EXPIRE]
        return sorted(doomed, key=lambda e: (e.subject is not None, not e.children, e.pushed_at))

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "now": self.now.isoformat(),
            "summary": {
                "images": len(self.entries),
                "expire": sum(1 for e in self.entries if e.action == EXPIRE),
                "keep": sum(1 for e in self.entries if e.action != EXPIRE),
            },
            "images": [e.to_json() for e in self.entries],
        }


def plan(
    ctx: Context,
    app: str,
    *,
    policy: Path | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExpiryPlan:
    """The expiry plan of `app`; reads everything it needs, or fails before deciding anything."""
    require_known_app(ctx, app)
    rules = policy_for(ctx, policy)
    now = now or datetime.now(UTC)
    facts = ledger_facts(ctx, app)
    entries: list[PlanEntry] = []
    for repo in repositories(ctx, app):
        if progress is not None:
            progress(f"reading {repo}: tags, manifests, index children and referrers")
        inventory = read_inventory(ctx, app, repo)
        if progress is not None:
            progress(f"read {repo}: {len(inventory.images)} manifests")
        repo_facts = Facts(
            facts.current, facts.rollback, facts.pins, facts.min_age, frozenset(inventory.unknown_age)
        )
        decisions = evaluate(rules, inventory.images, now)
        entries += plan_repository(repo, inventory.images, decisions, repo_facts, now)
    return ExpiryPlan(app, now, tuple(entries))
