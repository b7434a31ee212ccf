"""The expiry plan of an app: every image of every repository, keep or expire, with every reason."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boda.errors import NotFound
from boda.policy.columnar import evaluate
from boda.policy.plan import EXPIRE, PlanEntry, plan_repository
from boda.services.context import Context, check_app
from boda.services.expiry.inventory import read_inventory, repositories
from boda.services.expiry.policy_file import policy_for
from boda.services.expiry.protections import (
    Drift,
    apps_sharing,
    combine,
    merged_facts,
    registry_holds,
    runtime_holds,
)
from boda.services.runtime_scan import RuntimeScan, scan


def require_known_app(ctx: Context, app: str) -> None:
    """Deleting needs the app's history: without it boda cannot prove any of its images unused."""
    try:
        ctx.require_app(app)
    except NotFound as exc:
        raise NotFound(
            f"{exc.message}; refusing to expire images without its history", hint=exc.hint
        ) from exc


@dataclass(frozen=True)
class ExpiryPlan:
    """The plan for one app: every image of every repository, keep or expire, with reasons."""

    app: str
    now: datetime
    entries: tuple[PlanEntry, ...]
    #: Where the registry and the ledger disagree about an environment.
    drift: tuple[Drift, ...] = ()
    #: Whether the ledger knows builds of the app (else only the registry protects its images).
    known_app: bool = True
    #: What the configured runtimes run (their reads, and any skipped by request).
    runtimes: RuntimeScan | None = None

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
            "drift": [d.to_json() for d in self.drift],
            "ledger_knows_app": self.known_app,
            "notes": list(self.notes),
            "runtimes": {
                "read": sorted({str(r.runtime) for r in self.runtimes.runtimes if not r.skipped})
                if self.runtimes
                else [],
                "skipped": [str(r) for r in self.runtimes.skipped] if self.runtimes else [],
            },
        }

    @property
    def notes(self) -> list[str]:
        """What a person must know about this plan beyond each image's reasons."""
        notes = []
        if not self.known_app:
            notes.append(
                f"the ledger knows no build of {self.app}: only the registry's environment tags protect"
                " its images, and gc apply refuses to delete any of them"
            )
        notes += [f"drift: {d.text}" for d in self.drift]
        if self.runtimes is not None:
            notes += [
                f"runtime {r} was skipped by request: what it runs is not protected in this run"
                for r in self.runtimes.skipped
            ]
            notes += [
                f"{s.env}: {s.image.place} runs {s.image.image}, which the registry does not hold by that"
                " tag: boda cannot tell which digest to keep"
                for s in self.runtimes.unresolved()
            ]
        return notes


def plan(
    ctx: Context,
    app: str,
    *,
    policy: Path | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    skip_runtimes: Collection[str] = (),
) -> ExpiryPlan:
    """The expiry plan of `app`; reads everything it needs, or fails before deciding anything.

    Each repository is planned with the ledger's protections of every app that maps onto it, with
    what the registry's environment tags name there, and with what the configured runtimes run:
    a runtime that cannot be read completely fails the plan, unless it is skipped by name.
    """
    check_app(app)
    rules = policy_for(ctx, policy)
    now = now or datetime.now(UTC)
    known = app in ctx.ledger.apps()
    if progress is not None and any(env.runtimes for env in ctx.config.environments):
        progress("reading the runtimes: what runs where")
    running = scan(ctx, None, skip=skip_runtimes)
    entries: list[PlanEntry] = []
    drift: list[Drift] = []
    for repo in repositories(ctx, app):
        if progress is not None:
            progress(f"reading {repo}: tags, manifests, index children and referrers")
        inventory = read_inventory(ctx, app, repo)
        if progress is not None:
            progress(f"read {repo}: {len(inventory.images)} manifests")
        facts = merged_facts(ctx, apps_sharing(ctx, repo, app))
        tagged, repo_drift = registry_holds(ctx, app, repo, inventory.images, facts)
        drift += repo_drift
        held = combine(tagged, runtime_holds(running, repo))
        repo_facts = replace(facts, unknown_age=frozenset(inventory.unknown_age), held=held)
        decisions = evaluate(rules, inventory.images, now)
        entries += plan_repository(repo, inventory.images, decisions, repo_facts, now)
    if not known and not entries:
        require_known_app(ctx, app)  # nothing in the registry either: a mistyped name, say so
    return ExpiryPlan(app, now, tuple(entries), tuple(drift), known, running)


def plans(
    ctx: Context,
    app: str | None,
    *,
    policy: Path | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    skip_runtimes: Collection[str] = (),
) -> list[ExpiryPlan]:
    """The plan of `app`, or (None) of every app the ledger knows, in name order."""
    names = [app] if app is not None else ctx.ledger.apps()
    return [
        plan(ctx, name, policy=policy, now=now, progress=progress, skip_runtimes=skip_runtimes)
        for name in names
    ]
