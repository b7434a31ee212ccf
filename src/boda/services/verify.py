"""Compare the registry with the ledger and list every drift."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from boda.errors import NotFound
from boda.services.context import Context


@dataclass(frozen=True)
class Drift:
    """One disagreement between the registry and the ledger."""

    kind: str  # "environment" | "commit-tag" | "missing"
    where: str
    expected: str
    found: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"kind": self.kind, "where": self.where, "expected": self.expected, "found": self.found}


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


def verify(ctx: Context, app: str) -> VerifyResult:
    """Check environment tags (or repositories), commit tags and that every current digest exists."""
    ctx.require_app(app)
    registry = ctx.registry
    config = ctx.config
    app_repo = config.repository_for(app, None)
    # (kind, repository, tag-or-digest, expected digest)
    checks: list[tuple[str, str, str, str]] = []
    # Images boda expired on purpose are gone with their tags; that is not drift.
    expired = {
        (str(e.detail.get("repository")), str(e.digest))
        for e in ctx.ledger.events(app)
        if e.action == "expire"
    }
    for build in ctx.ledger.list_builds(app):
        if (app_repo, str(build.digest)) not in expired:
            checks.append(("commit-tag", app_repo, config.commit_tag_for(build.commit), str(build.digest)))
    for env, current in ctx.ledger.current_all(app).items():
        digest = str(current.digest)
        if config.strategy == "tags":
            checks.append(("environment", app_repo, env, digest))
        else:
            env_repo = config.repository_for(app, env)
            checks.append(("missing", env_repo, digest, digest))
            if current.commit:
                checks.append(("commit-tag", env_repo, config.commit_tag_for(current.commit), digest))

    def run(check: tuple[str, str, str, str]) -> Drift | None:
        kind, repo, ref, expected = check
        try:
            head = registry.manifest_head(repo, ref)
        except NotFound:
            head = None
        found = str(head.digest) if head else None
        if found == expected:
            return None
        sep = "@" if ref.startswith("sha") and ":" in ref else ":"
        return Drift(kind, f"{repo}{sep}{ref}", expected, found)

    with ThreadPoolExecutor(max_workers=8) as pool:
        drifts = tuple(d for d in pool.map(run, checks) if d is not None)
    return VerifyResult(app, len(checks), drifts)
