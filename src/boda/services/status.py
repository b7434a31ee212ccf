"""Read-only answers: what runs where now and before, the history, where a commit went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boda.errors import NotFound, UsageError
from boda.services.context import Context, check_app, check_commit
from boda.services.evidence import evidence_json, latest_per_kind
from boda.services.expired import Expiries, expiries, holders
from boda.types import Digest

if TYPE_CHECKING:
    from boda.ledger.base import Attestation, Build, Evidence, Promotion


def placement_json(
    p: Promotion, expired: frozenset[Digest] = frozenset(), attestation: Attestation | None = None
) -> dict[str, Any]:
    """The shape of `current` and `previous` entries in status; `expired` when expiry deleted it;
    `signed`, `signer` and `statement` say whether a signed promotion statement was written for it."""
    return {
        "digest": str(p.digest),
        "commit": p.commit,
        "reference": p.reference,
        "promoted_at": p.at.isoformat(),
        "promoted_by": p.by,
        "kind": p.kind,
        "expired": p.digest in expired,
        "signed": attestation is not None,
        "signer": attestation.signer if attestation else None,
        "statement": str(attestation.statement) if attestation else None,
    }


@dataclass(frozen=True)
class EnvironmentStatus:
    """One environment of an app: the current promotion, earlier distinct digests, evidence."""

    name: str
    after: str | None
    current: Promotion | None
    previous: tuple[Promotion, ...]
    evidence: tuple[Evidence, ...]
    #: Digests shown here that expiry deleted (from every repository that held them).
    expired: frozenset[Digest] = frozenset()
    #: Signed statements of the current promotion and of the evidence, by promotion or evidence id.
    attestations: tuple[Attestation, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        by_evidence = {a.evidence_id: a for a in self.attestations if a.evidence_id is not None}
        by_promotion = {a.promotion_id: a for a in self.attestations if a.promotion_id is not None}
        return {
            "name": self.name,
            "after": self.after,
            "current": placement_json(self.current, self.expired, by_promotion.get(self.current.id))
            if self.current
            else None,
            "previous": [placement_json(p, self.expired) for p in self.previous],
            "evidence": [evidence_json(e, by_evidence.get(e.id)) for e in self.evidence],
        }


@dataclass(frozen=True)
class AppStatus:
    """`boda status`: every configured environment of an app."""

    app: str
    environments: tuple[EnvironmentStatus, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"app": self.app, "environments": [e.to_json() for e in self.environments]}


def status(ctx: Context, app: str, *, previous: int = 10) -> AppStatus:
    """Per environment: current digest, up to `previous` earlier distinct digests (newest first),
    and the latest evidence per kind for the current digest."""
    ctx.require_app(app)
    current_all = ctx.ledger.current_all(app)
    gone = expiries(ctx, app)
    environments = []
    for env in ctx.config.environments:
        current = current_all.get(env.name)
        earlier = ctx.ledger.previous_promotions(app, env.name, previous) if current else []
        evidence: tuple[Evidence, ...] = ()
        signed: tuple[Attestation, ...] = ()
        if current is not None:
            evidence = tuple(latest_per_kind(ctx.ledger.evidence(app, env.name, current.digest)).values())
            signed = tuple(ctx.ledger.attestations(app, env.name, current.digest))
        shown = [p.digest for p in ([current] if current else []) + earlier]
        expired = frozenset(d for d in shown if _gone(ctx, app, gone, d))
        environments.append(
            EnvironmentStatus(env.name, env.after, current, tuple(earlier), evidence, expired, signed)
        )
    return AppStatus(app, tuple(environments))


def _gone(ctx: Context, app: str, gone: Expiries, digest: Digest) -> bool:
    if not gone.repositories(digest):
        return False
    envs = [p.env for p in ctx.ledger.promotions_of(digest, app)]
    return gone.gone_from(digest, holders(ctx, app, digest, envs))


@dataclass(frozen=True)
class History:
    """`boda history`: promotions and rollbacks, newest first."""

    app: str
    entries: tuple[Promotion, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "entries": [
                {
                    "env": p.env,
                    "digest": str(p.digest),
                    "commit": p.commit,
                    "at": p.at.isoformat(),
                    "by": p.by,
                    "kind": p.kind,
                    "reason": p.reason,
                }
                for p in self.entries
            ],
        }


def history(ctx: Context, app: str, env: str | None = None, *, limit: int | None = None) -> History:
    """Every promotion and rollback of `app` (in `env`), newest first; all of them unless `limit`."""
    ctx.require_app(app)
    if env is not None:
        ctx.config.environment(env)
    return History(app, tuple(ctx.ledger.promotions(app, env, limit)))


@dataclass(frozen=True)
class Whereabouts:
    """Where one build runs now (environment -> since) and where it ran before."""

    build: Build
    running_in: tuple[Promotion, ...]
    ran_in: tuple[Promotion, ...]
    expired: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.build.app,
            "commit": self.build.commit,
            "digest": str(self.build.digest),
            "reference": self.build.reference,
            "expired": self.expired,
            "running_in": [{"env": p.env, "since": p.at.isoformat()} for p in self.running_in],
            "ran_in": [{"env": p.env, "last_promoted_at": p.at.isoformat()} for p in self.ran_in],
        }


@dataclass(frozen=True)
class WhereisResult:
    """`boda whereis`: every build the question names."""

    matches: tuple[Whereabouts, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"matches": [m.to_json() for m in self.matches]}


def whereis(
    ctx: Context, app: str | None, *, commit: str | None = None, digest: str | None = None
) -> WhereisResult:
    """Which environments run a build now and which ran it before, for one app or all."""
    if (commit is None) == (digest is None):
        raise UsageError("name the build by exactly one of a commit or a digest")
    builds: list[Build]
    if app is not None and digest is not None:
        ctx.require_app(app)
        builds = ctx.ledger.builds_by_digest(Digest.parse(digest), app)  # every commit that built it
    elif app is not None:
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
            Whereabouts(
                build,
                tuple(p for _, p in sorted(running.items())),
                tuple(p for _, p in sorted(ran.items())),
                _gone(ctx, build.app, expiries(ctx, build.app), build.digest),
            )
        )
    return WhereisResult(tuple(matches))
