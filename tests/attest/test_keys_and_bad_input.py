"""Keys: `boda keys generate` and `boda keys public`, and every bad key or argument: one line on
stderr, exit 2 (or the documented code), nothing written to the registry or the ledger."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fixtures.attest import SignedProject, make_signed_project


@pytest.fixture
def project(tmp_path: Path, sqlite_url: str, boda: Any) -> Iterator[SignedProject]:
    yield make_signed_project(
        tmp_path / "project", f"oci-layout:{tmp_path / 'registry'}", sqlite_url, "repos", boda
    )


def pem(key: Any, *, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)  # type: ignore[no-any-return]


def test_generate_writes_a_private_key_only_its_owner_reads_and_never_replaces_one(
    tmp_path: Path, boda: Any
) -> None:
    done = boda("keys", "generate", str(tmp_path / "ci"), "--type", "ecdsa-p256", "--json")
    assert done.code == 0, done.err
    private, public = tmp_path / "ci.key.pem", tmp_path / "ci.pub.pem"
    assert done.json == {
        "type": "ecdsa-p256",
        "keyid": done.json["keyid"],
        "private": str(private),
        "public": str(public),
    }
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    loaded = serialization.load_pem_private_key(private.read_bytes(), None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey) and loaded.curve.name == "secp256r1"
    assert b"PUBLIC KEY" in public.read_bytes() and b"PRIVATE" not in public.read_bytes()
    assert boda("keys", "public", str(private), "--json").json["keyid"] == done.json["keyid"]
    assert boda("keys", "public", str(private)).out.strip() == public.read_text().strip()

    before = private.read_bytes()
    again = boda("keys", "generate", str(tmp_path / "ci"))
    assert again.code == 5 and "refusing to replace a key" in again.err and again.err.count("\n") == 1
    assert private.read_bytes() == before
    (tmp_path / "half.pub.pem").write_text("someone else's")
    assert boda("keys", "generate", str(tmp_path / "half")).code == 5
    assert not (tmp_path / "half.key.pem").exists()
    missing_dir = boda("keys", "generate", str(tmp_path / "no" / "such" / "dir" / "k"))
    assert missing_dir.code == 2 and missing_dir.err.count("\n") == 1


def bad_keys(root: Path) -> dict[str, tuple[Path, str]]:
    """Key files boda must refuse to sign with, and what the message says."""
    out: dict[str, tuple[Path, str]] = {}

    def write(name: str, data: bytes, message: str) -> None:
        (root / name).write_bytes(data)
        out[name] = (root / name, message)

    write(
        "rsa.pem",
        pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "RSA keys are not supported",
    )
    write("p384.pem", pem(ec.generate_private_key(ec.SECP384R1())), "secp384r1 is not supported")
    write(
        "encrypted.pem",
        pem(ec.generate_private_key(ec.SECP256R1()), password=b"s3cret"),
        "BODA_SIGNING_KEY_PASSWORD",
    )
    write(
        "garbage.pem",
        b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
        "not a PEM private key",
    )
    out["missing.pem"] = (root / "missing.pem", "no such file")
    out["folder"] = (root, "is a folder")
    return out


def test_a_bad_signing_key_writes_nothing_anywhere(project: SignedProject, tmp_path: Path) -> None:
    p = project
    app = p.app("web")
    first, _ = p.build(app, 1)
    commit, _ = p.build(app, 2)
    p.ok("promote", app, "--to", "dev", "--commit", first)
    p.ok("promote", app, "--to", "dev", "--commit", commit)
    p.ok("evidence", app, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "pass")
    cases = bad_keys(tmp_path)
    cases["public.pem"] = (Path(p.pub), "is a public key")
    before = p.snapshot(app)
    for name, (path, message) in cases.items():
        for args in (
            ("evidence", app, "--env", "dev", "--commit", commit, "--kind", "signoff", "--result", "pass"),
            ("promote", app, "--to", "stg", "--commit", commit),
            ("rollback", app, "--env", "dev"),
        ):
            done = p.boda(*args, "--sign", str(path))
            assert done.code == 2, (name, args[0], done.err)
            assert message in done.err and done.err.count("\n") == 1, (name, done.err)
    assert p.snapshot(app) == before


def test_an_encrypted_key_signs_with_its_passphrase(
    project: SignedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = project
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "enc.pem").write_bytes(pem(key, password=b"s3cret"))
    app = p.app("web")
    commit, _ = p.build(app, 1)
    p.ok("promote", app, "--to", "dev", "--commit", commit)
    monkeypatch.setenv("BODA_SIGNING_KEY_PASSWORD", "wrong")
    wrong = p.evidence(app, "dev", commit, "tests", "--sign", str(tmp_path / "enc.pem"))
    assert wrong.code == 2 and wrong.err.count("\n") == 1
    monkeypatch.setenv("BODA_SIGNING_KEY_PASSWORD", "s3cret")
    done = p.evidence(app, "dev", commit, "tests", "--sign", str(tmp_path / "enc.pem"), "--json")
    assert done.code == 0, done.err
    assert done.json["signed"] is True


def test_a_configured_signing_key_that_is_missing_writes_nothing(project: SignedProject) -> None:
    p = project
    app = p.app("web")
    commit, _ = p.build(app, 1)
    p.write_config('\n[evidence]\nsign = "keys/gone.pem"\n')
    before = p.snapshot(app)
    done = p.boda("promote", app, "--to", "dev", "--commit", commit)
    assert done.code == 2 and f"{p.root / 'keys' / 'gone.pem'}: no such file" in done.err
    assert p.snapshot(app) == before


def test_verify_refuses_bad_arguments_with_one_line(project: SignedProject, tmp_path: Path) -> None:
    p = project
    app = p.app("web")
    commit, digest = p.build(app, 1)
    ref = p.to_prd(app, commit)
    keys = bad_keys(tmp_path)
    rsa_public = tmp_path / "rsa.pub.pem"
    private = serialization.load_pem_private_key(keys["rsa.pem"][0].read_bytes(), None)
    rsa_public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    cases: list[tuple[list[str], int, str]] = [
        (["--key", str(tmp_path / "missing.pem")], 2, "no such file"),
        (["--key", str(rsa_public)], 2, "RSA keys are not supported"),
        (["--key", str(keys["garbage.pem"][0])], 2, "not a PEM public key"),
        ([], 2, "no key to verify signed statements with"),
        (["--key", p.pub, "--env", "qa"], 4, "unknown environment 'qa'"),
    ]
    for extra, code, message in cases:
        env = [] if "--env" in extra else ["--env", "prd"]
        done = p.boda("attest", "verify", ref, *env, *extra)
        assert done.code == code, (extra, done.err)
        assert message in done.err and done.err.count("\n") == 1, done.err
    assert p.boda("attest", "verify", "Not A Ref", "--env", "prd", "--key", p.pub).code == 2
    missing = ref.replace(digest, "sha256:" + "0" * 64)
    gone = p.boda("attest", "verify", missing, "--env", "prd", "--key", p.pub)
    assert gone.code == 4 and gone.err.count("\n") == 1
    # A private key verifies as its public half.
    assert p.boda("attest", "verify", ref, "--env", "prd", "--key", p.key).code == 0


def test_requires_signed_needs_a_key_and_requirements(project: SignedProject) -> None:
    p = project
    p.write_config(
        "",
        environments=[("dev", None, ()), ("stg", "dev", ("tests",))],
    )
    text = p.config.read_text().replace(
        'requires = ["tests"]', 'requires = ["tests"]\nrequires_signed = true'
    )
    p.config.write_text(text)
    done = p.boda("status", "x/y")
    assert done.code == 2 and "requires_signed: needs a key to verify with" in done.err
    p.config.write_text(text + '\n[evidence]\nverify = "ci.pub.pem"\n')
    assert p.boda("status", "x/y").code == 4  # the config is fine; the app is unknown
    p.config.write_text(text.replace('requires = ["tests"]\n', "") + '\n[evidence]\nverify = "ci.pub.pem"\n')
    done = p.boda("status", "x/y")
    assert done.code == 2 and "needs `requires`" in done.err
