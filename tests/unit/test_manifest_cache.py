"""The on-disk manifest cache: content-addressed, verified on every read, bounded, disposable."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from boda.locations import RegistryLocation
from boda.registry import manifest_cache_for
from boda.registry.manifest_cache import ManifestCache, cache_root, default_manifest_cache
from boda.types import OCI_INDEX, Digest, Manifest


def manifest(n: int, padding: int = 0) -> Manifest:
    return Manifest.from_json(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(Digest.of(f"config {n}".encode())),
                "size": 8,
            },
            "layers": [],
            "annotations": {"n": str(n), "pad": "x" * padding},
        }
    )


@pytest.mark.parametrize("padding", [0, 200_000])  # one read, and several
def test_a_manifest_comes_back_byte_for_byte(tmp_path: Path, padding: int) -> None:
    cache = ManifestCache(tmp_path)
    m = manifest(1, padding)
    assert cache.get(m.digest) is None
    cache.put(m)
    again = ManifestCache(tmp_path).get(m.digest)
    assert again is not None and again.raw == m.raw and again.media_type == m.media_type
    assert again.json["annotations"]["n"] == "1"


def test_the_served_media_type_is_kept_when_the_manifest_does_not_say(tmp_path: Path) -> None:
    raw = b'{"schemaVersion":2,"manifests":[]}'
    m = Manifest.from_bytes(raw, OCI_INDEX)
    cache = ManifestCache(tmp_path)
    cache.put(m)
    found = cache.get(m.digest)
    assert found is not None and found.media_type == OCI_INDEX and found.is_index


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],  # a torn write
        lambda data: data.replace(b'"n":"1"', b'"n":"2"'),  # other bytes under this digest
        lambda data: data.split(b"\n", 1)[1],  # no media type line
        lambda data: b"",
        lambda data: b"\xff\xfe\n" + data.split(b"\n", 1)[1][:-1],  # garbage line, bytes cut
    ],
)
def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path: Path, damage: object) -> None:
    cache = ManifestCache(tmp_path)
    m = manifest(1)
    cache.put(m)
    path = tmp_path / "sha256" / m.digest.hex[:2] / m.digest.hex
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert cache.get(m.digest) is None
    assert not path.exists()
    assert cache.misses == 1


def test_another_digest_filed_under_a_name_is_never_served(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path)
    a, b = manifest(1), manifest(2)
    cache.put(b)
    target = tmp_path / "sha256" / a.digest.hex[:2] / a.digest.hex
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "sha256" / b.digest.hex[:2] / b.digest.hex
    target.write_bytes(source.read_bytes())
    assert cache.get(a.digest) is None
    assert not target.exists()


def test_the_folder_may_be_deleted_at_any_time(tmp_path: Path) -> None:
    import shutil

    cache = ManifestCache(tmp_path / "c")
    m = manifest(1)
    cache.put(m)
    shutil.rmtree(tmp_path / "c")
    assert cache.get(m.digest) is None
    cache.put(m)
    assert cache.get(m.digest) is not None


def test_an_unwritable_cache_is_skipped_silently(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = ManifestCache(blocker / "manifests")
    cache.put(manifest(1))  # no error: the cache only ever saves requests
    assert cache.get(manifest(1).digest) is None
    cache.close()


def test_the_oldest_entries_go_when_the_bound_is_passed(tmp_path: Path) -> None:
    ms = [manifest(n, padding=900) for n in range(40)]
    size = len(ms[0].raw) + len(ms[0].media_type) + 1
    cache = ManifestCache(tmp_path, max_bytes=size * 20)
    for i, m in enumerate(ms):
        cache.put(m)
        path = tmp_path / "sha256" / m.digest.hex[:2] / m.digest.hex
        os.utime(path, (time.time() - 1000 + i, time.time() - 1000 + i))  # written in this order
    cache.close()
    kept = [m for m in ms if (tmp_path / "sha256" / m.digest.hex[:2] / m.digest.hex).exists()]
    total = sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file())
    assert total <= size * 20
    assert kept and kept == ms[-len(kept) :]  # the newest survive, the oldest went


def test_a_dead_writers_temporary_file_is_cleared_by_trimming(tmp_path: Path) -> None:
    cache = ManifestCache(tmp_path, max_bytes=1)
    m = manifest(1)
    cache.put(m)
    stale = tmp_path / "sha256" / m.digest.hex[:2] / f".{m.digest.hex}.999.abcd.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = stale.with_name(f".{m.digest.hex}.998.abcd.tmp")
    fresh.write_bytes(b"in progress")
    cache.trim()
    assert not stale.exists() and fresh.exists()


def test_concurrent_writers_of_one_digest_leave_one_whole_entry(tmp_path: Path) -> None:
    m = manifest(7, padding=50_000)
    caches = [ManifestCache(tmp_path) for _ in range(8)]
    threads = [threading.Thread(target=c.put, args=(m,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found = ManifestCache(tmp_path).get(m.digest)
    assert found is not None and found.raw == m.raw
    assert [p.name for p in (tmp_path / "sha256" / m.digest.hex[:2]).iterdir()] == [m.digest.hex]


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BODA_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    cache = default_manifest_cache()
    assert cache is not None and cache.root == tmp_path / "mine" / "manifests"
    monkeypatch.setenv("BODA_CACHE_DIR", "off")
    assert default_manifest_cache() is None
    monkeypatch.delenv("BODA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "boda"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "boda"


def test_the_layout_needs_no_cache(tmp_path: Path) -> None:
    assert manifest_cache_for(RegistryLocation.parse(f"oci-layout:{tmp_path}")) is None
    assert manifest_cache_for(RegistryLocation.parse("registry.example.com")) is not None
