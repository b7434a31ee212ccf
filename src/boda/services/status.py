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


def status(ctx: Context, app: str) -> dict[str, Any]:
    """Per environment: current digest, previous distinct digests (newest first), evidence."""
    ctx.require_app(app)
    environments = []
    for env in ctx.config.environments:
        history = ctx.ledger.promotions(app, env.name)
        current = history[0] if history else None
        previous: list[Promotion] = []
        seen = {current.digest} if current else set()
        for p in history[1:]:
            if p.digest not in seen:
                seen.add(p.digest)
                previous.append(p)
        evidence = []
        if current is not None:
            latest = latest_per_kind(ctx.ledger.evidence(app, env.name, current.digest))
            evidence = [evidence_json(e) for e in latest.values()]
        environments.append(
            {
                "name": env.name,
                "after": env.after,
                "current": placement_json(current) if current else None,
                "previous": [placement_json(p) for p in previous],
                "evidence": evidence,
            }
        )
    return {"app": app, "environments": environments}


def history(ctx: Context, app: str, env: str | None = None) -> dict[str, Any]:
    """Every promotion and rollback of `app` (in `env`), newest first, unbounded."""
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
        for p in ctx.ledger.promotions(app, env)
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
        running, ran = [], []
        for env in ctx.config.environments:
            history = ctx.ledger.promotions(build.app, env.name)
            if history and history[0].digest == build.digest:
                running.append({"env": env.name, "since": history[0].at.isoformat()})
            elif any(p.digest == build.digest for p in history):
                last = next(p for p in history if p.digest == build.digest)
                ran.append({"env": env.name, "until": _replaced_at(history, last).isoformat()})
        matches.append(
            {
                "app": build.app,
                "commit": build.commit,
                "digest": str(build.digest),
                "reference": build.reference,
                "running_in": running,
                "ran_in": ran,
            }
        )
    return {"matches": matches}


def _replaced_at(history: list[Promotion], entry: Promotion) -> Any:
    """When the promotion after `entry` (history is newest first) replaced it."""
    index = history.index(entry)
    return history[index - 1].at if index > 0 else entry.at
