"""Signed evidence and promotion statements end to end through the CLI, on the OCI layout and on a
real registry (Debian's docker-registry 2.8: no referrers API, so the `sha256-<hex>` fallback tag):
sign, attach, copy, verify; and every way a statement can be wrong makes `boda attest verify` fail
with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boda.attest import artifact, dsse
from boda.attest.statement import PROMOTION, TEST_RESULT, parse_statement
from boda.registry.base import Registry
from boda.types import Descriptor, Digest, Manifest
from fixtures.attest import SignedProject, make_signed_project


@pytest.fixture(params=["layout", pytest.param("registry", marks=pytest.mark.registry)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "layout":
        return f"oci-layout:{tmp_path / 'registry'}"
    return str(request.getfixturevalue("registry").url)


@pytest.fixture(params=["tags", "repos"])
def project(
    request: pytest.FixtureRequest, tmp_path: Path, backend_url: str, sqlite_url: str, boda: Any
) -> Iterator[SignedProject]:
    yield make_signed_project(tmp_path / "project", backend_url, sqlite_url, request.param, boda)


def verify(p: SignedProject, ref: str, env: str = "prd", *keys: str) -> Any:
    return p.boda("attest", "verify", ref, "--env", env, *(keys or ("--key", p.pub)), "--json")


def links(done: Any) -> dict[str, dict[str, Any]]:
    return {f"{x['link']}:{x['env']}:{x['kind']}": x for x in done.json["links"]}


def envelope_of(registry: Registry, repo: str, statement: Digest) -> tuple[Manifest, dsse.Envelope]:
    manifest = registry.manifest_get(repo, str(statement))
    layer = artifact.envelope_layer(manifest)
    assert layer is not None
    with registry.blob_get(repo, layer.digest) as chunks:
        return manifest, dsse.Envelope.from_bytes(b"".join(chunks))


def find_statement(p: SignedProject, repo: str, digest: str, kind: str, env: str) -> Digest:
    """The digest of the statement about (`kind`, `env`) attached to `digest` in `repo`."""
    registry = p.registry()
    try:
        for statement in p.statements(repo, digest):
            claim = parse_statement(envelope_of(registry, repo, statement)[1].payload).claim
            if getattr(claim, "kind", "promotion") in (kind,) and claim.env == env:
                return statement
    finally:
        registry.close()
    raise AssertionError(f"no {kind} statement from {env} on {digest}")


def reattach(
    registry: Registry, repo: str, subject: Descriptor, envelope: bytes, predicate_type: str
) -> Digest:
    """Attach `envelope` to `subject` the way boda does, bytes as given (an attacker's push)."""
    built = artifact.build(envelope, subject, predicate_type, {artifact.ANNOTATION_KIND: "tests"})
    for descriptor, data in built.blobs:
        if registry.blob_head(repo, descriptor.digest) is None:
            registry.blob_put(repo, descriptor.digest, descriptor.size, iter((data,)))
    return registry.manifest_put(repo, str(built.manifest.digest), built.manifest)


def test_signed_path_to_production_verifies_with_only_the_registry_and_the_public_key(
    project: SignedProject,
) -> None:
    p = project
    app = p.app("web")
    commit, digest = p.build(app, 1)
    ref = p.to_prd(app, commit)
    assert ref.endswith(f"@{digest}")

    # The ledger is gone: verification reads the registry and the public key only.
    Path(p.ledger_url.removeprefix("sqlite:///")).unlink()
    done = verify(p, ref)
    assert done.code == 0, done.err
    assert done.json["ok"] is True and done.json["digest"] == digest
    got = links(done)
    assert set(got) == {
        "evidence:dev:tests",
        "evidence:stg:tests",
        "evidence:stg:signoff",
        "promotion:prd:promotion",
    }
    assert all(x["status"] == "ok" and x["signer"] for x in got.values())
    assert not Path(p.ledger_url.removeprefix("sqlite:///")).exists()

    # The statements are the standard shapes: a Test Result predicate for tests, boda's promotion.
    registry = p.registry()
    try:
        prd_repo = p.repository(app, "prd")
        _, envelope = envelope_of(registry, prd_repo, Digest.parse(got["evidence:dev:tests"]["statement"]))
        statement = json.loads(envelope.payload)
        assert envelope.payload_type == "application/vnd.in-toto+json"
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert statement["predicateType"] == TEST_RESULT
        assert statement["subject"] == [{"name": app, "digest": {"sha256": digest.split(":")[1]}}]
        assert statement["predicate"]["result"] == "PASSED"
        assert statement["predicate"]["configuration"] == [
            {"name": "source", "digest": {"gitCommit": commit}}
        ]
        manifest, envelope = envelope_of(
            registry, prd_repo, Digest.parse(got["promotion:prd:promotion"]["statement"])
        )
        assert manifest.artifact_type == "application/vnd.dsse.envelope.v1+json"
        assert manifest.subject is not None and str(manifest.subject.digest) == digest
        promotion = json.loads(envelope.payload)
        assert promotion["predicateType"] == PROMOTION
        assert promotion["predicate"]["from"] == "stg" and promotion["predicate"]["to"] == "prd"
        assert promotion["predicate"]["forced"] is False and promotion["predicate"]["commit"] == commit
        relied = {(e["env"], e["kind"]): e["statement"] for e in promotion["predicate"]["evidence"]}
        assert relied == {
            ("stg", "tests"): got["evidence:stg:tests"]["statement"],
            ("stg", "signoff"): got["evidence:stg:signoff"]["statement"],
        }
    finally:
        registry.close()


def test_status_and_evidence_output_say_what_is_signed_and_by_which_key(project: SignedProject) -> None:
    p = project
    app = p.app("web")
    commit, digest = p.build(app, 1)
    p.ok("promote", app, "--to", "dev", "--commit", commit)
    unsigned = p.evidence(app, "dev", commit, "tests", "--json").json
    assert unsigned["signed"] is False and unsigned["signer"] is None and unsigned["statement"] is None
    signed = p.evidence(app, "dev", commit, "signoff", "--sign", p.key, "--json")
    assert signed.code == 0, signed.err
    keyid = p.ok("keys", "public", p.key, "--json").json["keyid"]
    assert signed.json["signed"] is True and signed.json["signer"] == keyid
    assert Digest.parse(signed.json["statement"]) in p.statements(app, digest)
    status = p.ok("status", app, "--json").json
    dev = next(e for e in status["environments"] if e["name"] == "dev")
    by_kind = {e["kind"]: e for e in dev["evidence"]}
    assert by_kind["tests"]["signed"] is False
    assert by_kind["signoff"]["signed"] is True and by_kind["signoff"]["signer"] == keyid
    assert dev["current"]["signed"] is False  # promoted without a key
    assert "signoff:pass[signed]" in p.ok("status", app).out


def test_a_missing_kind_a_failed_kind_and_a_wrong_key_are_each_named(
    project: SignedProject, tmp_path: Path
) -> None:
    p = project
    app = p.app("web")
    commit, _ = p.build(app, 1)
    ref = p.to_prd(app, commit, skip=("stg", "signoff"))
    done = verify(p, ref)
    assert done.code == 3
    got = links(done)
    assert got["evidence:stg:signoff"]["status"] == "missing"
    assert [k for k, v in got.items() if v["status"] != "ok"] == ["evidence:stg:signoff"]
    assert done.err.count("\n") == 1 and "no valid signed 'signoff' evidence from stg" in done.err
    text = p.boda("attest", "verify", ref, "--env", "prd", "--key", p.pub)
    assert text.code == 3 and "MISSING" in text.out and "signoff from stg" in text.out

    # The forced promotion says it was forced.
    registry = p.registry()
    try:
        statement = Digest.parse(got["promotion:prd:promotion"]["statement"])
        _, envelope = envelope_of(registry, p.repository(app, "prd"), statement)
        assert json.loads(envelope.payload)["predicate"]["forced"] is True
    finally:
        registry.close()

    # A later failing signoff is the latest word: the link fails, naming it.
    p.ok(
        "evidence",
        app,
        "--env",
        "stg",
        "--commit",
        commit,
        "--kind",
        "signoff",
        "--result",
        "fail",
        "--sign",
        p.key,
        "--by",
        "carol",
    )
    p.ok("promote", app, "--to", "prd", "--commit", commit, "--sign", p.key, "--force", "--reason", "again")
    failed = links(verify(p, ref))["evidence:stg:signoff"]
    assert failed["status"] == "failed" and "is fail (by carol" in failed["reason"]

    # Another key verifies nothing.
    assert p.run_cli("keys", "generate", str(tmp_path / "other")).code == 0
    other = verify(p, ref, "prd", "--key", str(tmp_path / "other.pub.pem"))
    assert other.code == 3
    assert all(x["status"] == "missing" for x in other.json["links"])
    assert "no signature verifies with the given key(s)" in other.err


def test_a_tampered_statement_fails_verification_with_the_reason(project: SignedProject) -> None:
    p = project
    app = p.app("web")
    commit, digest = p.build(app, 1)
    p.ok("promote", app, "--to", "dev", "--commit", commit, "--sign", p.key)
    p.ok(
        "evidence",
        app,
        "--env",
        "dev",
        "--commit",
        commit,
        "--kind",
        "tests",
        "--result",
        "fail",
        "--sign",
        p.key,
    )
    repo = p.repository(app, None)
    original = find_statement(p, repo, digest, "tests", "dev")
    registry = p.registry()
    try:
        manifest, envelope = envelope_of(registry, repo, original)
        # Flip the result inside the signed payload, keep the signature: what a forger would do.
        forged_payload = envelope.payload.replace(b'"result":"FAILED"', b'"result":"PASSED"').replace(
            b'"result":"fail"', b'"result":"pass"'
        )
        assert forged_payload != envelope.payload
        forged = dsse.Envelope(envelope.payload_type, forged_payload, envelope.signatures)
        assert manifest.subject is not None
        tampered = reattach(registry, repo, manifest.subject, forged.to_bytes(), TEST_RESULT)
        registry.manifest_delete(repo, original)
    finally:
        registry.close()
    done = p.boda(
        "attest", "verify", f"{ref_base(p, repo)}@{digest}", "--env", "stg", "--key", p.pub, "--json"
    )
    assert done.code == 3
    link = links(done)["evidence:dev:tests"]
    assert link["status"] == "missing"
    assert f"{tampered.short} is invalid: no signature verifies" in link["reason"]
    bad = [s for s in done.json["statements"] if not s["valid"]]
    assert [s["statement"] for s in bad] == [str(tampered)]
    assert bad[0]["claim"]["result"] == "pass"  # what it claims, shown as unverified


def test_a_statement_moved_to_another_image_fails_as_about_the_other_image(project: SignedProject) -> None:
    p = project
    app = p.app("web")
    commit_a, digest_a = p.build(app, 1)
    commit_b, digest_b = p.build(app, 2)
    for commit in (commit_a, commit_b):
        p.ok("promote", app, "--to", "dev", "--commit", commit)
    p.ok(
        "evidence",
        app,
        "--env",
        "dev",
        "--commit",
        commit_a,
        "--kind",
        "tests",
        "--result",
        "pass",
        "--sign",
        p.key,
    )
    p.ok(
        "evidence",
        app,
        "--env",
        "dev",
        "--commit",
        commit_b,
        "--kind",
        "tests",
        "--result",
        "fail",
        "--sign",
        p.key,
    )
    repo = p.repository(app, None)
    good = find_statement(p, repo, digest_a, "tests", "dev")
    registry = p.registry()
    try:
        _, envelope = envelope_of(registry, repo, good)
        subject_b = registry.manifest_head(repo, digest_b)
        assert subject_b is not None
        # A's passing statement attached to B: the signature is valid, the subject is not B.
        swapped = reattach(registry, repo, subject_b, envelope.to_bytes(), TEST_RESULT)
    finally:
        registry.close()
    done = p.boda(
        "attest", "verify", f"{ref_base(p, repo)}@{digest_b}", "--env", "stg", "--key", p.pub, "--json"
    )
    assert done.code == 3
    link = links(done)["evidence:dev:tests"]
    assert link["status"] == "failed"  # B's own (failing) statement is the only valid one
    invalid = {s["statement"]: s["problem"] for s in done.json["statements"] if not s["valid"]}
    assert invalid == {str(swapped): f"signed, but about {digest_a}, not {digest_b}"}


def ref_base(p: SignedProject, repo: str) -> str:
    """`host/repo` or `oci-layout:ROOT:repo` of the project's registry."""
    if p.registry_url.startswith("oci-layout:"):
        return f"{p.registry_url}:{repo}"
    return f"{p.registry_url.removeprefix('http://')}/{repo}"


def test_copies_carry_the_statements_to_another_registry(
    project: SignedProject, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    p = project
    app = p.app("web")
    commit, digest = p.build(app, 1)
    ref = p.to_prd(app, commit)
    if p.registry_url.startswith("oci-layout:"):
        destination = f"oci-layout:{tmp_path / 'elsewhere'}:prod/web"
    else:
        destination = f"{request.getfixturevalue('registry2').host}/prod/web"
    copied = p.boda("copy", ref, f"{destination}:live", "--referrers", "--json")
    assert copied.code == 0, copied.err
    assert copied.json["referrers_copied"] >= 4
    done = p.boda("attest", "verify", f"{destination}:live", "--env", "prd", "--key", p.pub, "--json")
    assert done.code == 0, done.err
    assert done.json["digest"] == digest and done.json["ok"]
