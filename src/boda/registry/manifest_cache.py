"""Manifests by digest on disk, so that reading a repository again costs no manifest GETs.

    $BODA_CACHE_DIR/manifests/sha256/ab/abcdef0123…    (default: $XDG_CACHE_HOME/boda, else ~/.cache/boda)

A manifest is content-addressed: the bytes filed under a digest can never go stale, so an entry
needs no expiry and no invalidation. What a cache cannot know is whether a registry still holds a
manifest, so callers read it only for digests the registry has just named (a tag list, a HEAD).

Each file holds the media type the registry served, a newline, and the manifest's exact bytes. An
entry is used only once its bytes hash to the digest it is filed under; anything else (a torn write,
a disk error, a hand-edited file) is a miss, and the file is removed. Entries are written to a
temporary file and renamed into place, so concurrent boda processes never read half an entry, and
the whole folder may be deleted at any time. The cache is bounded: when a process has written to it,
the oldest entries are removed until it is back under `max_bytes`. A cache that cannot be written
(read-only, full disk) is skipped silently: it only ever saves requests.

`BODA_CACHE_DIR=/path` moves it; `BODA_CACHE_DIR=off` turns it off. The OCI layout backend needs no
cache: its manifests are local files already.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from pathlib import Path

from boda.types import MANIFEST_TYPES, MAX_MANIFEST_SIZE, Digest, Manifest

log = logging.getLogger(__name__)

#: The environment variable naming the cache folder (`off` turns the cache off).
CACHE_DIR_VARIABLE = "BODA_CACHE_DIR"
#: The default bound on the manifests kept (a manifest is typically 0.5–5 KiB).
DEFAULT_MAX_BYTES = 256 << 20
#: Trimming removes the oldest entries until the cache is this share of its bound.
_TRIM_TO = 0.8
_READ_SIZE = 64 << 10
#: A temporary file this old belongs to a writer that died.
_STALE_TEMPORARY_S = 3600.0


def cache_root() -> Path | None:
    """Where boda keeps caches: `$BODA_CACHE_DIR`, else `$XDG_CACHE_HOME/boda`, else `~/.cache/boda`;
    None when `BODA_CACHE_DIR=off`."""
    explicit = os.environ.get(CACHE_DIR_VARIABLE)
    if explicit is not None and explicit.strip():
        return None if explicit.strip().lower() == "off" else Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "boda"


def default_manifest_cache() -> ManifestCache | None:
    """The user's manifest cache, or None when caching is off."""
    root = cache_root()
    return ManifestCache(root / "manifests") if root is not None else None


class ManifestCache:
    """Manifests filed by digest under `root` (see the module docstring). Thread-safe."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self._root = str(root)
        self.max_bytes = max_bytes
        #: Lookups answered and not (approximate when several threads look up at once).
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._written = 0
        self._writable = True

    def __repr__(self) -> str:
        return f"ManifestCache({str(self.root)!r})"

    def _path(self, digest: Digest) -> str:
        # Plain strings: a warm inventory looks up ten thousand entries, pathlib costs 3x more.
        return f"{self._root}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"

    def get(self, digest: Digest) -> Manifest | None:
        """The manifest filed under `digest`, verified against it; None when absent or unusable."""
        path = self._path(digest)
        try:
            data = _read(path)
        except OSError:
            self.misses += 1
            return None
        line, newline, raw = data.partition(b"\n")
        media_type = line.decode("ascii", "replace")
        # The bytes were a valid manifest when filed (`put` takes Manifest objects); they still are
        # if they hash to the digest. The media type line is checked as the registry's answer is.
        if (
            not newline
            or media_type not in MANIFEST_TYPES
            or len(raw) > MAX_MANIFEST_SIZE
            or hashlib.new(digest.algorithm, raw).hexdigest() != digest.hex
        ):
            log.debug("manifest cache: dropping %s: it does not hold the manifest of its name", path)
            with contextlib.suppress(OSError):
                os.unlink(path)
            self.misses += 1
            return None
        self.hits += 1
        return Manifest(raw, media_type, digest)

    def put(self, manifest: Manifest) -> None:
        """File `manifest` under its digest (nothing happens when the cache cannot be written)."""
        if not self._writable:
            return
        path = self._path(manifest.digest)
        if os.path.exists(path):
            return
        folder, name = os.path.split(path)
        temporary = os.path.join(folder, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            os.makedirs(folder, exist_ok=True)
            with open(temporary, "wb") as f:
                f.write(manifest.media_type.encode("ascii") + b"\n" + manifest.raw)
            os.replace(temporary, path)
        except (OSError, UnicodeEncodeError) as exc:
            log.debug("manifest cache: not writing to %s any more: %s", self.root, exc)
            self._writable = False
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return
        with self._lock:
            self._written += len(manifest.raw)
            due = self._written > self.max_bytes // 4
        if due:
            self.trim()

    def trim(self) -> None:
        """Remove the oldest entries while the cache holds more than `max_bytes` (and stray temporary
        files of writers that died). Called by `put` and `close` when this process wrote."""
        with self._lock:
            self._written = 0
        entries: list[tuple[float, int, str]] = []
        total = 0
        for algorithm in _scandir(self.root):
            for shard in _scandir(Path(algorithm.path)):
                for entry in _scandir(Path(shard.path)):
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    if entry.name.endswith(".tmp"):
                        if time.time() - st.st_mtime > _STALE_TEMPORARY_S:  # its writer died
                            with contextlib.suppress(OSError):
                                os.unlink(entry.path)
                        continue
                    entries.append((st.st_mtime, st.st_size, entry.path))
                    total += st.st_size
        if total <= self.max_bytes:
            return
        entries.sort()
        goal = int(self.max_bytes * _TRIM_TO)
        for _mtime, size, path in entries:
            if total <= goal:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                total -= size

    def close(self) -> None:
        """Trim if this process wrote anything."""
        with self._lock:
            wrote = self._written > 0
        if wrote:
            self.trim()


def _read(path: str) -> bytes:
    """The whole file, with three system calls for a typical manifest (open() costs 3x more)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks = [os.read(fd, _READ_SIZE)]
        while len(chunks[-1]) == _READ_SIZE and sum(map(len, chunks)) <= MAX_MANIFEST_SIZE:
            chunks.append(os.read(fd, _READ_SIZE))
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []
