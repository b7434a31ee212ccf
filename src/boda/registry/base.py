"""The one `Registry` protocol every backend implements (oci, layout, ecr).

Methods are named resource_verb and take a repository name plus a tag or digest. A backend is
bound to one registry (a host, a layout root, an ECR account/region). Backends hold no promotion or
expiry logic: copy lives in `boda.registry.copy`, the lifecycle rules in `boda.services`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from boda.types import Descriptor, Digest, Manifest


@dataclass
class RegistryStats:
    """Counters of what a backend did; copies and benchmarks report them."""

    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, requests: int = 0, sent: int = 0, received: int = 0) -> None:
        """Add to the counters (thread-safe)."""
        with self._lock:
            self.requests += requests
            self.bytes_sent += sent
            self.bytes_received += received

    def snapshot(self) -> tuple[int, int, int]:
        """(requests, bytes_sent, bytes_received) now."""
        with self._lock:
            return self.requests, self.bytes_sent, self.bytes_received


@dataclass(frozen=True)
class ImageRecord:
    """One manifest in a repository as an inventory sees it (the shape of ECR's ImageDetail)."""

    digest: Digest
    tags: tuple[str, ...]
    media_type: str
    pushed_at: datetime | None = None
    size: int | None = None
    subject: Digest | None = None
    artifact_type: str | None = None
    last_pulled_at: datetime | None = None
    status: str = "ACTIVE"
    last_archived_at: datetime | None = None
    #: Why the manifest could not be read (its subject and artifact type are then unknown).
    unreadable: str | None = None


@runtime_checkable
class Registry(Protocol):
    """A registry backend. Errors are `boda.errors` types; absent things are None or NotFound."""

    #: Display name and identity: two backends with the same name are the same registry
    #: (e.g. "127.0.0.1:5000", "oci-layout:/abs/root", "123456789012.dkr.ecr.eu-west-1.amazonaws.com").
    name: str
    stats: RegistryStats

    def manifest_head(self, repo: str, ref: str) -> Descriptor | None:
        """Resolve a tag or digest to a descriptor (media type, digest, size); None when absent."""
        ...

    def manifest_get(self, repo: str, ref: str) -> Manifest:
        """The exact manifest bytes. A digest ref is verified against the bytes (DigestMismatch);
        a missing manifest raises NotFound."""
        ...

    def manifest_put(self, repo: str, ref: str, manifest: Manifest) -> Digest:
        """Store the exact bytes under a tag or under its digest; return the digest the registry
        reports (callers compare it with `manifest.digest`)."""
        ...

    def manifest_delete(self, repo: str, digest: Digest) -> None:
        """Delete a manifest by digest. This removes every tag pointing at it in `repo`."""
        ...

    def tag_list(self, repo: str) -> list[str]:
        """All tags of `repo`, sorted; [] for a repository without tags; NotFound if unknown."""
        ...

    def tag_delete(self, repo: str, tag: str) -> None:
        """Remove one tag; other tags on the same digest survive; the manifest is kept unless the
        backend documents otherwise (ECR deletes an image with its last tag)."""
        ...

    def blob_head(self, repo: str, digest: Digest) -> int | None:
        """The blob's size when `repo` has it, else None."""
        ...

    def blob_get(self, repo: str, digest: Digest) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob's bytes in chunks (verified against `digest` by the consumer)."""
        ...

    def blob_put(self, repo: str, digest: Digest, size: int, chunks: Iterable[bytes]) -> None:
        """Upload a blob from a stream of chunks, never holding it whole in memory."""
        ...

    def blob_mount(self, repo: str, digest: Digest, from_repo: str) -> bool:
        """Mount a blob from another repository of this registry; False when the registry would
        not (any upload session it opened is cancelled)."""
        ...

    def referrers(self, repo: str, digest: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose `subject` is `digest`: the referrers API, else the `sha256-<hex>` tag."""
        ...

    def image_list(self, repo: str) -> list[ImageRecord]:
        """Every manifest the backend can enumerate in `repo`, with its tags."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
