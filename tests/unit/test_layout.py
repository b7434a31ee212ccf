"""The `layout` backend: OCI image layouts on disk, one per repository."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from boda.errors import DigestMismatch, NotFound, ReferenceError_, Refused, Unavailable, UnusableManifest
from boda.registry import open_registry
from boda.registry.base import (
    BatchDelete,
    BlobCollector,
    ImageLister,
    LifecyclePolicyStore,
    Registry,
    TagDeleted,
)
from boda.registry.layout import CHUNK_SIZE, LayoutRegistry
from boda.services.imagegen import (
    SyntheticImage,
    make_image,
    make_index,
    make_referrer,
    push,
    write_oci_layout,
)
from boda.types import ANNOTATION_REF_NAME, OCI_INDEX, OCI_MANIFEST, Digest, Manifest

NO_GRACE = timedelta(0)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def reg(root: Path) -> LayoutRegistry:
    return LayoutRegistry(root)


def index_entries(root: Path, repo: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((root / repo / "index.json").read_text())["manifests"]
    return entries


def entries_of(root: Path, repo: str, digest: Digest) -> list[dict[str, Any]]:
    return [e for e in index_entries(root, repo) if e["digest"] == str(digest)]


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".tmp-")]


def read_blob(reg: LayoutRegistry, repo: str, digest: Digest) -> bytes:
    with reg.blob_get(repo, digest) as chunks:
        return b"".join(chunks)


# -- basics -----------------------------------------------------------------------------------


def test_implements_the_protocol_and_is_opened_by_url(root: Path, tmp_path: Path) -> None:
    reg = open_registry(f"oci-layout:{root}")
    assert isinstance(reg, LayoutRegistry)
    assert isinstance(reg, Registry)
    typed: Registry = LayoutRegistry(root)  # mypy checks the signatures against the protocol
    assert typed.name == reg.name
    assert isinstance(reg, ImageLister) and reg.lists_every_manifest and reg.has_push_times
    assert isinstance(reg, BlobCollector)
    assert not isinstance(reg, BatchDelete | LifecyclePolicyStore)
    assert reg.name == "oci-layout:" + str(root.resolve())
    rel = open_registry("oci-layout:reg", base_dir=tmp_path)
    assert rel.name == "oci-layout:" + str((tmp_path / "reg").resolve())


def test_push_and_read_back_an_image(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("basic")
    assert push(reg, "foo/bar", image, tag="v1") == image.digest

    layout = root / "foo" / "bar"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert index_entries(root, "foo/bar") == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": str(image.digest),
            "size": image.manifest.size,
            "annotations": {ANNOTATION_REF_NAME: "v1"},
        }
    ]
    assert (layout / "blobs" / "sha256" / image.digest.hex).read_bytes() == image.manifest.raw

    for ref in ("v1", str(image.digest)):
        got = reg.manifest_get("foo/bar", ref)
        assert (got.raw, got.digest, got.media_type) == (image.manifest.raw, image.digest, OCI_MANIFEST)
        head = reg.manifest_head("foo/bar", ref)
        assert head is not None
        assert (head.digest, head.size, head.media_type) == (image.digest, image.manifest.size, OCI_MANIFEST)
    for digest, data in image.blobs.items():
        assert reg.blob_head("foo/bar", digest) == len(data)
        assert read_blob(reg, "foo/bar", digest) == data
        assert (layout / "blobs" / "sha256" / digest.hex).stat().st_mode & 0o777 == 0o644
    assert reg.tag_list("foo/bar") == ["v1"]
    assert reg.manifest_head("foo/bar", "v2") is None
    assert reg.manifest_head("foo/bar", str(Digest.of(b"other"))) is None
    assert temp_files(root) == []


def test_stats_count_requests_and_bytes(reg: LayoutRegistry) -> None:
    image = make_image("stats")
    push(reg, "app", image, tag="v1")
    requests, sent, received = reg.stats.snapshot()
    uploaded = sum(len(b) for b in image.blobs.values()) + image.manifest.size
    assert (sent, received) == (uploaded, 0)
    assert requests == 2 * len(image.blobs) + 1  # head + put per blob, one manifest put
    reg.manifest_get("app", "v1")
    layer = image.manifest.layers[0].digest
    read_blob(reg, "app", layer)
    assert reg.stats.snapshot() == (requests + 2, sent, image.manifest.size + len(image.blobs[layer]))


def test_blob_get_streams_chunks_of_one_mebibyte(reg: LayoutRegistry) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 17)
    digest = Digest.of(data)
    reg.blob_put("app", digest, len(data), (data[i : i + 4096] for i in range(0, len(data), 4096)))
    with reg.blob_get("app", digest) as chunks:
        sizes = [len(c) for c in chunks]
    assert sizes == [CHUNK_SIZE, CHUNK_SIZE, 17]
    with pytest.raises(NotFound), reg.blob_get("app", Digest.of(b"absent")):
        pass


def test_blob_put_of_a_present_blob_does_not_read_the_stream(reg: LayoutRegistry) -> None:
    digest = Digest.of(b"x")
    reg.blob_put("app", digest, 1, [b"x"])

    def boom() -> Any:
        raise AssertionError("the stream was read")
        yield b""

    reg.blob_put("app", digest, 1, boom())
    assert read_blob(reg, "app", digest) == b"x"


@pytest.mark.parametrize(
    ("content", "size"),
    [(b"not the content", 11), (b"hello world", 5), (b"hello", 11)],
    ids=["wrong-bytes", "too-long", "too-short"],
)
def test_blob_put_refuses_a_mismatch_and_leaves_nothing(
    reg: LayoutRegistry, root: Path, content: bytes, size: int
) -> None:
    digest = Digest.of(b"hello world")
    with pytest.raises(DigestMismatch):
        reg.blob_put("app", digest, size, [content[:3], content[3:]])
    assert reg.blob_head("app", digest) is None
    assert list((root / "app" / "blobs" / "sha256").iterdir()) == []


def test_blob_put_cleans_up_when_the_stream_fails(reg: LayoutRegistry, root: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise RuntimeError("upstream went away")

    with pytest.raises(RuntimeError):
        reg.blob_put("app", Digest.of(b"partial data"), 12, broken())
    assert list((root / "app" / "blobs" / "sha256").iterdir()) == []


def test_sha512_digests(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("sha512", layers=0)
    digest = Digest.of(image.manifest.raw, "sha512")
    blob = b"payload"
    blob_digest = Digest.of(blob, "sha512")
    reg.blob_put("app", blob_digest, len(blob), [blob])
    assert reg.manifest_put("app", str(digest), image.manifest) == digest
    assert (root / "app" / "blobs" / "sha512" / digest.hex).is_file()
    assert reg.manifest_get("app", str(digest)).digest == digest
    assert read_blob(reg, "app", blob_digest) == blob


# -- digest verification ----------------------------------------------------------------------


def test_manifest_get_verifies_the_stored_bytes(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("verify")
    push(reg, "app", image, tag="v1")
    (root / "app" / "blobs" / "sha256" / image.digest.hex).write_bytes(image.manifest.raw + b" ")
    fresh = LayoutRegistry(root)  # no cached copy
    for ref in ("v1", str(image.digest)):
        with pytest.raises(DigestMismatch):
            fresh.manifest_get("app", ref)


def test_manifest_put_under_a_wrong_digest_is_refused(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("wrong")
    other = make_image("other")
    with pytest.raises(DigestMismatch):
        reg.manifest_put("app", str(other.digest), image.manifest)
    assert not (root / "app" / "blobs" / "sha256" / image.digest.hex).exists()
    with pytest.raises(NotFound):
        reg.tag_list("app")


# -- indexes ----------------------------------------------------------------------------------


def test_index_is_stored_with_children_by_digest(reg: LayoutRegistry, root: Path) -> None:
    index = make_index("multi", platforms=("linux/amd64", "linux/arm64", "linux/s390x"))
    push(reg, "app", index, tag="v1")
    got = reg.manifest_get("app", "v1")
    assert (got.digest, got.media_type) == (index.digest, OCI_INDEX)
    assert [c.digest for c in got.children] == [c.digest for c in index.children]
    for child in index.children:
        assert reg.manifest_get("app", str(child.digest)).raw == child.manifest.raw
        assert [e.get("annotations") for e in entries_of(root, "app", child.digest)] == [None]
    records = {r.digest: r for r in reg.image_list("app")}
    assert set(records) == {index.digest, *(c.digest for c in index.children)}
    assert records[index.digest].tags == ("v1",)
    assert records[index.digest].media_type == OCI_INDEX
    assert all(records[c.digest].tags == () for c in index.children)


def test_children_of_a_listed_index_resolve_by_digest(root: Path) -> None:
    """Layouts written by other tools (skopeo) list only the top-level index."""
    index = make_index("foreign")
    write_oci_layout(root / "app", index, "v1")
    reg = LayoutRegistry(root)
    assert [r.digest for r in reg.image_list("app")] == [index.digest]
    child = index.children[1]
    assert reg.manifest_get("app", str(child.digest)).raw == child.manifest.raw
    head = reg.manifest_head("app", str(child.digest))
    assert head is not None and head.size == child.manifest.size
    assert reg.manifest_head("app", str(Digest.of(b"nope"))) is None
    assert reg.gc_blobs("app", min_age=NO_GRACE) == []  # children are reached through the index


def test_a_corrupt_index_json_is_reported(reg: LayoutRegistry, root: Path) -> None:
    push(reg, "app", make_image("corrupt-index"), tag="v1")
    index = root / "app" / "index.json"
    index.write_text("{not json")
    with pytest.raises(Unavailable, match="not valid JSON"):
        reg.tag_list("app")
    index.write_text(json.dumps({"schemaVersion": 2, "manifests": [{"digest": "sha256:short", "size": 1}]}))
    with pytest.raises(Unavailable, match="malformed descriptor"):
        reg.tag_list("app")
    with pytest.raises(Unavailable):
        reg.manifest_put("app", "v2", make_image("x").manifest)


def test_foreign_fields_of_index_json_survive_updates(reg: LayoutRegistry, root: Path) -> None:
    index = make_index("kept")
    write_oci_layout(root / "app", index, "v1")
    path = root / "app" / "index.json"
    data = json.loads(path.read_text())
    data["annotations"] = {"com.example.note": "keep me"}
    data["manifests"][0]["platform"] = {"architecture": "amd64", "os": "linux"}
    path.write_text(json.dumps(data))
    push(reg, "app", make_image("new"), tag="v2")
    after = json.loads(path.read_text())
    assert after["annotations"] == {"com.example.note": "keep me"}
    assert after["manifests"][0] == data["manifests"][0]
    assert reg.tag_list("app") == ["v1", "v2"]


# -- tags -------------------------------------------------------------------------------------


def test_moving_a_tag_keeps_the_old_manifest_untagged(reg: LayoutRegistry, root: Path) -> None:
    a, b = make_image("a"), make_image("b")
    push(reg, "app", a, tag="prd")
    push(reg, "app", b, tag="prd")
    assert reg.manifest_get("app", "prd").digest == b.digest
    assert reg.manifest_get("app", str(a.digest)).digest == a.digest
    assert [e for e in index_entries(root, "app") if e.get("annotations")] == [
        {**b.manifest.descriptor().to_json(), "annotations": {ANNOTATION_REF_NAME: "prd"}}
    ]
    assert entries_of(root, "app", a.digest) == [a.manifest.descriptor().to_json()]
    assert {r.digest: r.tags for r in reg.image_list("app")} == {a.digest: (), b.digest: ("prd",)}


def test_moving_one_of_several_tags(reg: LayoutRegistry, root: Path) -> None:
    a, b = make_image("a"), make_image("b")
    push(reg, "app", a, tag="v1")
    push(reg, "app", a, tag="prd")
    push(reg, "app", b, tag="prd")
    assert len(entries_of(root, "app", a.digest)) == 1
    assert {r.digest: r.tags for r in reg.image_list("app")} == {a.digest: ("v1",), b.digest: ("prd",)}


def test_one_entry_per_digest_and_tag(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("once")
    push(reg, "app", image)  # by digest: untagged entry
    push(reg, "app", image, tag="v1")  # the tag replaces the untagged entry
    push(reg, "app", image, tag="v1")
    push(reg, "app", image)  # already listed
    push(reg, "app", image, tag="v2")
    tags = [e.get("annotations", {}).get(ANNOTATION_REF_NAME) for e in index_entries(root, "app")]
    assert tags == ["v1", "v2"]
    assert reg.tag_list("app") == ["v1", "v2"]


def test_tag_delete(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("untag")
    push(reg, "app", image, tag="v1")
    push(reg, "app", image, tag="latest")
    assert reg.tag_delete("app", "latest") == TagDeleted("latest", image.digest, image_deleted=False)
    assert reg.tag_list("app") == ["v1"]
    assert len(entries_of(root, "app", image.digest)) == 1
    assert reg.tag_delete("app", "v1") == TagDeleted("v1", image.digest, image_deleted=False)  # the last
    assert reg.tag_list("app") == []
    assert entries_of(root, "app", image.digest) == [image.manifest.descriptor().to_json()]
    assert reg.manifest_get("app", str(image.digest)).digest == image.digest
    assert [(r.digest, r.tags) for r in reg.image_list("app")] == [(image.digest, ())]
    with pytest.raises(NotFound, match="tag 'v1' not found"):
        reg.tag_delete("app", "v1")


def test_manifest_delete_removes_every_entry_and_keeps_blobs(reg: LayoutRegistry, root: Path) -> None:
    a, b = make_image("a"), make_image("b")
    push(reg, "app", a, tag="v1")
    push(reg, "app", a, tag="prd")
    push(reg, "app", b, tag="v2")
    reg.manifest_delete("app", a.digest)
    assert reg.tag_list("app") == ["v2"]
    assert reg.manifest_head("app", str(a.digest)) is None
    assert reg.manifest_head("app", "prd") is None
    with pytest.raises(NotFound):
        reg.manifest_get("app", str(a.digest))
    assert (root / "app" / "blobs" / "sha256" / a.digest.hex).is_file()
    with pytest.raises(NotFound):
        reg.manifest_delete("app", a.digest)
    push(reg, "app", a, tag="v1")  # a re-push lists it again
    assert reg.tag_list("app") == ["v1", "v2"]


def test_unknown_repositories(reg: LayoutRegistry, root: Path) -> None:
    push(reg, "team/app", make_image("nested"), tag="v1")  # ROOT/team exists but is no repository
    digest = Digest.of(b"x")
    for repo in ("team", "missing"):
        calls: list[Callable[[str], object]] = [
            reg.tag_list,
            reg.image_list,
            reg.gc_blobs,
            lambda r: reg.manifest_get(r, "v1"),
            lambda r: reg.manifest_delete(r, digest),
            lambda r: reg.tag_delete(r, "v1"),
            lambda r: reg.referrers(r, digest),
        ]
        for call in calls:
            with pytest.raises(NotFound, match=f"repository '{repo}' not found"):
                call(repo)
        with pytest.raises(NotFound), reg.blob_get(repo, digest):
            pass
        assert reg.manifest_head(repo, "v1") is None
        assert reg.blob_head(repo, digest) is None
        assert reg.blob_mount("team/app", digest, repo) is False
    assert not (root / "missing").exists()


def test_nested_repositories_are_independent(reg: LayoutRegistry) -> None:
    push(reg, "team", make_image("outer"), tag="outer")
    push(reg, "team/app", make_image("inner"), tag="inner")
    assert reg.tag_list("team") == ["outer"]
    assert reg.tag_list("team/app") == ["inner"]
    assert len(reg.image_list("team")) == 1


# -- names and paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "repo",
    [
        "../escape",
        "/abs/path",
        "a/../../b",
        "a//b",
        "a/./b",
        "UPPER",
        "",
        "team/blobs",
        "team/index.json",
        "app/oci-layout",
        ".hidden",
    ],
)
def test_bad_repository_names_are_refused(reg: LayoutRegistry, tmp_path: Path, repo: str) -> None:
    image = make_image("names")
    with pytest.raises(ReferenceError_):
        reg.manifest_put(repo, "v1", image.manifest)
    with pytest.raises(ReferenceError_):
        reg.blob_put(repo, Digest.of(b"x"), 1, [b"x"])
    with pytest.raises(ReferenceError_):
        reg.tag_list(repo)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "ref", ["../x", "a/b", ".hidden", "-dash", "x" * 129, "sha256:nothex", "md5:" + "0" * 32]
)
def test_bad_references_are_refused(reg: LayoutRegistry, ref: str) -> None:
    image = make_image("refs")
    push(reg, "app", image, tag="v1")
    with pytest.raises(ReferenceError_):
        reg.manifest_put("app", ref, image.manifest)
    with pytest.raises(ReferenceError_):
        reg.manifest_get("app", ref)
    assert reg.tag_list("app") == ["v1"]


def test_symlinks_cannot_escape_the_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "evil").symlink_to(outside)
    reg = LayoutRegistry(root)
    image = make_image("escape")
    with pytest.raises(Refused, match="outside the layout root"):
        reg.manifest_put("evil/app", "v1", image.manifest)
    with pytest.raises(Refused):
        reg.tag_list("evil")
    # a layout whose blobs folder points outside
    write_oci_layout(outside / "app", image, "v1")
    write_oci_layout(root / "app", image, "v1")
    shutil.rmtree(root / "app" / "blobs")
    (root / "app" / "blobs").symlink_to(outside / "app" / "blobs")
    for ref in ("v1", str(image.digest)):
        with pytest.raises(Refused):
            reg.manifest_get("app", ref)
    with pytest.raises(Refused):
        reg.blob_put("app", Digest.of(b"x"), 1, [b"x"])
    assert list(outside.iterdir()) == [outside / "app"]
    assert not (outside / "app" / "blobs" / "sha256" / Digest.of(b"x").hex).exists()


def test_symlinks_inside_the_root_are_followed(root: Path) -> None:
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real")
    reg = LayoutRegistry(root)
    image = make_image("alias")
    push(reg, "alias/app", image, tag="v1")
    assert reg.manifest_get("real/app", "v1").digest == image.digest


# -- concurrency ------------------------------------------------------------------------------


def _tag_many(root: str, worker: int, count: int) -> None:
    reg = LayoutRegistry(Path(root))
    shared = make_image("shared")  # every worker uploads the same blobs too
    own = make_image(f"worker-{worker}")
    for i in range(count):
        push(reg, "ci/app", own if i % 2 else shared, tag=f"w{worker}-{i}")
        push(reg, "ci/app", own, tag=f"moving-{i % 3}")


def test_concurrent_processes_never_lose_a_tag(root: Path) -> None:
    workers, count = 4, 12
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_tag_many, args=(str(root), w, count)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * workers

    reg = LayoutRegistry(root)
    expected = {f"w{w}-{i}" for w in range(workers) for i in range(count)} | {
        "moving-0",
        "moving-1",
        "moving-2",
    }
    assert set(reg.tag_list("ci/app")) == expected
    shared = make_image("shared").digest
    for w in range(workers):
        own = make_image(f"worker-{w}").digest
        for i in range(count):
            assert reg.manifest_get("ci/app", f"w{w}-{i}").digest == (own if i % 2 else shared)
    tags = [e.get("annotations", {}).get(ANNOTATION_REF_NAME) for e in index_entries(root, "ci/app")]
    assert len(tags) == len(set(tags))  # one entry per tag, none untagged (every digest keeps tags)
    assert temp_files(root) == []


# -- mounts -----------------------------------------------------------------------------------


def test_blob_mount_hard_links(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("mount")
    push(reg, "src", image, tag="v1")
    for digest, data in image.blobs.items():
        assert reg.blob_mount("dst", digest, "src") is True
        assert reg.blob_mount("dst", digest, "src") is True  # already there
        a = (root / "src" / "blobs" / "sha256" / digest.hex).stat()
        b = (root / "dst" / "blobs" / "sha256" / digest.hex).stat()
        assert a.st_ino == b.st_ino
        assert read_blob(reg, "dst", digest) == data
    assert reg.blob_mount("dst", Digest.of(b"absent"), "src") is False
    assert reg.stats.bytes_sent == sum(len(b) for b in image.blobs.values()) + image.manifest.size
    assert reg.manifest_put("dst", "v1", image.manifest) == image.digest


def test_blob_mount_copies_when_links_fail(
    reg: LayoutRegistry, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_image("copy")
    push(reg, "src", image, tag="v1")
    push(reg, "dst", make_image("other"), tag="v1")

    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    layer = image.manifest.layers[0].digest
    assert reg.blob_mount("dst", layer, "src") is True
    copied = root / "dst" / "blobs" / "sha256" / layer.hex
    assert copied.read_bytes() == image.blobs[layer]
    assert copied.stat().st_ino != (root / "src" / "blobs" / "sha256" / layer.hex).stat().st_ino


# -- referrers and inventory ------------------------------------------------------------------


def test_referrers(reg: LayoutRegistry) -> None:
    image = make_image("subject")
    push(reg, "app", image, tag="v1")
    sig = make_referrer(image.manifest)
    sbom = make_referrer(image.manifest, artifact_type="application/spdx+json", payload=b"{}")
    other = make_referrer(make_image("elsewhere").manifest)
    for ref in (sig, sbom, other):
        push(reg, "app", ref)
    push(reg, "app", sig, tag="sig")  # a second entry of the same referrer is reported once

    found = reg.referrers("app", image.digest)
    assert sorted(d.digest for d in found) == sorted([sig.digest, sbom.digest])
    by_digest = {d.digest: d for d in found}
    assert by_digest[sig.digest].artifact_type == "application/vnd.dev.cosign.artifact.sig.v1+json"
    assert by_digest[sbom.digest].annotations == {"dev.boda.kind": "application/spdx+json"}
    assert by_digest[sbom.digest].size == sbom.manifest.size
    assert by_digest[sbom.digest].media_type == OCI_MANIFEST
    assert [d.digest for d in reg.referrers("app", image.digest, "application/spdx+json")] == [sbom.digest]
    assert reg.referrers("app", image.digest, "application/none") == []
    assert reg.referrers("app", sig.digest) == []


def test_image_list_records(reg: LayoutRegistry, root: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    image = make_image("inventory")
    push(reg, "app", image, tag="v2")
    push(reg, "app", image, tag="v1")
    sig = make_referrer(image.manifest)
    push(reg, "app", sig)
    stamp = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC).timestamp()
    os.utime(root / "app" / "blobs" / "sha256" / sig.digest.hex, (stamp, stamp))

    first, second = reg.image_list("app")
    assert (first.digest, first.tags, first.media_type, first.size) == (
        image.digest,
        ("v1", "v2"),
        OCI_MANIFEST,
        image.manifest.size,
    )
    assert (first.subject, first.artifact_type) == (None, None)
    assert first.pushed_at is not None and first.pushed_at.tzinfo is not None
    assert before <= first.pushed_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert (second.digest, second.tags, second.subject) == (sig.digest, (), image.digest)
    assert second.artifact_type == "application/vnd.dev.cosign.artifact.sig.v1+json"
    assert second.pushed_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


# -- garbage collection -----------------------------------------------------------------------


def _blob_files(root: Path, repo: str) -> set[str]:
    return {p.name for p in (root / repo / "blobs" / "sha256").iterdir()}


def _all_digests(image: SyntheticImage) -> set[str]:
    out = {d.hex for d in image.all_blobs()} | {image.digest.hex}
    for child in image.children:
        out |= _all_digests(child)
    return out


def test_gc_blobs_removes_only_unreachable_blobs(reg: LayoutRegistry, root: Path) -> None:
    keep = make_image("keep")
    gone = make_image("gone")
    index = make_index("idx")
    sig = make_referrer(keep.manifest)
    for image, tag in ((keep, "v1"), (gone, "v2"), (index, "multi"), (sig, None)):
        push(reg, "app", image, tag=tag)
    orphan = b"orphan"
    reg.blob_put("app", Digest.of(orphan), len(orphan), [orphan])
    reg.manifest_delete("app", gone.digest)

    assert reg.gc_blobs("app") == []  # everything is younger than the default grace period
    removed = reg.gc_blobs("app", min_age=NO_GRACE)
    assert {d.hex for d in removed} == (_all_digests(gone) - _all_digests(keep)) | {Digest.of(orphan).hex}
    assert _blob_files(root, "app") == _all_digests(keep) | _all_digests(index) | _all_digests(sig)
    assert reg.gc_blobs("app", min_age=NO_GRACE) == []
    for tag in ("v1", "multi"):
        reg.manifest_get("app", tag)


def test_gc_blobs_keeps_the_subject_of_a_listed_referrer(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("subject")
    sig = make_referrer(image.manifest)
    push(reg, "app", image, tag="v1")
    push(reg, "app", sig)
    reg.manifest_delete("app", image.digest)
    assert reg.gc_blobs("app", min_age=NO_GRACE) == []
    assert _blob_files(root, "app") == _all_digests(image) | _all_digests(sig)


def test_gc_blobs_deletes_nothing_when_a_manifest_is_unreadable(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("corrupt")
    push(reg, "app", image, tag="v1")
    reg.blob_put("app", Digest.of(b"orphan"), 6, [b"orphan"])
    (root / "app" / "blobs" / "sha256" / image.digest.hex).write_bytes(b"{}")
    before = _blob_files(root, "app")
    with pytest.raises(DigestMismatch):
        LayoutRegistry(root).gc_blobs("app", min_age=NO_GRACE)
    assert _blob_files(root, "app") == before


def test_gc_blobs_keeps_blobs_shared_by_hard_links_in_other_repositories(
    reg: LayoutRegistry, root: Path
) -> None:
    image = make_image("shared-gc")
    push(reg, "a", image, tag="v1")
    for digest in image.blobs:
        reg.blob_mount("b", digest, "a")
    reg.manifest_put("b", "v1", image.manifest)
    reg.manifest_delete("a", image.digest)
    assert len(reg.gc_blobs("a", min_age=NO_GRACE)) == len(image.blobs) + 1
    for digest, data in image.blobs.items():
        assert read_blob(reg, "b", digest) == data


# -- interoperability -------------------------------------------------------------------------


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_skopeo_reads_and_writes_our_layouts(reg: LayoutRegistry, root: Path) -> None:
    image = make_image("skopeo", layers=2, layer_size=4096)
    push(reg, "foo/bar", image, tag="v1")
    push(reg, "foo/bar", make_image("decoy"), tag="v0")
    inspect = skopeo("inspect", f"oci:{root}/foo/bar:v1")
    assert json.loads(inspect)["Digest"] == str(image.digest)

    (root / "copy").mkdir()  # skopeo creates only the last folder
    skopeo("--insecure-policy", "copy", "--quiet", f"oci:{root}/foo/bar:v1", f"oci:{root}/copy/app:v2")
    fresh = LayoutRegistry(root)
    assert fresh.manifest_get("copy/app", "v2").digest == image.digest
    assert fresh.tag_list("copy/app") == ["v2"]


def test_manifest_round_trip_keeps_exact_bytes(reg: LayoutRegistry) -> None:
    raw = b'{\n  "schemaVersion": 2,\n  "mediaType": "%s",\n  "manifests": []\n}' % OCI_INDEX.encode()
    manifest = Manifest.from_bytes(raw)
    reg.manifest_put("app", "pretty", manifest)
    assert reg.manifest_get("app", "pretty").raw == raw
    assert reg.manifest_get("app", str(Digest.of(raw))).media_type == OCI_INDEX


def _nested_signature(subject: Manifest, depth: int = 5_000) -> Manifest:
    """A hostile manifest: a cosign-like signature whose annotations nest `depth` levels deep."""
    raw = (
        b'{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.empty.v1+json",'
        b'"digest":"%s","size":2},"layers":[],"subject":%s,"annotations":{"x":%s%s}}'
        % (
            OCI_MANIFEST.encode(),
            str(Digest.of(b"{}")).encode(),
            json.dumps(subject.descriptor().to_json()).encode(),
            b"[" * depth,
            b"]" * depth,
        )
    )
    return Manifest(raw, OCI_MANIFEST, Digest.of(raw))  # stored as is, bypassing every check


def test_a_nested_manifest_under_a_signature_tag_does_not_break_the_listing(root: Path) -> None:
    writer = LayoutRegistry(root)
    image = make_image("nested-sig")
    push(writer, "app", image, tag="v1")
    hostile = _nested_signature(image.manifest)
    # pushed by another tool: the blob and an index.json entry under cosign's signature tag
    (root / "app" / "blobs" / "sha256" / hostile.digest.hex).write_bytes(hostile.raw)
    index = json.loads((root / "app" / "index.json").read_text())
    index["manifests"].append(
        {
            "mediaType": OCI_MANIFEST,
            "digest": str(hostile.digest),
            "size": hostile.size,
            "annotations": {ANNOTATION_REF_NAME: image.digest.tag_form + ".sig"},
        }
    )
    (root / "app" / "index.json").write_text(json.dumps(index))
    reader = LayoutRegistry(root)
    records = {r.digest: r for r in reader.image_list("app")}
    assert records[image.digest].unreadable is None
    bad = records[hostile.digest]
    assert bad.tags == (image.digest.tag_form + ".sig",) and bad.subject is None
    assert bad.unreadable is not None and "nested more than 64 levels" in bad.unreadable
    assert reader.referrers("app", image.digest) == []
    with pytest.raises(UnusableManifest) as caught:
        reader.manifest_get("app", str(hostile.digest))
    assert caught.value.exit_code == 6 and "\n" not in caught.value.message
    with pytest.raises(UnusableManifest):  # gc_blobs fails closed: it deletes nothing
        reader.gc_blobs("app", min_age=NO_GRACE)


def test_a_manifest_blob_over_the_size_limit_is_refused_unread(reg: LayoutRegistry, root: Path) -> None:
    from boda.types import MAX_MANIFEST_SIZE

    image = make_image("huge")
    push(reg, "app", image, tag="v1")
    blob = root / "app" / "blobs" / "sha256" / image.digest.hex
    blob.write_bytes(image.manifest.raw + b" " * MAX_MANIFEST_SIZE)
    with pytest.raises(UnusableManifest, match="larger than the 4 MiB limit"):
        LayoutRegistry(root).manifest_get("app", "v1")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[]", "not an"),
    ],
)
def test_a_corrupt_index_json_is_one_line_naming_the_file(
    reg: LayoutRegistry, root: Path, boda: Any, content: bytes, needle: str
) -> None:
    push(reg, "app", make_image("corrupt"), tag="v1")
    index = root / "app" / "index.json"
    index.write_bytes(content)
    with pytest.raises(Unavailable, match=needle) as caught:
        LayoutRegistry(root).tag_list("app")
    assert str(index) in caught.value.message and caught.value.exit_code == 6
    run = boda("tags", f"oci-layout:{root}:app")
    assert run.code == 6 and run.out == "" and str(index) in run.err
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err


def _full_disk_on_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up: data is buffered fine, fsync reports ENOSPC (as ext4 and NFS can)."""

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(
    reg: LayoutRegistry, root: Path, tmp_path: Path, boda: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(reg, "app", make_image("before"), tag="v1")
    index_before = (root / "app" / "index.json").read_bytes()
    source = tmp_path / "source"
    write_oci_layout(source / "app", make_image("after", layers=3), "v2")
    _full_disk_on_fsync(monkeypatch)
    run = boda("copy", f"oci-layout:{source}:app:v2", f"oci-layout:{root}:app:v2")
    assert run.code == 6 and run.out == ""
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err
    assert "No space left on device" in run.err and str(root) in run.err
    assert temp_files(root) == []
    assert (root / "app" / "index.json").read_bytes() == index_before
    with pytest.raises(Unavailable, match=r"cannot write .*: No space left on device"):
        LayoutRegistry(root).manifest_put("app", "v3", make_image("x").manifest)
    assert temp_files(root) == [] and (root / "app" / "index.json").read_bytes() == index_before


def test_a_read_only_layout_is_one_line(
    reg: LayoutRegistry, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(reg, "app", make_image("ro"), tag="v1")

    def mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("boda.registry.layout.tempfile.mkstemp", mkstemp)
    with pytest.raises(Unavailable, match="Read-only file system") as caught:
        reg.manifest_put("app", "v2", make_image("ro-2").manifest)
    assert caught.value.exit_code == 6 and isinstance(caught.value.__cause__, OSError)


def test_gc_plan_survives_a_hostile_signature_in_the_layout(
    tmp_path: Path, boda: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert boda("init").code == 0
    root = tmp_path / ".boda" / "registry"
    image = make_image("gc-hostile")
    push(LayoutRegistry(root), "shop/web", image)
    assert boda("build", "shop/web", "--commit", "a" * 40, "--digest", str(image.digest)).code == 0
    hostile = _nested_signature(image.manifest)
    (root / "shop" / "web" / "blobs" / "sha256" / hostile.digest.hex).write_bytes(hostile.raw)
    index = json.loads((root / "shop" / "web" / "index.json").read_text())
    index["manifests"].append(
        {
            "mediaType": OCI_MANIFEST,
            "digest": str(hostile.digest),
            "size": hostile.size,
            "annotations": {ANNOTATION_REF_NAME: image.digest.tag_form + ".sig"},
        }
    )
    (root / "shop" / "web" / "index.json").write_text(json.dumps(index))
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": 1,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        )
    )
    run = boda("gc", "plan", "shop/web", "--policy", str(policy), "--json")
    assert run.code == 0, run.err
    assert "Traceback" not in run.err and "RecursionError" not in run.err + run.out
    planned = {entry["digest"]: entry["action"] for entry in run.json["images"]}
    assert planned == {str(image.digest): "keep", str(hostile.digest): "keep"}
