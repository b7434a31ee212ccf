"""The oci backend against real Debian docker-registry 2.8 processes, cross-checked with skopeo."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from boda.errors import NotFound, RegistryDenied, RegistryError, Unavailable
from boda.registry.oci import OciRegistry
from boda.services import imagegen
from boda.types import DOCKER_LIST, OCI_INDEX, Digest
from fixtures.registry import (
    RegistryProcess,
    free_port,
    push_with_skopeo,
    skopeo_copy,
    skopeo_inspect_digest,
)

pytestmark = pytest.mark.registry

SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"


def repo_name(prefix: str = "test") -> str:
    """A repository no other test uses (the registries are shared within a worker)."""
    return f"{prefix}/r{uuid.uuid4().hex[:12]}"


@pytest.fixture
def oci(registry: RegistryProcess) -> Iterator[OciRegistry]:
    client = OciRegistry(registry.host, scheme="http", backoff=0.01)
    yield client
    client.close()


def read_blob(reg: OciRegistry, repo: str, digest: Digest) -> bytes:
    with reg.blob_get(repo, digest) as chunks:
        data = b"".join(chunks)
    assert Digest.of(data) == digest
    return data


def test_pushed_by_boda_is_read_by_skopeo_with_same_digest(
    registry: RegistryProcess, oci: OciRegistry
) -> None:
    repo = repo_name()
    image = imagegen.make_image("boda-push", layers=3)
    assert imagegen.push(oci, repo, image, "v1") == image.digest
    assert skopeo_inspect_digest(f"{registry.host}/{repo}:v1") == str(image.digest)
    head = oci.manifest_head(repo, "v1")
    assert head is not None and head.digest == image.digest and head.size == image.manifest.size
    assert oci.manifest_get(repo, str(image.digest)).raw == image.manifest.raw


def test_pushed_by_skopeo_is_read_by_boda_with_same_digest(
    registry: RegistryProcess, oci: OciRegistry, tmp_path: Path
) -> None:
    repo = repo_name()
    image = imagegen.make_image("skopeo-push")
    imagegen.write_oci_layout(tmp_path / "layout", image, "v1")
    push_with_skopeo(tmp_path / "layout", "v1", f"{registry.host}/{repo}:v1")
    manifest = oci.manifest_get(repo, "v1")
    assert manifest.digest == image.digest
    for blob in manifest.blobs:
        assert read_blob(oci, repo, blob.digest) == image.blobs[blob.digest]


def test_docker_media_types_round_trip(registry: RegistryProcess, oci: OciRegistry) -> None:
    repo = repo_name()
    image = imagegen.make_image("docker-v2", docker=True)
    imagegen.push(oci, repo, image, "v1")
    manifest = oci.manifest_get(repo, "v1")
    assert manifest.digest == image.digest and manifest.media_type == image.manifest.media_type
    assert skopeo_inspect_digest(f"{registry.host}/{repo}:v1") == str(image.digest)


def test_multi_arch_index_push_and_read(registry: RegistryProcess, oci: OciRegistry) -> None:
    for docker, media_type in ((False, OCI_INDEX), (True, DOCKER_LIST)):
        repo = repo_name()
        index = imagegen.make_index(f"multi-{docker}", docker=docker)
        imagegen.push(oci, repo, index, "latest")
        head = oci.manifest_head(repo, "latest")
        assert head is not None and (head.digest, head.media_type) == (index.digest, media_type)
        read = oci.manifest_get(repo, "latest")
        assert read.raw == index.manifest.raw and read.is_index
        assert [c.digest for c in read.children] == [c.digest for c in index.children]
        for child in index.children:
            assert oci.manifest_get(repo, str(child.digest)).raw == child.manifest.raw
        assert skopeo_inspect_digest(f"{registry.host}/{repo}:latest") == str(index.digest)


def test_mount_between_repositories_moves_zero_blob_bytes(
    registry: RegistryProcess, oci: OciRegistry
) -> None:
    source, target = repo_name("src"), repo_name("dst")
    image = imagegen.make_image("mount", layers=2, layer_size=64 * 1024)
    imagegen.push(oci, source, image, "v1")
    _, sent_before, _ = oci.stats.snapshot()
    for blob in image.manifest.blobs:
        assert oci.blob_head(target, blob.digest) is None
        assert oci.blob_mount(target, blob.digest, source) is True
        assert oci.blob_head(target, blob.digest) == blob.size
    assert oci.manifest_put(target, "release", image.manifest) == image.digest
    _, sent_after, _ = oci.stats.snapshot()
    assert sent_after - sent_before == image.manifest.size  # the manifest and nothing else
    assert skopeo_inspect_digest(f"{registry.host}/{target}:release") == str(image.digest)


def test_mount_of_missing_blob_is_false_and_session_cancelled(oci: OciRegistry) -> None:
    assert oci.blob_mount(repo_name(), Digest.of(b"nowhere"), repo_name()) is False


def test_chunked_and_monolithic_blob_uploads(oci: OciRegistry) -> None:
    repo = repo_name()
    oci.monolithic_limit, oci.chunk_size = 1000, 777
    small, large = b"s" * 1000, bytes(range(256)) * 20
    for data in (small, large, b""):
        digest = Digest.of(data)
        oci.blob_put(repo, digest, len(data), iter([data[:5], data[5:]]))
        assert oci.blob_head(repo, digest) == len(data)
        assert read_blob(oci, repo, digest) == data
    with pytest.raises(RegistryError, match="DIGEST_INVALID"):
        oci.blob_put(repo, Digest.of(b"claimed"), 5, [b"other"])


def test_cross_registry_blob_stream(oci: OciRegistry, registry2: RegistryProcess) -> None:
    repo = repo_name()
    image = imagegen.make_image("cross", layers=1, layer_size=200_000)
    imagegen.push(oci, repo, image, "v1")
    dest = OciRegistry(registry2.host, scheme="http")
    for blob in image.manifest.blobs:
        assert dest.blob_head(repo, blob.digest) is None
        with oci.blob_get(repo, blob.digest) as chunks:
            dest.blob_put(repo, blob.digest, blob.size, chunks)
    assert dest.manifest_put(repo, "v1", image.manifest) == image.digest
    assert dest.stats.bytes_sent == sum(b.size for b in image.manifest.blobs) + image.manifest.size
    assert skopeo_inspect_digest(f"{registry2.host}/{repo}:v1") == str(image.digest)
    dest.close()


def test_tag_listing(oci: OciRegistry) -> None:
    repo = repo_name()
    image = imagegen.make_image("tags", layers=1)
    imagegen.push(oci, repo, image, "v1")
    for tag in ("b", "a", "v10", "v2", "Z"):
        oci.manifest_put(repo, tag, image.manifest)
    assert oci.tag_list(repo) == ["Z", "a", "b", "v1", "v10", "v2"]
    with pytest.raises(NotFound):
        oci.tag_list(repo_name("missing"))
    oci.manifest_delete(repo, image.digest)
    assert oci.tag_list(repo) == []  # registry 2.8 answers "tags": null


def test_untag_with_dummy_manifest_keeps_other_tags(oci: OciRegistry) -> None:
    repo = repo_name()
    image = imagegen.make_image("untag", layers=1)
    imagegen.push(oci, repo, image, "v1")
    oci.manifest_put(repo, "v2", image.manifest)
    oci.tag_delete(repo, "v1")
    assert oci.tag_list(repo) == ["v2"]
    assert oci.manifest_head(repo, "v1") is None
    head = oci.manifest_head(repo, "v2")
    assert head is not None and head.digest == image.digest
    assert oci.manifest_get(repo, str(image.digest)).digest == image.digest
    with pytest.raises(NotFound):
        oci.tag_delete(repo, "v1")


def test_manifest_delete_by_digest(oci: OciRegistry) -> None:
    repo = repo_name()
    image = imagegen.make_image("delete", layers=1)
    imagegen.push(oci, repo, image, "v1")
    oci.manifest_put(repo, "v2", image.manifest)
    oci.manifest_delete(repo, image.digest)
    assert oci.manifest_head(repo, "v1") is None and oci.manifest_head(repo, "v2") is None
    with pytest.raises(NotFound):
        oci.manifest_delete(repo, image.digest)


def test_referrers_through_the_fallback_tag(oci: OciRegistry) -> None:
    repo = repo_name()
    image = imagegen.make_image("subject", layers=1)
    imagegen.push(oci, repo, image, "v1")
    assert oci.referrers(repo, image.digest) == []
    sig = imagegen.make_referrer(image.manifest, artifact_type=SIG, payload=b"signature")
    sbom = imagegen.make_referrer(image.manifest, artifact_type="application/spdx+json", payload=b"{}")
    imagegen.push(oci, repo, sig)
    imagegen.push(oci, repo, sbom)
    imagegen.push(oci, repo, sig)  # pushing again does not duplicate the entry
    found = oci.referrers(repo, image.digest)
    assert sorted(d.digest for d in found) == sorted([sig.digest, sbom.digest])
    assert [d.digest for d in oci.referrers(repo, image.digest, SIG)] == [sig.digest]
    assert all(d.annotations == {"dev.boda.kind": d.artifact_type} for d in found)
    assert image.digest.tag_form in oci.tag_list(repo)
    oci.manifest_delete(repo, sig.digest)
    assert [d.digest for d in oci.referrers(repo, image.digest)] == [sbom.digest]


def test_image_list_groups_tags(oci: OciRegistry) -> None:
    repo = repo_name()
    one = imagegen.make_image("list-1", layers=1)
    two = imagegen.make_image("list-2", layers=1)
    imagegen.push(oci, repo, one, "a")
    imagegen.push(oci, repo, two, "b")
    oci.manifest_put(repo, "c", one.manifest)
    records = {r.digest: r for r in oci.image_list(repo)}
    assert set(records) == {one.digest, two.digest}
    assert records[one.digest].tags == ("a", "c") and records[two.digest].tags == ("b",)
    assert records[one.digest].pushed_at is None


def test_basic_auth_with_docker_config(auth_registry: RegistryProcess, tmp_path: Path) -> None:
    config = auth_registry.docker_config(tmp_path / "good" / "config.json")
    repo = repo_name()
    image = imagegen.make_image("auth", layers=1)
    with_creds = OciRegistry(auth_registry.host, scheme="http", docker_config=config)
    imagegen.push(with_creds, repo, image, "v1")
    assert with_creds.manifest_get(repo, "v1").digest == image.digest
    assert with_creds.tag_list(repo) == ["v1"]
    creds = f"--creds={auth_registry.username}:{auth_registry.password}"
    assert skopeo_inspect_digest(f"{auth_registry.host}/{repo}:v1", extra=[creds]) == str(image.digest)

    wrong = auth_registry.docker_config(tmp_path / "bad" / "config.json", password="not-the-password")
    with pytest.raises(RegistryDenied) as caught:
        OciRegistry(auth_registry.host, scheme="http", docker_config=wrong).manifest_get(repo, "v1")
    assert caught.value.status == 401
    assert "not-the-password" not in caught.value.diagnostics()
    assert f"docker login {auth_registry.host}" in caught.value.diagnostics()

    (tmp_path / "none").mkdir()
    with pytest.raises(RegistryDenied):
        OciRegistry(auth_registry.host, scheme="http", docker_config=tmp_path / "none").tag_list(repo)


def test_unreachable_registry_is_one_line_unavailable() -> None:
    port = free_port()
    reg = OciRegistry(f"127.0.0.1:{port}", scheme="http", max_retries=1, backoff=0.001)
    with pytest.raises(Unavailable) as caught:
        reg.manifest_get("demo/app", "v1")
    assert isinstance(caught.value, RegistryError)
    assert "\n" not in caught.value.message
    assert f"registry 127.0.0.1:{port} is unreachable (connection refused)" in caught.value.message


def test_fixture_restart_and_garbage_collect(tmp_path: Path) -> None:
    process = RegistryProcess(tmp_path / "gc")
    process.start()
    try:
        reg = OciRegistry(process.host, scheme="http", backoff=0.01)
        repo = repo_name()
        keep = imagegen.make_image("gc-keep", layers=1)
        drop = imagegen.make_image("gc-drop", layers=1)
        imagegen.push(reg, repo, keep, "keep")
        imagegen.push(reg, repo, drop, "drop")
        first_pid = process.pid
        reg.manifest_delete(repo, drop.digest)
        process.garbage_collect()
        assert process.pid not in (None, first_pid)
        assert reg.manifest_get(repo, "keep").digest == keep.digest
        for blob in drop.manifest.layers:
            assert reg.blob_head(repo, blob.digest) is None
        for blob in keep.manifest.layers:
            assert reg.blob_head(repo, blob.digest) == blob.size
    finally:
        process.stop()
    assert process.pid is None


def test_skopeo_copy_between_registries_keeps_digest(
    registry: RegistryProcess, registry2: RegistryProcess, oci: OciRegistry
) -> None:
    repo = repo_name()
    image = imagegen.make_image("skopeo-copy", layers=1)
    imagegen.push(oci, repo, image, "v1")
    skopeo_copy(f"{registry.host}/{repo}:v1", f"{registry2.host}/{repo}:v1")
    other = OciRegistry(registry2.host, scheme="http")
    assert other.manifest_get(repo, "v1").digest == image.digest
    other.close()
