"""Read-only answers: what runs where now and before, and where a commit went.

"Now" is what the ledger recorded *and* what is true: the registry's environment tags (a tag
moved by hand is drift) and, where environments name their runtimes, what those run, compared
with what was promoted: `deployed` (runs exactly the promoted digest), `pending` (promoted, not
yet running), `drift` (runs a digest never promoted there), `mixed` (several, e.g. mid-rollout).
A registry or runtime that cannot be read makes that environment's state `unknown`, with why;
status never fails for it (expiry, which deletes, does).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boda.config import Environment
from boda.errors import NotFound, Unavailable, UsageError
from boda.registry.base import digest_named
from boda.services.context import Context, check_app, check_commit
from boda.services.evidence import evidence_json, latest_per_kind
from boda.services.expired import Expiries, expiries, holders
from boda.services.runtime_scan import ACTIVE_ROLES, RuntimeScan, Sighting, run_state, scan
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
class Live:
    """What the registry and the runtimes say about one app in one environment now."""

    #: What the environment's tag names (strategy tags), or the current digest if its repository
    #: still has it (strategy repos); None: nothing there.
    registry: Digest | None = None
    registry_read: bool = False
    #: The runtimes configured for the environment, and what they run of this app.
    runtimes: tuple[str, ...] = ()
    running: tuple[Sighting, ...] = ()
    state: str | None = None
    error: str | None = None

    def to_json(self, current: Digest | None) -> dict[str, Any]:
        """The live part of an environment's JSON."""
        return {
            "state": self.state,
            "running": [s.to_json() for s in self.running],
            "runtimes": list(self.runtimes),
            "registry": str(self.registry) if self.registry else None,
            "drift": self.registry_read and self.registry != current,
            "live_error": self.error,
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
    #: The registry and the runtimes now (None: only the ledger was read).
    live: Live | None = None

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
            **(self.live.to_json(self.current.digest if self.current else None) if self.live else {}),
        }


@dataclass(frozen=True)
class AppStatus:
    """`boda status`: every configured environment of an app."""

    app: str
    environments: tuple[EnvironmentStatus, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"app": self.app, "environments": [e.to_json() for e in self.environments]}


def status(
    ctx: Context,
    app: str,
    *,
    previous: int = 10,
    live: bool = True,
    skip_runtimes: Collection[str] = (),
    running: RuntimeScan | None = None,
) -> AppStatus:
    """Per environment: current digest, up to `previous` earlier distinct digests (newest first),
    the latest evidence per kind for the current digest and, with `live`, what the registry and
    the runtimes say now (`running`: a scan already made, e.g. for every app at once)."""
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
        now = _live(ctx, app, env, current, running, skip_runtimes) if live else None
        environments.append(
            EnvironmentStatus(env.name, env.after, current, tuple(earlier), evidence, expired, signed, now)
        )
    return AppStatus(app, tuple(environments))


def _live(
    ctx: Context,
    app: str,
    env: Environment,
    current: Promotion | None,
    running: RuntimeScan | None,
    skip_runtimes: Collection[str],
) -> Live:
    """Read the registry and the runtimes of one environment; a failure is reported, not raised."""
    errors: list[str] = []
    found, read = None, False
    try:
        found, read = _registry_view(ctx, app, env.name, current), True
    except Unavailable as exc:
        errors.append(f"registry: {exc.message}")
    runtimes = tuple(str(r) for r in env.runtimes)
    if not runtimes:
        return Live(found, read, error="; ".join(errors) or None)
    try:
        seen = running if running is not None else scan(ctx, app, env=env.name, skip=skip_runtimes)
    except Unavailable as exc:
        errors.append(exc.message)
        return Live(found, read, runtimes, (), "unknown", "; ".join(errors))
    sightings = tuple(
        s for s in seen.sightings() if s.env == env.name and s.app == app and s.image.role in ACTIVE_ROLES
    )
    promoted = {p.digest for p in ctx.ledger.promotions(app, env.name)}
    state = run_state(current.digest if current else None, promoted, seen.running(app, env.name))
    return Live(found, read, runtimes, sightings, state, "; ".join(errors) or None)


def _registry_view(ctx: Context, app: str, env: str, current: Promotion | None) -> Digest | None:
    """Strategy tags: what the environment's tag names; repos: the current digest if the
    environment's repository still holds it."""
    config = ctx.config
    if config.strategy == "tags":
        return digest_named(ctx.registry, config.repository_for(app, None), env)
    if current is None:
        return None
    return digest_named(ctx.registry, config.repository_for(app, env), str(current.digest))


@dataclass(frozen=True)
class Overview:
    """Every app × environment at a glance: the dashboard's matrix."""

    environments: tuple[str, ...]
    apps: tuple[AppStatus, ...]
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form: per app, per environment the state, the current digest, what runs, drift."""
        rows = []
        for app_status in self.apps:
            cells = {}
            for env in app_status.environments:
                data = env.to_json()
                cells[env.name] = {
                    "state": data.get("state"),
                    "current": data["current"]["digest"] if data["current"] else None,
                    "commit": data["current"]["commit"] if data["current"] else None,
                    "running": sorted({r["digest"] for r in data.get("running", []) if r["digest"]}),
                    "registry": data.get("registry"),
                    "drift": data.get("drift", False),
                    "live_error": data.get("live_error"),
                }
            rows.append({"app": app_status.app, "environments": cells})
        return {"environments": list(self.environments), "apps": rows, "error": self.error}


def overview(ctx: Context, *, skip_runtimes: Collection[str] = ()) -> Overview:
    """The status of every app, the runtimes read once for all of them."""
    error = None
    seen: RuntimeScan | None = None
    if any(env.runtimes for env in ctx.config.environments):
        try:
            seen = scan(ctx, None, skip=skip_runtimes)
        except Unavailable as exc:
            error = exc.message
            seen = RuntimeScan(None, None, (), ())  # read nothing again; the states become unknown
    apps = []
    for app in ctx.ledger.apps():
        found = status(ctx, app, previous=0, running=seen, skip_runtimes=skip_runtimes)
        if error is not None:  # every environment with runtimes is unknown, with why
            found = AppStatus(found.app, tuple(_unknown(e, error) for e in found.environments))
        apps.append(found)
    return Overview(tuple(e.name for e in ctx.config.environments), tuple(apps), error)


def _unknown(env: EnvironmentStatus, error: str) -> EnvironmentStatus:
    if env.live is None or not env.live.runtimes:
        return env
    live = Live(env.live.registry, env.live.registry_read, env.live.runtimes, (), "unknown", error)
    return EnvironmentStatus(
        env.name, env.after, env.current, env.previous, env.evidence, env.expired, env.attestations, live
    )


def _gone(ctx: Context, app: str, gone: Expiries, digest: Digest) -> bool:
    if not gone.repositories(digest):
        return False
    envs = [p.env for p in ctx.ledger.promotions_of(digest, app)]
    return gone.gone_from(digest, holders(ctx, app, digest, envs))


@dataclass(frozen=True)
class Whereabouts:
    """Where one build runs now (environment -> since) and where it ran before."""

    build: Build
    running_in: tuple[Promotion, ...]
    ran_in: tuple[Promotion, ...]
    expired: bool = False
    #: Where the configured runtimes run it now (empty without runtimes).
    seen: tuple[Sighting, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "runtime": [
                {"env": s.env, "place": s.image.place, "role": s.image.role, "runtime": str(s.runtime)}
                for s in self.seen
            ],
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
    #: Why the runtimes could not be read (then `runtime` lists are empty).
    runtime_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"matches": [m.to_json() for m in self.matches], "runtime_error": self.runtime_error}


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
    seen, error = _scan_quietly(ctx) if any(e.runtimes for e in ctx.config.environments) else (None, None)
    gone = {app_name: expiries(ctx, app_name) for app_name in {b.app for b in builds}}  # one read per app
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
                _gone(ctx, build.app, gone[build.app], build.digest),
                tuple(s for s in seen.sightings() if s.app == build.app and s.digest == build.digest)
                if seen
                else (),
            )
        )
    return WhereisResult(tuple(matches), error)


def _scan_quietly(ctx: Context) -> tuple[RuntimeScan | None, str | None]:
    """Every runtime, or why they could not be read (a question is answered all the same)."""
    try:
        return scan(ctx, None), None
    except Unavailable as exc:
        return None, exc.message
