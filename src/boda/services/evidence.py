"""Evidence: facts about a digest in an environment (tests passed, sign-off given, scan clean)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boda.config import Config
from boda.errors import Refused, UsageError
from boda.services.context import Context, identity
from boda.types import EVIDENCE_RESULTS, check_url, validate_evidence_kind

if TYPE_CHECKING:
    from boda.ledger.base import Attestation, Evidence


def evidence_json(item: Evidence, attestation: Attestation | None = None) -> dict[str, Any]:
    """The JSON shape of one evidence entry in status and evidence output; `signed` evidence also
    names its `signer` (key id or KMS key ARN) and its `statement` (the artifact's digest)."""
    return {
        "kind": item.kind,
        "result": item.result,
        "by": item.by,
        "at": item.at.isoformat(),
        "url": item.url,
        "signed": attestation is not None,
        "signer": attestation.signer if attestation else None,
        "statement": str(attestation.statement) if attestation else None,
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
    attestation: Attestation | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "env": self.env,
            "digest": self.digest,
            "commit": self.commit,
            **evidence_json(self.evidence, self.attestation),
        }


def check_kind(config: Config, kind: str) -> str:
    """`kind` if evidence of that kind may be recorded, else UsageError naming the known kinds."""
    known = config.evidence_kinds
    if kind in known:
        return kind
    close = difflib.get_close_matches(kind, known, n=1)
    listed = ", ".join(known) or "none"
    raise UsageError(
        f"unknown evidence kind {kind!r} (known: {listed})",
        hint=f"did you mean {close[0]!r}?" if close else "list it under [evidence] kinds in boda.toml",
    )


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
    sign: str | None = None,
) -> EvidenceResult:
    """Record a pass or fail of `kind` for a build in `env`; the latest result per kind counts.

    With a key (`sign`, else `[evidence] sign`) the evidence is also a signed in-toto statement
    attached to the image in the registry, recorded with the evidence.
    """
    if result not in EVIDENCE_RESULTS:
        raise UsageError(f"invalid result {result!r}: expected pass or fail")
    check_kind(ctx.config, validate_evidence_kind(kind))
    if url is not None:
        check_url(url)
    actor = identity(by)
    ctx.config.environment(env)
    build = ctx.find_build(app, commit=commit, digest=digest)
    if not ctx.ledger.promotions_of(build.digest, app, env):
        raise Refused(
            f"{app} {build.digest.short} has never been current in {env}: evidence from {env} cannot"
            " be about it",
            hint=f"promote it to {env} first; evidence is gathered where the image runs",
        )
    # -- signed evidence (boda.services.attest): key checked, statement signed and attached, then
    # evidence and statement recorded together; a key that cannot sign writes nothing.
    if sign is not None or ctx.config.evidence_sign:
        from boda.services import attest  # cryptography is imported only to sign

        signer = attest.signer_for(ctx.config, sign)
        assert signer is not None
        item, attestation = attest.record_signed_evidence(
            ctx, signer, build, env=env, kind=kind, result=result, by=actor, url=url
        )
        return EvidenceResult(app, env, str(build.digest), build.commit, item, attestation)
    # -- end of signed evidence
    item = ctx.ledger.record_evidence(
        app=app, env=env, digest=build.digest, kind=kind, result=result, url=url, by=actor
    )
    return EvidenceResult(app, env, str(build.digest), build.commit, item)
