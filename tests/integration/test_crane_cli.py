"""The crane-like commands from the outside: digest, copy, tags, untag, against real registries."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from boda.registry import open_registry
from boda.services.imagegen import make_image, make_index, push
from fixtures.registry import RegistryProcess, free_port, skopeo_copy, skopeo_inspect_digest

pytestmark = pytest.mark.registry


def unique(name: str) -> str:
    return f"crane-{uuid.uuid4().hex[:8]}/{name}"


def seed(reg: RegistryProcess, repo: str, image: Any, tag: str) -> str:
    registry = open_registry(reg.url)
    try:
        return str(push(registry, repo, image, tag=tag))
    finally:
        registry.close()


@pytest.mark.parametrize("multiarch", [False, True], ids=["image", "index"])
def test_copy_within_one_registry_moves_zero_blob_bytes(
    registry: RegistryProcess, boda: Any, tmp_path: Path, multiarch: bool
) -> None:
    src, dst = unique("app"), unique("app-prd")
    image = make_index("crane-zero") if multiarch else make_image("crane-zero", layers=3, layer_size=64 << 10)
    digest = seed(registry, src, image, "v1")
    run = boda("copy", f"{registry.host}/{src}:v1", f"{registry.host}/{dst}:release", "--json")
    assert run.code == 0, run.err
    report = run.json
    assert report["digest"] == digest and report["skipped"] is False
    assert report["bytes_uploaded"] == 0 and report["blobs_uploaded"] == 0
    assert report["blobs_mounted"] == report["blobs_total"] > 0
    assert report["manifests_put"] == (3 if multiarch else 1)
    assert report["requests"] > 0
    # An independent client sees the same digest and pulls every blob of every platform.
    assert skopeo_inspect_digest(f"{registry.host}/{dst}:release") == digest
    skopeo_copy(f"{registry.host}/{dst}@{digest}", f"oci:{tmp_path / 'pulled'}:x", extra=["--all"])
    # Copying again is a no-op.
    again = boda("copy", f"{registry.host}/{src}:v1", f"{registry.host}/{dst}:release", "--json")
    assert again.code == 0 and again.json["skipped"] is True


def test_copy_across_registries_streams_only_missing_blobs(
    registry: RegistryProcess, registry2: RegistryProcess, boda: Any, tmp_path: Path
) -> None:
    repo = unique("cross")
    image = make_index("crane-cross", layers=2, layer_size=300 << 10)
    digest = seed(registry, repo, image, "v1")
    run = boda("copy", f"{registry.host}/{repo}:v1", f"{registry2.host}/{repo}:v1", "--json", "-j", "3")
    assert run.code == 0, run.err
    total = sum(len(b) for b in image.all_blobs().values())
    assert run.json["bytes_uploaded"] == total and run.json["blobs_mounted"] == 0
    assert skopeo_inspect_digest(f"{registry2.host}/{repo}:v1") == digest
    skopeo_copy(f"{registry2.host}/{repo}@{digest}", f"oci:{tmp_path / 'pulled'}:x", extra=["--all"])
    # A second image sharing layers: only the new blobs travel.
    other = seed(registry, repo, make_index("crane-cross", layers=2, layer_size=300 << 10), "v1-again")
    assert other == digest
    again = boda("copy", f"{registry.host}/{repo}:v1-again", f"{registry2.host}/{repo}:v2", "--json")
    assert again.json["bytes_uploaded"] == 0


def test_copy_from_skopeo_pushed_image_and_into_a_layout(
    registry: RegistryProcess, boda: Any, tmp_path: Path
) -> None:
    from boda.services.imagegen import write_oci_layout

    repo = unique("skopeo")
    image = make_image("crane-skopeo", layers=3)
    write_oci_layout(tmp_path / "src", image, "v1")
    skopeo_copy(f"oci:{tmp_path / 'src'}:v1", f"{registry.host}/{repo}:v1")
    digest = boda("digest", f"{registry.host}/{repo}:v1").out.strip()
    assert digest == str(image.digest)
    layout = f"oci-layout:{tmp_path / 'layout'}:{repo}:v1"
    run = boda("copy", f"{registry.host}/{repo}:v1", layout, "--json")
    assert run.code == 0 and run.json["digest"] == digest
    assert boda("digest", layout).out.strip() == digest
    assert skopeo_inspect_digest(f"oci:{tmp_path / 'layout' / repo}:v1") == digest


def test_tags_and_untag_keep_other_tags(registry: RegistryProcess, boda: Any) -> None:
    repo = unique("tags")
    digest = seed(registry, repo, make_image("crane-tags"), "b")
    for tag in ("a", "c"):
        assert boda("copy", f"{registry.host}/{repo}:b", f"{registry.host}/{repo}:{tag}").code == 0
    listed = boda("tags", f"{registry.host}/{repo}", "--json")
    assert listed.json == {"repository": f"{registry.host}/{repo}", "tags": ["a", "b", "c"]}
    run = boda("untag", f"{registry.host}/{repo}:b", "--json")  # registry 2.8 refuses tag DELETE
    assert run.code == 0 and run.json["digest"] == digest and run.json["image_deleted"] is False
    assert boda("tags", f"{registry.host}/{repo}").out.split() == ["a", "c"]
    assert boda("digest", f"{registry.host}/{repo}:a").out.strip() == digest
    assert boda("digest", f"{registry.host}/{repo}@{digest}", "--json").json["digest"] == digest


def test_auth_registry_with_docker_config(
    auth_registry: RegistryProcess, boda: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = unique("auth")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "good"))
    auth_registry.docker_config(tmp_path / "good" / "config.json")
    registry = open_registry(auth_registry.url)
    try:
        digest = str(push(registry, repo, make_image("crane-auth"), tag="v1"))
    finally:
        registry.close()
    assert boda("digest", f"{auth_registry.host}/{repo}:v1").out.strip() == digest
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "bad"))
    auth_registry.docker_config(tmp_path / "bad" / "config.json", password="wrong-password")
    run = boda("digest", f"{auth_registry.host}/{repo}:v1")
    assert run.code == 6 and len(run.err.strip().splitlines()) == 1
    assert "wrong-password" not in run.err and auth_registry.password not in run.err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["digest", "Not A Ref"], 2),
        (["digest", "127.0.0.1:5000/app@sha256:1234"], 2),
        (["digest", "http://127.0.0.1:5000/app:v1"], 2),
        (["copy", "127.0.0.1:5000/a:v1", "127.0.0.1:5000/UPPER:v1"], 2),
        (["tags", "127.0.0.1:5000/app:v1"], 2),
        (["untag", "127.0.0.1:5000/app"], 2),
        (["digest", "registry.example.com:5000/app:v1", "--bogus"], 2),
    ],
)
def test_bad_references(boda: Any, args: list[str], code: int) -> None:
    run = boda(*args)
    assert run.code == code and run.out == ""
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err


def test_unreachable_and_missing(registry: RegistryProcess, boda: Any) -> None:
    run = boda("digest", f"127.0.0.1:{free_port()}/app:v1")
    assert run.code == 6 and len(run.err.strip().splitlines()) == 1
    run = boda("digest", f"{registry.host}/{unique('none')}:v1")
    assert run.code == 4 and len(run.err.strip().splitlines()) == 1
    run = boda("untag", f"{registry.host}/{unique('none')}:v1")
    assert run.code == 4
