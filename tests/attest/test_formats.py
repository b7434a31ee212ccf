"""The formats are the published ones, checked by code that is not boda's: securesystemslib verifies
boda's DSSE envelopes (PAE and signatures) and signs envelopes boda verifies; statements parse back
to what was signed, and statements boda cannot use say why."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from boda.attest import artifact, dsse, keys
from boda.attest.statement import (
    EVIDENCE,
    PROMOTION,
    SIGNOFF,
    TEST_RESULT,
    EvidenceClaim,
    EvidenceRef,
    MalformedStatement,
    PromotionClaim,
    parse_statement,
    statement_bytes,
)
from boda.types import OCI_MANIFEST, Descriptor, Digest

DIGEST = Digest.of(b"an image manifest")
OTHER = Digest.of(b"another image manifest")
AT = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def claim(kind: str = "tests", result: str = "pass") -> EvidenceClaim:
    return EvidenceClaim(
        "shop/web", "dev", DIGEST, COMMIT, kind, result, "ci-bot", AT, "https://ci.example/run/7"
    )


def signer_of(key_type: keys.KeyType) -> tuple[keys.LocalSigner, bytes]:
    private, public, _ = keys.generate(key_type)
    loaded = serialization.load_pem_private_key(private, None)
    assert isinstance(loaded, keys.ed25519.Ed25519PrivateKey | keys.ec.EllipticCurvePrivateKey)
    return keys.LocalSigner(loaded, "test"), public


def sslib_key(public_pem: bytes, keyid: str) -> SSlibKey:
    public = serialization.load_pem_public_key(public_pem)
    return SSlibKey.from_crypto(public, keyid=keyid)  # type: ignore[arg-type]


def test_pae_is_the_dsse_spec_encoding() -> None:
    # The worked example of the DSSE protocol document.
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert dsse.pae("", b"") == b"DSSEv1 0  0 "
    # Lengths are bytes, not characters.
    assert dsse.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


@pytest.mark.parametrize("key_type", keys.KEY_TYPES)
def test_securesystemslib_verifies_boda_envelopes_and_rejects_tampered_ones(key_type: keys.KeyType) -> None:
    signer, public = signer_of(key_type)
    envelope = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, statement_bytes(claim()), signer.sign)
    theirs = SslibEnvelope.from_dict(json.loads(envelope.to_bytes()))
    assert theirs.pae() == dsse.pae(envelope.payload_type, envelope.payload)
    accepted = theirs.verify([sslib_key(public, signer.keyid)], 1)
    assert list(accepted) == [signer.keyid]

    tampered = json.loads(envelope.to_bytes())
    statement = json.loads(base64.b64decode(tampered["payload"]))
    statement["predicate"]["result"] = "FAILED"
    tampered["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    mine = dsse.Envelope.from_bytes(json.dumps(tampered).encode())
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(tampered).verify([sslib_key(public, signer.keyid)], 1)
    assert dsse.verified_by(mine, [(signer.keyid, signer.verifier.verify)]) is None
    # The payload type is signed too.
    retyped = dsse.Envelope("application/json", envelope.payload, envelope.signatures)
    assert dsse.verified_by(retyped, [(signer.keyid, signer.verifier.verify)]) is None


@pytest.mark.parametrize("key_type", keys.KEY_TYPES)
def test_boda_verifies_envelopes_securesystemslib_signed(key_type: keys.KeyType) -> None:
    private_pem, public_pem, keyid = keys.generate(key_type)
    private = serialization.load_pem_private_key(private_pem, None)
    theirs = SslibEnvelope(
        payload=statement_bytes(claim()), payload_type=dsse.IN_TOTO_PAYLOAD_TYPE, signatures={}
    )
    theirs.sign(CryptoSigner(private, sslib_key(public_pem, keyid)))  # type: ignore[arg-type]
    mine = dsse.Envelope.from_bytes(json.dumps(theirs.to_dict()).encode())
    verifier = keys.Verifier.of(serialization.load_pem_public_key(public_pem))  # type: ignore[arg-type]
    assert verifier.name == keyid
    assert dsse.verified_by(mine, [(verifier.name, verifier.verify)]) == keyid
    assert parse_statement(mine.payload).claim == claim()


def test_a_forged_keyid_does_not_make_a_signature_valid() -> None:
    signer, _ = signer_of("ed25519")
    other, _ = signer_of("ed25519")
    envelope = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, b"{}", other.sign)
    forged = dsse.Envelope(
        envelope.payload_type, envelope.payload, (dsse.Signature(signer.keyid, envelope.signatures[0].sig),)
    )
    assert dsse.verified_by(forged, [(signer.keyid, signer.verifier.verify)]) is None
    assert dsse.verified_by(forged, [(other.keyid, other.verifier.verify)]) == other.keyid


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"payloadType": "x"}', "lacks payloadType or payload"),
        (b'{"payloadType": "x", "payload": "e30=", "signatures": []}', "no signatures"),
        (b'{"payloadType": "x", "payload": "e30=", "signatures": [{"keyid": "k"}]}', "lacks `sig`"),
        (b'{"payloadType": "x", "payload": "!!", "signatures": [{"sig": "AA=="}]}', "payload is not base64"),
    ],
)
def test_malformed_envelopes_are_refused_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(dsse.MalformedEnvelope, match=message):
        dsse.Envelope.from_bytes(raw)


def test_url_safe_and_unpadded_base64_is_read() -> None:
    payload = b"\xfb\xff payload"
    encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    raw = json.dumps({"payloadType": "t", "payload": encoded, "signatures": [{"sig": "AA"}]}).encode()
    assert dsse.Envelope.from_bytes(raw).payload == payload


@pytest.mark.parametrize(
    ("kind", "predicate_type"), [("tests", TEST_RESULT), ("signoff", SIGNOFF), ("scan", EVIDENCE)]
)
def test_evidence_statements_round_trip(kind: str, predicate_type: str) -> None:
    for result in ("pass", "fail"):
        original = claim(kind, result)
        data = json.loads(statement_bytes(original))
        assert data["predicateType"] == predicate_type
        parsed = parse_statement(statement_bytes(original))
        assert parsed.claim == original
        assert parsed.about(DIGEST) and not parsed.about(OTHER)
    if kind == "tests":
        predicate = json.loads(statement_bytes(claim("tests", "fail")))["predicate"]
        assert predicate["result"] == "FAILED" and predicate["url"] == "https://ci.example/run/7"
        assert predicate["boda"]["env"] == "dev"


def test_promotion_statements_round_trip() -> None:
    original = PromotionClaim(
        "shop/web",
        "stg",
        "prd",
        DIGEST,
        COMMIT,
        "force",
        "alice",
        AT,
        "hotfix",
        (EvidenceRef("tests", "stg", "pass", str(OTHER)), EvidenceRef("signoff", "stg", "fail")),
    )
    data = json.loads(statement_bytes(original))
    assert data["predicateType"] == PROMOTION
    assert data["predicate"]["forced"] is True and data["predicate"]["at"] == "2026-05-04T03:02:01Z"
    assert parse_statement(statement_bytes(original)).claim == original


def _statement(**changes: object) -> bytes:
    data = json.loads(statement_bytes(claim()))
    for dotted, value in changes.items():
        target = data
        *path, last = dotted.split("__")
        for part in path:
            target = target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"_type": "https://in-toto.io/Statement/v0.1"}, "_type is"),
        ({"subject": []}, "subject is not a non-empty list"),
        ({"subject": [{"name": "x", "digest": {"sha1": "ab"}}]}, "no subject has a sha256"),
        ({"subject": [{"name": "shop/web", "digest": {"sha256": "zz"}}]}, "subject digest is malformed"),
        ({"predicateType": "https://example.com/other"}, "is not one boda reads"),
        ({"predicate__boda": None}, "without boda's `boda` context"),
        ({"predicate__result": "FAILED"}, "test-result says 'FAILED'"),
        ({"predicate__boda__result": "maybe"}, "neither pass nor fail"),
        ({"predicate__boda__at": "yesterday"}, "not an RFC 3339 time"),
        ({"predicate__boda__at": "2026-01-01T00:00:00"}, "no time zone"),
        ({"predicate__boda__env": 7}, "'env' is missing or not a string"),
        ({"predicate__boda__app": "shop/api"}, "which no subject names"),
    ],
)
def test_statements_boda_cannot_use_say_why(changes: dict[str, object], message: str) -> None:
    with pytest.raises(MalformedStatement, match=message):
        parse_statement(_statement(**changes))


def test_the_artifact_is_an_oci_1_1_referrer_with_the_envelope_as_its_one_layer() -> None:
    subject = Descriptor(OCI_MANIFEST, DIGEST, 1234)
    envelope = b'{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'
    built = artifact.build(envelope, subject, TEST_RESULT, {artifact.ANNOTATION_KIND: "tests"})
    data = built.manifest.json
    assert data["mediaType"] == OCI_MANIFEST
    assert data["artifactType"] == "application/vnd.dsse.envelope.v1+json"
    assert data["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    assert data["layers"] == [
        {
            "mediaType": "application/vnd.dsse.envelope.v1+json",
            "digest": str(Digest.of(envelope)),
            "size": len(envelope),
            "annotations": {"in-toto.io/predicate-type": TEST_RESULT},
        }
    ]
    assert data["subject"] == {"mediaType": OCI_MANIFEST, "digest": str(DIGEST), "size": 1234}
    assert data["annotations"]["in-toto.io/predicate-type"] == TEST_RESULT
    assert built.manifest.subject == subject
    assert artifact.envelope_layer(built.manifest) == built.envelope_descriptor
    assert dict(built.blobs)[artifact.EMPTY_DESCRIPTOR] == b"{}"
