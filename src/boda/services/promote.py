"""Gated promotion and rollback: the same digest, moved between environments, verified.

A promotion checks its gate (the digest is or was current upstream and has passing evidence
there for every required kind), then, holding the environment's lock in the ledger, writes the
registry (strategy `tags`: move the environment tag; `repos`: copy by digest into the environment's
repository and tag it with the commit tag), reads the digest back, and only then records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from boda.config import Environment
from boda.errors import NotFound, Refused, UsageError
from boda.registry.copy import copy_image
from boda.services.context import Context, identity
from boda.services.evidence import latest_per_kind
from boda.services.expired import expiries, holders
from boda.types import Digest, is_digest

if TYPE_CHECKING:
    from boda.ledger.base import Build, Promotion
    from boda.services.attest import PendingPromotion

PROMOTE, ROLLBACK, FORCE = "promote", "rollback", "force"


@dataclass(frozen=True)
class Placement:
    """One app's digest placed in one environment."""

    app: str
    env: str
    digest: Digest
    commit: str | None
    reference: str
    kind: str
    previous: Digest | None
    changed: bool
    copy: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "env": self.env,
            "digest": str(self.digest),
            "commit": self.commit,
            "reference": self.reference,
            "kind": self.kind,
            "previous": str(self.previous) if self.previous else None,
            "changed": self.changed,
            "copy": self.copy,
        }


def gate_failures(ctx: Context, app: str, env: Environment, digest: Digest) -> list[str]:
    """Why `digest` may not enter `env` (empty when the gate passes)."""
    if env.after is None:
        return []
    upstream = env.after
    reasons = []
    if not ctx.ledger.promotions_of(digest, app, upstream):
        reasons.append(f"{digest.short} has never been current in {upstream}")
    latest = latest_per_kind(ctx.ledger.evidence(app, upstream, digest))
    for kind in env.requires:
        item = latest.get(kind)
        if item is None:
            reasons.append(f"no {kind!r} evidence in {upstream}")
        elif item.result != "pass":
            reasons.append(f"latest {kind!r} evidence in {upstream} is {item.result} (by {item.by})")
    # -- signed evidence (boda.services.attest): with `requires_signed`, the registry's statements too
    if env.requires_signed:
        from boda.services.attest import signed_gate_failures

        reasons.extend(signed_gate_failures(ctx, app, env, digest))
    return reasons


@dataclass(frozen=True)
class PromotionResult:
    """The outcome of `boda promote` for every named app."""

    env: str
    placements: tuple[Placement, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"env": self.env, "promotions": [p.to_json() for p in self.placements]}


def promote(
    ctx: Context,
    apps: Sequence[str],
    *,
    to: str,
    commit: str | None = None,
    digest: str | None = None,
    by: str | None = None,
    reason: str | None = None,
    force: bool = False,
    concurrency: int = 8,
    sign: str | None = None,
) -> PromotionResult:
    """Promote each app's build of `commit` (or `digest`) to `to`; all gates first, then all writes.

    With a key (`sign`, else `[evidence] sign`) each promotion also gets a signed statement.
    """
    if not apps:
        raise UsageError("name at least one app")
    if len(set(apps)) != len(apps):
        raise UsageError("an app is named twice")
    if digest is not None and len(apps) > 1:
        raise UsageError("a digest names one image: promote several apps by commit")
    if force and not (reason and reason.strip()):
        raise UsageError("forcing past a gate needs a reason: say why the gate is bypassed")
    env = ctx.config.environment(to)
    actor = identity(by)
    builds = [ctx.find_build(app, commit=commit, digest=digest) for app in apps]
    failures = {b.app: gate_failures(ctx, b.app, env, b.digest) for b in builds}
    blocked = {app: why for app, why in failures.items() if why}
    if blocked and not force:
        detail = "; ".join(f"{app}: {', '.join(why)}" for app, why in blocked.items())
        raise Refused(
            f"promotion to {to} refused, nothing was changed: {detail}",
            hint="record the missing evidence (boda evidence), or force it with a reason",
            reasons=tuple(f"{app}: {reason}" for app, why in blocked.items() for reason in why),
        )
    kind = FORCE if blocked else PROMOTE
    statements = _sign(ctx, sign, builds, env, kind, actor, reason)
    placements = _place(ctx, builds, env, kind, actor, reason, concurrency)
    _publish(ctx, statements, placements)
    _follow(ctx, placements, actor)  # native retention: protection tags follow (see _follow)
    return PromotionResult(to, tuple(placements))


def rollback(
    ctx: Context,
    app: str,
    *,
    env: str,
    to: str | None = None,
    by: str | None = None,
    reason: str | None = None,
    sign: str | None = None,
) -> Placement:
    """Put back the digest that was current in `env` before (or the named digest or commit that
    was current there before); with a key, also a signed statement of the rollback.

    Consecutive rollbacks walk further back: a digest rolled back from is skipped (until it is
    promoted again) unless it is named. A digest that expiry removed is refused with a clear line.
    """
    environment = ctx.config.environment(env)
    ctx.require_app(app)
    current = ctx.ledger.current(app, env)
    if current is None:
        raise NotFound(f"{app} has never been promoted to {env}; nothing to roll back")
    gone = expiries(ctx, app)
    if to is None:
        candidates = rollback_candidates(ctx.ledger.promotions(app, env), current.digest)
        if not candidates:
            raise NotFound(
                f"{app} in {env} has no earlier digest to roll back to (every earlier one was rolled"
                " back from)",
                hint="name one with --to to return to it anyway",
            )
        target = candidates[0]
    else:
        target = _rollback_target(ctx, app, to)
        if not ctx.ledger.promotions_of(target, app, env):
            raise Refused(
                f"{target.short} was never current in {env}; rollback only returns to earlier digests"
            )
    envs = [p.env for p in ctx.ledger.promotions_of(target, app)]
    if gone.gone_from(target, holders(ctx, app, target, envs)):
        event = gone.last(target)
        when = f" on {event.at:%Y-%m-%d %H:%M} UTC by {event.by}" if event else ""
        raise Refused(
            f"cannot roll {app} in {env} back to {target.short}: expiry deleted it{when}; it is no"
            " longer in the registry",
            hint="roll back to another earlier digest with --to (see boda status)",
        )
    builds = ctx.ledger.builds_by_digest(target, app)
    if not builds:
        raise NotFound(f"no build of {app} has digest {target}")
    actor = identity(by)
    statements = _sign(ctx, sign, builds[:1], environment, ROLLBACK, actor, reason)
    placements = _place(ctx, builds[:1], environment, ROLLBACK, actor, reason)
    _publish(ctx, statements, placements)
    _follow(ctx, placements, actor)  # native retention: protection tags follow (see _follow)
    return placements[0]


# -- promotion attestations (boda.services.attest) ------------------------------------------------
# Signed before anything is written (a key that cannot sign changes nothing); attached to the
# image and recorded after `_place` has recorded the placements, outside the promotion locks.


def _sign(
    ctx: Context,
    sign: str | None,
    builds: Sequence[Build],
    env: Environment,
    kind: str,
    actor: str,
    reason: str | None,
) -> Sequence[PendingPromotion]:
    if sign is None and not ctx.config.evidence_sign:
        return ()
    from boda.services.attest import sign_promotions  # cryptography is imported only to sign

    return sign_promotions(ctx, sign, builds, env, kind, actor, reason)


def _publish(ctx: Context, statements: Sequence[PendingPromotion], placements: Sequence[Placement]) -> None:
    if statements:
        from boda.services.attest import publish_promotions

        publish_promotions(ctx, statements, placements)


# -- end of promotion attestations


# -- native retention (boda.services.native_retention): once the placements are recorded, the
# protection tags of each changed app follow them (nothing in [retention] mode "boda"). A sync that
# fails raises NotSynced (exit 6) after the promotion is recorded: `boda ecr sync APP` completes it.


def _follow(ctx: Context, placements: Sequence[Placement], actor: str) -> None:
    if ctx.config.retention.mode == "native":
        from boda.services.native_retention import follow

        follow(ctx, [p.app for p in placements if p.changed], by=actor)


# -- end of native retention


def rollback_candidates(history: Sequence[Promotion], current: Digest) -> list[Digest]:
    """Earlier digests of one environment a rollback may return to, newest first: every distinct
    digest but the current one and those rolled back from (unless promoted again since)."""
    rolled_back_from: set[Digest] = set()
    promoted_since: set[Digest] = set()
    candidates: list[Digest] = []
    for promotion in history:  # newest first
        if promotion.kind == ROLLBACK and promotion.previous_digest is not None:
            if promotion.previous_digest not in promoted_since:
                rolled_back_from.add(promotion.previous_digest)
        elif promotion.kind != ROLLBACK:
            promoted_since.add(promotion.digest)
        digest = promotion.digest
        if digest != current and digest not in rolled_back_from and digest not in candidates:
            candidates.append(digest)
    return candidates


def _rollback_target(ctx: Context, app: str, to: str) -> Digest:
    if ":" in to or is_digest(to):
        return Digest.parse(to)
    return ctx.find_build(app, commit=to).digest


def _place(
    ctx: Context,
    builds: Sequence[Build],
    env: Environment,
    kind: str,
    actor: str,
    reason: str | None,
    concurrency: int = 8,
) -> list[Placement]:
    """Holding the environment locks of every app: write the registry (concurrently for a
    release), read each digest back, and record what landed.

    If some registry writes fail, the ones that succeeded are still recorded (the ledger always
    says what the registry says) and the first failure is raised afterwards.
    """
    with ctx.ledger.promotion_locks([(b.app, env.name) for b in builds]) as txs:
        currents = [tx.current() for tx in txs]

        def registry_work(build: Build) -> dict[str, Any] | BaseException:
            try:
                return _write_registry(ctx, build, env.name)
            except Exception as exc:  # reported after the others are recorded
                return exc

        if len(builds) == 1:
            outcomes = [registry_work(builds[0])]
        else:
            from concurrent.futures import ThreadPoolExecutor  # releases only

            with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(builds)))) as pool:
                outcomes = list(pool.map(registry_work, builds))
        placements = []
        for build, tx, current, outcome in zip(builds, txs, currents, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                continue
            reference = ctx.reference(ctx.config.repository_for(build.app, env.name), digest=build.digest)
            previous = current.digest if current else None
            changed = previous != build.digest
            if changed:
                tx.record_promotion(
                    digest=build.digest,
                    commit=build.commit,
                    reference=reference,
                    by=actor,
                    kind=kind,
                    reason=reason,
                    expected_previous=previous,
                )
            placements.append(
                Placement(
                    build.app,
                    env.name,
                    build.digest,
                    build.commit,
                    reference,
                    kind,
                    previous,
                    changed,
                    outcome,
                )
            )
    failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failure is not None:
        raise failure
    return placements


def _sources(ctx: Context, app: str, env: str) -> list[str]:
    """Where a copy into `env`'s repository may come from (strategy `repos`), in order: the
    environment's own repository (a rollback finds its digest there), the build repository, the
    upstream environments' nearest first, then every other environment's."""
    sources = [ctx.config.repository_for(app, env), ctx.config.repository_for(app, None)]
    upstream = ctx.config.environment(env).after
    while upstream is not None:
        sources.append(ctx.config.repository_for(app, upstream))
        upstream = ctx.config.environment(upstream).after
    sources += [ctx.config.repository_for(app, e.name) for e in ctx.config.environments]
    return list(dict.fromkeys(sources))


def _write_registry(ctx: Context, build: Build, env: str) -> dict[str, Any]:
    """Make the registry say that `build` is current in `env`; return the copy report.

    The digest is read back by the copy itself: the digest the registry reports for the manifest
    it stored (the PUT's Docker-Content-Digest, ECR's imageId), or the destination's HEAD when it
    already held the digest; anything but the built digest raises DigestMismatch, and then the
    ledger records nothing.
    """
    registry = ctx.registry
    app_repo = ctx.config.repository_for(build.app, None)
    if ctx.config.strategy == "tags":
        try:
            report = copy_image(
                registry, app_repo, str(build.digest), registry, app_repo, env, expect=build.digest
            )
        except NotFound as exc:
            raise NotFound(
                f"{build.digest} of {build.app} is no longer in {ctx.reference(app_repo)}", hint=exc.message
            ) from exc
        return report.to_json()
    env_repo = ctx.config.repository_for(build.app, env)
    tag = ctx.config.commit_tag_for(build.commit)
    for source in _sources(ctx, build.app, env):
        try:
            report = copy_image(
                registry,
                source,
                str(build.digest),
                registry,
                env_repo,
                tag,
                expect=build.digest,
                referrers=ctx.config.copy_referrers,
                overwrite=False,
            )
        except NotFound:
            continue
        return report.to_json()
    raise NotFound(f"{build.digest} of {build.app} is in none of its repositories any more")
