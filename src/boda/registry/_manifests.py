"""Manifests as the backends read them: bytes a registry serves as a manifest but that are none
(not a JSON object, too large, nested too deep, an unknown media type) are the registry's failure,
exit 6, not the user's bad input."""

from __future__ import annotations

from boda.errors import ReferenceError_, UnusableManifest
from boda.types import Digest, Manifest


def served_manifest(
    raw: bytes, media_type: str | None, *, where: str, expected: Digest | None = None
) -> Manifest:
    """`Manifest.from_bytes` of what a registry served at `where` (DigestMismatch passes through)."""
    try:
        return Manifest.from_bytes(raw, media_type, expected=expected)
    except ReferenceError_ as exc:
        raise UnusableManifest(f"{where} is no usable manifest: {exc.message}") from exc
