"""The core `Registry` protocol every backend implements (oci, layout, ecr), and the capabilities
some backends add.

Methods are named resource_verb and take a repository name plus a tag or digest. A backend is
bound to one registry (a host, a layout root, an ECR account/region). Backends hold no promotion or
expiry logic: copy lives in `boda.registry.copy`, the lifecycle rules in `boda.services`.

What only some backends can do is a small `runtime_checkable` protocol of its own, found with
`isinstance` (like go-containerregistry's optional interfaces):

    ImageLister           image_list, saying whether it lists every manifest and has push times
                          (oci: tagged manifests only, no push times; layout and ecr: everything)
    LifecyclePolicyStore  a repository's native lifecycle policy, and creating a repository (ecr)
    TagMutabilityStore    a repository's tag mutability and its exclusion filters (ecr)
    LifecyclePreviewer    the registry's own preview of a lifecycle policy (ecr)
    BatchDelete           many manifests deleted per call, each outcome reported (ecr)
    BlobCollector         unreferenced blobs removed after a grace period (layout)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

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
    #: The manifest's length in bytes, when the backend knows it (not on ECR).
    size: int | None = None
    subject: Digest | None = None
    artifact_type: str | None = None
    last_pulled_at: datetime | None = None
    status: str = "ACTIVE"
    last_archived_at: datetime | None = None
    #: Why the manifest could not be read (its subject and artifact type are then unknown).
    unreadable: str | None = None
    #: The image's compressed size (manifest and layers) as ECR's imageSizeInBytes reports it.
    image_size: int | None = None


@dataclass(frozen=True)
class ManifestHead:
    """What resolving a tag or digest tells without reading the manifest."""

    media_type: str
    digest: Digest
    #: The manifest's length in bytes; None when the backend cannot tell without reading the
    #: manifest (ECR, where reading records a pull).
    size: int | None


@dataclass(frozen=True)
class TagDeleted:
    """What `tag_delete` did: the tag is gone; did the image go with it?"""

    tag: str
    #: The manifest the tag named, when the backend learnt it on the way.
    digest: Digest | None
    #: True when the manifest was deleted with its tag (ECR deletes an image with its last tag).
    image_deleted: bool


DeleteStatus = Literal["deleted", "not_found", "failed"]


@dataclass(frozen=True)
class DeleteOutcome:
    """What a batch delete did to one digest."""

    digest: Digest
    status: DeleteStatus
    #: The backend's failure code (ECR's `failureCode`, e.g. ImageReferencedByManifestList).
    code: str = ""
    reason: str = ""


#: How old an unreferenced blob must be before `gc_blobs` removes it by default: a push uploads
#: its blobs before the manifest that references them.
BLOB_GRACE = timedelta(hours=1)


@runtime_checkable
class Registry(Protocol):
    """A registry backend. Errors are `boda.errors` types; absent things are None or NotFound."""

    #: Display name and identity: two backends with the same name are the same registry
    #: (e.g. "127.0.0.1:5000", "oci-layout:/abs/root", "123456789012.dkr.ecr.eu-west-1.amazonaws.com").
    name: str
    stats: RegistryStats

    def manifest_head(self, repo: str, ref: str) -> ManifestHead | None:
        """Resolve a tag or digest to its media type, digest and (when known) size; None when absent."""
        ...

    def manifest_get(self, repo: str, ref: str) -> Manifest:
        """The exact manifest bytes. A digest ref is verified against the bytes (DigestMismatch);
        a missing manifest raises NotFound; content that is no manifest raises UnusableManifest."""
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

    def tag_delete(self, repo: str, tag: str, *, keep_image: bool = True) -> TagDeleted:
        """Remove one tag; other tags on the same digest survive. NotFound when there is no such tag.

        Where removing the tag deletes the image (ECR, on the image's last tag), `keep_image`
        refuses (Refused, nothing changed); pass False to let the image go. The layout keeps the
        manifest untagged; an OCI registry keeps it (2.8 untags by moving the tag to a throw-away
        manifest and deleting that).
        """
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

    def close(self) -> None:
        """Release connections and files."""
        ...


def digest_named(registry: Registry, repo: str, ref: str) -> Digest | None:
    """The digest `ref` (a tag or digest) names in `repo` now; None when absent."""
    head = registry.manifest_head(repo, ref)
    return head.digest if head is not None else None


@runtime_checkable
class ImageLister(Protocol):
    """A backend that enumerates the manifests of a repository."""

    #: True when `image_list` returns every manifest, untagged ones included (ECR, layout); False
    #: when it sees only what tags name (the OCI distribution API lists tags, not manifests).
    lists_every_manifest: bool
    #: True when `ImageRecord.pushed_at` is set (ECR, layout); False when it is always None (OCI).
    has_push_times: bool

    def image_list(self, repo: str) -> list[ImageRecord]:
        """The manifests of `repo` with their tags; NotFound for an unknown repository."""
        ...


@runtime_checkable
class LifecyclePolicyStore(Protocol):
    """A backend whose repositories carry a native lifecycle policy (ECR)."""

    def ensure_repository(self, repo: str) -> bool:
        """Create `repo` (with the backend's configured settings) if missing; True when created."""
        ...

    def lifecycle_policy(self, repo: str) -> str | None:
        """The repository's policy text; None when it has none; NotFound without the repository."""
        ...

    def put_lifecycle_policy(self, repo: str, text: str) -> None:
        """Store `text` as the repository's policy (the caller has validated it)."""
        ...


@dataclass(frozen=True)
class TagMutability:
    """A repository's tag mutability: MUTABLE, IMMUTABLE, or either WITH_EXCLUSION of the tags its
    wildcard `filters` match."""

    mutability: str
    filters: tuple[str, ...] = ()


@runtime_checkable
class TagMutabilityStore(Protocol):
    """A backend whose repositories say which tags may move (ECR's image tag mutability)."""

    def tag_mutability(self, repo: str) -> TagMutability:
        """The repository's setting; NotFound without the repository."""
        ...

    def put_tag_mutability(self, repo: str, setting: TagMutability) -> TagMutability:
        """Store `setting` and return what the registry reports back."""
        ...


@dataclass(frozen=True)
class PreviewRow:
    """One image a registry's own lifecycle preview acts on."""

    digest: str
    tags: tuple[str, ...]
    action: str  # "expire" | "transition"
    rule_priority: int | None


@dataclass(frozen=True)
class RegistryPreview:
    """The registry's own preview of a lifecycle policy, or why there is none (`rows` is then empty)."""

    available: bool
    rows: tuple[PreviewRow, ...] = ()
    reason: str = ""


@runtime_checkable
class LifecyclePreviewer(Protocol):
    """A backend that previews a lifecycle policy itself (ECR's StartLifecyclePolicyPreview)."""

    def lifecycle_preview(self, repo: str, text: str, *, timeout: float) -> RegistryPreview:
        """What the registry says `text` would do to `repo` now; never raises for a preview the
        registry cannot give (not implemented, denied, still running after `timeout` seconds)."""
        ...


@runtime_checkable
class BatchDelete(Protocol):
    """A backend that deletes many manifests in one call (ECR's BatchDeleteImage)."""

    #: The most digests one `manifest_delete_batch` call takes (ECR: 100).
    delete_batch_size: int

    def manifest_delete_batch(self, repo: str, digests: Sequence[Digest]) -> list[DeleteOutcome]:
        """Delete up to `delete_batch_size` manifests (with their tags) in one call; one outcome
        per distinct digest, in order. Raises when the call itself fails (then every outcome is
        unknown); more digests than the batch size is a ValueError."""
        ...


@runtime_checkable
class BlobCollector(Protocol):
    """A backend whose unreferenced blobs stay until collected (the OCI layout)."""

    def gc_blobs(self, repo: str, *, min_age: timedelta = BLOB_GRACE) -> list[Digest]:
        """Remove the blobs of `repo` nothing listed reaches and that are older than `min_age`
        (so a concurrent push is never broken); return their digests. Deletes nothing when a
        reachable manifest cannot be read."""
        ...
