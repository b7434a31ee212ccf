"""in-toto Statements (v1) about an image digest, and the predicates boda writes and reads.

Every statement has one subject: `{"name": APP, "digest": {"sha256": HEX}}`, the image.

Predicates (the `predicateType` says which):

* `tests` evidence: the in-toto attestation framework's Test Result predicate
  (`https://in-toto.io/attestation/test-result/v0.1`): `result` PASSED or FAILED, `configuration`
  naming the source commit (`{"name": "source", "digest": {"gitCommit": SHA}}`), `url` of the run,
  and boda's context in the extension field `boda` (see EVIDENCE_FIELDS).
* `signoff` evidence: boda's Sign-off predicate `https://boda.dev/attestation/signoff/v1`, and any
  other kind (`scan`, `perf`, ...): boda's Evidence predicate `https://boda.dev/attestation/evidence/v1`.
  Both are the EVIDENCE_FIELDS object itself.
* promotions and rollbacks: boda's Promotion predicate `https://boda.dev/attestation/promotion/v1`
  (see PROMOTION_FIELDS).

EVIDENCE_FIELDS: `app`, `env` (where the evidence was gathered), `commit`, `kind`, `result`
(`pass` or `fail`), `by` (who), `at` (RFC 3339 UTC), `url` (optional link, e.g. the CI run).

PROMOTION_FIELDS: `app`, `from` (the upstream environment whose gate was passed; for a rollback
the environment itself; null for a first environment), `to`, `commit`, `kind` (`promote`,
`rollback` or `force`), `forced` (true when the gate was bypassed), `by`, `at`, `reason`, and
`evidence`: the evidence the gate relied on, each `{"kind", "env", "result", "statement"}` where
`statement` is the digest of the signed statement's OCI artifact (null for unsigned evidence).

Parsing follows the framework's rules: unknown fields are ignored; a field boda needs that is
missing or of the wrong type makes the statement unusable (MalformedStatement, with the reason).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from boda.errors import ReferenceError_, UsageError
from boda.types import Digest

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
SIGNOFF = "https://boda.dev/attestation/signoff/v1"
EVIDENCE = "https://boda.dev/attestation/evidence/v1"
PROMOTION = "https://boda.dev/attestation/promotion/v1"
#: The extension field of a Test Result predicate that holds boda's context.
BODA_FIELD = "boda"
PREDICATE_TYPES = (TEST_RESULT, SIGNOFF, EVIDENCE, PROMOTION)
RESULTS = ("pass", "fail")
PROMOTION_KINDS = ("promote", "rollback", "force")


class MalformedStatement(UsageError):
    """A payload that is not a statement boda can use."""


def predicate_type_for(kind: str) -> str:
    """The predicate type evidence of `kind` is written with."""
    if kind == "tests":
        return TEST_RESULT
    if kind == "signoff":
        return SIGNOFF
    return EVIDENCE


def timestamp(at: datetime) -> str:
    """RFC 3339 in UTC with a `Z`."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class EvidenceClaim:
    """What a signed evidence statement says."""

    app: str
    env: str
    digest: Digest
    commit: str
    kind: str
    result: str
    by: str
    at: datetime
    url: str | None = None

    @property
    def predicate_type(self) -> str:
        """The predicate type this claim is written with."""
        return predicate_type_for(self.kind)

    def context(self) -> dict[str, Any]:
        """EVIDENCE_FIELDS."""
        out: dict[str, Any] = {
            "app": self.app,
            "env": self.env,
            "commit": self.commit,
            "kind": self.kind,
            "result": self.result,
            "by": self.by,
            "at": timestamp(self.at),
        }
        if self.url is not None:
            out["url"] = self.url
        return out

    def predicate(self) -> dict[str, Any]:
        """The predicate object."""
        if self.kind != "tests":
            return self.context()
        predicate: dict[str, Any] = {
            "result": "PASSED" if self.result == "pass" else "FAILED",
            "configuration": [{"name": "source", "digest": {"gitCommit": self.commit}}],
        }
        if self.url is not None:
            predicate["url"] = self.url
        predicate[BODA_FIELD] = self.context()
        return predicate

    def to_json(self) -> dict[str, Any]:
        """JSON form for output."""
        return {"type": "evidence", "digest": str(self.digest), **self.context()}


@dataclass(frozen=True)
class EvidenceRef:
    """One piece of evidence a promotion's gate relied on."""

    kind: str
    env: str
    result: str
    statement: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (also the predicate's)."""
        return {"kind": self.kind, "env": self.env, "result": self.result, "statement": self.statement}


@dataclass(frozen=True)
class PromotionClaim:
    """What a signed promotion statement says."""

    app: str
    source: str | None
    env: str
    digest: Digest
    commit: str | None
    kind: str
    by: str
    at: datetime
    reason: str | None = None
    evidence: tuple[EvidenceRef, ...] = field(default=())

    predicate_type = PROMOTION

    @property
    def forced(self) -> bool:
        """True when the gate was bypassed."""
        return self.kind == "force"

    def predicate(self) -> dict[str, Any]:
        """PROMOTION_FIELDS."""
        return {
            "app": self.app,
            "from": self.source,
            "to": self.env,
            "commit": self.commit,
            "kind": self.kind,
            "forced": self.forced,
            "by": self.by,
            "at": timestamp(self.at),
            "reason": self.reason,
            "evidence": [e.to_json() for e in self.evidence],
        }

    def to_json(self) -> dict[str, Any]:
        """JSON form for output."""
        return {"type": "promotion", "digest": str(self.digest), **self.predicate()}


Claim = EvidenceClaim | PromotionClaim


def statement_bytes(claim: Claim) -> bytes:
    """The statement about `claim.digest`, serialised once: these bytes are what is signed."""
    digest = claim.digest
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": claim.app, "digest": {digest.algorithm: digest.hex}}],
        "predicateType": claim.predicate_type,
        "predicate": claim.predicate(),
    }
    return json.dumps(statement, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- parsing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedStatement:
    """A statement's subjects and what its predicate claims."""

    subjects: tuple[tuple[str | None, Digest], ...]
    claim: Claim

    def about(self, digest: Digest) -> bool:
        """True when `digest` is one of the statement's subjects."""
        return any(d == digest for _, d in self.subjects)


def parse_statement(payload: bytes) -> ParsedStatement:
    """Read a statement boda can use (MalformedStatement saying why it cannot)."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedStatement("the payload is not JSON") from exc
    if not isinstance(data, dict):
        raise MalformedStatement("the payload is not a JSON object")
    if data.get("_type") != STATEMENT_TYPE:
        raise MalformedStatement(f"_type is {data.get('_type')!r}, not {STATEMENT_TYPE}")
    subjects = _subjects(data.get("subject"))
    predicate_type = data.get("predicateType")
    predicate = data.get("predicate", {})
    if not isinstance(predicate, dict):
        raise MalformedStatement("predicate is not an object")
    if predicate_type == PROMOTION:
        claim: Claim = _promotion(predicate, subjects[0][1])
    elif predicate_type == TEST_RESULT:
        context = predicate.get(BODA_FIELD)
        if not isinstance(context, dict):
            raise MalformedStatement(f"test-result predicate without boda's `{BODA_FIELD}` context")
        claim = _evidence(context, subjects[0][1])
        declared = predicate.get("result")
        if (declared == "PASSED") != (claim.result == "pass"):
            raise MalformedStatement(
                f"test-result says {declared!r} but boda's context says {claim.result!r}"
            )
    elif predicate_type in (SIGNOFF, EVIDENCE):
        claim = _evidence(predicate, subjects[0][1])
        if predicate_type_for(claim.kind) != predicate_type:
            raise MalformedStatement(f"kind {claim.kind!r} is not written with predicate {predicate_type}")
    else:
        raise MalformedStatement(f"predicateType {predicate_type!r} is not one boda reads")
    if claim.app not in {name for name, _ in subjects}:
        raise MalformedStatement(f"the predicate is about app {claim.app!r}, which no subject names")
    return ParsedStatement(subjects, claim)


def _subjects(raw: Any) -> tuple[tuple[str | None, Digest], ...]:
    if not isinstance(raw, list) or not raw:
        raise MalformedStatement("subject is not a non-empty list")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("digest"), dict):
            raise MalformedStatement("a subject has no digest")
        name = item.get("name")
        for algorithm, hexpart in item["digest"].items():
            if algorithm in ("sha256", "sha512") and isinstance(hexpart, str):
                try:
                    out.append(
                        (name if isinstance(name, str) else None, Digest.parse(f"{algorithm}:{hexpart}"))
                    )
                except ReferenceError_ as exc:
                    raise MalformedStatement(f"a subject digest is malformed: {exc.message}") from exc
    if not out:
        raise MalformedStatement("no subject has a sha256 or sha512 digest")
    return tuple(out)


def _text(data: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedStatement(f"predicate field {key!r} is missing or not a string")
    return value


def _required(data: Mapping[str, Any], key: str) -> str:
    value = _text(data, key)
    assert value is not None
    return value


def _time(data: Mapping[str, Any]) -> datetime:
    text = _required(data, "at")
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedStatement(f"predicate field 'at' is not an RFC 3339 time: {text!r}") from exc
    if at.tzinfo is None:
        raise MalformedStatement("predicate field 'at' has no time zone")
    return at.astimezone(UTC)


def _evidence(data: Mapping[str, Any], digest: Digest) -> EvidenceClaim:
    result = _required(data, "result")
    if result not in RESULTS:
        raise MalformedStatement(f"evidence result {result!r} is neither pass nor fail")
    return EvidenceClaim(
        app=_required(data, "app"),
        env=_required(data, "env"),
        digest=digest,
        commit=_required(data, "commit"),
        kind=_required(data, "kind"),
        result=result,
        by=_required(data, "by"),
        at=_time(data),
        url=_text(data, "url", optional=True),
    )


def _promotion(data: Mapping[str, Any], digest: Digest) -> PromotionClaim:
    kind = _required(data, "kind")
    if kind not in PROMOTION_KINDS:
        raise MalformedStatement(f"promotion kind {kind!r} is not one of {', '.join(PROMOTION_KINDS)}")
    if data.get("forced") is not (kind == "force"):
        raise MalformedStatement("promotion field 'forced' disagrees with its kind")
    refs = data.get("evidence", [])
    if not isinstance(refs, list):
        raise MalformedStatement("promotion field 'evidence' is not a list")
    return PromotionClaim(
        app=_required(data, "app"),
        source=_text(data, "from", optional=True),
        env=_required(data, "to"),
        digest=digest,
        commit=_text(data, "commit", optional=True),
        kind=kind,
        by=_required(data, "by"),
        at=_time(data),
        reason=data.get("reason") if isinstance(data.get("reason"), str) else None,
        evidence=tuple(_ref(r) for r in refs),
    )


def _ref(raw: Any) -> EvidenceRef:
    if not isinstance(raw, dict):
        raise MalformedStatement("a promotion's evidence entry is not an object")
    return EvidenceRef(
        kind=_required(raw, "kind"),
        env=_required(raw, "env"),
        result=_required(raw, "result"),
        statement=_text(raw, "statement", optional=True),
    )


def evidence_refs(items: Sequence[EvidenceRef]) -> list[dict[str, Any]]:
    """JSON form of evidence references."""
    return [i.to_json() for i in items]
