"""AWS KMS keys (`kms:KEY`) through real boto3 against moto's KMS in server mode: sign evidence and
promotions, verify by KMS GetPublicKey or by the exported public key (securesystemslib agrees);
a key of the wrong type, a missing key, and a key the credentials may not sign with change nothing.

Moto gaps worked around here: MOTO-KMS-DIGEST: moto's Sign ignores MessageType and signs a DIGEST
as if it were a message, so the DIGEST path (statements over 4096 bytes) is tested with botocore's
Stubber against the documented request shape. MOTO-KMS-XML: moto answers denied JSON calls with an
XML body; boda reads its code and message either way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey

from boda.attest import artifact, keys
from boda.errors import UsageError
from fixtures.attest import SignedProject, make_signed_project
from fixtures.moto import REGION

pytestmark = pytest.mark.ecr


@pytest.fixture
def kms(ecr_env: str) -> Any:
    return boto3.client("kms", region_name=REGION)


@pytest.fixture
def project(tmp_path: Path, sqlite_url: str, boda: Any, ecr_env: str) -> Iterator[SignedProject]:
    yield make_signed_project(
        tmp_path / "project", f"oci-layout:{tmp_path / 'registry'}", sqlite_url, "repos", boda
    )


def signing_key(kms: Any, spec: str = "ECC_NIST_P256", usage: str = "SIGN_VERIFY") -> dict[str, Any]:
    return kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]  # type: ignore[no-any-return]


def test_kms_signs_evidence_and_promotions_that_verify_by_kms_and_by_the_exported_key(
    project: SignedProject, kms: Any, tmp_path: Path
) -> None:
    p = project
    key = signing_key(kms)
    p.write_config(f'\n[evidence]\nsign = "kms:{key["Arn"]}"\n')
    app = p.app("web")
    commit, digest = p.build(app, 1)
    ref = p.to_prd(app, commit, sign=False)  # signed by the configured KMS key
    by_kms = p.boda("attest", "verify", ref, "--env", "prd", "--kms", key["KeyId"], "--json")
    assert by_kms.code == 0, by_kms.err
    assert by_kms.json["ok"] and all(link["status"] == "ok" for link in by_kms.json["links"])
    assert p.boda("attest", "verify", ref, "--env", "prd", "--kms", f"kms:{key['Arn']}").code == 0
    # Without a key option, the configured signing key verifies (its public half, by GetPublicKey).
    assert p.boda("attest", "verify", ref, "--env", "prd").code == 0

    # The deploy job holds only the exported public key: no AWS access needed to verify.
    exported = p.ok("keys", "public", f"kms:{key['KeyId']}", "--json").json
    (tmp_path / "kms.pub.pem").write_text(exported["pem"])
    by_file = p.boda(
        "attest", "verify", ref, "--env", "prd", "--key", str(tmp_path / "kms.pub.pem"), "--json"
    )
    assert by_file.code == 0, by_file.err

    # securesystemslib checks a KMS-signed envelope exactly as stored.
    registry = p.registry()
    try:
        repo = p.repository(app, "prd")
        statement = by_file.json["links"][0]["statement"]
        layer = artifact.envelope_layer(registry.manifest_get(repo, statement))
        assert layer is not None
        with registry.blob_get(repo, layer.digest) as chunks:
            stored = json.loads(b"".join(chunks))
    finally:
        registry.close()
    keyid = stored["signatures"][0]["keyid"]
    public = serialization.load_pem_public_key(exported["pem"].encode())
    assert list(SslibEnvelope.from_dict(stored).verify([SSlibKey.from_crypto(public, keyid=keyid)], 1)) == [
        keyid
    ]  # type: ignore[arg-type]
    assert digest in by_file.out


def test_a_kms_key_of_the_wrong_type_or_missing_writes_nothing(project: SignedProject, kms: Any) -> None:
    p = project
    app = p.app("web")
    commit, _ = p.build(app, 1)
    p.ok("promote", app, "--to", "dev", "--commit", commit)
    before = p.snapshot(app)
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    rsa = signing_key(kms, "RSA_2048")["KeyId"]
    p384 = signing_key(kms, "ECC_NIST_P384")["KeyId"]
    for key, message in (
        (symmetric, "boda signs with ECC_NIST_P256 keys for SIGN_VERIFY"),
        (rsa, "is a RSA_2048 key"),
        (p384, "is a ECC_NIST_P384 key"),
        ("00000000-0000-0000-0000-000000000000", "NotFoundException"),
        ("", "expected kms:KEY-ID"),
    ):
        for args in (
            ("evidence", app, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "pass"),
            ("promote", app, "--to", "stg", "--commit", commit, "--force", "--reason", "r"),
        ):
            done = p.boda(*args, "--sign", f"kms:{key}")
            assert done.code == 2, (key, done.err)
            assert message in done.err and done.err.count("\n") == 1, done.err
        verify = p.boda(
            "attest", "verify", f"oci-layout:x:{app}@sha256:{'0' * 64}", "--env", "dev", "--kms", key or " "
        )
        assert verify.code == 2
    assert p.snapshot(app) == before


@pytest.fixture
def deployer(kms: Any, ecr_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A KMS signing key, and AWS credentials (exported to the environment) of a user allowed to read
    the key but not to sign with it; moto checks IAM from then on."""
    iam = boto3.client("iam", region_name=REGION)
    httpx.post(f"{ecr_env}/moto-api/reset-auth", content=b"4", timeout=10.0).raise_for_status()
    try:
        iam.create_user(UserName="deployer")
        access = iam.create_access_key(UserName="deployer")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["kms:GetPublicKey", "kms:DescribeKey"], "Resource": "*"}
            ],
        }
        iam.put_user_policy(UserName="deployer", PolicyName="read-only", PolicyDocument=json.dumps(policy))
        key = signing_key(kms)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", access["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", access["SecretAccessKey"])
        yield key["KeyId"], key["Arn"]
    finally:
        httpx.post(f"{ecr_env}/moto-api/reset-auth", content=b"inf", timeout=10.0).raise_for_status()


def test_a_kms_key_the_credentials_may_not_sign_with_writes_nothing(
    project: SignedProject, deployer: tuple[str, str], ecr_env: str
) -> None:
    p = project
    key_id, _ = deployer
    app = p.app("web")
    httpx.post(f"{ecr_env}/moto-api/reset-auth", content=b"inf", timeout=10.0).raise_for_status()
    commit, _ = p.build(app, 1)  # the layout and the ledger need no AWS access
    p.ok("promote", app, "--to", "dev", "--commit", commit)
    httpx.post(f"{ecr_env}/moto-api/reset-auth", content=b"0", timeout=10.0).raise_for_status()
    before = p.snapshot(app)
    for args in (
        ("evidence", app, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "pass"),
        ("promote", app, "--to", "stg", "--commit", commit, "--force", "--reason", "r"),
    ):
        done = p.boda(*args, "--sign", f"kms:{key_id}")
        assert done.code == 6, done.err
        assert "not authorized to perform: kms:Sign" in done.err and done.err.count("\n") == 1
        assert "<" not in done.err  # the XML body is read, not shown
    assert p.snapshot(app) == before
    # Reading the public key is allowed: a verifier with these credentials works.
    assert p.ok("keys", "public", f"kms:{key_id}", "--json").json["pem"].startswith("-----BEGIN PUBLIC KEY")


def test_statements_over_4096_bytes_are_signed_as_a_digest() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    client = boto3.client("kms", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    message = b"DSSEv1 " + b"x" * 5000
    digest = hashlib.sha256(message).digest()
    with Stubber(client) as stub:
        stub.add_response(
            "get_public_key",
            {
                "KeyId": arn,
                "PublicKey": der,
                "KeySpec": "ECC_NIST_P256",
                "KeyUsage": "SIGN_VERIFY",
                "SigningAlgorithms": ["ECDSA_SHA_256"],
            },
            {"KeyId": arn},
        )
        stub.add_response(
            "sign",
            {
                "KeyId": arn,
                "Signature": private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
                "SigningAlgorithm": "ECDSA_SHA_256",
            },
            {"KeyId": arn, "Message": digest, "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"},
        )
        stub.add_response(
            "sign",
            {
                "KeyId": arn,
                "Signature": private.sign(b"short", ec.ECDSA(hashes.SHA256())),
                "SigningAlgorithm": "ECDSA_SHA_256",
            },
            {"KeyId": arn, "Message": b"short", "MessageType": "RAW", "SigningAlgorithm": "ECDSA_SHA_256"},
        )
        stub.add_response(
            "sign",
            {
                "KeyId": arn,
                "Signature": private.sign(b"other", ec.ECDSA(hashes.SHA256())),
                "SigningAlgorithm": "ECDSA_SHA_256",
            },
            {"KeyId": arn, "Message": b"short", "MessageType": "RAW", "SigningAlgorithm": "ECDSA_SHA_256"},
        )
        signer = keys.KmsSigner(arn, client)
        keyid, signature = signer.sign(message)
        assert keyid == arn and signer.verifier.verify(message, signature)
        assert signer.sign(b"short")[0] == arn
        # A signature its own public key rejects is never used.
        with pytest.raises(Exception, match="returned a signature its public key rejects"):
            signer.sign(b"short")
        stub.assert_no_pending_responses()


def test_kms_key_names_are_checked() -> None:
    with pytest.raises(UsageError, match="expected kms:KEY-ID"):
        keys.load_signer("kms:has space")
