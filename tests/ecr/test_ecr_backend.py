"""The ECR backend against moto in server mode, through real boto3 clients.

Workarounds for moto's gaps are named as in tests/fixtures/moto.py (MOTO-DIGEST, MOTO-TAG-MOVE,
MOTO-IMMUTABLE, ...). The backend itself is written for real ECR.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from boda.config import Config, EcrSettings
from boda.errors import (
    EXIT_CONFLICT,
    EXIT_NOT_FOUND,
    Conflict,
    DigestMismatch,
    NotFound,
    PolicyError,
    Refused,
)
from boda.locations import RegistryLocation
from boda.registry import open_registry
from boda.registry.base import (
    BatchDelete,
    BlobCollector,
    ImageLister,
    LifecyclePolicyStore,
    Registry,
    TagDeleted,
)
from boda.registry.copy import copy_image
from boda.registry.ecr import EcrRegistry
from boda.services.context import Context, repository_settings
from boda.types import OCI_MANIFEST, Digest
from fixtures.moto import HOST, make_manifest, seed_image

pytestmark = pytest.mark.ecr

POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "expire untagged images after 14 days",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        }
    ]
}


@pytest.fixture
def ecr(ecr_env: str) -> Iterator[EcrRegistry]:
    registry = open_registry(f"ecr://{HOST}")
    assert isinstance(registry, EcrRegistry)
    yield registry
    registry.close()


def test_opens_from_url_with_region_and_env_endpoint(ecr: EcrRegistry, ecr_env: str) -> None:
    assert ecr.name == HOST
    assert (ecr.account, ecr.region) == ("123456789012", "us-east-1")
    # No endpoint_url of boda's own: boto3 resolved AWS_ENDPOINT_URL from the environment.
    assert ecr.client.meta.endpoint_url == ecr_env
    # max_attempts counts retries: botocore reports 11 attempts in total.
    assert ecr.client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}


def test_image_list_fields(ecr: EcrRegistry, ecr_client: Any) -> None:
    ecr_client.create_repository(repositoryName="shop/api")
    first = seed_image(ecr_client, "shop/api", make_manifest("one"), "daf46a8f")
    ecr_client.put_image(  # a second tag on the same image
        repositoryName="shop/api",
        imageManifest=first.raw.decode(),
        imageTag="dev",
        imageDigest=str(first.digest),
    )
    second = seed_image(ecr_client, "shop/api", make_manifest("two"), "0123abcd")

    records = {r.digest: r for r in ecr.image_list("shop/api")}

    assert set(records) == {first.digest, second.digest}
    one = records[first.digest]
    assert one.tags == ("daf46a8f", "dev")
    assert one.media_type == OCI_MANIFEST
    assert one.pushed_at is not None and one.pushed_at.tzinfo is not None
    assert one.size is None and isinstance(one.image_size, int)
    assert one.status == "ACTIVE"
    assert records[second.digest].tags == ("0123abcd",)
    assert ecr.stats.requests >= 1


def test_image_list_of_unknown_repository_is_not_found(ecr: EcrRegistry) -> None:
    with pytest.raises(NotFound) as caught:
        ecr.image_list("no/such")
    assert caught.value.exit_code == EXIT_NOT_FOUND


def test_manifest_round_trip_keeps_exact_bytes(ecr: EcrRegistry, ecr_client: Any) -> None:
    ecr_client.create_repository(repositoryName="app")
    manifest = seed_image(ecr_client, "app", make_manifest("exact"), "v1")
    assert b"\n  " in manifest.raw  # indented: any re-serialisation would change the digest

    by_tag = ecr.manifest_get("app", "v1")
    by_digest = ecr.manifest_get("app", str(manifest.digest))
    head = ecr.manifest_head("app", "v1")

    assert by_tag.raw == manifest.raw and by_digest.raw == manifest.raw
    assert by_tag.digest == manifest.digest
    assert head is not None and head.digest == manifest.digest and head.media_type == OCI_MANIFEST
    assert head.size is None  # describe_images knows no manifest size, and reading records a pull
    assert ecr.manifest_head("app", "missing") is None
    assert ecr.manifest_head("nope", "v1") is None
    with pytest.raises(NotFound):
        ecr.manifest_get("app", "missing")

    # Put the same bytes under a new tag: ECR reports the same digest, and they read back exact.
    assert ecr.manifest_put("app", "v2", by_tag) == manifest.digest
    assert ecr.manifest_get("app", "v2").raw == manifest.raw
    # Again: ImageAlreadyExistsException is success.
    assert ecr.manifest_put("app", "v2", by_tag) == manifest.digest
    assert ecr.tag_list("app") == ["v1", "v2"]


def test_manifest_put_by_digest_and_refuses_a_wrong_digest(ecr: EcrRegistry, ecr_client: Any) -> None:
    ecr_client.create_repository(repositoryName="app")
    manifest = make_manifest("untagged")
    assert ecr.manifest_put("app", str(manifest.digest), manifest) == manifest.digest
    assert ecr.manifest_get("app", str(manifest.digest)).raw == manifest.raw
    other = make_manifest("other")
    with pytest.raises(DigestMismatch):
        ecr.manifest_put("app", str(other.digest), manifest)


def test_tag_move_with_copy_image(ecr: EcrRegistry, ecr_client: Any) -> None:
    ecr_client.create_repository(repositoryName="app")
    # MOTO-TAG-MOVE: each image keeps its commit tag, so moving "prd" deletes nothing in moto either.
    old = seed_image(ecr_client, "app", make_manifest("old"), "c0ffee00")
    new = seed_image(ecr_client, "app", make_manifest("new"), "c0ffee01")
    ecr.manifest_put("app", "prd", old)

    report = copy_image(ecr, "app", str(new.digest), ecr, "app", "prd", expect=new.digest)

    assert report.manifests_put == 1 and report.blobs_total == 0
    head = ecr.manifest_head("app", "prd")
    assert head is not None and head.digest == new.digest
    assert ecr.manifest_head("app", "c0ffee00") is not None  # the old image is still there


def test_immutable_tag_is_a_conflict_explaining_mutability(ecr: EcrRegistry, ecr_client: Any) -> None:
    ecr_client.create_repository(repositoryName="locked", imageTagMutability="IMMUTABLE")
    seed_image(ecr_client, "locked", make_manifest("a"), "prd")
    moving = make_manifest("b")

    # MOTO-IMMUTABLE: moto raises ImageAlreadyExistsException here, real ECR
    # ImageTagAlreadyExistsException; the backend reads the tag back and gives the same Conflict.
    with pytest.raises(Conflict) as caught:
        ecr.manifest_put("locked", "prd", moving)

    assert caught.value.exit_code == EXIT_CONFLICT
    text = caught.value.diagnostics()
    assert "immutable" in text and "exclusion filter" in text and "MUTABLE" in text
    head = ecr.manifest_head("locked", "prd")
    assert head is not None and head.digest != moving.digest


def test_tag_delete_and_manifest_delete(ecr: EcrRegistry, ecr_client: Any) -> None:
    ecr_client.create_repository(repositoryName="app")
    image = seed_image(ecr_client, "app", make_manifest("x"), "keep")
    ecr.manifest_put("app", "drop", image)

    assert ecr.tag_delete("app", "drop") == TagDeleted("drop", image.digest, image_deleted=False)
    assert ecr.tag_list("app") == ["keep"]
    with pytest.raises(NotFound):
        ecr.tag_delete("app", "drop")

    ecr.manifest_delete("app", image.digest)
    assert ecr.image_list("app") == []
    with pytest.raises(NotFound):
        ecr.manifest_delete("app", image.digest)


def test_removing_the_last_tag_is_refused_unless_the_image_may_go(ecr: EcrRegistry, ecr_client: Any) -> None:
    ecr_client.create_repository(repositoryName="app")
    image = seed_image(ecr_client, "app", make_manifest("last"), "only")

    with pytest.raises(Refused, match="would delete the image") as caught:
        ecr.tag_delete("app", "only")
    assert caught.value.exit_code == 3 and str(image.digest) in caught.value.message
    assert ecr.tag_list("app") == ["only"]  # nothing changed

    assert ecr.tag_delete("app", "only", keep_image=False) == TagDeleted(
        "only", image.digest, image_deleted=True
    )
    assert ecr.image_list("app") == []


def test_capabilities(ecr: EcrRegistry) -> None:
    assert isinstance(ecr, Registry) and isinstance(ecr, ImageLister)
    assert ecr.lists_every_manifest and ecr.has_push_times
    assert isinstance(ecr, LifecyclePolicyStore) and isinstance(ecr, BatchDelete)
    assert ecr.delete_batch_size == 100 and not isinstance(ecr, BlobCollector)


def test_batch_delete_reports_every_outcome(ecr: EcrRegistry, ecr_client: Any) -> None:
    ecr_client.create_repository(repositoryName="bulk")
    digests = [seed_image(ecr_client, "bulk", make_manifest(f"m{i}"), f"t{i}").digest for i in range(205)]
    absent = [Digest.of(f"absent {i}".encode()) for i in range(2)]
    calls: list[int] = []
    ecr.client.meta.events.register(
        "before-parameter-build.ecr.BatchDeleteImage",
        lambda params, **_: calls.append(len(params["imageIds"])),
    )
    wanted = digests + absent
    size = ecr.delete_batch_size
    outcomes = [
        o
        for start in range(0, len(wanted), size)
        for o in ecr.manifest_delete_batch("bulk", wanted[start : start + size])
    ]

    assert calls == [100, 100, 7]
    assert [o.digest for o in outcomes] == wanted
    assert {o.status for o in outcomes[:205]} == {"deleted"}
    assert [(o.status, o.code) for o in outcomes[205:]] == [("not_found", "ImageNotFound")] * 2
    assert ecr.image_list("bulk") == []
    with pytest.raises(ValueError, match="at most 100"):
        ecr.manifest_delete_batch("bulk", [Digest.of(str(i).encode()) for i in range(101)])
    assert ecr.manifest_delete_batch("bulk", []) == []


def test_repository_created_on_first_put_with_settings(ecr_env: str, ecr_client: Any, tmp_path: Path) -> None:
    policy = tmp_path / "lifecycle.json"
    policy.write_text(json.dumps(POLICY, indent=2))
    config = Config(ecr=EcrSettings(tag_mutability="IMMUTABLE", scan_on_push=True, lifecycle_policy=policy))
    ecr = EcrRegistry(HOST, settings=repository_settings(config))
    try:
        manifest = make_manifest("first")
        assert ecr.manifest_put("shop/api-prd", "daf46a8f", manifest) == manifest.digest

        repo = ecr_client.describe_repositories(repositoryNames=["shop/api-prd"])["repositories"][0]
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert json.loads(ecr.lifecycle_policy("shop/api-prd") or "") == POLICY
        assert ecr.ensure_repository("shop/api-prd") is False
    finally:
        ecr.close()


def test_invalid_lifecycle_policy_creates_nothing(ecr_env: str, ecr_client: Any, tmp_path: Path) -> None:
    policy = tmp_path / "lifecycle.json"
    policy.write_text('{"rules": []}')
    config = Config(
        registry=RegistryLocation.parse(f"ecr://{HOST}"), ecr=EcrSettings(lifecycle_policy=policy)
    )
    with Context(config) as ctx, pytest.raises(PolicyError, match="rules must be a non-empty list") as caught:
        ctx.registry.manifest_put("new-repo", "v1", make_manifest("z"))
    assert caught.value.exit_code == 2 and str(policy) in caught.value.message
    assert ecr_client.describe_repositories()["repositories"] == []


def test_lifecycle_policy_absent_is_none(ecr: EcrRegistry, ecr_client: Any) -> None:
    ecr_client.create_repository(repositoryName="app")
    assert ecr.lifecycle_policy("app") is None
    with pytest.raises(NotFound):
        ecr.lifecycle_policy("no-such-repo")


def test_referrers_from_the_fallback_tag(ecr: EcrRegistry, ecr_client: Any) -> None:
    # moto never returns subjectManifestDigest (gap 4), so only the `sha256-<hex>` index is seen here;
    # the subjectManifestDigest path is covered in test_ecr_stubbed.py.
    ecr_client.create_repository(repositoryName="app")
    image = seed_image(ecr_client, "app", make_manifest("subject"), "v1")
    signature = seed_image(
        ecr_client, "app", make_manifest("sig", subject=image, artifact_type="application/x.sig"), None
    )
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [signature.descriptor().to_json()],
    }
    from boda.types import Manifest

    seed_image(ecr_client, "app", Manifest.from_json(index), image.digest.tag_form)

    found = ecr.referrers("app", image.digest)
    assert [d.digest for d in found] == [signature.digest]
    assert ecr.referrers("app", image.digest, artifact_type="application/other") == []
    assert ecr.referrers("app", signature.digest) == []


def test_service_specific_endpoint_override_wins(ecr_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens here
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", ecr_env)
    ecr = EcrRegistry(HOST)
    try:
        assert ecr.client.meta.endpoint_url == ecr_env
        assert ecr.manifest_head("app", "v1") is None  # answered by moto: no repository
    finally:
        ecr.close()


def test_untag_refuses_the_last_tag_on_ecr_unless_told_to_delete(
    ecr_env: str, ecr_client: Any, boda: Any
) -> None:
    ecr_client.create_repository(repositoryName="shop/api")
    only = seed_image(ecr_client, "shop/api", make_manifest("only"), "v1")
    shared = seed_image(ecr_client, "shop/api", make_manifest("shared"), "a")
    seed_image(ecr_client, "shop/api", shared, "b")

    refused = boda("untag", f"{HOST}/shop/api:v1")
    assert refused.code == 3 and refused.out == ""
    assert len(refused.err.strip().splitlines()) == 1 and "would delete the image" in refused.err
    assert "--delete-image" in refused.err and str(only.digest) in refused.err
    listed = ecr_client.describe_images(repositoryName="shop/api")["imageDetails"]
    assert {d["imageDigest"] for d in listed} == {str(only.digest), str(shared.digest)}  # nothing changed

    kept = boda("untag", f"{HOST}/shop/api:a", "--json")
    assert kept.code == 0, kept.err
    assert kept.json == {
        "reference": f"{HOST}/shop/api:a",
        "tag": "a",
        "digest": str(shared.digest),
        "image_deleted": False,
    }

    deleted = boda("untag", f"{HOST}/shop/api:v1", "--delete-image")
    assert deleted.code == 0, deleted.err
    assert deleted.out.strip() == f"untagged {HOST}/shop/api:v1 ({only.digest}), and the image with it"
    listed = ecr_client.describe_images(repositoryName="shop/api")["imageDetails"]
    assert [(d["imageDigest"], d["imageTags"]) for d in listed] == [(str(shared.digest), ["b"])]
