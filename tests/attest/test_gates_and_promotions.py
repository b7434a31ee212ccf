"""`requires_signed` gates read and verify the registry's statements; rollbacks are attested; a
statement that cannot be written after the placement leaves the promotion recorded and says how
to attest it; the ledger records statement and signer atomically with the evidence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boda.errors import RegistryError
from boda.ledger import open_ledger
from boda.registry.layout import LayoutRegistry
from fixtures.attest import SignedProject, make_signed_project

SIGNED_GATES = """
[[environments]]
name = "dev"

[[environments]]
name = "stg"
after = "dev"
requires = ["tests"]
requires_signed = true

[evidence]
verify = "ci.pub.pem"
"""


@pytest.fixture(params=["tags", "repos"])
def project(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str, boda: Any
) -> Iterator[SignedProject]:
    yield make_signed_project(
        tmp_path / "project", f"oci-layout:{tmp_path / 'registry'}", sqlite_url, request.param, boda
    )


def test_a_signed_gate_wants_a_valid_statement_in_the_registry_not_only_a_ledger_row(
    project: SignedProject, tmp_path: Path
) -> None:
    p = project
    p.write_config(SIGNED_GATES, environments=[])
    app = p.app("web")
    commit, digest = p.build(app, 1)
    p.ok("promote", app, "--to", "dev", "--commit", commit)
    p.ok("evidence", app, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "pass")
    refused = p.boda("promote", app, "--to", "stg", "--commit", commit, "--json")
    assert refused.code == 3
    assert refused.json["error"]["reasons"] == [
        f"{app}: signed evidence: no valid signed 'tests' evidence from dev"
    ]

    # Signed by a key the gate does not trust: still refused, and the reason says why.
    assert p.run_cli("keys", "generate", str(tmp_path / "rogue")).code == 0
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
        "pass",
        "--sign",
        str(tmp_path / "rogue.key.pem"),
    )
    refused = p.boda("promote", app, "--to", "stg", "--commit", commit)
    assert refused.code == 3 and "is invalid: no signature verifies with the given key(s)" in refused.err

    # A trusted but failing statement is the latest word.
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
    p.ok("evidence", app, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "pass")
    refused = p.boda("promote", app, "--to", "stg", "--commit", commit)
    assert refused.code == 3 and "the latest signed 'tests' evidence from dev is fail" in refused.err

    signed = p.ok(
        "evidence",
        app,
        "--env",
        "dev",
        "--commit",
        commit,
        "--kind",
        "tests",
        "--result",
        "pass",
        "--sign",
        p.key,
        "--json",
    ).json
    done = p.boda("promote", app, "--to", "stg", "--commit", commit, "--sign", p.key)
    assert done.code == 0, done.err
    # The promotion statement names the statement the gate relied on.
    verify = p.ok("attest", "verify", done.out.strip(), "--env", "stg", "--json").json
    assert verify["ok"]
    promotion = next(s for s in verify["statements"] if s["claim"]["type"] == "promotion")
    assert promotion["claim"]["evidence"] == [
        {"kind": "tests", "env": "dev", "result": "pass", "statement": signed["statement"]}
    ]
    assert digest in done.out


def test_rollbacks_are_attested_and_verify_into_their_environment(project: SignedProject) -> None:
    p = project
    app = p.app("web")
    old, old_digest = p.build(app, 1)
    new, _ = p.build(app, 2)
    p.ok("promote", app, "--to", "dev", "--commit", old, "--sign", p.key)
    p.ok("promote", app, "--to", "dev", "--commit", new, "--sign", p.key)
    back = p.ok("rollback", app, "--env", "dev", "--sign", p.key, "--reason", "bad deploy", "--json").json
    assert back["digest"] == old_digest and back["kind"] == "rollback"
    done = p.ok("attest", "verify", back["reference"], "--env", "dev", "--key", p.pub, "--json").json
    assert done["ok"]
    claims = sorted(
        (s["claim"]["kind"], s["claim"]["from"], s["claim"]["reason"])
        for s in done["statements"]
        if s["valid"]
    )
    assert claims == [("promote", None, None), ("rollback", "dev", "bad deploy")]
    status = p.ok("status", app, "--json").json
    assert status["environments"][0]["current"]["signed"] is True


def test_promoting_again_with_a_key_attests_an_unsigned_promotion_once(project: SignedProject) -> None:
    p = project
    app = p.app("web")
    commit, _ = p.build(app, 1)
    ref = p.ok("promote", app, "--to", "dev", "--commit", commit).out.strip()
    assert p.boda("attest", "verify", ref, "--env", "dev", "--key", p.pub).code == 3
    p.ok("promote", app, "--to", "dev", "--commit", commit, "--sign", p.key)
    p.ok("promote", app, "--to", "dev", "--commit", commit, "--sign", p.key)
    assert p.boda("attest", "verify", ref, "--env", "dev", "--key", p.pub).code == 0
    with open_ledger(p.ledger_url) as ledger:
        attestations = ledger.attestations(app, "dev", None)
        promotions = ledger.promotions(app, "dev")
    assert len(promotions) == 1
    assert [a.promotion_id for a in attestations] == [promotions[0].id]


def test_a_statement_the_registry_refuses_after_the_placement_leaves_it_recorded_and_says_so(
    project: SignedProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = project
    app = p.app("web")
    commit, digest = p.build(app, 1)
    real_put = LayoutRegistry.manifest_put

    def refuse_artifacts(self: LayoutRegistry, repo: str, ref: str, manifest: Any) -> Any:
        if manifest.subject is not None:
            raise RegistryError("the registry refused the artifact (injected)")
        return real_put(self, repo, ref, manifest)

    monkeypatch.setattr(LayoutRegistry, "manifest_put", refuse_artifacts)
    done = p.boda("promote", app, "--to", "dev", "--commit", commit, "--sign", p.key)
    assert done.code == 6 and done.err.count("\n") == 1
    assert "is in dev as recorded, but its signed promotion statement could not be written" in done.err
    assert "promote the same digest again" in done.err
    assert p.ok("status", app, "--json").json["environments"][0]["current"]["digest"] == digest
    assert p.statements(p.repository(app, "dev"), digest) == []

    # Evidence whose statement cannot be written is not recorded at all.
    before = p.snapshot(app)
    failed = p.boda(
        "evidence",
        app,
        "--env",
        "dev",
        "--commit",
        commit,
        "--kind",
        "tests",
        "--result",
        "pass",
        "--sign",
        p.key,
    )
    assert failed.code == 6 and failed.err.count("\n") == 1
    assert p.snapshot(app) == before

    monkeypatch.setattr(LayoutRegistry, "manifest_put", real_put)
    p.ok("promote", app, "--to", "dev", "--commit", commit, "--sign", p.key)
    assert (
        p.boda(
            "attest",
            "verify",
            f"oci-layout:{p.registry_url.split(':', 1)[1]}:{p.repository(app, 'dev')}@{digest}",
            "--env",
            "dev",
            "--key",
            p.pub,
        ).code
        == 0
    )


def test_the_ledger_records_statement_and_signer_with_the_evidence(
    ledger_url: str, tmp_path: Path, boda: Any
) -> None:
    p = make_signed_project(
        tmp_path / "project", f"oci-layout:{tmp_path / 'registry'}", ledger_url, "tags", boda
    )
    app = p.app("web")
    commit, digest = p.build(app, 1)
    p.ok("promote", app, "--to", "dev", "--commit", commit, "--sign", p.key)
    out = p.ok(
        "evidence",
        app,
        "--env",
        "dev",
        "--commit",
        commit,
        "--kind",
        "tests",
        "--result",
        "pass",
        "--sign",
        p.key,
        "--json",
    ).json
    with open_ledger(ledger_url) as ledger:
        attestations = ledger.attestations(app)
        evidence = ledger.evidence(app, "dev")
        events = [e for e in ledger.events(app) if e.action == "attestation"]
    by_kind = {("evidence" if a.evidence_id else "promotion"): a for a in attestations}
    assert set(by_kind) == {"evidence", "promotion"}
    assert by_kind["evidence"].evidence_id == evidence[0].id
    assert str(by_kind["evidence"].statement) == out["statement"]
    assert by_kind["evidence"].signer == out["signer"] and str(by_kind["evidence"].digest) == digest
    assert by_kind["evidence"].predicate_type == "https://in-toto.io/attestation/test-result/v0.1"
    assert by_kind["promotion"].predicate_type == "https://boda.dev/attestation/promotion/v1"
    assert len(events) == 2 and json.dumps(events[0].detail)


def test_attestations_are_append_only_and_name_their_own_promotion(ledger_url: str) -> None:
    from boda.errors import UsageError
    from boda.types import Digest

    digest, other = Digest.of(b"image"), Digest.of(b"other")
    statement = Digest.of(b"statement")
    with open_ledger(ledger_url, create=True) as ledger:
        ledger.record_build("a/b", commit="a" * 40, digest=digest, reference="r", by="me")
        with ledger.promotion_lock("a/b", "dev") as tx:
            promotion = tx.record_promotion(
                digest=digest,
                commit="a" * 40,
                reference="r",
                by="me",
                kind="promote",
                reason=None,
                expected_previous=None,
            )
        common = {
            "statement": statement,
            "predicate_type": "p",
            "signer": "k",
            "repository": "a/b",
            "by": "me",
        }
        with pytest.raises(UsageError, match="is not of a/b"):
            ledger.record_attestation("a/b", env="dev", digest=other, promotion_id=promotion.id, **common)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="is not of a/b"):
            ledger.record_attestation("a/b", env="stg", digest=digest, promotion_id=promotion.id, **common)  # type: ignore[arg-type]
        made = ledger.record_attestation("a/b", env="dev", digest=digest, promotion_id=promotion.id, **common)  # type: ignore[arg-type]
        assert ledger.attestations("a/b", "dev", digest) == [made]
        assert ledger.attestations("a/b", "stg") == [] and ledger.attestations("a/b", None, other) == []
    for statement_sql in ("UPDATE attestations SET signer = 'forged'", "DELETE FROM attestations"):
        with pytest.raises(Exception, match="append-only"):
            raw(ledger_url, statement_sql)
    with open_ledger(ledger_url) as ledger:
        assert ledger.attestations("a/b") == [made]
        with pytest.raises(UsageError, match="is not of a/b"):
            ledger.record_attestation(
                "a/b", env="dev", digest=digest, promotion_id=promotion.id + 99, **common
            )  # type: ignore[arg-type]


def raw(url: str, statement: str) -> None:
    """Run one statement on the ledger database behind boda's back."""
    import sqlite3
    from contextlib import closing

    import psycopg

    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)) as conn:
            conn.execute(statement)
        return
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(statement.encode())


def test_the_api_and_the_dashboard_show_signed_evidence_and_its_signer(project: SignedProject) -> None:
    from fastapi.testclient import TestClient

    from boda.config import load_config
    from boda.web.app import create_app

    p = project
    app = p.app("web")
    commit, _ = p.build(app, 1)
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
        "pass",
        "--sign",
        p.key,
    )
    keyid = p.ok("keys", "public", p.key, "--json").json["keyid"]
    client = TestClient(create_app(load_config(p.config)))
    dev = client.get(f"/api/apps/{app}/status").json()["environments"][0]
    assert dev["current"]["signed"] is True and dev["current"]["signer"] == keyid
    assert [(e["kind"], e["signed"], e["signer"]) for e in dev["evidence"]] == [("tests", True, keyid)]
    page = client.get("/").text
    assert "e.signed" in page and "cur.signed" in page
