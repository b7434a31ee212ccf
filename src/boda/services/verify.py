"""Compare the registry with the ledger and list every drift."""

from __future__ import annotations

import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from boda.errors import NotFound
from boda.services.context import Context
from boda.services.runtime_scan import scan


@dataclass(frozen=True)
class Drift:
    """One disagreement between the registry and the ledger."""

    #: environment | commit-tag | missing | missing-manifest | missing-blob | open-intent
    kind: str
    where: str
    expected: str
    found: str | None
    #: Why it matters (deep checks: which image in use needs it).
    why: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "kind": self.kind,
            "where": self.where,
            "expected": self.expected,
            "found": self.found,
            "why": self.why,
        }


@dataclass(frozen=True)
class VerifyResult:
    """All drifts of an app; empty when registry and ledger agree."""

    app: str
    checked: int
    drifts: tuple[Drift, ...]

    @property
    def ok(self) -> bool:
        """True when nothing drifted."""
        return not self.drifts

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "ok": self.ok,
            "checked": self.checked,
            "drifts": [d.to_json() for d in self.drifts],
        }


def verify(
    ctx: Context, app: str, *, deep: bool = False, runtime: bool = False, skip_runtimes: Collection[str] = ()
) -> VerifyResult:
    """Check environment tags (or repositories), commit tags and that every current digest exists.

    With `deep`, also that every image in use (current anywhere, or a rollback target) can be
    pulled whole: every child of an index and every blob, by HEAD; what is missing is drift.
    With `runtime`, the same for every image of the app the configured runtimes run: what a
    runtime runs and the registry no longer holds whole is the outage of the next scale-out.
    """
    ctx.require_app(app)
    registry = ctx.registry
    config = ctx.config
    app_repo = config.repository_for(app, None)
    # (kind, repository, tag-or-digest, expected digest)
    checks: list[tuple[str, str, str, str]] = []
    # Images boda expired on purpose are gone with their tags; that is not drift.
    events = ctx.ledger.events(app, actions=("expire", "protection-tags"))
    expired = {(str(e.detail.get("repository")), str(e.digest)) for e in events if e.action == "expire"}
    # Native retention: digests `untag_replaced` untagged on purpose lost their commit tag too.
    expired |= {
        (str(e.detail.get("repository")), str(item.get("digest")))
        for e in events
        if e.action == "protection-tags"
        for item in e.detail.get("untag") or []
    }
    native = config.retention.mode == "native"
    builds = ctx.ledger.list_builds(app)
    tag_of = {build.commit: ctx.commit_tag(build) for build in builds}  # as each build got it
    for build in builds:
        if (app_repo, str(build.digest)) not in expired:
            checks.append(("commit-tag", app_repo, tag_of[build.commit], str(build.digest)))
    current_all = ctx.ledger.current_all(app)
    if config.strategy == "tags":
        # An environment tag the ledger knows nothing about is drift too (a promotion by hand).
        for environment in config.environments:
            if environment.name not in current_all:
                checks.append(("environment", app_repo, environment.name, ""))
    for env, current in current_all.items():
        digest = str(current.digest)
        if config.strategy == "tags":
            checks.append(("environment", app_repo, env, digest))
        else:
            env_repo = config.repository_for(app, env)
            checks.append(("missing", env_repo, digest, digest))
            if current.commit:
                tag = tag_of.get(current.commit) or config.commit_tag_for(current.commit)
                checks.append(("commit-tag", env_repo, tag, digest))

    def run(check: tuple[str, str, str, str]) -> Drift | None:
        kind, repo, ref, expected = check
        try:
            head = registry.manifest_head(repo, ref)
        except NotFound:
            head = None
        found = str(head.digest) if head else None
        if found == (expected or None):
            return None
        gone = native and kind == "commit-tag" and found is None
        if gone and registry.manifest_head(repo, expected) is None:
            return None  # ECR's own lifecycle policy expired the image: what native retention is for
        sep = "@" if ref.startswith("sha") and ":" in ref else ":"
        return Drift(kind, f"{repo}{sep}{ref}", expected, found)

    with ThreadPoolExecutor(max_workers=8) as pool:
        drifts = tuple(d for d in pool.map(run, checks) if d is not None)
    intents = ctx.ledger.open_intents(app)
    drifts += tuple(
        Drift(
            "open-intent",
            f"intent {i.id}: {i.action} {i.env or ''} {i.digest.short if i.digest else ''}".replace(
                "  ", " "
            ),
            "closed",
            None,
            f"announced {i.at:%Y-%m-%d %H:%M} UTC by {i.by} and never completed",
        )
        for i in intents
    )
    checked = len(checks) + 1
    targets: dict[tuple[str, str], str] = in_use(ctx, app) if deep else {}
    if runtime:
        running = scan(ctx, app, skip=skip_runtimes)
        for sighting in running.sightings():
            if sighting.repository is not None and sighting.digest is not None:
                targets.setdefault(
                    (sighting.repository, str(sighting.digest)), f"{sighting.env}: {sighting.reason}"
                )
    if targets:
        deep_checked, missing = _deep(ctx, targets, pool_size=8)
        checked += deep_checked
        drifts += tuple(missing)
    return VerifyResult(app, checked, drifts)


def in_use(ctx: Context, app: str) -> dict[tuple[str, str], str]:
    """(repository, digest) -> why, for every image of `app` in use: current in an environment or
    within its rollback window, in the repository a deployment pulls it from."""
    config = ctx.config
    found: dict[tuple[str, str], str] = {}
    depth = config.retention.rollback_depth
    for env in config.environments:
        current = ctx.ledger.current(app, env.name)
        if current is None:
            continue
        repo = config.repository_for(app, env.name)
        found.setdefault((repo, str(current.digest)), f"current in {env.name}")
        for n, digest in enumerate(ctx.ledger.previous_digests(app, env.name, depth), start=1):
            found.setdefault((repo, str(digest)), f"rollback target {n} in {env.name}")
    return found


def _deep(ctx: Context, targets: dict[tuple[str, str], str], *, pool_size: int) -> tuple[int, list[Drift]]:
    """Walk every image in use down to its blobs; (checks made, what is missing)."""
    registry = ctx.registry
    counted = [0]
    lock = threading.Lock()

    def count(n: int = 1) -> None:
        with lock:
            counted[0] += n

    def walk(repo: str, digest: str, why: str) -> list[Drift]:
        count()
        try:
            manifest = registry.manifest_get(repo, digest)
        except NotFound:
            return [Drift("missing-manifest", f"{repo}@{digest}", digest, None, why)]
        missing: list[Drift] = []
        for child in manifest.children:
            missing += walk(repo, str(child.digest), f"child of {digest[:19]} ({why})")
        for blob in manifest.blobs:
            count()
            if registry.blob_head(repo, blob.digest) is None:
                missing.append(Drift("missing-blob", f"{repo}@{blob.digest}", str(blob.digest), None, why))
        return missing

    with ThreadPoolExecutor(max_workers=pool_size) as pool:
        results = list(pool.map(lambda item: walk(item[0][0], item[0][1], item[1]), targets.items()))
    return counted[0], [d for found in results for d in found]
