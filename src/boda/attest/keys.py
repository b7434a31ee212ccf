"""Signing and verification keys: Ed25519 and ECDSA P-256 PEM files, and AWS KMS asymmetric keys.

A key is named the way commands and boda.toml name it: a PEM file path, or `kms:KEY-ID-OR-ARN`
(an id, an ARN, `alias/NAME` or an alias ARN). Signatures:

* Ed25519: over the message itself (RFC 8032).
* ECDSA P-256: ECDSA with SHA-256, DER-encoded, which is what KMS's `ECDSA_SHA_256` returns, so a
  local key and a KMS key make signatures of the same form.

A key's id is the hex SHA-256 of its public key's DER SubjectPublicKeyInfo (for KMS keys: the key
ARN); it is the DSSE `keyid` hint and the `signer` boda records and shows.

Loading a key checks everything that can be checked before anything is written: the file exists,
holds a private key of a supported type (or the KMS key exists, may be read, signs, and is an
ECC_NIST_P256 key). A KMS key whose Sign permission is missing only fails when signing; callers sign
before they write.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from boda.errors import Unavailable, UsageError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

KMS_PREFIX = "kms:"
#: The environment variable holding the passphrase of an encrypted PEM private key.
PASSWORD_VARIABLE = "BODA_SIGNING_KEY_PASSWORD"
KeyType = Literal["ed25519", "ecdsa-p256"]
KEY_TYPES: tuple[KeyType, ...] = ("ed25519", "ecdsa-p256")
#: KMS signs messages of up to 4096 bytes as they are; longer ones are sent as their SHA-256.
KMS_RAW_LIMIT = 4096
KMS_KEY_SPEC = "ECC_NIST_P256"
KMS_ALGORITHM: Literal["ECDSA_SHA_256"] = "ECDSA_SHA_256"

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def key_id(public: PublicKey) -> str:
    """The hex SHA-256 of the public key's DER SubjectPublicKeyInfo."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(public: PublicKey) -> bytes:
    """The public key as PEM (SubjectPublicKeyInfo)."""
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_type(key: Any, where: str) -> None:
    """UsageError unless `key` is an Ed25519 key or an ECDSA key on P-256."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return
        raise UsageError(
            f"{where}: an ECDSA key on {key.curve.name} is not supported; use P-256 (secp256r1) or Ed25519",
            hint="`boda keys generate` writes a key boda signs with",
        )
    kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace("PublicKey", "")
    raise UsageError(
        f"{where}: {kind or 'this'} keys are not supported; use Ed25519 or ECDSA P-256",
        hint="`boda keys generate` writes a key boda signs with",
    )


@dataclass(frozen=True)
class Verifier:
    """A public key that verifies signatures; `name` is its key id."""

    name: str
    public: PublicKey

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when `signature` is a valid signature of `message` by this key."""
        try:
            if isinstance(self.public, ed25519.Ed25519PublicKey):
                self.public.verify(signature, message)
            else:
                self.public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def of(cls, public: PublicKey, name: str | None = None) -> Verifier:
        """A verifier named by the key id of `public` (or `name`, a KMS key ARN)."""
        return cls(name or key_id(public), public)


class LocalSigner:
    """A private key held in a PEM file."""

    def __init__(self, private: PrivateKey, source: str) -> None:
        self._private = private
        self.source = source
        self.verifier = Verifier.of(private.public_key())
        self.keyid = self.verifier.name

    def sign(self, message: bytes) -> tuple[str, bytes]:
        """(keyid, signature) over `message`."""
        if isinstance(self._private, ed25519.Ed25519PrivateKey):
            return self.keyid, self._private.sign(message)
        return self.keyid, self._private.sign(message, ec.ECDSA(hashes.SHA256()))


class KmsSigner:
    """An AWS KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY): the private key never leaves KMS."""

    def __init__(self, key: str, client: KMSClient | None = None) -> None:
        self.source = f"{KMS_PREFIX}{key}"
        self._key = key
        self._client = client or kms_client(key)
        public, arn = _kms_public_key(self._client, key)
        self.verifier = Verifier.of(public, arn)
        self.keyid = arn

    def sign(self, message: bytes) -> tuple[str, bytes]:
        """(key ARN, DER signature) over `message`, signed by KMS."""
        message_type: Literal["RAW", "DIGEST"] = "RAW"
        body = message
        if len(message) > KMS_RAW_LIMIT:
            body, message_type = hashlib.sha256(message).digest(), "DIGEST"
        try:
            answer = self._client.sign(
                KeyId=self._key, Message=body, MessageType=message_type, SigningAlgorithm=KMS_ALGORITHM
            )
        except Exception as exc:
            error = _kms_error(exc, f"KMS Sign with key {self._key}")
            if error is None:
                raise
            raise error from exc
        signature = answer["Signature"]
        # A signature that does not verify is never written: KMS answered for another key or
        # something between us and KMS changed the answer.
        if not self.verifier.verify(message, signature):
            raise Unavailable(f"KMS Sign with key {self._key} returned a signature its public key rejects")
        return self.keyid, signature


Signer = LocalSigner | KmsSigner


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"{what} {path}: no such file") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{what} {path}: is a folder, not a PEM file") from exc
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read it: {exc.strerror}") from exc


def _resolve(spec: str, base_dir: Path | None) -> Path:
    path = Path(spec).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def load_signer(spec: str, *, base_dir: Path | None = None) -> Signer:
    """The signer a key name names: a PEM private key file, or `kms:KEY`."""
    if spec.startswith(KMS_PREFIX):
        return KmsSigner(_kms_key(spec))
    path = _resolve(spec, base_dir)
    data = _read(path, "signing key")
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise UsageError(
            f"signing key {path}: is a public key; signing needs the private key",
            hint="verification takes the public key (--key); signing the private one (--sign)",
        )
    password = os.environ.get(PASSWORD_VARIABLE)
    try:
        private = serialization.load_pem_private_key(data, password.encode() if password else None)
    except TypeError as exc:  # encrypted without a password, or a password for a plain key
        raise UsageError(
            f"signing key {path}: {exc}",
            hint=f"put the passphrase of an encrypted key in ${PASSWORD_VARIABLE}",
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"signing key {path}: not a PEM private key boda can read") from exc
    _check_type(private, f"signing key {path}")
    assert isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey)
    return LocalSigner(private, str(path))


def load_verifier(spec: str, *, base_dir: Path | None = None) -> Verifier:
    """The verifier a key name names: a PEM public key (or private key) file, or `kms:KEY`."""
    if spec.startswith(KMS_PREFIX):
        key = _kms_key(spec)
        public, arn = _kms_public_key(kms_client(key), key)
        return Verifier.of(public, arn)
    path = _resolve(spec, base_dir)
    data = _read(path, "verification key")
    loaded: Any
    try:
        if b"PRIVATE KEY-----" in data:
            password = os.environ.get(PASSWORD_VARIABLE)
            secret = password.encode() if password else None
            loaded = serialization.load_pem_private_key(data, secret).public_key()
        else:
            loaded = serialization.load_pem_public_key(data)
    except (TypeError, ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"verification key {path}: not a PEM public key boda can read") from exc
    _check_type(loaded, f"verification key {path}")
    assert isinstance(loaded, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    return Verifier.of(loaded)


def generate(key_type: KeyType) -> tuple[bytes, bytes, str]:
    """A new key pair: (private PEM in PKCS#8, public PEM, key id)."""
    private: PrivateKey
    if key_type == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    elif key_type == "ecdsa-p256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise UsageError(f"unknown key type {key_type!r}: expected {' or '.join(KEY_TYPES)}")
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key()
    return pem, public_pem(public), key_id(public)


# -- AWS KMS ----------------------------------------------------------------------------------------


def _kms_key(spec: str) -> str:
    key = spec[len(KMS_PREFIX) :].strip()
    if not key or any(c.isspace() for c in key):
        raise UsageError(f"{spec!r}: expected kms:KEY-ID, kms:alias/NAME or kms:ARN")
    return key


def kms_client(key: str) -> KMSClient:
    """A KMS client in the key ARN's region (else the AWS default chain's region)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    region = key.split(":")[3] if key.startswith("arn:") and key.count(":") >= 5 else None
    try:
        # A session of its own: credentials are read now, not cached from an earlier client.
        client = boto3.session.Session().client(
            "kms",
            region_name=region,
            config=Config(retries={"mode": "adaptive", "max_attempts": 5}, user_agent_extra="boda"),
        )
    except BotoCoreError as exc:  # NoRegionError among them
        raise UsageError(f"KMS key {key}: {exc}", hint="name the key by its ARN, or set AWS_REGION") from exc
    return client


def _kms_public_key(client: KMSClient, key: str) -> tuple[PublicKey, str]:
    """(public key, key ARN) of a KMS key, after checking that it is one boda can sign with."""
    try:
        answer = client.get_public_key(KeyId=key)
    except Exception as exc:
        error = _kms_error(exc, f"KMS GetPublicKey of key {key}")
        if error is None:
            raise
        raise error from exc
    # KeySpec, or the older name of the same field (some KMS stand-ins answer only that one).
    spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec", "")
    usage = answer.get("KeyUsage", "")
    if usage != "SIGN_VERIFY" or spec != KMS_KEY_SPEC:
        raise UsageError(
            f"KMS key {key} is a {spec or 'unknown'} key for {usage or 'unknown use'}; boda signs with"
            f" {KMS_KEY_SPEC} keys for SIGN_VERIFY",
            hint="aws kms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY",
        )
    if KMS_ALGORITHM not in answer.get("SigningAlgorithms", [KMS_ALGORITHM]):
        raise UsageError(f"KMS key {key} does not offer {KMS_ALGORITHM}")
    try:
        loaded = serialization.load_der_public_key(answer["PublicKey"])
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise Unavailable(f"KMS GetPublicKey of key {key}: the answer holds no readable public key") from exc
    _check_type(loaded, f"KMS key {key}")
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    return loaded, answer.get("KeyId") or key


_KMS_CREDENTIALS = frozenset({"UnrecognizedClientException", "ExpiredTokenException", "InvalidClientTokenId"})
_KMS_BAD_INPUT = frozenset(
    {
        "NotFoundException",
        "InvalidKeyUsageException",
        "DisabledException",
        "KMSInvalidStateException",
        "ValidationException",
        "InvalidArnException",
        "UnsupportedOperationException",
        "KeyUnavailableException",
    }
)


def _kms_error(exc: Exception, doing: str) -> Exception | None:
    """The boda error for a failed KMS call: exit 2 for a key that cannot be used as named,
    exit 6 for missing permissions, credentials or an unreachable KMS; None for anything that is
    not a botocore error (the caller re-raises it: a bug, not a KMS failure)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        # An XML error body where JSON was expected (some KMS stand-ins): its <Code> and <Message>.
        for tag in ("Code", "Message"):
            found = re.search(rf"<{tag}>(.*?)</{tag}>", message, re.S)
            if found and message.lstrip().startswith("<"):
                code = found.group(1) if tag == "Code" else code
                message = found.group(1) if tag == "Message" else message
        text = f"{doing} failed: {code}: {' '.join(message.split())}".rstrip(": ")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _KMS_BAD_INPUT:
            return UsageError(text)
        if "AccessDenied" in code or code in _KMS_CREDENTIALS or status == 403:
            return Unavailable(text, hint="the credentials need kms:Sign and kms:GetPublicKey on this key")
        return Unavailable(text)
    if isinstance(exc, NoCredentialsError):
        return Unavailable(
            f"{doing}: no AWS credentials found", hint="configure the AWS default credential chain"
        )
    if isinstance(exc, BotoCoreError):
        return Unavailable(f"{doing} failed: {exc}")
    return None


__all__ = [
    "KEY_TYPES",
    "KMS_PREFIX",
    "KmsSigner",
    "LocalSigner",
    "Signer",
    "Verifier",
    "generate",
    "key_id",
    "load_signer",
    "load_verifier",
    "public_pem",
]
