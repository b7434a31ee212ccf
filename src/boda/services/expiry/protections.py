"""What must not expire, by digest: the ledger's deployments, rollback windows and pins."""

from __future__ import annotations

from boda.policy.plan import Facts
from boda.services.context import Context


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
