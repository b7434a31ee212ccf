"""Safe expiry: plan from the registry, the ledger and a lifecycle policy; apply only on request.

The plan reads everything first — every repository of the app, every index's children, every
referrer, the ledger's deployments, rollback targets and pins — and any read that fails aborts it:
nothing is deleted on partial knowledge. Apply re-reads the ledger's protections and the image's
digest and tags just before each deletion and stops at the first read that fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boda.errors import UsageError
from boda.policy.columnar import evaluate
from boda.policy.document import LifecyclePolicy, parse_policy
from boda.policy.image import EcrImage
from boda.policy.plan import EXPIRE, Facts, PlanEntry, plan_repository
from boda.services.context import Context, identity
from boda.types import INDEX_TYPES, Digest

if TYPE_CHECKING:
    from boda.registry.base import ImageRecord, Registry


def _require_known_app(ctx: Context, app: str) -> None:
    """Expiry of an app the ledger has never heard of is bad input (exit 2), not a lookup miss:
    without its history boda cannot prove any of its images unused."""
    from boda.errors import NotFound

    try:
        ctx.require_app(app)
    except NotFound as exc:
        raise UsageError(f"{exc.message}; refusing to plan expiry without its history") from None


def load_policy(path: Path) -> LifecyclePolicy:
    """Read and validate a lifecycle policy file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the policy: {exc.strerror}") from None
    return parse_policy(text)


def policy_for(ctx: Context, policy: Path | None) -> LifecyclePolicy:
    """`--policy`, else `retention.policy` from the config."""
    path = policy or ctx.config.retention.policy
    if path is None:
        raise UsageError("no lifecycle policy: pass --policy or set retention.policy in boda.toml")
    return load_policy(path)


def repositories(ctx: Context, app: str) -> list[str]:
    """Every repository that holds images of `app` under the configured strategy."""
    repos = [ctx.config.repository_for(app, None)]
    if ctx.config.strategy == "repos":
        repos += [ctx.config.repository_for(app, env.name) for env in ctx.config.environments]
    return repos


def ledger_facts(ctx: Context, app: str) -> Facts:
    """Deployments, rollback targets and pins of `app`, by digest (a complete read or an error)."""
    depth = ctx.config.retention.rollback_depth
    current = {env: str(p.digest) for env, p in ctx.ledger.current_all(app).items()}
    rollback = {
        env.name: [str(d) for d in ctx.ledger.previous_digests(app, env.name, depth)]
        for env in ctx.config.environments
    }
    pins = {str(p.digest): f"pinned by {p.by}: {p.reason}" for p in ctx.ledger.pins(app)}
    return Facts(current, rollback, pins, ctx.config.retention.min_age)


@dataclass
class Inventory:
    """What one repository holds, as the policy engine sees it."""

    repository: str
    images: list[EcrImage]
    unknown_age: set[str] = field(default_factory=set)


def read_inventory(ctx: Context, app: str, repo: str) -> Inventory:
    """Every manifest of `repo` with tags, push time, index children and referrer subject.

    Starts from what the backend lists (all manifests on ECR and layouts, tagged ones on an OCI
    registry) plus every recorded build, then follows index children and referrers until nothing
    new turns up, so untagged children and signatures are planned as part of their image.
    """
    from boda.registry.base import ImageRecord

    registry = ctx.registry
    records = {str(r.digest): r for r in _image_list(registry, repo)}
    builds = ctx.ledger.list_builds(app)
    for build in builds:
        if str(build.digest) not in records:
            head = registry.manifest_head(repo, str(build.digest))
            if head is not None:
                records[str(build.digest)] = ImageRecord(head.digest, (), head.media_type)
    children: dict[str, tuple[str, ...]] = {}
    subjects: dict[str, str] = {d: s for d, r in records.items() if (s := _subject_of(r))}

    def explore(digest: str) -> tuple[str, tuple[str, ...], list[ImageRecord]]:
        record = records[digest]
        kids: tuple[str, ...] = ()
        found: list[ImageRecord] = []
        if record.media_type in INDEX_TYPES:
            manifest = registry.manifest_get(repo, digest)
            kids = tuple(str(c.digest) for c in manifest.children)
            found += [ImageRecord(c.digest, (), c.media_type, size=c.size) for c in manifest.children]
        for ref in registry.referrers(repo, Digest.parse(digest)):
            found.append(
                ImageRecord(
                    ref.digest,
                    (),
                    ref.media_type,
                    size=ref.size,
                    subject=Digest.parse(digest),
                    artifact_type=ref.artifact_type,
                )
            )
        return digest, kids, found

    pending = list(records)
    with ThreadPoolExecutor(max_workers=8) as pool:
        while pending:
            discovered: list[str] = []
            for digest, kids, found in pool.map(explore, pending):
                children[digest] = kids
                for record in found:
                    key = str(record.digest)
                    if record.subject is not None:
                        subjects.setdefault(key, str(record.subject))
                    if key not in records:
                        records[key] = record
                        discovered.append(key)
            pending = discovered
    return _as_engine_images(
        ctx, app, repo, records, children, subjects, {str(b.digest): b.recorded_at for b in builds}
    )


def _as_engine_images(
    ctx: Context,
    app: str,
    repo: str,
    records: dict[str, ImageRecord],
    children: dict[str, tuple[str, ...]],
    subjects: dict[str, str],
    built_at: dict[str, datetime],
) -> Inventory:
    """Give every image a push time: its own, its build's, its parent's or subject's, else unknown."""
    promoted_at: dict[str, datetime] = {}
    if ctx.config.retention.age_from == "promotion":
        for p in ctx.ledger.promotions(app):
            promoted_at.setdefault(str(p.digest), p.at)
    parent_of = {kid: parent for parent, kids in children.items() for kid in kids}
    known: dict[str, datetime] = {}
    for digest, record in records.items():
        pushed = record.pushed_at or built_at.get(digest)
        if pushed is not None:
            known[digest] = max(pushed, promoted_at.get(digest, pushed))

    def age_of(digest: str, depth: int = 0) -> datetime | None:
        if digest in known or depth > 8:
            return known.get(digest)
        related = subjects.get(digest) or parent_of.get(digest)
        return age_of(related, depth + 1) if related else None

    inventory = Inventory(repo, [])
    now = datetime.now(UTC)
    for digest, record in records.items():
        pushed = age_of(digest)
        if pushed is None:
            inventory.unknown_age.add(digest)
            pushed = now
        inventory.images.append(
            EcrImage(
                digest=digest,
                tags=record.tags,
                pushed_at=pushed,
                last_pulled_at=record.last_pulled_at,
                status="ARCHIVED" if record.status == "ARCHIVED" else "ACTIVE",
                last_archived_at=record.last_archived_at,
                media_type=record.media_type,
                children=children.get(digest, ()),
                subject=subjects.get(digest),
            )
        )
    return inventory


def _image_list(registry: Registry, repo: str) -> list[ImageRecord]:
    from boda.errors import NotFound

    try:
        return registry.image_list(repo)
    except NotFound:
        return []  # the repository does not exist (yet): nothing to expire there


_SHA256_TAG = re.compile(r"^sha256-([0-9a-f]{64})(?:\.(?:sig|att|sbom))?$")


def _subject_of(record: ImageRecord) -> str | None:
    """The image a manifest belongs to: its `subject`, or the digest its tag names — the OCI
    referrers fallback tag `sha256-<hex>` and cosign's `sha256-<hex>.sig|.att|.sbom`."""
    if record.subject is not None:
        return str(record.subject)
    for tag in record.tags:
        match = _SHA256_TAG.match(tag)
        if match:
            return f"sha256:{match.group(1)}"
    return None


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
    _require_known_app(ctx, app)
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
) -> ApplyResult:
    """Delete what the plan expires, re-checking each image just before; without `yes` only plan."""
    expiry = plan(ctx, app, policy=policy, progress=progress)
    result = ApplyResult(expiry, applied=yes)
    if not yes:
        return result
    actor = identity(by)
    known_tags: dict[str, set[str]] = {}
    for entry in expiry.entries:
        known_tags.setdefault(entry.repository, set()).update(entry.tags)
    for entry in expiry.expiring:
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

    Re-reads the ledger's protections, the digest, and every tag that appeared since the plan
    (a tag that moved between existing names is a promotion, which the ledger shows).
    """
    facts = ledger_facts(ctx, app)
    protected = set(facts.current.values()) | set(facts.pins)
    for digests in facts.rollback.values():
        protected |= set(digests)
    if entry.digest in protected:
        return "protected now (promoted, rollback target or pinned since the plan was made)"
    registry = ctx.registry
    if registry.manifest_head(entry.repository, entry.digest) is None:
        return "already gone"
    for tag in set(registry.tag_list(entry.repository)) - known_tags:
        head = registry.manifest_head(entry.repository, tag)
        if head is not None and str(head.digest) == entry.digest:
            return f"gained tag {tag} since the plan was made"
    return None


def pin(ctx: Context, app: str, digest: str, *, reason: str, by: str | None = None) -> dict[str, Any]:
    """Protect a digest of `app` from expiry until unpinned."""
    if not reason.strip():
        raise UsageError("--reason is required: say why the image must stay")
    _require_known_app(ctx, app)
    wanted = Digest.parse(digest)
    ctx.ledger.pin(app=app, digest=wanted, reason=reason, by=identity(by))
    return {"app": app, "digest": str(wanted), "reason": reason, "pinned": True}


def unpin(ctx: Context, app: str, digest: str, *, by: str | None = None) -> dict[str, Any]:
    """Remove a pin (NotFound when the digest is not pinned)."""
    _require_known_app(ctx, app)
    wanted = Digest.parse(digest)
    ctx.ledger.unpin(app=app, digest=wanted, by=identity(by))
    return {"app": app, "digest": str(wanted), "pinned": False}


def policy_check(
    ctx: Context, app: str, *, policy: Path | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Evaluate the policy as ECR would (ignoring boda's protections) and list every protected
    image it would expire: the outage predictor."""
    _require_known_app(ctx, app)
    if policy is None and ctx.config.retention.policy is None:
        native = getattr(ctx.registry, "lifecycle_policy", None)
        text = native(ctx.config.repository_for(app, None)) if native else None
        if not text:
            raise UsageError("no lifecycle policy: pass --policy, set retention.policy, or put one on ECR")
        rules = parse_policy(text)
    else:
        rules = policy_for(ctx, policy)
    now = now or datetime.now(UTC)
    facts = ledger_facts(ctx, app)
    at_risk = []
    for repo in repositories(ctx, app):
        inventory = read_inventory(ctx, app, repo)
        decisions = {d.digest: d for d in evaluate(rules, inventory.images, now) if d.action == "expire"}
        entries = plan_repository(
            repo,
            inventory.images,
            list(decisions.values()),
            Facts(facts.current, facts.rollback, facts.pins, facts.min_age),
            now,
        )
        for entry in entries:
            if entry.digest in decisions and entry.action != EXPIRE:
                at_risk.append(
                    {
                        "repository": repo,
                        "digest": entry.digest,
                        "tags": list(entry.tags),
                        "appliedRulePriority": decisions[entry.digest].rule_priority,
                        "protections": [r for r in entry.reasons if r["type"] == "protection"],
                    }
                )
    return {"app": app, "violations": at_risk}
