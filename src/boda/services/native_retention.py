"""Native retention (`[retention] mode = "native"`): ECR's own lifecycle policy deletes images, and
boda makes that safe by keeping a protection tag on every image it protects.

    sync        reconcile an app's protection tags with what must stay (current and rollback window of
                every environment, pins, what the runtimes run), read every write back, and with
                `[promotion] untag_replaced` untag the digests that left every window
    follow      what promote, rollback, pin and unpin call once their change is recorded: `sync` of
                each app they changed; nothing at all in mode "boda"
    prepare     the tag mutability a repository needs (ECR exclusion filters for the tags that move)
    protected   what must stay in one repository, closed over the image graph: what a rendered policy
                is proved against

The tag scheme and the plan of a sync are pure (boda.policy.protection_tags); this module reads the
ledger, the runtimes and the registry, and writes the plan: additions first, then removals, each
registry write read back, under the app's ledger lock, announced by an intent and recorded by an
event. A runtime that cannot be read leaves every stale tag in place and untags nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from boda.errors import BodaError, Conflict, DigestMismatch, NotFound, RegistryError, Unavailable, UsageError
from boda.policy.image import EcrImage
from boda.policy.plan import Protection, direct_protections
from boda.policy.protection_tags import (
    RUN,
    SyncPlan,
    TagScheme,
    apply_plan,
    close_over_graph,
    mutability_change,
    plan_sync,
    retirees,
    seed_labels,
)
from boda.registry.base import ImageLister, LifecyclePolicyStore, TagMutability, TagMutabilityStore
from boda.runtime.base import RuntimeUnavailable
from boda.services.context import Context, identity
from boda.services.expiry.inventory import read_inventory, repositories
from boda.services.expiry.plan import require_known_app
from boda.services.expiry.protections import (
    apps_sharing,
    combine,
    ledger_facts,
    merged_facts,
    registry_holds,
    runtime_holds,
)
from boda.services.runtime_scan import RuntimeScan, scan
from boda.types import Manifest

log = logging.getLogger(__name__)

RuntimeFailure = Literal["raise", "add-only"]
#: Protections ECR cannot honour (a lifecycle rule cannot select by age); reported, not tagged.
UNTAGGABLE = frozenset({"min-age", "unknown-age"})


class NotSynced(Unavailable):
    """A change was recorded, but the protection tags could not be brought in line with it."""


def is_native(ctx: Context) -> bool:
    """True when ECR's own lifecycle policy is what deletes images."""
    return ctx.config.retention.mode == "native"


def require_native(ctx: Context, what: str) -> None:
    """UsageError unless `[retention] mode = "native"`."""
    if not is_native(ctx):
        raise UsageError(
            f"{what} needs native retention; {ctx.config.path or 'the config'} has"
            f' [retention] mode = "{ctx.config.retention.mode}"',
            hint='set [retention] mode = "native" (README: Native retention), then run `boda ecr sync APP`',
        )


def scheme(ctx: Context) -> TagScheme:
    """The protection tag scheme of the configuration."""
    return TagScheme(ctx.config.retention.protection_prefix)


# --------------------------------------------------------------------------- what must stay


@dataclass
class RepoState:
    """One repository as native retention sees it, read once."""

    repository: str
    images: list[EcrImage]
    #: Protection labels per digest (environments, pin, run), closed over the image graph.
    labels: dict[str, frozenset[str]]
    #: What must stay and why, closed over the image graph (what a policy is proved against).
    protected: dict[str, list[Protection]]
    #: Environments whose stale protection tags stay: the ledger knows nothing current there.
    keep_labels: frozenset[str] = frozenset()
    #: Digests to untag completely (untag_replaced).
    retire: frozenset[str] = frozenset()
    notes: list[str] = field(default_factory=list)


def read_state(
    ctx: Context,
    app: str,
    repo: str,
    running: RuntimeScan | None,
    *,
    now: datetime | None = None,
    retire: bool = False,
) -> RepoState:
    """What `repo` holds and what must stay there; with `retire`, also what `untag_replaced` untags.
    `running` None: the runtimes could not be read (no `run` labels, nothing retired); a runtime
    skipped by request: its `run` tags stay and nothing is retired."""
    now = now or datetime.now(UTC)
    inventory = read_inventory(ctx, app, repo)
    images = inventory.images
    apps = apps_sharing(ctx, repo, app)
    windows: dict[str, list[str]] = {}
    pins: set[str] = set()
    for name in apps:
        facts = ledger_facts(ctx, name)
        for env, digest in facts.current.items():
            windows.setdefault(env, []).append(digest)
        for env, digests in facts.rollback.items():
            windows.setdefault(env, []).extend(digests)
        pins |= set(facts.pins)
    current_envs = {env for env, digests in windows.items() if digests}
    held_running = runtime_holds(running, repo) if running is not None else {}
    env_tags: dict[str, list[str]] = {}
    if ctx.config.strategy == "tags" and repo == ctx.config.repository_for(app, None):
        names = {env.name for env in ctx.config.environments}
        for image in images:
            for tag in set(image.tags) & names:
                env_tags.setdefault(tag, []).append(image.digest)
    seeds = seed_labels(windows, pins=pins, running=held_running, env_tags=env_tags)
    labels = close_over_graph(images, seeds)

    merged = merged_facts(ctx, apps)
    tagged, drift = registry_holds(ctx, app, repo, images, merged)
    facts = replace(merged, unknown_age=frozenset(), held=combine(tagged, held_running))
    # No age protections: a lifecycle rule cannot select by age, so ECR cannot honour them.
    direct = {
        d: kept
        for d, found in direct_protections(images, replace(facts, min_age=timedelta(0)), now).items()
        if (kept := [p for p in found if p.kind not in UNTAGGABLE])
    }
    protected = {d: list(found) for d, found in close_over_graph(images, direct).items()}
    keep = frozenset(e.name for e in ctx.config.environments) - current_envs
    if running is not None and running.skipped:
        keep |= {RUN}
    state = RepoState(repo, images, labels, protected, keep)
    state.notes += [f"drift: {d.text}" for d in drift]
    if retire and ctx.config.untag_replaced and running is not None and not running.skipped:
        state.retire = _retired(ctx, apps, state)
    return state


def _retired(ctx: Context, apps: Sequence[str], state: RepoState) -> frozenset[str]:
    """What `untag_replaced` untags in the repository (protection_tags.retirees): digests promoted
    by any app sharing it that hold no label now (a digest an environment tag names holds that
    environment's label). In an environment's repository of strategy `repos` every digest is
    tagged, and those tags are what goes: they hold nothing back there."""
    promoted: set[str] = set()
    for name in apps:
        promoted |= {str(p.digest) for p in ctx.ledger.iter_promotions(name)}
    return retirees(scheme(ctx), state.images, state.labels, promoted=promoted, keep_labels=state.keep_labels)


def protected(
    ctx: Context, app: str, repo: str, *, skip_runtimes: Collection[str] = (), now: datetime | None = None
) -> RepoState:
    """`read_state` with the runtimes read (failing closed: a runtime that cannot be read raises)."""
    return read_state(ctx, app, repo, scan(ctx, None, skip=skip_runtimes), now=now)


# --------------------------------------------------------------------------- sync


@dataclass
class SyncReport:
    """What a sync did to an app's repositories."""

    app: str
    mode: str
    plans: list[SyncPlan] = field(default_factory=list)
    #: Why stale tags were kept and nothing untagged (a runtime could not be read), else None.
    incomplete: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when any registry write was made."""
        return any(not p.empty for p in self.plans)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "mode": self.mode,
            "changed": self.changed,
            "incomplete": self.incomplete,
            "repositories": [p.to_json() for p in self.plans],
            "notes": self.notes,
        }


def sync(
    ctx: Context,
    app: str,
    *,
    by: str | None = None,
    skip_runtimes: Collection[str] = (),
    on_runtime_failure: RuntimeFailure = "raise",
) -> SyncReport:
    """Bring the protection tags of every repository of `app` in line with what must stay; with
    `[promotion] untag_replaced`, untag the digests that left every window. Idempotent.

    A runtime that cannot be read raises (exit 6, nothing written), unless skipped by name, or
    with `on_runtime_failure="add-only"`: then only missing tags are added (adding never lets an
    image expire) and the report says why nothing was removed. No-op in mode "boda".
    """
    if not is_native(ctx):
        return SyncReport(app, ctx.config.retention.mode)
    _registry(ctx)
    require_known_app(ctx, app)
    repos = repositories(ctx, app)
    apps = sorted({name for repo in repos for name in apps_sharing(ctx, repo, app)})
    actor = identity(by)
    report = SyncReport(app, "native")
    with ctx.ledger.lock_apps(apps, purpose=f"sync the protection tags of {app}"):
        running: RuntimeScan | None
        try:
            running = scan(ctx, None, skip=skip_runtimes)
        except RuntimeUnavailable as exc:
            if on_runtime_failure == "raise":
                raise
            running, report.incomplete = None, exc.message
        if running is not None and running.skipped:
            # What a skipped runtime runs is unknown in this run: its tags stay, nothing is untagged.
            report.incomplete = f"runtime {running.skipped[0]} skipped by request"
        for repo in repos:
            state = read_state(ctx, app, repo, running, retire=True)
            report.notes += state.notes
            plan = plan_sync(
                scheme(ctx),
                repo,
                state.images,
                state.labels,
                retire=state.retire,
                removals=running is not None,
                keep_labels=state.keep_labels,
            )
            report.plans.append(plan)
            report.notes += [f"{repo}: {note}" for note in plan.left]
            if plan.empty:
                continue
            intent = ctx.ledger.begin_intent("protection-tags", app, by=actor, detail=plan.to_json())
            _Writer(ctx, plan).run()
            _read_back(ctx, state.images, plan)
            ctx.ledger.record_event(
                "protection-tags",
                app=app,
                by=actor,
                reason="native retention",
                detail=plan.to_json(),
                intent=intent,
            )
        if running is not None and not running.skipped:
            _close_earlier(ctx, app, actor)
    return report


def _close_earlier(ctx: Context, app: str, actor: str) -> None:
    """A complete sync leaves the tags as they must be: it completes any sync interrupted before."""
    for intent in ctx.ledger.open_intents(app):
        if intent.action == "protection-tags":
            ctx.ledger.resolve_intent(
                intent, resolution="done", by=actor, reason="a later complete sync brought the tags in line"
            )


def sync_app(
    ctx: Context, app: str, *, by: str | None = None, skip_runtimes: Collection[str] = ()
) -> SyncReport:
    """`boda ecr sync`: `sync`, refusing (exit 2) outside native retention."""
    require_native(ctx, "boda ecr sync")
    return sync(ctx, app, by=by, skip_runtimes=skip_runtimes)


def follow(ctx: Context, apps: Sequence[str], *, by: str | None = None) -> list[SyncReport]:
    """Sync the protection tags of `apps` after their change was recorded (a promotion, rollback,
    pin or unpin). Nothing in mode "boda".

    A runtime that cannot be read: the missing tags are still added and a warning says what was
    left. Any other failure raises NotSynced (exit 6): the change stands, and `boda ecr sync APP`
    finishes the job.
    """
    if not is_native(ctx):
        return []
    reports = []
    for app in dict.fromkeys(apps):
        try:
            report = sync(ctx, app, by=by, on_runtime_failure="add-only")
        except BodaError as exc:
            raise NotSynced(
                f"{app}: recorded, but its protection tags are not in line with it: {exc.message}",
                hint=f"run `boda ecr sync {app}` once the cause is fixed; until then ECR's lifecycle policy"
                " may not see that the new digest is protected",
            ) from exc
        if report.incomplete:
            log.warning(
                "%s: protection tags added, stale ones kept and nothing untagged: %s; run `boda ecr sync %s`",
                app,
                report.incomplete,
                app,
            )
        reports.append(report)
    return reports


class _Writer:
    """Writes one plan: each put's digest and each deletion's image read back as it goes."""

    def __init__(self, ctx: Context, plan: SyncPlan) -> None:
        self.registry = ctx.registry
        self.scheme = scheme(ctx)
        self.plan = plan
        self.repo = plan.repository
        self._manifests: dict[str, Manifest] = {}

    def run(self) -> None:
        for digest, tag in self.plan.add:
            self._put(tag, digest)
        for digest, tag in self.plan.remove:
            self._delete(tag, digest)
        for digest, tag in self.plan.strip:
            self._strip(tag, digest)
        for digest, tags in self.plan.untag:
            carrier = next((t for t in tags if self.scheme.owns(t, digest)), None)
            if carrier is None:
                carrier = self.scheme.carrier(digest)
                self._put(carrier, digest)
            for tag in tags:
                if tag != carrier:
                    self._delete(tag, digest)
            self._strip(carrier, digest)

    def _manifest(self, digest: str) -> Manifest:
        if digest not in self._manifests:
            self._manifests[digest] = self.registry.manifest_get(self.repo, digest)
        return self._manifests[digest]

    def _put(self, tag: str, digest: str) -> None:
        reported = self.registry.manifest_put(self.repo, tag, self._manifest(digest))
        if str(reported) != digest:
            raise DigestMismatch(f"{self.repo}:{tag}: the registry reports {reported}, not {digest}")

    def _delete(self, tag: str, digest: str) -> None:
        """Delete a tag that is not its image's last (the backend refuses a last tag: Refused)."""
        done = self.registry.tag_delete(self.repo, tag, keep_image=True)
        if done.digest is not None and str(done.digest) != digest:
            raise Conflict(f"{self.repo}:{tag} named {done.digest}, not {digest}, when it was deleted")
        if done.image_deleted:
            raise RegistryError(f"{self.repo}@{digest} was deleted with its tag {tag}")

    def _strip(self, tag: str, digest: str) -> None:
        """Take an image's last tag away without deleting the image: move the tag onto the parking
        image (ECR keeps an image whose last tag moves away, untagged), then delete it there."""
        parking = self.plan.parking
        assert parking is not None
        self._put(tag, parking)
        if self.registry.manifest_head(self.repo, digest) is None:
            raise RegistryError(
                f"{self.repo}@{digest} disappeared when its last tag {tag} moved to another image: this"
                " registry deletes such images (ECR keeps them, untagged); nothing more was changed",
                hint="this registry cannot untag without deleting: set [promotion] untag_replaced = false",
            )
        self._delete(tag, parking)


def _read_back(ctx: Context, before: Sequence[EcrImage], plan: SyncPlan) -> None:
    """List the repository again: every planned change is there and every touched image still is."""
    registry = ctx.registry
    if not isinstance(registry, ImageLister):
        return
    actual = {str(r.digest): set(r.tags) for r in registry.image_list(plan.repository)}
    expected = {image.digest: set(image.tags) for image in apply_plan(before, plan)}
    touched = (
        {d for d, _ in plan.add} | {d for d, _ in (*plan.remove, *plan.strip)} | {d for d, _ in plan.untag}
    )
    if plan.parking is not None and (plan.strip or plan.untag):
        touched.add(plan.parking)
    problems = []
    for digest in sorted(touched):
        if digest not in actual:
            problems.append(f"{digest} is gone")
            continue
        managed_expected = {t for t in expected[digest] if scheme(ctx).parse(t)}
        managed_actual = {t for t in actual[digest] if scheme(ctx).parse(t)}
        if managed_expected != managed_actual:
            held = sorted(managed_actual) or "no protection tag"
            problems.append(f"{digest} holds {held}, not {sorted(managed_expected)}")
        removed = {t for d, tags in plan.untag if d == digest for t in tags}
        if removed & actual[digest]:
            problems.append(f"{digest} still holds {sorted(removed & actual[digest])}")
    if problems:
        raise RegistryError(f"{plan.repository}: read back after the sync: {'; '.join(problems)}")


def _registry(ctx: Context) -> LifecyclePolicyStore:
    registry = ctx.registry
    if not isinstance(registry, LifecyclePolicyStore):
        raise UsageError(f"native retention needs an ECR registry, not {ctx.config.registry}")
    return registry


# --------------------------------------------------------------------------- tag mutability


def needed_mutable(ctx: Context, app: str, repo: str) -> list[str]:
    """The tags of `repo` that must be able to move: the protection tags (a last tag is stripped by
    moving it) and, in the app's repository of strategy `tags`, the environment tags."""
    needed = [scheme(ctx).pattern]
    if ctx.config.strategy == "tags" and repo == ctx.config.repository_for(app, None):
        needed += [env.name for env in ctx.config.environments]
    return needed


@dataclass(frozen=True)
class MutabilityChange:
    """A repository's tag mutability as `prepare` found it and as ECR reports it after the change."""

    repository: str
    before: TagMutability
    after: TagMutability

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "repository": self.repository,
            "from": {"mutability": self.before.mutability, "filters": list(self.before.filters)},
            "to": {"mutability": self.after.mutability, "filters": list(self.after.filters)},
        }


def prepare(ctx: Context, app: str, repo: str) -> MutabilityChange | None:
    """Make `repo`'s tag mutability let the protection (and environment) tags move and nothing else
    that was immutable; None when it already does. Refused (exit 3) when the settings forbid it."""
    registry = ctx.registry
    if not isinstance(registry, TagMutabilityStore):
        return None
    try:
        current = registry.tag_mutability(repo)
    except NotFound:
        return None
    needed = needed_mutable(ctx, app, repo)
    change = mutability_change(repo, current.mutability, current.filters, needed)
    if change is None:
        return None
    after = registry.put_tag_mutability(repo, TagMutability(*change))
    if mutability_change(repo, after.mutability, after.filters, needed) is not None:
        raise RegistryError(
            f"{repo}: ECR reports tag mutability {after.mutability} with filters {list(after.filters)} after"
            f" boda set {change[0]} with {list(change[1])}"
        )
    return MutabilityChange(repo, current, after)
