"""`boda keys`: write a new signing key pair, print the public key of a key for verifiers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boda.attest import keys as keyring
from boda.errors import Conflict, UsageError


@dataclass(frozen=True)
class KeyFiles:
    """A new key pair on disk."""

    key_type: str
    keyid: str
    private: Path
    public: Path

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "type": self.key_type,
            "keyid": self.keyid,
            "private": str(self.private),
            "public": str(self.public),
        }


@dataclass(frozen=True)
class PublicKey:
    """The public half of a signing key, for verifiers."""

    key: str
    keyid: str
    pem: str

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"key": self.key, "keyid": self.keyid, "pem": self.pem}


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` (never replacing a file), write `data`, fsync."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise Conflict(f"{path} exists; refusing to replace a key", hint="choose another NAME") from exc
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def generate_key_files(name: Path, key_type: str) -> KeyFiles:
    """Write NAME.key.pem (private, 0600) and NAME.pub.pem; nothing is written if either exists."""
    if key_type not in keyring.KEY_TYPES:
        raise UsageError(f"unknown key type {key_type!r}: expected {' or '.join(keyring.KEY_TYPES)}")
    private_path = name.with_name(name.name + ".key.pem")
    public_path = name.with_name(name.name + ".pub.pem")
    for path in (private_path, public_path):
        if path.exists():
            raise Conflict(f"{path} exists; refusing to replace a key", hint="choose another NAME")
    private, public, keyid = keyring.generate(key_type)
    _write_new(private_path, private, 0o600)
    try:
        _write_new(public_path, public, 0o644)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return KeyFiles(key_type, keyid, private_path, public_path)


def public_key(key: str) -> PublicKey:
    """The public key (PEM) and key id of a PEM private key file or `kms:KEY`."""
    signer = keyring.load_signer(key)
    return PublicKey(key, signer.keyid, keyring.public_pem(signer.verifier.public).decode("ascii"))
