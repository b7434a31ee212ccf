"""The `oci` backend: the OCI distribution HTTP API over httpx.

Manifests travel as exact bytes with the full Accept list; tags resolve with HEAD; blobs move by
cross-repository mount when possible and otherwise stream (monolithic up to `monolithic_limit`,
chunked PATCH above it). Registries without tag DELETE (distribution 2.8 answers 400) untag with a
unique dummy manifest, and registries without the referrers API get the `sha256-<hex>` fallback tag
maintained on push and delete. Transport concerns (auth, retries, errors) live in `_http`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from boda.errors import (
    DigestMismatch,
    NotFound,
    ReferenceError_,
    RegistryError,
    RegistryNotFound,
    UnusableManifest,
)
from boda.registry._auth import repository_scope
from boda.registry._credentials import CredentialsProvider
from boda.registry._http import Transport
from boda.registry._httpx import httpx
from boda.registry._manifests import served_manifest
from boda.registry.base import ImageRecord, ManifestHead, RegistryStats, TagDeleted
from boda.types import (
    ACCEPT_MANIFESTS,
    MANIFEST_TYPES,
    MAX_MANIFEST_SIZE,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Digest,
    Manifest,
    is_digest,
    validate_repository,
    validate_tag,
)

EMPTY_BLOB = b"{}"
EMPTY_DIGEST = Digest.of(EMPTY_BLOB)
# The artifact type of the throw-away manifest used to untag on registries without tag DELETE.
UNTAG_ARTIFACT_TYPE = "application/vnd.boda.untag.v1"
ANNOTATION_UNTAG = "dev.boda.untag"
ANNOTATION_UNTAG_ID = "dev.boda.untag.id"
ANNOTATION_CREATED = "org.opencontainers.image.created"
_OCTET = "application/octet-stream"
_MAX_PAGES = 10_000
#: How long a repository's tag list answers `referrers` on a registry without the referrers API.
TAG_SNAPSHOT_SECONDS = 60.0


def _media_type(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", "")).split(";")[0].strip()


def _header_digest(response: httpx.Response) -> Digest | None:
    value = response.headers.get("docker-content-digest")
    return Digest.parse(value.strip()) if value and is_digest(value.strip()) else None


class OciRegistry:
    """A registry spoken to over the OCI distribution API (one host, one httpx.Client)."""

    #: ImageLister: the API lists tags, not manifests, and knows no push times.
    lists_every_manifest = False
    has_push_times = False

    def __init__(
        self,
        host: str,
        *,
        scheme: str = "https",
        docker_config: Path | None = None,
        max_concurrency: int = 8,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        credentials: CredentialsProvider | None = None,
        stats: RegistryStats | None = None,
    ) -> None:
        """`credentials` replaces Docker's config.json (the ecr backend passes its token); `stats`
        shares counters with an enclosing backend."""
        self.name = host
        self.stats = stats if stats is not None else RegistryStats()
        self.max_concurrency = max(1, max_concurrency)
        #: Blobs up to this size are uploaded with one PUT; larger ones in PATCH chunks of `chunk_size`
        #: (each streamed, never buffered whole).
        self.monolithic_limit = 8 << 20
        self.chunk_size = 64 << 20
        self._http = Transport(
            host,
            scheme=scheme,
            stats=self.stats,
            docker_config=docker_config,
            max_concurrency=self.max_concurrency,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            credentials=credentials,
        )
        self._base = self._http.base_url
        self._referrers_api: bool | None = None
        self._fallback_lock = threading.Lock()
        self._probe_lock = threading.Lock()
        #: repo -> (when, tags) of its last complete tag list; a write to the repository forgets it.
        self._tag_snapshots: dict[str, tuple[float, frozenset[str]]] = {}

    def __repr__(self) -> str:
        return f"OciRegistry({self._base!r})"

    @property
    def transport(self) -> Transport:
        """The HTTP transport (tests use it to replace the retry sleep)."""
        return self._http

    def _url(self, repo: str, *parts: str) -> str:
        return f"{self._base}/v2/{validate_repository(repo)}/{'/'.join(parts)}"

    @staticmethod
    def _ref(ref: str) -> str:
        return ref if is_digest(ref) else validate_tag(ref)

    # -- manifests ---------------------------------------------------------------------------------

    def manifest_head(self, repo: str, ref: str) -> ManifestHead | None:
        """HEAD with the full Accept list; falls back to GET when HEAD reports no digest."""
        url = self._url(repo, "manifests", self._ref(ref))
        response = self._http.request(
            "HEAD",
            url,
            scopes=[repository_scope(repo, "pull")],
            headers={"Accept": ACCEPT_MANIFESTS},
            expect=(200, 404),
        )
        if response.status_code == 404:
            return None
        digest = _header_digest(response)
        media_type = _media_type(response)
        length = response.headers.get("content-length", "")
        if digest is None or media_type not in MANIFEST_TYPES or not length.isdigit():
            try:
                manifest = self.manifest_get(repo, ref)
            except NotFound:
                return None
            return ManifestHead(manifest.media_type, manifest.digest, manifest.size)
        if is_digest(ref) and Digest.parse(ref) != digest:
            raise DigestMismatch(f"{self.name}/{repo}@{ref}: the registry reports digest {digest}")
        return ManifestHead(media_type, digest, int(length))

    def manifest_get(self, repo: str, ref: str) -> Manifest:
        """GET with the full Accept list, refusing more than MAX_MANIFEST_SIZE bytes as they arrive."""
        url = self._url(repo, "manifests", self._ref(ref))
        response = self._http.request(
            "GET",
            url,
            scopes=[repository_scope(repo, "pull")],
            headers={"Accept": ACCEPT_MANIFESTS},
            body_limit=MAX_MANIFEST_SIZE,
        )
        raw = response.content
        where = f"GET {self.name}/{repo}:{ref}" if not is_digest(ref) else f"GET {self.name}/{repo}@{ref}"
        if is_digest(ref):
            return served_manifest(raw, _media_type(response), where=where, expected=Digest.parse(ref))
        manifest = served_manifest(raw, _media_type(response), where=where)
        reported = _header_digest(response)
        if reported is not None and Digest.of(raw, reported.algorithm) != reported:
            raise DigestMismatch(
                f"{self.name}/{repo}:{ref}: the registry reports digest {reported} but the manifest"
                f" bytes hash to {Digest.of(raw, reported.algorithm)}",
                hint="the registry or a proxy changed the manifest bytes; refusing to use them",
            )
        return manifest

    def _put_manifest(self, repo: str, ref: str, manifest: Manifest) -> httpx.Response:
        self._tag_snapshots.pop(repo, None)
        return self._http.request(
            "PUT",
            self._url(repo, "manifests", self._ref(ref)),
            scopes=[repository_scope(repo, "pull", "push")],
            headers={"Content-Type": manifest.media_type},
            content=manifest.raw,
            expect=(200, 201),
        )

    def manifest_put(self, repo: str, ref: str, manifest: Manifest) -> Digest:
        """PUT the exact bytes; keep the referrers fallback tag when the registry has no API."""
        if is_digest(ref) and Digest.parse(ref) != manifest.digest:
            raise DigestMismatch(f"cannot store manifest {manifest.digest} under digest {ref}")
        response = self._put_manifest(repo, ref, manifest)
        subject = manifest.subject
        if subject is not None and "oci-subject" not in response.headers:
            self._fallback_add(repo, subject.digest, manifest)
        return _header_digest(response) or manifest.digest

    def manifest_delete(self, repo: str, digest: Digest) -> None:
        """DELETE by digest (every tag on it goes); a referrer leaves the fallback tag index too."""
        subject: Descriptor | None = None
        if self._referrers_api is not True:
            try:
                subject = self.manifest_get(repo, str(digest)).subject
            except (UnusableManifest, ReferenceError_):
                subject = None  # a manifest boda cannot parse is no referrer it maintains
        self._delete_manifest(repo, digest)
        if subject is not None:
            self._fallback_remove(repo, subject.digest, digest)

    def _delete_manifest(self, repo: str, ref: str | Digest) -> None:
        self._tag_snapshots.pop(repo, None)
        self._http.request(
            "DELETE",
            self._url(repo, "manifests", str(ref)),
            scopes=[repository_scope(repo, "delete", "pull", "push")],
            expect=(200, 202, 204),
        )

    # -- tags --------------------------------------------------------------------------------------

    def tag_list(self, repo: str) -> list[str]:
        """All tags, following `Link` pagination; sorted here because registries may not sort."""
        url: str | None = self._url(repo, "tags", "list")
        tags: list[str] = []
        seen: set[str] = set()
        while url is not None and url not in seen and len(seen) < _MAX_PAGES:
            seen.add(url)
            response = self._http.request("GET", url, scopes=[repository_scope(repo, "pull")])
            try:
                page = response.json().get("tags")
                if not isinstance(page, list | None):
                    raise TypeError(f"tags is a {type(page).__name__}")
            except (ValueError, AttributeError, TypeError, RecursionError) as exc:
                raise RegistryError(
                    f"GET {self.name} tag list of {repo}: the body is not a JSON object with a tags list"
                ) from exc
            tags.extend(t for t in page or [] if isinstance(t, str))
            link = response.links.get("next", {}).get("url")
            url = urljoin(str(response.url), link) if link else None
        if url is None:
            self._tag_snapshots[repo] = (time.monotonic(), frozenset(tags))
        return sorted(set(tags))

    def _listed_tags(self, repo: str) -> frozenset[str] | None:
        """The tags of `repo`'s last complete tag list, if it is recent and no write came since."""
        taken = self._tag_snapshots.get(repo)
        if taken is None or time.monotonic() - taken[0] > TAG_SNAPSHOT_SECONDS:
            return None
        return taken[1]

    def tag_delete(self, repo: str, tag: str, *, keep_image: bool = True) -> TagDeleted:
        """DELETE the tag; where the registry refuses (400/405), move it to a dummy and delete that.

        The image stays either way (`keep_image` has nothing to refuse here)."""
        url = self._url(repo, "manifests", validate_tag(tag))
        self._tag_snapshots.pop(repo, None)
        response = self._http.request(
            "DELETE",
            url,
            scopes=[repository_scope(repo, "delete", "pull", "push")],
            expect=(202, 200, 400, 405),
        )
        if response.status_code in (200, 202):
            return TagDeleted(tag, None, image_deleted=False)
        head = self.manifest_head(repo, tag)
        if head is None:
            raise RegistryNotFound(
                f"{self.name}/{repo}: no tag {tag!r}", method="DELETE", url=url, status=404
            )
        if self.blob_head(repo, EMPTY_DIGEST) is None:
            self.blob_put(repo, EMPTY_DIGEST, len(EMPTY_BLOB), [EMPTY_BLOB])
        empty = {"mediaType": OCI_EMPTY, "digest": str(EMPTY_DIGEST), "size": len(EMPTY_BLOB)}
        dummy = Manifest.from_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": UNTAG_ARTIFACT_TYPE,
                "config": empty,
                "layers": [empty],
                "annotations": {
                    ANNOTATION_UNTAG: tag,
                    ANNOTATION_UNTAG_ID: uuid.uuid4().hex,
                    ANNOTATION_CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
                },
            }
        )
        reported = _header_digest(self._put_manifest(repo, tag, dummy)) or dummy.digest
        self._delete_manifest(repo, reported)
        return TagDeleted(tag, head.digest, image_deleted=False)

    # -- blobs -------------------------------------------------------------------------------------

    def blob_head(self, repo: str, digest: Digest) -> int | None:
        response = self._http.request(
            "HEAD",
            self._url(repo, "blobs", str(digest)),
            scopes=[repository_scope(repo, "pull")],
            expect=(200, 404),
            follow_redirects=True,
        )
        if response.status_code == 404:
            return None
        length = response.headers.get("content-length", "")
        return int(length) if length.isdigit() else 0

    def blob_get(self, repo: str, digest: Digest) -> AbstractContextManager[Iterator[bytes]]:
        """Stream the blob (redirects followed; httpx drops Authorization across origins)."""
        return self._blob_stream(repo, digest)

    @contextmanager
    def _blob_stream(self, repo: str, digest: Digest) -> Iterator[Iterator[bytes]]:
        response = self._http.request(
            "GET",
            self._url(repo, "blobs", str(digest)),
            scopes=[repository_scope(repo, "pull")],
            stream=True,
            follow_redirects=True,
        )
        try:
            yield self._http.iter_body(response)
        finally:
            response.close()

    def _upload_url(self, response: httpx.Response) -> str:
        location = response.headers.get("location")
        if not location:
            raise RegistryError(
                f"{response.request.method} {self.name}: answer {response.status_code} has no Location",
                status=response.status_code,
            )
        return urljoin(str(response.url), str(location))

    @staticmethod
    def _with_digest(location: str, digest: Digest) -> str:
        """Append `digest=` to an upload URL that may already carry a query (`?_state=` on 2.8)."""
        return f"{location}{'&' if '?' in location else '?'}digest={digest}"

    def blob_put(self, repo: str, digest: Digest, size: int, chunks: Iterable[bytes]) -> None:
        """POST a session, then one streamed PUT (small blobs) or PATCH chunks and a closing PUT."""
        scopes = [repository_scope(repo, "pull", "push")]
        started = self._http.request(
            "POST", self._url(repo, "blobs", "uploads/"), scopes=scopes, expect=(202,)
        )
        location = self._upload_url(started)
        try:
            if size <= self.monolithic_limit:
                body = _exact(chunks, size, digest)
                headers = {"Content-Type": _OCTET, "Content-Length": str(size)}
                self._http.request(
                    "PUT",
                    self._with_digest(location, digest),
                    scopes=scopes,
                    headers=headers,
                    content=body,
                    expect=(201,),
                )
                return
            source = _Cutter(_exact(chunks, size, digest))
            offset = 0
            while offset < size:
                length = min(self.chunk_size, size - offset)
                headers = {
                    "Content-Type": _OCTET,
                    "Content-Range": f"{offset}-{offset + length - 1}",
                    "Content-Length": str(length),
                }
                patched = self._http.request(
                    "PATCH",
                    location,
                    scopes=scopes,
                    headers=headers,
                    content=source.take(length),
                    expect=(202,),
                )
                location = self._upload_url(patched)
                offset += length
            if source.leftover():
                raise DigestMismatch(f"blob {digest}: the stream is longer than its declared {size} bytes")
            self._http.request(
                "PUT", self._with_digest(location, digest), scopes=scopes, content=b"", expect=(201,)
            )
        except BaseException:
            self._cancel_upload(location, scopes)
            raise

    def _cancel_upload(self, location: str, scopes: list[str]) -> None:
        """DELETE an upload session; a failure to cancel is not worth masking the real error."""
        with suppress(RegistryError):
            self._http.request("DELETE", location, scopes=scopes, expect=(200, 202, 204, 404))

    def blob_mount(self, repo: str, digest: Digest, from_repo: str) -> bool:
        """POST ?mount=&from=: 201 mounted; 202 is an upload session, cancelled, so False."""
        scopes = [
            repository_scope(repo, "pull", "push"),
            repository_scope(validate_repository(from_repo), "pull"),
        ]
        response = self._http.request(
            "POST",
            self._url(repo, "blobs", "uploads/"),
            scopes=scopes,
            params=[("mount", str(digest)), ("from", from_repo)],
            expect=(201, 202),
        )
        if response.status_code == 201:
            return True
        if response.headers.get("location"):
            self._cancel_upload(self._upload_url(response), scopes)
        return False

    # -- referrers ---------------------------------------------------------------------------------

    def referrers(self, repo: str, digest: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """The referrers API while the registry has it; else the `sha256-<hex>` fallback tag.

        Without the API, a repository whose tags were just listed (see TAG_SNAPSHOT_SECONDS) answers
        from that list: no fallback tag, no referrers, no request. An inventory asks for the
        referrers of every manifest right after listing the tags.
        """
        if self._referrers_api is None:
            with self._probe_lock:  # one request finds out whether the registry has the API
                if self._referrers_api is None:
                    found = self._referrers_native(repo, digest, artifact_type)
                    if found is not None:
                        return found
        if self._referrers_api:
            found = self._referrers_native(repo, digest, artifact_type)
            if found is not None:
                return found
        listed = self._listed_tags(repo)
        if listed is not None and digest.tag_form not in listed:
            return []
        try:
            index = self.manifest_get(repo, digest.tag_form)
        except NotFound:
            return []
        if not index.is_index:
            return []
        try:
            children = index.children
        except ReferenceError_ as exc:
            raise RegistryError(
                f"{self.name}/{repo}:{digest.tag_form}: the referrers index is malformed: {exc.message}"
            ) from exc
        return [d for d in children if artifact_type is None or d.artifact_type == artifact_type]

    def _referrers_native(
        self, repo: str, digest: Digest, artifact_type: str | None
    ) -> list[Descriptor] | None:
        """Descriptors from the API, or None when the registry has none (a 404 without OCI errors)."""
        params = [("artifactType", artifact_type)] if artifact_type else None
        url: str | None = self._url(repo, "referrers", str(digest))
        found: list[Descriptor] = []
        pages = 0
        while url is not None and pages < _MAX_PAGES:
            response = self._http.request(
                "GET",
                url,
                scopes=[repository_scope(repo, "pull")],
                headers={"Accept": OCI_INDEX},
                params=params if pages == 0 else None,
                expect=(200, 404),
            )
            pages += 1
            if response.status_code == 404:
                if self._referrers_api is None and not _has_oci_errors(response.content):
                    self._referrers_api = False
                return None if pages == 1 else found
            self._referrers_api = True
            try:
                entries = response.json().get("manifests") or []
                descriptors = [Descriptor.from_json(e) for e in entries]
            except (ValueError, AttributeError, TypeError, RecursionError) as exc:
                raise RegistryError(
                    f"GET {self.name} referrers of {digest}: the body is not an index"
                ) from exc
            filtered = "artifacttype" in response.headers.get("oci-filters-applied", "").lower()
            if artifact_type and not filtered:
                descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
            found.extend(descriptors)
            link = response.links.get("next", {}).get("url")
            url = urljoin(str(response.url), link) if link else None
        return found

    def _fallback_entries(self, repo: str, subject: Digest) -> list[dict[str, Any]]:
        try:
            index = self.manifest_get(repo, subject.tag_form)
        except NotFound:
            return []
        if not index.is_index:
            return []
        return [e for e in index.json.get("manifests") or [] if isinstance(e, dict)]

    def _fallback_put(self, repo: str, subject: Digest, entries: list[dict[str, Any]]) -> None:
        index = Manifest.from_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        self._put_manifest(repo, subject.tag_form, index)

    def _fallback_add(self, repo: str, subject: Digest, manifest: Manifest) -> None:
        with self._fallback_lock:
            entries = self._fallback_entries(repo, subject)
            if any(e.get("digest") == str(manifest.digest) for e in entries):
                return
            entries.append(manifest.descriptor(annotations=manifest.annotations).to_json())
            self._fallback_put(repo, subject, entries)

    def _fallback_remove(self, repo: str, subject: Digest, digest: Digest) -> None:
        with self._fallback_lock:
            entries = self._fallback_entries(repo, subject)
            kept = [e for e in entries if e.get("digest") != str(digest)]
            if len(kept) != len(entries):
                self._fallback_put(repo, subject, kept)

    # -- inventory ---------------------------------------------------------------------------------

    def image_list(self, repo: str) -> list[ImageRecord]:
        """Tags, each resolved with a concurrent HEAD, grouped by digest (no push time in this API)."""
        tags = self.tag_list(repo)
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            heads = list(pool.map(lambda t: self.manifest_head(repo, t), tags))
        by_digest: dict[Digest, tuple[ManifestHead, list[str]]] = {}
        for tag, head in zip(tags, heads, strict=True):
            if head is not None:
                by_digest.setdefault(head.digest, (head, []))[1].append(tag)
        return [
            ImageRecord(digest=d, tags=tuple(sorted(t)), media_type=head.media_type, size=head.size)
            for d, (head, t) in sorted(by_digest.items())
        ]

    def close(self) -> None:
        self._http.close()


def _has_oci_errors(body: bytes) -> bool:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and isinstance(data.get("errors"), list)


def _exact(chunks: Iterable[bytes], size: int, digest: Digest) -> Iterator[bytes]:
    """Pass `chunks` through, refusing a stream longer or shorter than `size`."""
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > size:
            raise DigestMismatch(f"blob {digest}: the stream is longer than its declared {size} bytes")
        if chunk:
            yield chunk
    if seen != size:
        raise DigestMismatch(f"blob {digest}: the stream has {seen} bytes, not the declared {size}")


class _Cutter:
    """Cut one stream of chunks into consecutive streamed pieces, without buffering a piece.

    Memory per upload stays at one source chunk however large the PATCH pieces are.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._carry = b""

    def take(self, length: int) -> Iterator[bytes]:
        """The next `length` bytes of the stream, in chunks."""
        left = length
        while left:
            chunk = self._carry or next(self._chunks, b"")
            self._carry = b""
            if not chunk:
                return  # the stream ended early; _exact raises the size mismatch
            if len(chunk) > left:
                chunk, self._carry = chunk[:left], chunk[left:]
            left -= len(chunk)
            yield chunk

    def leftover(self) -> bool:
        """True when the stream has bytes after the pieces taken (reading on runs its end checks)."""
        return bool(self._carry or next(self._chunks, b""))
