"""What runs where now: every configured runtime read completely, its images mapped to apps,
digests and the commits they were built from.

`scan()` reads each runtime of each environment (`[[environments]] runtimes`), once even when
several environments share it, and fails closed: a runtime that cannot be read completely raises
`RuntimeUnavailable` (exit 6), unless the caller skips it by name for this run. Then, per image:
- the repository and app: an image of the configured registry whose repository is an app the ledger
  knows (strategy `tags`) or `repo_template` of one (strategy `repos`) is that app's; anything else is
  "not boda's" (its repository is still reported when it is in boda's registry, so expiry protects it);
- the digest: the runtime's own (ECS's resolved digest, Lambda's ResolvedImageUri, a pod's imageID),
  else, for a tag in boda's registry, the tag resolved through the registry now; a tag the registry
  does not have stays unresolved;
- the commits the ledger records for that app and digest.

For expiry, `RuntimeScan.in_use(repository)` gives every digest a runtime holds in a repository with
the sightings that hold it (each has a `reason`); for status, `RuntimeScan.running(app, env)` gives
the digests an environment runs and `run_state()` compares them with the promoted ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from boda.errors import ReferenceError_, UsageError
from boda.locations import RuntimeLocation
from boda.registry.base import digest_named
from boda.runtime.base import Observation, Role, RunningImage
from boda.runtime.observers import observe
from boda.services.context import Context
from boda.types import Digest, Reference

ResolvedBy = Literal["runtime", "registry"]
RunState = Literal["deployed", "pending", "drift", "mixed"]
#: Roles whose digests an environment runs now or starts on its next scale-out.
ACTIVE_ROLES: tuple[Role, ...] = ("running", "deployed")
#: Runtimes read at the same time.
WORKERS = 4


@dataclass(frozen=True)
class Sighting:
    """One image of one runtime of one environment, placed in boda's world."""

    env: str
    runtime: RuntimeLocation
    image: RunningImage
    #: The repository in the configured registry, or None (another registry, or not a reference).
    repository: str | None
    #: The boda app the image belongs to, or None: "not boda's".
    app: str | None
    #: The runtime's digest, else the tag resolved through the registry; None when neither knows it.
    digest: Digest | None
    resolved_by: ResolvedBy | None
    #: Commits the ledger records as built into `digest` for `app`, newest first.
    commits: tuple[str, ...] = ()

    @property
    def boda(self) -> bool:
        """True when the image belongs to an app boda knows."""
        return self.app is not None

    @property
    def reason(self) -> str:
        """Why it is in use, for an expiry plan: "running in ecs:prod-cluster/web, 3 tasks"."""
        verb = {"running": "running", "deployed": "deployed", "rollback": "kept for a rollback"}[
            self.image.role
        ]
        text = f"{verb} in {self.image.place}"
        if self.image.tasks:
            text += f", {self.image.tasks} task{'s' if self.image.tasks != 1 else ''}"
        elif self.image.detail:
            text += f" ({self.image.detail})"
        return text

    def to_json(self) -> dict[str, Any]:
        """JSON form: the runtime's record, then what boda made of it."""
        return {
            **self.image.to_json(),
            "digest": str(self.digest) if self.digest else None,
            "runtime_digest": str(self.image.digest) if self.image.digest else None,
            "resolved_by": self.resolved_by,
            "repository": self.repository,
            "app": self.app,
            "boda": self.boda,
            "commit": self.commits[0] if self.commits else None,
            "commits": list(self.commits),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RuntimeReport:
    """One runtime of one environment: its sightings, or that it was skipped."""

    env: str
    runtime: RuntimeLocation
    sightings: tuple[Sighting, ...]
    requests: int = 0
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "runtime": str(self.runtime),
            "kind": self.runtime.kind,
            "skipped": self.skipped,
            "requests": self.requests,
            "images": [s.to_json() for s in self.sightings],
        }


@dataclass(frozen=True)
class RuntimeScan:
    """`boda runtime scan`: what runs where, per environment and runtime."""

    app: str | None
    env: str | None
    environments: tuple[str, ...]
    runtimes: tuple[RuntimeReport, ...]

    def sightings(self) -> Iterator[Sighting]:
        """Every sighting of every runtime read."""
        for report in self.runtimes:
            yield from report.sightings

    @property
    def skipped(self) -> tuple[RuntimeLocation, ...]:
        """Runtimes the caller chose not to read in this run."""
        return tuple(dict.fromkeys(r.runtime for r in self.runtimes if r.skipped))

    def in_use(self, repository: str) -> dict[Digest, tuple[Sighting, ...]]:
        """Every digest of `repository` (in boda's registry) a runtime runs, deploys or keeps for a
        rollback, with the sightings that hold it: what expiry must keep."""
        found: dict[Digest, list[Sighting]] = defaultdict(list)
        for sighting in self.sightings():
            if sighting.repository == repository and sighting.digest is not None:
                found[sighting.digest].append(sighting)
        return {digest: tuple(s) for digest, s in found.items()}

    def unresolved(self) -> tuple[Sighting, ...]:
        """Images of boda's registry whose digest nobody knows (a tag the registry does not hold)."""
        return tuple(s for s in self.sightings() if s.repository is not None and s.digest is None)

    def running(self, app: str, env: str, roles: Collection[Role] = ACTIVE_ROLES) -> frozenset[Digest]:
        """The digests of `app` that `env`'s runtimes run or deploy (not rollback targets)."""
        return frozenset(
            s.digest
            for s in self.sightings()
            if s.env == env and s.app == app and s.digest is not None and s.image.role in roles
        )

    def to_json(self) -> dict[str, Any]:
        """JSON form: environments in configured order, each with its runtimes."""
        by_env: dict[str, list[dict[str, Any]]] = {name: [] for name in self.environments}
        for report in self.runtimes:
            by_env[report.env].append(report.to_json())
        every = list(self.sightings())
        return {
            "app": self.app,
            "env": self.env,
            "environments": [{"name": name, "runtimes": runtimes} for name, runtimes in by_env.items()],
            "summary": {
                "runtimes": len(self.runtimes),
                "skipped": [str(r) for r in self.skipped],
                "images": len(every),
                "not_boda": sum(1 for s in every if not s.boda),
                "unresolved": len(self.unresolved()),
                "requests": sum(r.requests for r in {str(r.runtime): r for r in self.runtimes}.values()),
            },
        }


def run_state(
    current: Digest | None, promoted_before: Collection[Digest], running: Collection[Digest]
) -> RunState | None:
    """How what runs compares with what was promoted, for one app and environment.

    `drift`: something runs that was never promoted there; `mixed`: several promoted digests run
    (a rollout in progress); `deployed`: exactly the current digest runs; `pending`: the current
    digest does not run yet (something promoted earlier, or nothing, runs). None: nothing was
    promoted and nothing runs.
    """
    now = set(running)
    known = set(promoted_before) | ({current} if current is not None else set())
    if now - known:
        return "drift"
    if len(now) > 1:
        return "mixed"
    if current is not None and now == {current}:
        return "deployed"
    return "pending" if current is not None else None


Reader = Callable[[RuntimeLocation], Observation]


def scan(
    ctx: Context,
    app: str | None = None,
    *,
    env: str | None = None,
    skip: Collection[str] = (),
    reader: Reader = observe,
) -> RuntimeScan:
    """Read every runtime of every environment (or of `env`), and place what runs: app, digest,
    commits. `skip` names runtimes (as configured) not to read in this run; an unknown name is bad
    input. `reader` reads one runtime completely (tests and benchmarks pass their own)."""
    if app is not None:
        ctx.require_app(app)
    environments = [ctx.config.environment(env)] if env is not None else list(ctx.config.environments)
    configured = {str(r) for e in ctx.config.environments for r in e.runtimes}
    unknown = sorted(set(skip) - configured)
    if unknown:
        shown = ", ".join(sorted(configured)) or "none"
        raise UsageError(f"cannot skip {unknown[0]!r}: it is not a configured runtime (configured: {shown})")
    wanted = list(dict.fromkeys(r for e in environments for r in e.runtimes if str(r) not in skip))
    observations = _read_all(wanted, reader)
    mapper = _Mapper(ctx)
    reports: list[RuntimeReport] = []
    for environment in environments:
        for location in environment.runtimes:
            if str(location) in skip:
                reports.append(RuntimeReport(environment.name, location, (), skipped=True))
                continue
            observation = observations[location]
            sightings = [mapper.place(environment.name, location, image) for image in observation.images]
            if app is not None:
                sightings = [s for s in sightings if s.app == app]
            reports.append(
                RuntimeReport(
                    environment.name,
                    location,
                    tuple(mapper.resolve(s) for s in sightings),
                    observation.requests,
                )
            )
    return RuntimeScan(app, env, tuple(e.name for e in environments), tuple(reports))


def _read_all(locations: list[RuntimeLocation], reader: Reader) -> dict[RuntimeLocation, Observation]:
    """Read every runtime (a few at a time); the first failure, in configured order, is raised."""
    if len(locations) <= 1:
        return {location: reader(location) for location in locations}
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(locations))) as pool:
        futures = [pool.submit(reader, location) for location in locations]
        return {location: future.result() for location, future in zip(locations, futures, strict=True)}


class _Mapper:
    """Maps images to repositories and apps, resolves tags once each, finds commits once each."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.registry = ctx.config.registry.name
        apps = ctx.ledger.apps()
        self.owners: dict[str, str] = {a: a for a in apps}
        for a in apps:
            for e in ctx.config.environments:
                self.owners.setdefault(ctx.config.repository_for(a, e.name), a)
        self._tags: dict[tuple[str, str], Digest | None] = {}
        self._commits: dict[tuple[str, Digest], tuple[str, ...]] = {}

    def place(self, env: str, location: RuntimeLocation, image: RunningImage) -> Sighting:
        repository = None
        try:
            reference: Reference | None = Reference.parse(image.image)
        except ReferenceError_:
            reference = None
        if reference is not None and reference.registry == self.registry:
            repository = reference.repository
        app = self.owners.get(repository) if repository is not None else None
        by: ResolvedBy | None = "runtime" if image.digest is not None else None
        return Sighting(env, location, image, repository, app, image.digest, by)

    def resolve(self, sighting: Sighting) -> Sighting:
        digest, by = sighting.digest, sighting.resolved_by
        if digest is None and sighting.repository is not None:
            reference = Reference.parse(sighting.image.image)
            digest = self._tag(sighting.repository, reference.tag or "latest")
            by = "registry" if digest is not None else None
        commits = self._commits_of(sighting.app, digest) if sighting.app and digest else ()
        return Sighting(
            sighting.env,
            sighting.runtime,
            sighting.image,
            sighting.repository,
            sighting.app,
            digest,
            by,
            commits,
        )

    def _tag(self, repository: str, tag: str) -> Digest | None:
        key = (repository, tag)
        if key not in self._tags:
            self._tags[key] = digest_named(self.ctx.registry, repository, tag)
        return self._tags[key]

    def _commits_of(self, app: str, digest: Digest) -> tuple[str, ...]:
        key = (app, digest)
        if key not in self._commits:
            self._commits[key] = tuple(
                dict.fromkeys(b.commit for b in self.ctx.ledger.builds_by_digest(digest, app))
            )
        return self._commits[key]


def reasons_by_digest(scan_result: RuntimeScan, repository: str) -> Mapping[Digest, tuple[str, ...]]:
    """`in_use(repository)` as reasons only, the form an expiry plan shows."""
    return {
        d: tuple(dict.fromkeys(s.reason for s in found))
        for d, found in scan_result.in_use(repository).items()
    }
