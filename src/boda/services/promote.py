"""Gated promotion and rollback: the same digest, moved between environments, verified.

A promotion checks its gate (the digest is or was current upstream and has passing evidence
there for every required kind), then places it (boda.services.placement: under the apps' locks,
strategy `tags` moves the environment tag, `repos` copies by digest into the environment's
repository under the commit tag; the digest is read back; all or none, with intents).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boda.config import Environment
from boda.errors import NotFound, Refused, UsageError
from boda.services.context import Context, identity
from boda.services.evidence import latest_per_kind
from boda.services.expired import expiries, holders
from boda.services.placement import FORCE, PROMOTE, ROLLBACK, Placement, place
from boda.types import Digest, check_free_text, is_digest

if TYPE_CHECKING:
    from boda.ledger.base import Build, Promotion
    from boda.services.attest import PendingPromotion


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
    if reason is not None:
        check_free_text(reason, "the reason")
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
    placements = place(ctx, builds, env, kind, actor, reason, concurrency=concurrency)
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
    if reason is not None:
        check_free_text(reason, "the reason")
    actor = identity(by)
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
    statements = _sign(ctx, sign, builds[:1], environment, ROLLBACK, actor, reason)
    placements = place(ctx, builds[:1], environment, ROLLBACK, actor, reason)
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
