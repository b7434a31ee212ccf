"""Read-only answers: what runs where now and before, the history, where a commit went, drift."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boda.errors import NotFound, UsageError
from boda.services.context import Context, check_app, check_commit
from boda.services.evidence import evidence_json, latest_per_kind
from boda.types import Digest

if TYPE_CHECKING:
    from boda.ledger.base import Build, Promotion


def placement_json(p: Promotion) -> dict[str, Any]:
    """The shape of `current` and `previous` entries in status."""
    return {
        "digest": str(p.digest),
        "commit": p.commit,
        "reference": p.reference,
        "promoted_at": p.at.isoformat(),
        "promoted_by": p.by,
        "kind": p.kind,
    }


def status(ctx: Context, app: str, *, previous: int = 10) -> dict[str, Any]:
    """Per environment: current digest, up to `previous` earlier distinct digests (newest first),
    and the evidence for the current digest."""
    ctx.require_app(app)
    current_all = ctx.ledger.current_all(app)
    environments = []
    for env in ctx.config.environments:
        current = current_all.get(env.name)
        earlier = ctx.ledger.previous_promotions(app, env.name, previous) if current else []
        evidence = []
        if current is not None:
            latest = latest_per_kind(ctx.ledger.evidence(app, env.name, current.digest))
            evidence = [evidence_json(e) for e in latest.values()]
        environments.append(
            {
                "name": env.name,
                "after": env.after,
                "current": placement_json(current) if current else None,
                "previous": [placement_json(p) for p in earlier],
                "evidence": evidence,
            }
        )
    return {"app": app, "environments": environments}


def history(ctx: Context, app: str, env: str | None = None, *, limit: int | None = None) -> dict[str, Any]:
    """Every promotion and rollback of `app` (in `env`), newest first; all of them unless `limit`."""
    ctx.require_app(app)
    if env is not None:
        ctx.config.environment(env)
    entries = [
        {
            "env": p.env,
            "digest": str(p.digest),
            "commit": p.commit,
            "at": p.at.isoformat(),
            "by": p.by,
            "kind": p.kind,
            "reason": p.reason,
        }
        for p in ctx.ledger.promotions(app, env, limit)
    ]
    return {"app": app, "entries": entries}


def whereis(
    ctx: Context, app: str | None, *, commit: str | None = None, digest: str | None = None
) -> dict[str, Any]:
    """Which environments run a build now and which ran it before, for one app or all."""
    if (commit is None) == (digest is None):
        raise UsageError("give exactly one of --commit or --digest")
    builds: list[Build]
    if app is not None:
        check_app(app)
        builds = [ctx.find_build(app, commit=commit, digest=digest)]
    elif digest is not None:
        builds = ctx.ledger.builds_by_digest(Digest.parse(digest), None)
    else:
        assert commit is not None
        builds = ctx.ledger.builds_by_commit_prefix(None, check_commit(commit))
        per_app: dict[str, list[Build]] = {}
        for b in builds:
            per_app.setdefault(b.app, []).append(b)
        ambiguous = [a for a, bs in per_app.items() if len({b.commit for b in bs}) > 1]
        if ambiguous:
            raise UsageError(f"commit prefix {commit!r} is ambiguous for {', '.join(ambiguous)}")
    if not builds:
        raise NotFound(
            f"no build recorded for {'commit ' + str(commit) if commit else 'digest ' + str(digest)}"
        )
    matches = []
    for build in builds:
        running = {p.env: p for p in ctx.ledger.environments_with(build.digest, build.app)}
        ran: dict[str, Promotion] = {}
        for p in ctx.ledger.promotions_of(build.digest, build.app):
            if p.env not in running:
                ran.setdefault(p.env, p)
        matches.append(
            {
                "app": build.app,
                "commit": build.commit,
                "digest": str(build.digest),
                "reference": build.reference,
                "running_in": [{"env": e, "since": p.at.isoformat()} for e, p in sorted(running.items())],
                "ran_in": [{"env": e, "last_promoted_at": p.at.isoformat()} for e, p in sorted(ran.items())],
            }
        )
    return {"matches": matches}
