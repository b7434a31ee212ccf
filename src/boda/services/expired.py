"""Which digests are gone: what boda's expiry deleted, per repository, from the event log.

A digest counts as expired in a repository from its `expire` event until a later `build` records it
again (a rebuild that produced the same bytes pushes them back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from boda.services.context import Context

if TYPE_CHECKING:
    from boda.ledger.base import Event


@dataclass(frozen=True)
class Expiries:
    """The expire events still in force for one app, by digest and repository."""

    by_digest: dict[str, dict[str, Event]]

    def repositories(self, digest: object) -> set[str]:
        """The repositories `digest` was expired from."""
        return set(self.by_digest.get(str(digest), {}))

    def gone_from(self, digest: object, repositories: set[str]) -> bool:
        """True when `digest` was expired from every one of `repositories`."""
        expired = self.repositories(digest)
        return bool(repositories) and repositories <= expired

    def last(self, digest: object) -> Event | None:
        """The newest expire event of `digest`, in any repository."""
        events = self.by_digest.get(str(digest), {})
        return max(events.values(), key=lambda e: e.id) if events else None


def expiries(ctx: Context, app: str) -> Expiries:
    """The expire events of `app` still in force (one read of the event log)."""
    found: dict[str, dict[str, Event]] = {}
    rebuilt: set[str] = set()
    for event in ctx.ledger.iter_events(app, actions=("build", "expire")):  # newest first
        if event.digest is None:
            continue
        digest = str(event.digest)
        if event.action == "build":
            rebuilt.add(digest)
        elif event.action == "expire" and digest not in rebuilt:
            repository = str(event.detail.get("repository") or ctx.config.repository_for(app, None))
            found.setdefault(digest, {}).setdefault(repository, event)
    return Expiries(found)


def holders(ctx: Context, app: str, digest: object, envs: list[str]) -> set[str]:
    """The repositories that held `digest` of `app`: the app's own, and for strategy `repos` the
    repositories of the environments it was promoted to."""
    repos = {ctx.config.repository_for(app, None)}
    if ctx.config.strategy == "repos":
        repos |= {ctx.config.repository_for(app, env) for env in envs}
    return repos
