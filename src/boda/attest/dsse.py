"""DSSE v1 envelopes (secure-systems-lab/dsse): a payload, its type, and signatures over the PAE.

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

LEN is the byte length as ASCII decimal. Signatures sign the PAE bytes, never the JSON of the
envelope, so verification needs no canonical JSON: the payload bytes are verified as they arrive
and only then parsed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from boda.errors import UsageError

#: The payloadType of an in-toto attestation (a JSON Statement with a `_type`).
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: The media type of a DSSE envelope stored on its own (cosign, guac and others read it).
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
#: The largest envelope boda reads: statements are a few kilobytes.
MAX_ENVELOPE_BYTES = 1 << 20


class MalformedEnvelope(UsageError):
    """Bytes that are not a DSSE envelope boda can read."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """The pre-authentication encoding that DSSE signatures sign."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Signature:
    """One signature: `keyid` is a hint for finding the key, never trusted on its own."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A signed payload."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        """The envelope's JSON object (base64 with padding, as the DSSE spec writes it)."""
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")} for s in self.signatures
            ],
        }

    def to_bytes(self) -> bytes:
        """The envelope serialised once, compactly: these are the bytes stored and digested."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Parse envelope bytes (MalformedEnvelope when they are not one)."""
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise MalformedEnvelope(f"envelope of {len(raw)} bytes is larger than {MAX_ENVELOPE_BYTES}")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedEnvelope("envelope is not JSON") from exc
        if not isinstance(data, dict):
            raise MalformedEnvelope("envelope is not a JSON object")
        payload_type, payload, signatures = (
            data.get("payloadType"),
            data.get("payload"),
            data.get("signatures"),
        )
        if not isinstance(payload_type, str) or not isinstance(payload, str):
            raise MalformedEnvelope("envelope lacks payloadType or payload")
        if not isinstance(signatures, list) or not signatures:
            raise MalformedEnvelope("envelope has no signatures")
        parsed = []
        for item in signatures:
            if not isinstance(item, dict) or not isinstance(item.get("sig"), str):
                raise MalformedEnvelope("envelope signature lacks `sig`")
            keyid = item.get("keyid", "")
            parsed.append(Signature(keyid if isinstance(keyid, str) else "", _b64(item["sig"], "sig")))
        return cls(payload_type, _b64(payload, "payload"), tuple(parsed))


def _b64(text: str, what: str) -> bytes:
    """Standard or URL-safe base64, with or without padding (DSSE accepts both)."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelope(f"envelope {what} is not base64") from exc


#: Signs PAE bytes: returns (keyid, signature).
SignFn = Callable[[bytes], tuple[str, bytes]]
#: Verifies a signature over PAE bytes: True when it is valid for this verifier's key.
VerifyFn = Callable[[bytes, bytes], bool]


def sign(payload_type: str, payload: bytes, signer: SignFn) -> Envelope:
    """An envelope holding `payload`, signed once by `signer`."""
    keyid, sig = signer(pae(payload_type, payload))
    return Envelope(payload_type, payload, (Signature(keyid, sig),))


def verified_by(envelope: Envelope, verifiers: Sequence[tuple[str, VerifyFn]]) -> str | None:
    """The name of the first verifier that accepts a signature of `envelope`, else None.

    Every signature is tried against every key: a keyid is a hint an attacker can forge.
    """
    message = pae(envelope.payload_type, envelope.payload)
    for name, verify in verifiers:
        for signature in envelope.signatures:
            if verify(message, signature.sig):
                return name
    return None
