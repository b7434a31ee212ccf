"""Evidence: facts about a digest in an environment (tests passed, sign-off given, scan clean)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boda.errors import UsageError
from boda.services.context import Context, identity

if TYPE_CHECKING:
    from boda.ledger.base import Evidence

RESULTS = ("pass", "fail")
_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def evidence_json(item: Evidence) -> dict[str, Any]:
    """The JSON shape of one evidence entry in status and evidence output."""
    return {
        "kind": item.kind,
        "result": item.result,
        "by": item.by,
        "at": item.at.isoformat(),
        "url": item.url,
    }


def latest_per_kind(items: Iterable[Evidence]) -> dict[str, Evidence]:
    """The newest entry of each kind (entries are given newest first)."""
    latest: dict[str, Evidence] = {}
    for item in items:
        latest.setdefault(item.kind, item)
    return latest


@dataclass(frozen=True)
class EvidenceResult:
    """The outcome of `boda evidence`."""

    app: str
    env: str
    digest: str
    commit: str
    evidence: Evidence

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "env": self.env,
            "digest": self.digest,
            "commit": self.commit,
            **evidence_json(self.evidence),
        }


def record_evidence(
    ctx: Context,
    app: str,
    *,
    env: str,
    kind: str,
    result: str,
    commit: str | None = None,
    digest: str | None = None,
    url: str | None = None,
    by: str | None = None,
) -> EvidenceResult:
    """Record a pass or fail of `kind` for a build in `env`; the latest result per kind counts."""
    if result not in RESULTS:
        raise UsageError(f"invalid result {result!r}: expected pass or fail")
    if not _KIND.match(kind):
        raise UsageError(f"invalid evidence kind {kind!r}: letters, digits, '_', '.', '-' (max 64)")
    if url is not None and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$", url):
        raise UsageError(f"invalid url {url!r}: expected an absolute URL")
    ctx.config.environment(env)
    build = ctx.find_build(app, commit=commit, digest=digest)
    item = ctx.ledger.record_evidence(
        app=app, env=env, digest=build.digest, kind=kind, result=result, url=url, by=identity(by)
    )
    return EvidenceResult(app, env, str(build.digest), build.commit, item)
