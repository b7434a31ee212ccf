"""The `layout` backend: one OCI image layout per repository on disk (the embedded default).

Repository `foo/bar` is the standard layout `ROOT/foo/bar/` (`oci-layout`, `index.json`,
`blobs/<alg>/<hex>`), readable by `skopeo copy oci:ROOT/foo/bar:TAG ...`. Manifests are blobs too;
a tag is the `org.opencontainers.image.ref.name` annotation of an index.json descriptor, and a
manifest stored by digest only is a descriptor without it. Every file is written to a temp file in
its folder, fsynced and renamed into place; index.json changes are read-modify-write under an
exclusive `flock` on `.lock` in the repository folder, so concurrent processes never lose updates.
Blobs are only removed by `gc_blobs`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from boda.errors import DigestMismatch, NotFound, ReferenceError_, Refused, Unavailable, UnusableManifest
from boda.registry._manifests import served_manifest
from boda.registry.base import BLOB_GRACE, ImageRecord, ManifestHead, RegistryStats, TagDeleted
from boda.types import (
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    LAYOUT_SCHEME,
    MANIFEST_TYPES,
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    Descriptor,
    Digest,
    Manifest,
    validate_repository,
    validate_tag,
)

CHUNK_SIZE = 1 << 20
LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LOCK_FILE = ".lock"  # a dot name can never be a repository path component
LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'
# Names inside a layout folder: a nested repository may not use them as a component.
_RESERVED = frozenset({"blobs", LAYOUT_FILE, INDEX_FILE})
_BLOB_NAME = {"sha256": re.compile(r"^[a-f0-9]{64}$"), "sha512": re.compile(r"^[a-f0-9]{128}$")}


@dataclass(frozen=True)
class _Entry:
    """One descriptor of index.json: the manifest it points at and its tag, if any."""

    digest: Digest
    media_type: str
    size: int
    tag: str | None
    named: bool  # has a ref.name annotation (a tag, or a name another tool wrote)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, write: Callable[[IO[bytes]], object], *, exclusive: bool = False) -> None:
    """Write a temp file next to `path` with `write`, fsync it and move it into place.

    `exclusive` creates `path` only if it does not exist yet (a hard link never overwrites), so
    two processes initialising the same file cannot clobber a newer version. A failing disk (full,
    read-only, no permission) raises Unavailable naming `path`; the temp file never stays behind.
    """
    with _disk(f"cannot write {path}"):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o644)
                write(f)
                f.flush()
                os.fsync(f.fileno())
            if exclusive:
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
                os.unlink(tmp)
            else:
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)


@contextlib.contextmanager
def _disk(doing: str) -> Iterator[None]:
    """Turn a failure of the file system (ENOSPC, EROFS, EACCES, EIO) into one line, exit 6."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise Unavailable(f"{doing}: {exc.strerror or type(exc).__name__}") from exc


def _mkdir(path: Path) -> None:
    with _disk(f"cannot create {path}"):
        path.mkdir(parents=True, exist_ok=True)


class LayoutRegistry:
    """OCI image layouts under one root folder, one per repository (see the module docstring)."""

    #: ImageLister: index.json lists every manifest, and a manifest blob's mtime is its push time.
    lists_every_manifest = True
    has_push_times = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.name = LAYOUT_SCHEME + str(self.root.resolve())
        self.stats = RegistryStats()
        self._manifests: dict[Digest, Manifest] = {}  # content-addressed, so never stale

    # -- paths ---------------------------------------------------------------------------------

    def _contained(self, path: Path, what: str) -> Path:
        """`path` with symlinks resolved, refused unless it stays under the root."""
        root = self.root.resolve()
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            raise Refused(f"{what} resolves to {resolved}, outside the layout root {root}")
        return resolved

    def _repo_dir(self, repo: str, *, create: bool = False) -> Path:
        """The repository's folder; with `create`, an initialised empty layout."""
        validate_repository(repo)
        components = repo.split("/")
        if any(c in _RESERVED for c in components[1:]):
            raise ReferenceError_(
                f"invalid repository name {repo!r}: 'blobs', 'index.json' and 'oci-layout' are reserved"
                " in an OCI layout"
            )
        path = self._contained(self.root.joinpath(*components), f"repository {repo!r}")
        if create and not (path / INDEX_FILE).is_file():
            _mkdir(path)
            path = self._contained(path, f"repository {repo!r}")
            _write_atomic(path / LAYOUT_FILE, lambda f: f.write(LAYOUT_VERSION), exclusive=True)
            empty = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
            _write_atomic(path / INDEX_FILE, lambda f: f.write(json.dumps(empty).encode()), exclusive=True)
        return path

    def _existing_repo(self, repo: str) -> Path:
        path = self._repo_dir(repo)
        if not (path / INDEX_FILE).is_file():
            raise NotFound(f"repository {repo!r} not found in {self.name}")
        return path

    def _blob_path(self, repo_dir: Path, digest: Digest) -> Path:
        return self._contained(repo_dir / "blobs" / digest.algorithm / digest.hex, f"blob {digest}")

    # -- index.json ----------------------------------------------------------------------------

    def _load_index(self, repo_dir: Path) -> dict[str, Any]:
        path = repo_dir / INDEX_FILE
        try:
            with _disk(f"cannot read {path}"):
                data = json.loads(path.read_bytes())
        except FileNotFoundError as exc:
            raise NotFound(f"no OCI layout at {repo_dir}") from exc
        except RecursionError as exc:
            raise Unavailable(f"{path} is not an OCI image index: it is nested too deeply") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise Unavailable(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("manifests", []), list):
            raise Unavailable(f"{path} is not an OCI image index")
        data.setdefault("manifests", [])
        return data

    @staticmethod
    def _entry(raw: Any, path: Path) -> _Entry:
        try:
            desc = Descriptor.from_json(raw)
        except (ReferenceError_, TypeError, ValueError, AttributeError) as exc:
            raise Unavailable(f"{path} holds a malformed descriptor: {raw!r:.200}") from exc
        name = desc.annotations.get(ANNOTATION_REF_NAME)
        tag = name if isinstance(name, str) and _is_tag(name) else None
        return _Entry(desc.digest, desc.media_type, desc.size, tag, name is not None)

    def _entries(self, repo_dir: Path) -> list[_Entry]:
        path = repo_dir / INDEX_FILE
        return [self._entry(raw, path) for raw in self._load_index(repo_dir)["manifests"]]

    @contextlib.contextmanager
    def _locked(self, repo_dir: Path) -> Iterator[None]:
        """Hold the repository's exclusive lock (between processes and between threads)."""
        with _disk(f"cannot lock {repo_dir}"):
            fd = os.open(repo_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _update_index(self, repo_dir: Path, change: Callable[[list[dict[str, Any]]], bool]) -> None:
        """Read index.json, let `change` edit its descriptor list, write it back if it changed.

        Unknown fields of the index and of other tools' descriptors are kept as they were.
        """
        with self._locked(repo_dir):
            data = self._load_index(repo_dir)
            if change(data["manifests"]):
                encoded = json.dumps(data, separators=(",", ":")).encode()
                _write_atomic(repo_dir / INDEX_FILE, lambda f: f.write(encoded))

    # -- manifests -----------------------------------------------------------------------------

    def _load_manifest(self, repo_dir: Path, digest: Digest, media_type: str | None = None) -> Manifest:
        """The verified manifest stored as blob `digest` (NotFound when the blob is missing,
        UnusableManifest when the blob is no manifest)."""
        path = self._blob_path(repo_dir, digest)
        if not path.is_file():
            raise NotFound(f"manifest {digest} is missing from {repo_dir}")
        cached = self._manifests.get(digest)
        if cached is not None:
            return cached
        with _disk(f"cannot read {path}"):
            if path.stat().st_size > MAX_MANIFEST_SIZE:
                raise UnusableManifest(
                    f"{path} is no usable manifest: larger than the {MAX_MANIFEST_SIZE >> 20} MiB limit"
                )
            raw = path.read_bytes()
        manifest = served_manifest(raw, media_type, where=str(path), expected=digest)
        self._manifests[digest] = manifest
        return manifest

    def _resolve(self, repo_dir: Path, ref: str) -> Descriptor | None:
        """A tag or digest to its descriptor; a digest is also found as a child of a listed index
        (layouts written by skopeo list only the top-level index)."""
        entries = self._entries(repo_dir)
        if ":" not in ref:
            validate_tag(ref)
            return next((e.descriptor for e in entries if e.tag == ref), None)
        digest = Digest.parse(ref)
        found = next((e.descriptor for e in entries if e.digest == digest), None)
        pending = [e.digest for e in entries if e.media_type in INDEX_TYPES]
        seen: set[Digest] = set()
        while found is None and pending:
            parent = pending.pop()
            if parent in seen:
                continue
            seen.add(parent)
            try:
                children = self._load_manifest(repo_dir, parent).children
            except NotFound:
                continue
            found = next((c for c in children if c.digest == digest), None)
            pending.extend(c.digest for c in children if c.media_type in INDEX_TYPES)
        if found is None or not self._blob_path(repo_dir, found.digest).is_file():
            return None
        return Descriptor(found.media_type, found.digest, found.size)

    def manifest_head(self, repo: str, ref: str) -> ManifestHead | None:
        self.stats.add(requests=1)
        try:
            found = self._resolve(self._existing_repo(repo), ref)
        except NotFound:
            return None
        return ManifestHead(found.media_type, found.digest, found.size) if found is not None else None

    def manifest_get(self, repo: str, ref: str) -> Manifest:
        """The manifest a tag (via index.json) or digest names, verified against its digest."""
        repo_dir = self._existing_repo(repo)
        desc = self._resolve(repo_dir, ref)
        if desc is None:
            raise NotFound(f"manifest {ref} not found in {repo}")
        manifest = self._load_manifest(repo_dir, desc.digest, desc.media_type)
        self.stats.add(requests=1, received=manifest.size)
        return manifest

    def manifest_put(self, repo: str, ref: str, manifest: Manifest) -> Digest:
        """Store the bytes as a blob, then list them in index.json under the tag (moving it) or,
        for a digest ref, as an untagged entry unless the digest is already listed."""
        tag: str | None = None
        if ":" in ref:
            wanted = Digest.parse(ref)
            digest = Digest.of(manifest.raw, wanted.algorithm)
            if digest != wanted:
                raise DigestMismatch(f"manifest content hashes to {digest}, not the reference {wanted}")
        else:
            tag = validate_tag(ref)
            digest = manifest.digest
        repo_dir = self._repo_dir(repo, create=True)
        path = self._blob_path(repo_dir, digest)

        def descriptor(annotations: dict[str, str]) -> dict[str, Any]:
            return Descriptor(
                manifest.media_type, digest, manifest.size, annotations, manifest.artifact_type
            ).to_json()

        def change(raw: list[dict[str, Any]]) -> bool:
            # under the lock, so gc_blobs cannot remove the blob before index.json lists it
            if not path.is_file():
                _mkdir(path.parent)
                _write_atomic(path, lambda f: f.write(manifest.raw))
            entries = [self._entry(d, repo_dir / INDEX_FILE) for d in raw]
            if not any(e.digest == digest for e in entries):
                with _disk(f"cannot touch {path}"):
                    os.utime(path)  # a re-push after manifest_delete is a new push (pushed_at)
            if tag is None:
                if any(e.digest == digest for e in entries):
                    return False
                raw.append(descriptor({}))
                return True
            if [e.digest for e in entries if e.tag == tag] == [digest]:
                return False
            # the tag replaces its old entry, and this digest's untagged entry if it had one
            pairs = list(zip(raw, entries, strict=True))
            keep = [d for d, e in pairs if e.tag != tag and not (e.digest == digest and not e.named)]
            keep.append(descriptor({ANNOTATION_REF_NAME: tag}))
            listed = {self._entry(d, repo_dir / INDEX_FILE).digest for d in keep}
            for d, e in pairs:  # a manifest that lost its last tag stays, by digest
                if e.tag == tag and e.digest not in listed:
                    keep.append(_untagged(d))
                    listed.add(e.digest)
            raw[:] = keep
            return True

        self._update_index(repo_dir, change)
        self.stats.add(requests=1, sent=manifest.size)
        return digest

    def manifest_delete(self, repo: str, digest: Digest) -> None:
        """Remove every index.json entry of `digest` (its tags included); its blobs stay until
        `gc_blobs`. NotFound when index.json does not list the digest."""
        repo_dir = self._existing_repo(repo)
        removed = False

        def change(raw: list[dict[str, Any]]) -> bool:
            nonlocal removed
            keep = [d for d in raw if self._entry(d, repo_dir / INDEX_FILE).digest != digest]
            removed = len(keep) != len(raw)
            raw[:] = keep
            return removed

        self._update_index(repo_dir, change)
        self.stats.add(requests=1)
        if not removed:
            raise NotFound(f"manifest {digest} not found in {repo}")

    # -- tags ----------------------------------------------------------------------------------

    def tag_list(self, repo: str) -> list[str]:
        self.stats.add(requests=1)
        return sorted({e.tag for e in self._entries(self._existing_repo(repo)) if e.tag is not None})

    def tag_delete(self, repo: str, tag: str, *, keep_image: bool = True) -> TagDeleted:
        """Remove the tag's entry; a manifest that loses its last entry stays listed untagged
        (`gc_blobs` never removes a listed manifest), so `keep_image` has nothing to refuse."""
        validate_tag(tag)
        repo_dir = self._existing_repo(repo)
        found: Digest | None = None

        def change(raw: list[dict[str, Any]]) -> bool:
            nonlocal found
            entries = [self._entry(d, repo_dir / INDEX_FILE) for d in raw]
            index = next((i for i, e in enumerate(entries) if e.tag == tag), None)
            if index is None:
                return False
            digest = found = entries[index].digest
            if any(e.digest == digest for i, e in enumerate(entries) if i != index):
                del raw[index]
            else:
                raw[index] = _untagged(raw[index])
            return True

        self._update_index(repo_dir, change)
        self.stats.add(requests=1)
        if found is None:
            raise NotFound(f"tag {tag!r} not found in {repo}")
        return TagDeleted(tag, found, image_deleted=False)

    # -- blobs ---------------------------------------------------------------------------------

    def blob_head(self, repo: str, digest: Digest) -> int | None:
        self.stats.add(requests=1)
        try:
            path = self._blob_path(self._existing_repo(repo), digest)
            return path.stat().st_size
        except (NotFound, FileNotFoundError):
            return None

    @contextlib.contextmanager
    def blob_get(self, repo: str, digest: Digest) -> Iterator[Iterator[bytes]]:
        """Chunks of about 1 MiB from the blob file; NotFound when the blob is missing."""
        path = self._blob_path(self._existing_repo(repo), digest)
        try:
            with _disk(f"cannot read {path}"):
                f = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found in {repo}") from exc
        self.stats.add(requests=1)
        with f:
            yield self._chunks(f)

    def _chunks(self, f: IO[bytes]) -> Iterator[bytes]:
        while chunk := f.read(CHUNK_SIZE):
            self.stats.add(received=len(chunk))
            yield chunk

    def blob_put(self, repo: str, digest: Digest, size: int, chunks: Iterable[bytes]) -> None:
        """Stream `chunks` into the blob file, verifying size and digest on the way; on a mismatch
        raise DigestMismatch and leave nothing behind. A blob already present is not rewritten."""
        repo_dir = self._repo_dir(repo, create=True)
        path = self._blob_path(repo_dir, digest)
        self.stats.add(requests=1)
        if path.is_file():
            with _disk(f"cannot touch {path}"):
                os.utime(path)  # refresh its age for gc_blobs' grace period
            return
        _mkdir(path.parent)
        self._write_blob(path, digest, size, chunks)

    def _write_blob(self, path: Path, digest: Digest, size: int, chunks: Iterable[bytes]) -> None:
        hasher = digest.hasher()
        written = 0

        def write(f: IO[bytes]) -> None:
            nonlocal written
            for chunk in chunks:
                written += len(chunk)
                if written > size:
                    raise DigestMismatch(f"blob {digest}: more than the announced {size} bytes")
                hasher.update(chunk)
                f.write(chunk)
                self.stats.add(sent=len(chunk))
            if written != size:
                raise DigestMismatch(f"blob {digest}: received {written} bytes, announced {size}")
            actual = Digest(digest.algorithm, hasher.hexdigest())
            if actual != digest:
                raise DigestMismatch(f"blob content hashes to {actual}, not the announced {digest}")

        _write_atomic(path, write)

    def blob_mount(self, repo: str, digest: Digest, from_repo: str) -> bool:
        """Hard-link the blob from `from_repo` (a verified copy where linking fails); False when
        `from_repo` does not have it."""
        self.stats.add(requests=1)
        try:
            source = self._blob_path(self._existing_repo(from_repo), digest)
        except NotFound:
            return False
        if not source.is_file():
            return False
        target = self._blob_path(self._repo_dir(repo, create=True), digest)
        if target.is_file():
            return True
        _mkdir(target.parent)
        try:
            os.link(source, target)
        except FileExistsError:
            return True
        except OSError:  # another file system, or links not supported: copy instead
            with source.open("rb") as f:
                self._write_blob(target, digest, source.stat().st_size, iter(lambda: f.read(CHUNK_SIZE), b""))
            return True
        with _disk(f"cannot write {target.parent}"):
            _fsync_dir(target.parent)
        return True

    # -- listings ------------------------------------------------------------------------------

    def referrers(self, repo: str, digest: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """Descriptors (with artifactType and annotations) of the listed manifests whose subject
        is `digest`, optionally only those of `artifact_type`. A manifest that cannot be read has
        no subject boda knows of (`image_list` reports it as unreadable)."""
        repo_dir = self._existing_repo(repo)
        self.stats.add(requests=1)
        out = []
        for entry in _unique(self._entries(repo_dir)):
            try:
                manifest = self._load_manifest(repo_dir, entry.digest, entry.media_type)
                subject = manifest.subject
            except (UnusableManifest, ReferenceError_, DigestMismatch):
                continue
            if subject is None or subject.digest != digest:
                continue
            if artifact_type is None or manifest.artifact_type == artifact_type:
                out.append(manifest.descriptor(manifest.annotations))
        return out

    def image_list(self, repo: str) -> list[ImageRecord]:
        """One record per manifest listed in index.json, in index order, with all its tags.

        `size` is the manifest's own size; `pushed_at` is the manifest blob file's mtime (UTC):
        the time it was first stored, or re-stored after a `manifest_delete`. A manifest that
        cannot be read is listed with `unreadable` saying why (so one bad manifest does not hide
        the others).
        """
        repo_dir = self._existing_repo(repo)
        self.stats.add(requests=1)
        entries = self._entries(repo_dir)
        records = []
        for entry in _unique(entries):
            subject: Descriptor | None = None
            artifact_type: str | None = None
            unreadable: str | None = None
            try:
                manifest = self._load_manifest(repo_dir, entry.digest, entry.media_type)
                subject, artifact_type = manifest.subject, manifest.artifact_type
            except (UnusableManifest, ReferenceError_, DigestMismatch) as exc:
                unreadable = exc.message
            with _disk(f"cannot read {repo_dir}"):
                mtime = self._blob_path(repo_dir, entry.digest).stat().st_mtime
            records.append(
                ImageRecord(
                    digest=entry.digest,
                    tags=tuple(sorted(e.tag for e in entries if e.digest == entry.digest and e.tag)),
                    media_type=entry.media_type,
                    pushed_at=datetime.fromtimestamp(mtime, tz=UTC),
                    size=entry.size,
                    subject=subject.digest if subject else None,
                    artifact_type=artifact_type,
                    unreadable=unreadable,
                )
            )
        return records

    # -- maintenance ---------------------------------------------------------------------------

    def gc_blobs(self, repo: str, *, min_age: timedelta = BLOB_GRACE) -> list[Digest]:
        """Delete the blobs of `repo` that nothing listed in index.json reaches (through indexes,
        image manifests, configs, layers and subjects); return their digests, sorted.

        Blobs changed less than `min_age` ago are kept: a concurrent push uploads blobs before
        the manifest that references them. If a reachable manifest cannot be read, nothing is
        deleted (the error propagates).
        """
        repo_dir = self._existing_repo(repo)
        self.stats.add(requests=1)
        removed: list[Digest] = []
        with self._locked(repo_dir):
            entries = self._entries(repo_dir)
            reachable = {e.digest for e in entries}
            # (digest, media type) of manifests to walk; children and subjects are manifests
            # whatever media type their descriptor declares
            pending = [(e.digest, e.media_type) for e in entries if e.media_type in MANIFEST_TYPES]
            walked: set[Digest] = set()
            while pending:
                digest, media_type = pending.pop()
                reachable.add(digest)
                if digest in walked or not self._blob_path(repo_dir, digest).is_file():
                    continue
                walked.add(digest)
                manifest = self._load_manifest(repo_dir, digest, media_type or None)
                reachable.update(b.digest for b in manifest.blobs)
                pending.extend((c.digest, c.media_type) for c in manifest.children)
                if manifest.subject is not None:
                    pending.append((manifest.subject.digest, manifest.subject.media_type))
            cutoff = time.time() - min_age.total_seconds()
            for algorithm, pattern in _BLOB_NAME.items():
                folder = repo_dir / "blobs" / algorithm
                names = sorted(os.listdir(folder)) if folder.is_dir() else []
                for name in names:
                    if not pattern.match(name) or Digest(algorithm, name) in reachable:
                        continue
                    digest = Digest(algorithm, name)
                    path = self._blob_path(repo_dir, digest)
                    st = path.lstat()
                    if max(st.st_mtime, st.st_ctime) <= cutoff:
                        with _disk(f"cannot delete {path}"):
                            path.unlink()
                        removed.append(digest)
        return sorted(removed)

    def close(self) -> None:
        self._manifests.clear()


def _is_tag(text: str) -> bool:
    try:
        validate_tag(text)
    except ReferenceError_:
        return False
    return True


def _untagged(raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of an index.json descriptor without its ref.name annotation."""
    out = dict(raw)
    annotations = {k: v for k, v in (raw.get("annotations") or {}).items() if k != ANNOTATION_REF_NAME}
    if annotations:
        out["annotations"] = annotations
    else:
        out.pop("annotations", None)
    return out


def _unique(entries: list[_Entry]) -> list[_Entry]:
    """The first entry of each digest, in index order."""
    seen: set[Digest] = set()
    out = []
    for entry in entries:
        if entry.digest not in seen:
            seen.add(entry.digest)
            out.append(entry)
    return out
