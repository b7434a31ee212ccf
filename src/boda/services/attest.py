"""Signed statements on the registry: write them, read and verify them, and decide whether a digest
was tested, signed off and promoted on its way to an environment, with nothing but the registry and a
key (the pre-deploy check).

Where statements live (so that copies carry them, `promotion.copy_referrers`):

* evidence: a referrer of the digest in the app's repository (where the build is), else in the
  repository of the environment the evidence is about;
* a promotion or rollback: a referrer in the environment's repository (what a deploy job pulls)
  and, when that is another repository, in the app's repository too, so later promotions carry it.

Strategy `repos` copies every referrer of the digest from the app's repository into each
environment's repository it promotes to; `boda copy --referrers` carries them to another registry.

Signing happens before anything is written: a key that cannot sign (a KMS key without kms:Sign)
changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from boda.attest import artifact, dsse
from boda.attest import keys as keyring
from boda.attest.statement import (
    Claim,
    EvidenceClaim,
    EvidenceRef,
    MalformedStatement,
    PromotionClaim,
    parse_statement,
    statement_bytes,
    timestamp,
)
from boda.config import Config, Environment
from boda.errors import BodaError, DigestMismatch, NotFound, Unavailable, UsageError
from boda.types import Descriptor, Digest, Reference

if TYPE_CHECKING:
    from boda.ledger.base import Attestation, Build, Evidence
    from boda.registry.base import Registry
    from boda.services.context import Context


# -- keys ---------------------------------------------------------------------------------------------


def signer_for(config: Config, key: str | None) -> keyring.Signer | None:
    """The signer of a command: the key it names (a path relative to the working directory, or
    `kms:KEY`), else `[evidence] sign`, else None (unsigned)."""
    if key is not None:
        if not key.strip():
            raise UsageError("--sign needs a PEM private key file or kms:KEY-ID-OR-ARN")
        return keyring.load_signer(key)
    if config.evidence_sign:
        return keyring.load_signer(config.evidence_sign)
    return None


def verifiers_for(
    config: Config, keys: Sequence[str] = (), kms: Sequence[str] = ()
) -> list[keyring.Verifier]:
    """The keys to verify with: those named (`--key`, `--kms`), else `[evidence] verify`, else the
    public half of `[evidence] sign`."""
    named = [*keys, *(k if k.startswith(keyring.KMS_PREFIX) else keyring.KMS_PREFIX + k for k in kms)]
    if named:
        return [keyring.load_verifier(k) for k in named]
    if config.evidence_verify:
        return [keyring.load_verifier(k) for k in config.evidence_verify]
    if config.evidence_sign:
        return [keyring.load_signer(config.evidence_sign).verifier]
    raise UsageError(
        "no key to verify signed statements with",
        hint="pass --key PUB.pem or --kms KEY, or set [evidence] verify in boda.toml",
    )


# -- writing ------------------------------------------------------------------------------------------


def sign_claim(signer: keyring.Signer, claim: Claim) -> dsse.Envelope:
    """The DSSE envelope of the statement about `claim` (no write: KMS signs, nothing else)."""
    return dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, statement_bytes(claim), signer.sign)


def holders(registry: Registry, repos: Iterable[str], digest: Digest) -> list[tuple[str, Descriptor]]:
    """Each of `repos` that holds `digest`, with the image's descriptor there (NotFound if none)."""
    tried = list(dict.fromkeys(repos))
    out = []
    for repo in tried:
        try:
            head = registry.manifest_head(repo, str(digest))
        except NotFound:
            head = None
        if head is None:
            continue
        if head.size is None:  # ECR tells no size without reading the manifest
            manifest = registry.manifest_get(repo, str(digest))
            out.append((repo, Descriptor(manifest.media_type, manifest.digest, manifest.size)))
        else:
            out.append((repo, Descriptor(head.media_type, head.digest, head.size)))
    if not out:
        raise NotFound(
            f"{digest} is in none of {', '.join(tried)}: there is no image to attach a statement to"
        )
    return out


def attach(
    registry: Registry, repo: str, subject: Descriptor, envelope: dsse.Envelope, claim: Claim
) -> Digest:
    """Push the artifact holding `envelope` as a referrer of `subject`; its manifest's digest."""
    kind = claim.kind if isinstance(claim, EvidenceClaim) else "promotion"
    annotations = {
        artifact.ANNOTATION_CREATED: timestamp(claim.at),
        artifact.ANNOTATION_KIND: kind,
        artifact.ANNOTATION_ENV: claim.env,
    }
    built = artifact.build(envelope.to_bytes(), subject, claim.predicate_type, annotations)
    for descriptor, data in built.blobs:
        if registry.blob_head(repo, descriptor.digest) is None:
            registry.blob_put(repo, descriptor.digest, descriptor.size, iter((data,)))
    reported = registry.manifest_put(repo, str(built.manifest.digest), built.manifest)
    if reported != built.manifest.digest:
        raise DigestMismatch(f"{registry.name}/{repo} stored statement {built.manifest.digest} as {reported}")
    return built.manifest.digest


def record_signed_evidence(
    ctx: Context,
    signer: keyring.Signer,
    build: Build,
    *,
    env: str,
    kind: str,
    result: str,
    by: str,
    url: str | None,
) -> tuple[Evidence, Attestation]:
    """Sign a statement of this evidence, attach it to the image, then record both in the ledger."""
    config = ctx.config
    repo, subject = holders(
        ctx.registry,
        [config.repository_for(build.app, None), config.repository_for(build.app, env)],
        build.digest,
    )[0]
    claim = EvidenceClaim(
        build.app, env, build.digest, build.commit, kind, result, by, datetime.now(UTC), url
    )
    envelope = sign_claim(signer, claim)
    statement = attach(ctx.registry, repo, subject, envelope, claim)
    return ctx.ledger.record_signed_evidence(
        build.app,
        env=env,
        digest=build.digest,
        kind=kind,
        result=result,
        by=by,
        url=url,
        statement=statement,
        predicate_type=claim.predicate_type,
        signer=signer.keyid,
        repository=repo,
    )


# -- reading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """One signed-statement artifact attached to an image, and what came of verifying it.

    `claim` is what the statement says; when `problem` is set the statement is invalid and
    `claim` (if any) is only what it *claims*, unverified, kept to name it in reports.
    """

    statement: Digest
    repository: str
    claim: Claim | None
    signer: str | None = None
    problem: str | None = None

    @property
    def valid(self) -> bool:
        """True when the signature verified and the statement is about the image."""
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "statement": str(self.statement),
            "repository": self.repository,
            "valid": self.valid,
            "signer": self.signer,
            "problem": self.problem,
            "claim": self.claim.to_json() if self.claim else None,
        }


def _read_blob(registry: Registry, repo: str, layer: Descriptor) -> bytes:
    if layer.size > dsse.MAX_ENVELOPE_BYTES:
        raise dsse.MalformedEnvelope(
            f"envelope of {layer.size} bytes is larger than {dsse.MAX_ENVELOPE_BYTES}"
        )
    hasher = layer.digest.hasher()
    parts: list[bytes] = []
    size = 0
    with registry.blob_get(repo, layer.digest) as chunks:
        for chunk in chunks:
            size += len(chunk)
            if size > dsse.MAX_ENVELOPE_BYTES:
                raise dsse.MalformedEnvelope("envelope is larger than its descriptor says")
            hasher.update(chunk)
            parts.append(chunk)
    if hasher.hexdigest() != layer.digest.hex or size != layer.size:
        raise DigestMismatch("the envelope's bytes do not match their digest")
    return b"".join(parts)


def read_statements(
    registry: Registry, repo: str, digest: Digest, verifiers: Sequence[keyring.Verifier]
) -> list[Found]:
    """Every DSSE artifact attached to `digest` in `repo`, verified against `verifiers`.

    Referrers that are not DSSE artifacts (cosign signatures, SBOMs, ...) are skipped. Registry
    failures raise; a statement that cannot be read or verified is returned with its problem.
    """
    try:
        descriptors = registry.referrers(repo, digest)
    except NotFound:
        return []
    checks = [(v.name, v.verify) for v in verifiers]
    found = []
    for descriptor in descriptors:
        if not artifact.is_attestation(descriptor):
            continue
        try:
            manifest = registry.manifest_get(repo, str(descriptor.digest))
        except NotFound:
            continue  # deleted since it was listed
        layer = artifact.envelope_layer(manifest)
        if layer is None:
            continue
        found.append(_check(registry, repo, digest, descriptor.digest, layer, checks))
    return found


def _check(
    registry: Registry,
    repo: str,
    digest: Digest,
    statement: Digest,
    layer: Descriptor,
    checks: Sequence[tuple[str, dsse.VerifyFn]],
) -> Found:
    try:
        envelope = dsse.Envelope.from_bytes(_read_blob(registry, repo, layer))
    except (dsse.MalformedEnvelope, DigestMismatch) as exc:
        return Found(statement, repo, None, problem=exc.message)
    except NotFound:
        return Found(statement, repo, None, problem="its envelope blob is missing")
    claimed: Claim | None = None
    parse_problem = None
    try:
        parsed = parse_statement(envelope.payload)
        claimed = parsed.claim
    except MalformedStatement as exc:
        parse_problem = exc.message
    signer = dsse.verified_by(envelope, checks)
    if signer is None:
        return Found(statement, repo, claimed, problem="no signature verifies with the given key(s)")
    if envelope.payload_type != dsse.IN_TOTO_PAYLOAD_TYPE:
        return Found(statement, repo, None, signer, f"payloadType {envelope.payload_type!r} is not in-toto")
    if parse_problem is not None or claimed is None:
        return Found(
            statement, repo, None, signer, f"signed, but not a statement boda reads: {parse_problem}"
        )
    if not parsed.about(digest):
        about = ", ".join(str(d) for _, d in parsed.subjects)
        return Found(statement, repo, claimed, signer, f"signed, but about {about}, not {digest}")
    return Found(statement, repo, claimed, signer)


def statements_in(
    registry: Registry, repos: Iterable[str], digest: Digest, verifiers: Sequence[keyring.Verifier]
) -> list[Found]:
    """`read_statements` over several repositories, each artifact once."""
    seen: set[Digest] = set()
    out = []
    for repo in dict.fromkeys(repos):
        for item in read_statements(registry, repo, digest, verifiers):
            if item.statement not in seen:
                seen.add(item.statement)
                out.append(item)
    return out


# -- links: what a digest needs on its way to an environment ---------------------------------------


@dataclass(frozen=True)
class Link:
    """One thing a digest needs: passing evidence of a kind from an environment, or a promotion
    into the target environment; `status` is ok, missing or failed (the latest evidence failed)."""

    what: str
    env: str
    kind: str
    status: str
    found: Found | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when the link holds."""
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        claim = self.found.claim if self.found else None
        return {
            "link": self.what,
            "env": self.env,
            "kind": self.kind,
            "status": self.status,
            "statement": str(self.found.statement) if self.found else None,
            "signer": self.found.signer if self.found else None,
            "by": claim.by if claim else None,
            "at": claim.at.isoformat() if claim else None,
            "reason": self.reason,
        }


def required_evidence(config: Config, env: str) -> list[tuple[str, str]]:
    """(environment, kind) of every evidence required on the way to `env`, first stage first."""
    out: list[tuple[str, str]] = []
    stage = config.environment(env)
    while stage.after is not None:
        out[:0] = [(stage.after, kind) for kind in stage.requires]
        stage = config.environment(stage.after)
    return out


def _invalid_note(found: Sequence[Found], matches: Any) -> str:
    bad = [f for f in found if not f.valid and (f.claim is None or matches(f.claim))]
    return "".join(f"; {f.statement.short} is invalid: {f.problem}" for f in bad)


def evidence_link(found: Sequence[Found], env: str, kind: str, app: str | None = None) -> Link:
    """The link 'passing `kind` evidence from `env`': the latest valid statement of it must pass."""

    def matches(claim: Claim) -> bool:
        return (
            isinstance(claim, EvidenceClaim)
            and claim.env == env
            and claim.kind == kind
            and (app is None or claim.app == app)
        )

    valid = [f for f in found if f.valid and f.claim is not None and matches(f.claim)]
    if not valid:
        reason = f"no valid signed {kind!r} evidence from {env}" + _invalid_note(found, matches)
        return Link("evidence", env, kind, "missing", None, reason)
    latest = max(valid, key=lambda f: f.claim.at if f.claim else datetime.min.replace(tzinfo=UTC))
    assert isinstance(latest.claim, EvidenceClaim)
    if latest.claim.result != "pass":
        reason = (
            f"the latest signed {kind!r} evidence from {env} is {latest.claim.result}"
            f" (by {latest.claim.by} at {timestamp(latest.claim.at)})"
        )
        return Link("evidence", env, kind, "failed", latest, reason)
    return Link("evidence", env, kind, "ok", latest)


def promotion_link(found: Sequence[Found], env: str, app: str | None = None) -> Link:
    """The link 'promoted into `env`': a valid signed promotion (or rollback) statement into it."""

    def matches(claim: Claim) -> bool:
        return isinstance(claim, PromotionClaim) and claim.env == env and (app is None or claim.app == app)

    valid = [f for f in found if f.valid and f.claim is not None and matches(f.claim)]
    if not valid:
        reason = f"no valid signed promotion into {env}" + _invalid_note(found, matches)
        return Link("promotion", env, "promotion", "missing", None, reason)
    latest = max(valid, key=lambda f: f.claim.at if f.claim else datetime.min.replace(tzinfo=UTC))
    return Link("promotion", env, "promotion", "ok", latest)


# -- the pre-deploy check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    """`boda attest verify`: every link a digest needs to run in `env`, and every statement found."""

    reference: str
    digest: Digest
    env: str
    app: str | None
    links: tuple[Link, ...]
    statements: tuple[Found, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every link holds."""
        return all(link.ok for link in self.links)

    @property
    def failures(self) -> list[str]:
        """One line per link that does not hold (naming the invalid statements that claim it)."""
        return [
            f"{link.what} {link.kind!r} ({link.env}): {link.reason}" for link in self.links if not link.ok
        ]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "reference": self.reference,
            "digest": str(self.digest),
            "env": self.env,
            "app": self.app,
            "ok": self.ok,
            "links": [link.to_json() for link in self.links],
            "statements": [s.to_json() for s in self.statements],
        }


def verify_image(
    config: Config,
    image: str,
    *,
    env: str,
    keys: Sequence[str] = (),
    kms: Sequence[str] = (),
    app: str | None = None,
) -> VerifyResult:
    """Whether the image `image` names has valid signed evidence for every kind required on the way
    to `env` and a signed promotion into `env`, all about its digest. Reads only the registry."""
    from boda.registry import open_registry

    config.environment(env)
    ref = Reference.parse(image)
    verifiers = verifiers_for(config, keys, kms)
    registry = open_registry(ref.registry)
    try:
        head = registry.manifest_head(ref.repository, ref.identifier)
        if head is None:
            raise NotFound(f"{ref}: no such image")
        if ref.digest is not None and head.digest != ref.digest:
            raise DigestMismatch(f"{ref}: the registry answers with {head.digest}")
        found = read_statements(registry, ref.repository, head.digest, verifiers)
    finally:
        registry.close()
    links = [evidence_link(found, e, k, app) for e, k in required_evidence(config, env)]
    links.append(promotion_link(found, env, app))
    return VerifyResult(str(ref.with_digest(head.digest)), head.digest, env, app, tuple(links), tuple(found))


# -- gates and promotions (hooks of boda.services.promote and boda.services.evidence) -----------------


def _statement_repos(config: Config, app: str, env: str | None) -> list[str]:
    repos = [config.repository_for(app, None)]
    if env is not None:
        repos.append(config.repository_for(app, env))
    return list(dict.fromkeys(repos))


def signed_gate_failures(ctx: Context, app: str, env: Environment, digest: Digest) -> list[str]:
    """Why the registry's signed statements do not let `digest` into `env` (`requires_signed`)."""
    if env.after is None or not env.requires:
        return []
    verifiers = verifiers_for(ctx.config)
    found = statements_in(ctx.registry, _statement_repos(ctx.config, app, env.after), digest, verifiers)
    links = [evidence_link(found, env.after, kind, app) for kind in env.requires]
    return [f"signed evidence: {link.reason}" for link in links if not link.ok]


def gate_evidence(ctx: Context, app: str, env: Environment, digest: Digest) -> tuple[EvidenceRef, ...]:
    """The evidence the gate of `env` relied on for `digest`: the latest of each required kind
    (from the registry's verified statements with `requires_signed`, else from the ledger)."""
    if env.after is None or not env.requires:
        return ()
    upstream = env.after
    if env.requires_signed:
        verifiers = verifiers_for(ctx.config)
        found = statements_in(ctx.registry, _statement_repos(ctx.config, app, upstream), digest, verifiers)
        refs = []
        for kind in env.requires:
            link = evidence_link(found, upstream, kind, app)
            if link.found is not None and isinstance(link.found.claim, EvidenceClaim):
                refs.append(EvidenceRef(kind, upstream, link.found.claim.result, str(link.found.statement)))
        return tuple(refs)
    latest: dict[str, Evidence] = {}
    for item in ctx.ledger.evidence(app, upstream, digest):  # newest first
        latest.setdefault(item.kind, item)
    signed = {a.evidence_id: a for a in ctx.ledger.attestations(app, upstream, digest) if a.evidence_id}
    refs = []
    for kind in env.requires:
        entry = latest.get(kind)
        if entry is not None:
            attestation = signed.get(entry.id)
            statement = str(attestation.statement) if attestation else None
            refs.append(EvidenceRef(kind, upstream, entry.result, statement))
    return tuple(refs)


@dataclass(frozen=True)
class PendingPromotion:
    """A signed promotion statement, not yet written anywhere."""

    claim: PromotionClaim
    envelope: dsse.Envelope
    signer: str


def sign_promotions(
    ctx: Context,
    key: str | None,
    builds: Sequence[Build],
    env: Environment,
    kind: str,
    by: str,
    reason: str | None,
) -> list[PendingPromotion]:
    """Sign one promotion statement per build, before anything is written ([] without a key)."""
    signer = signer_for(ctx.config, key)
    if signer is None:
        return []
    now = datetime.now(UTC)
    pending = []
    for build in builds:
        rollback = kind == "rollback"
        claim = PromotionClaim(
            app=build.app,
            source=env.name if rollback else env.after,
            env=env.name,
            digest=build.digest,
            commit=build.commit,
            kind=kind,
            by=by,
            at=now,
            reason=reason,
            evidence=() if rollback else gate_evidence(ctx, build.app, env, build.digest),
        )
        pending.append(PendingPromotion(claim, sign_claim(signer, claim), signer.keyid))
    return pending


def _carry_statements(ctx: Context, repos: Sequence[str], digest: Digest) -> None:
    """Copy the statements the environment's repository (`repos[0]`) lacks from the app's
    repository (`repos[-1]`): a promotion that copied from the environment's own repository (a
    rollback, a digest promoted there before) carried none of the newer evidence."""
    if len(repos) < 2 or not ctx.config.copy_referrers:
        return
    from boda.registry.copy import copy_image

    registry = ctx.registry
    try:
        copy_image(registry, repos[-1], str(digest), registry, repos[0], None, expect=digest, referrers=True)
    except NotFound:
        return  # the app's repository no longer holds the image: nothing to carry from there


class Placed(Protocol):
    """What `publish_promotions` needs of a placement (boda.services.promote.Placement)."""

    @property
    def app(self) -> str: ...

    @property
    def env(self) -> str: ...

    @property
    def digest(self) -> Digest: ...

    @property
    def changed(self) -> bool: ...


def publish_promotions(
    ctx: Context, pending: Sequence[PendingPromotion], placements: Sequence[Placed]
) -> list[Attestation]:
    """Attach each signed promotion statement to the image it placed and record it against the
    promotion the ledger recorded. A placement that changed nothing is attested only when the
    current promotion has no statement yet (promoting again with a key attests what runs).

    Runs after the placements are recorded: a statement that cannot be written leaves the
    promotion recorded (the registry holds the image) and raises, saying how to attest it later.
    """
    placed = {(p.app, p.env, p.digest): p for p in placements}
    written = []
    failures: list[tuple[PromotionClaim, BodaError]] = []
    for item in pending:
        claim = item.claim
        placement = placed.get((claim.app, claim.env, claim.digest))
        if placement is None:
            continue
        promotions = ctx.ledger.promotions_of(claim.digest, claim.app, claim.env)
        if not promotions:
            continue
        promotion = promotions[0]
        repos = _statement_repos(ctx.config, claim.app, claim.env)[::-1]  # the environment's first
        try:
            _carry_statements(ctx, repos, claim.digest)
        except (Unavailable, DigestMismatch) as exc:
            failures.append((claim, exc))
            continue
        if not placement.changed and any(
            a.promotion_id == promotion.id
            for a in ctx.ledger.attestations(claim.app, claim.env, claim.digest)
        ):
            continue
        try:
            places = holders(ctx.registry, repos, claim.digest)
            # The same image descriptor makes the same artifact: one statement digest everywhere.
            repo = places[0][0]
            statement = attach(ctx.registry, repo, places[0][1], item.envelope, claim)
            for other, subject in places[1:]:
                attach(ctx.registry, other, subject, item.envelope, claim)
        except (Unavailable, NotFound, DigestMismatch) as exc:
            failures.append((claim, exc))
            continue
        written.append(
            ctx.ledger.record_attestation(
                claim.app,
                env=claim.env,
                digest=claim.digest,
                statement=statement,
                predicate_type=claim.predicate_type,
                signer=item.signer,
                repository=repo,
                by=claim.by,
                promotion_id=promotion.id,
            )
        )
    if failures:
        failed, error = failures[0]
        raise Unavailable(
            f"{failed.app} is in {failed.env} as recorded, but its signed promotion statement could not be"
            f" written: {error.message}",
            hint="promote the same digest again with the key to attest it",
        ) from error
    return written
