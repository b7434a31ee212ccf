"""Deleting what the plan expires: in batches, each re-checked and deleted under the locks
promotions take, announced as an intent and recorded as it goes.

For each batch (one repository, up to the backend's batch size, parents before children):
1. take the locks of every app whose images live in the repository (a promotion or rollback of
   those apps waits; other apps go on);
2. re-check every image: the ledger's protections now, the environment tags now, tags that
   appeared since the plan, and what the runtimes run (read once more before the first batch);
3. record an intent naming the batch, delete (one call per batch where the backend can), and
   record an `expire` event per deleted image; a deletion whose answer was lost is recorded too,
   once the registry shows the image gone;
4. release the locks.
A failure stops the run: what was deleted before it is recorded, and an open intent says what
`boda repair` must look at. On the OCI layout, unreferenced blobs are collected afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

from boda.errors import NotFound, Refused
from boda.policy.plan import PlanEntry
from boda.registry.base import BatchDelete, BlobCollector
from boda.services.context import Context, identity
from boda.services.expiry.plan import ExpiryPlan, plan, require_known_app
from boda.services.expiry.protections import apps_sharing, merged_facts
from boda.services.runtime_scan import RuntimeScan, scan
from boda.types import Digest, check_free_text

#: Images deleted under one hold of the locks on backends without a batch delete.
BATCH = 50


@dataclass
class ApplyResult:
    """What `gc apply` did."""

    plan: ExpiryPlan
    applied: bool
    deleted: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    collected: dict[str, int] = field(default_factory=dict)
    delete_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "applied": self.applied,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "failed": self.failed,
            "collected_blobs": self.collected,
            "delete_calls": self.delete_calls,
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
    before_delete: Callable[[Sequence[PlanEntry]], None] | None = None,
) -> ApplyResult:
    """Delete what the plan expires (see the module docstring); without `yes` only plan.

    `before_delete` runs under the locks just before each batch is deleted (tests use it to force
    an interleaving).
    """
    if yes:
        require_known_app(ctx, app)
        if ctx.config.retention.mode == "native":
            raise Refused(
                f"retention mode is native: ECR's own lifecycle policy expires {app}'s images, not boda",
                hint="keep the protection tags current with `boda ecr sync APP` and the policy with"
                " `boda ecr policy put APP --render`; gc plan still shows what boda's rules would do",
            )
    expiry = plan(ctx, app, policy=policy, progress=progress, skip_runtimes=skip_runtimes)
    result = ApplyResult(expiry, applied=yes)
    if not yes or not expiry.expiring:
        return result
    actor = check_free_text(identity(by), "the name of who acts")
    ctx.ledger.check_writable()
    known_tags: dict[str, set[str]] = {}
    for entry in expiry.entries:
        known_tags.setdefault(entry.repository, set()).update(entry.tags)
    # The runtimes once more, just before deleting: a deployment since the plan keeps its image.
    running = scan(ctx, None, skip=skip_runtimes) if expiry.runtimes and expiry.runtimes.runtimes else None
    touched: set[str] = set()
    for repo, batch in _batches(ctx, expiry.expiring):
        sharing = apps_sharing(ctx, repo, app)
        with ctx.ledger.lock_apps(sharing, purpose=f"gc apply {app}"):
            doomed = _recheck(ctx, app, repo, batch, known_tags.get(repo, set()), running, result)
            if not doomed:
                continue
            if before_delete is not None:
                before_delete(doomed)
            _delete(ctx, app, repo, doomed, actor, result, progress)
            touched.add(repo)
    _collect_blobs(ctx, touched, result)
    return result


def _group(entry: PlanEntry) -> int:
    """Deletion order: indexes, then images, then referrers (a parent before its children)."""
    return 2 if entry.subject is not None else (0 if entry.children else 1)


def _batches(ctx: Context, expiring: Sequence[PlanEntry]) -> Iterator[tuple[str, list[PlanEntry]]]:
    registry = ctx.registry
    size = registry.delete_batch_size if isinstance(registry, BatchDelete) else BATCH
    ordered = sorted(expiring, key=lambda e: (e.repository, _group(e)))
    for (repo, _level), entries in groupby(ordered, key=lambda e: (e.repository, _group(e))):
        group = list(entries)
        for start in range(0, len(group), size):
            yield repo, group[start : start + size]


def _recheck(
    ctx: Context,
    app: str,
    repo: str,
    batch: list[PlanEntry],
    known_tags: set[str],
    running: RuntimeScan | None,
    result: ApplyResult,
) -> list[PlanEntry]:
    """The entries of `batch` that may still go; the others are reported as skipped with why.
    Every read here that fails raises: nothing of the batch is deleted."""
    registry = ctx.registry
    facts = merged_facts(ctx, apps_sharing(ctx, repo, app))
    protected = set(facts.current.values()) | set(facts.pins)
    for digests in facts.rollback.values():
        protected |= set(digests)
    tagged: dict[str, str] = {}
    if ctx.config.strategy == "tags" and repo == ctx.config.repository_for(app, None):
        for env in ctx.config.environments:
            head = registry.manifest_head(repo, env.name)
            if head is not None:
                tagged.setdefault(str(head.digest), f"tagged {env.name} in the registry now")
    for tag in sorted(set(registry.tag_list(repo)) - known_tags):
        head = registry.manifest_head(repo, tag)
        if head is not None:
            tagged.setdefault(str(head.digest), f"gained tag {tag} since the plan was made")
    held = running.in_use(repo) if running is not None else {}
    doomed = []
    for entry in batch:
        why = None
        if entry.digest in protected:
            why = "protected now (promoted, rollback target or pinned since the plan was made)"
        elif entry.digest in tagged:
            why = tagged[entry.digest]
        elif sightings := held.get(Digest.parse(entry.digest)):
            why = f"{sightings[0].env}: {sightings[0].reason} now"
        if why is None:
            doomed.append(entry)
        else:
            result.skipped.append({"repository": repo, "digest": entry.digest, "reason": why})
    return doomed


def _delete(
    ctx: Context,
    app: str,
    repo: str,
    doomed: list[PlanEntry],
    actor: str,
    result: ApplyResult,
    progress: Callable[[str], None] | None,
) -> None:
    """Announce, delete and record one batch."""
    registry = ctx.registry
    intent = ctx.ledger.begin_intent(
        "expire",
        app,
        by=actor,
        detail={"repository": repo, "digests": [e.digest for e in doomed]},
    )
    outcomes: dict[str, tuple[str, str]] = {}  # digest -> (status, why)
    if isinstance(registry, BatchDelete):
        result.delete_calls += 1
        for outcome in registry.manifest_delete_batch(repo, [Digest.parse(e.digest) for e in doomed]):
            outcomes[str(outcome.digest)] = (outcome.status, f"{outcome.code}: {outcome.reason}".strip(": "))
    else:
        for entry in doomed:
            result.delete_calls += 1
            try:
                registry.manifest_delete(repo, Digest.parse(entry.digest))
                outcomes[entry.digest] = ("deleted", "")
            except NotFound:
                outcomes[entry.digest] = ("not_found", "")
    refused = 0
    for entry in doomed:
        status, why = outcomes.get(entry.digest, ("failed", "the registry did not say"))
        if status == "not_found" and registry.manifest_head(repo, entry.digest) is not None:
            status, why = "failed", "the registry answered 'not found' but still has it"
        if status == "failed":
            result.failed.append({"repository": repo, "digest": entry.digest, "reason": why})
            refused += 1
            continue
        gone_before = status == "not_found"  # an answer lost on the way, or removed meanwhile
        ctx.ledger.record_event(
            "expire",
            app=app,
            by=actor,
            digest=Digest.parse(entry.digest),
            reason=f"rule {entry.rule_priority}",
            detail={"repository": repo, "tags": list(entry.tags), "already_gone": gone_before},
        )
        result.deleted.append(
            {
                "repository": repo,
                "digest": entry.digest,
                "tags": list(entry.tags),
                "already_gone": gone_before,
            }
        )
        if progress is not None:
            progress(f"deleted {repo}@{entry.digest}")
    ctx.ledger.resolve_intent(
        intent,
        resolution="done",
        by=actor,
        reason=f"{len(doomed) - refused} deleted and recorded, {refused} refused by the registry",
    )


def _collect_blobs(ctx: Context, repos: set[str], result: ApplyResult) -> None:
    """On a backend that keeps unreferenced blobs (the OCI layout), collect those of the touched
    repositories that are older than the grace period (a concurrent push is never broken)."""
    registry = ctx.registry
    if not isinstance(registry, BlobCollector):
        return
    grace: timedelta = ctx.config.retention.blob_grace
    for repo in sorted(repos):
        removed = registry.gc_blobs(repo, min_age=grace)
        if removed:
            result.collected[repo] = len(removed)


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
