"""The oci backend against a mocked HTTP layer (respx): protocol edge cases registry 2.8 cannot show."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from boda.errors import (
    DigestMismatch,
    NotFound,
    RegistryDenied,
    RegistryError,
    Unavailable,
    UnusableManifest,
)
from boda.locations import redact_url
from boda.registry._errors import SAFE_QUERY
from boda.registry._retry import parse_retry_after
from boda.registry.base import (
    BatchDelete,
    BlobCollector,
    ImageLister,
    LifecyclePolicyStore,
    Registry,
    TagDeleted,
)
from boda.registry.oci import EMPTY_DIGEST, OciRegistry
from boda.types import ACCEPT_MANIFESTS, OCI_INDEX, OCI_MANIFEST, Digest, Manifest

HOST = "registry.test"
BASE = f"https://{HOST}"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM = "application/spdx+json"


def image(seed: str = "x", subject: Manifest | None = None) -> Manifest:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": str(Digest.of(b"c")),
            "size": 1,
        },
        "layers": [],
        "annotations": {"seed": seed},
    }
    if subject is not None:
        doc["artifactType"] = SIG
        doc["subject"] = subject.descriptor().to_json()
    return Manifest.from_json(doc)


def served(manifest: Manifest, *, digest: str | None = None) -> httpx.Response:
    return httpx.Response(
        200,
        content=manifest.raw,
        headers={
            "Content-Type": manifest.media_type,
            "Docker-Content-Digest": digest or str(manifest.digest),
        },
    )


def head_of(manifest: Manifest) -> httpx.Response:
    return httpx.Response(
        200,
        headers={
            "Content-Type": manifest.media_type,
            "Docker-Content-Digest": str(manifest.digest),
            "Content-Length": str(manifest.size),
        },
    )


def index_of(*entries: dict[str, object]) -> dict[str, object]:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}


def entry(digest: Digest, artifact_type: str) -> dict[str, object]:
    return {"mediaType": OCI_MANIFEST, "digest": str(digest), "size": 10, "artifactType": artifact_type}


@pytest.fixture(autouse=True)
def no_docker_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "docker-empty"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def reg(delays: list[float]) -> Iterator[OciRegistry]:
    registry = OciRegistry(HOST, max_retries=3, backoff=0.01)
    registry.transport.sleep = delays.append
    yield registry
    registry.close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


# -- manifests -------------------------------------------------------------------------------------


def test_head_and_get_send_the_full_accept_list(reg: OciRegistry, router: respx.MockRouter) -> None:
    m = image()
    head = router.head(f"{BASE}/v2/a/b/manifests/v1").mock(return_value=head_of(m))
    get = router.get(f"{BASE}/v2/a/b/manifests/v1").mock(return_value=served(m))
    desc = reg.manifest_head("a/b", "v1")
    assert desc is not None and (desc.digest, desc.size, desc.media_type) == (m.digest, m.size, OCI_MANIFEST)
    assert reg.manifest_get("a/b", "v1").raw == m.raw
    assert head.calls.last.request.headers["Accept"] == ACCEPT_MANIFESTS
    assert get.calls.last.request.headers["Accept"] == ACCEPT_MANIFESTS


def test_head_without_digest_header_falls_back_to_get(reg: OciRegistry, router: respx.MockRouter) -> None:
    m = image()
    router.head(f"{BASE}/v2/a/manifests/v1").mock(return_value=httpx.Response(200))
    get = router.get(f"{BASE}/v2/a/manifests/v1").mock(return_value=served(m))
    desc = reg.manifest_head("a", "v1")
    assert desc is not None and desc.digest == m.digest and get.call_count == 1


def test_head_of_missing_manifest_is_none(reg: OciRegistry, router: respx.MockRouter) -> None:
    router.head(f"{BASE}/v2/a/manifests/v1").mock(return_value=httpx.Response(404))
    assert reg.manifest_head("a", "v1") is None


def test_get_by_digest_rejects_other_bytes(reg: OciRegistry, router: respx.MockRouter) -> None:
    wanted, other = image("wanted"), image("other")
    router.get(f"{BASE}/v2/a/manifests/{wanted.digest}").mock(
        return_value=served(other, digest=str(wanted.digest))
    )
    with pytest.raises(DigestMismatch):
        reg.manifest_get("a", str(wanted.digest))


def test_get_by_tag_checks_docker_content_digest(reg: OciRegistry, router: respx.MockRouter) -> None:
    m = image()
    route = router.get(f"{BASE}/v2/a/manifests/v1")
    route.mock(return_value=served(m, digest=str(image("liar").digest)))
    with pytest.raises(DigestMismatch, match="reports digest"):
        reg.manifest_get("a", "v1")
    route.mock(return_value=httpx.Response(200, content=m.raw, headers={"Content-Type": OCI_MANIFEST}))
    assert reg.manifest_get("a", "v1").digest == m.digest  # no header: nothing to compare


def test_put_sends_media_type_and_returns_registry_digest(reg: OciRegistry, router: respx.MockRouter) -> None:
    m = image()
    reported = image("elsewhere").digest
    route = router.put(f"{BASE}/v2/a/manifests/v1")
    route.mock(return_value=httpx.Response(201, headers={"Docker-Content-Digest": str(reported)}))
    assert reg.manifest_put("a", "v1", m) == reported
    request = route.calls.last.request
    assert request.headers["Content-Type"] == OCI_MANIFEST and request.content == m.raw
    route.mock(return_value=httpx.Response(201))
    assert reg.manifest_put("a", "v1", m) == m.digest


def test_missing_manifest_error_message(reg: OciRegistry, router: respx.MockRouter) -> None:
    body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {"Tag": "v1"}}]}
    router.get(f"{BASE}/v2/x/manifests/v1").mock(return_value=httpx.Response(404, json=body))
    with pytest.raises(NotFound) as caught:
        reg.manifest_get("x", "v1")
    error = caught.value
    assert isinstance(error, RegistryError)
    assert (
        error.message == "GET https://registry.test/v2/x/manifests/v1: 404 MANIFEST_UNKNOWN: manifest unknown"
    )
    assert (error.method, error.status, error.code_names) == ("GET", 404, ("MANIFEST_UNKNOWN",))


def test_head_error_notes_that_head_has_no_body(reg: OciRegistry, router: respx.MockRouter) -> None:
    router.head(f"{BASE}/v2/x/manifests/v1").mock(return_value=httpx.Response(400))
    with pytest.raises(
        RegistryError, match=r"^HEAD https://registry.test/v2/x/manifests/v1: 400 Bad Request \(a HEAD"
    ):
        reg.manifest_head("x", "v1")


def test_delete_missing_digest_is_not_found(reg: OciRegistry, router: respx.MockRouter) -> None:
    d = image().digest
    router.get(f"{BASE}/v2/a/manifests/{d}").mock(return_value=httpx.Response(404))
    with pytest.raises(NotFound):
        reg.manifest_delete("a", d)


# -- tags ------------------------------------------------------------------------------------------


def test_tag_list_follows_relative_links_and_sorts(reg: OciRegistry, router: respx.MockRouter) -> None:
    first = router.get(f"{BASE}/v2/a/tags/list", params={"n": "2", "last": "b"})
    first.mock(return_value=httpx.Response(200, json={"name": "a", "tags": ["c"]}))
    router.get(f"{BASE}/v2/a/tags/list").mock(
        return_value=httpx.Response(
            200,
            json={"name": "a", "tags": ["v2", "b"]},
            headers={"Link": '</v2/a/tags/list?n=2&last=b>; rel="next"'},
        )
    )
    assert reg.tag_list("a") == ["b", "c", "v2"]
    assert first.call_count == 1


def test_tag_list_null_and_unknown_repository(reg: OciRegistry, router: respx.MockRouter) -> None:
    router.get(f"{BASE}/v2/empty/tags/list").mock(
        return_value=httpx.Response(200, json={"name": "e", "tags": None})
    )
    router.get(f"{BASE}/v2/nope/tags/list").mock(
        return_value=httpx.Response(
            404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}
        )
    )
    assert reg.tag_list("empty") == []
    with pytest.raises(NotFound, match="NAME_UNKNOWN"):
        reg.tag_list("nope")


def test_tag_delete_native(reg: OciRegistry, router: respx.MockRouter) -> None:
    route = router.delete(f"{BASE}/v2/a/manifests/v1").mock(return_value=httpx.Response(202))
    assert reg.tag_delete("a", "v1") == TagDeleted("v1", None, image_deleted=False)
    assert route.call_count == 1


def test_capabilities(reg: OciRegistry) -> None:
    assert isinstance(reg, Registry) and isinstance(reg, ImageLister)
    assert not reg.lists_every_manifest and not reg.has_push_times
    assert not isinstance(reg, BatchDelete | BlobCollector | LifecyclePolicyStore)


def test_tag_delete_refused_uses_a_unique_dummy_manifest(reg: OciRegistry, router: respx.MockRouter) -> None:
    original = image()
    refused = {"errors": [{"code": "DIGEST_INVALID", "message": "provided digest did not match"}]}
    router.delete(f"{BASE}/v2/a/manifests/v1").mock(return_value=httpx.Response(400, json=refused))
    router.head(f"{BASE}/v2/a/manifests/v1").mock(return_value=head_of(original))
    router.head(f"{BASE}/v2/a/blobs/{EMPTY_DIGEST}").mock(
        return_value=httpx.Response(200, headers={"Content-Length": "2"})
    )
    put = router.put(f"{BASE}/v2/a/manifests/v1").mock(return_value=httpx.Response(201))
    delete_dummy = router.delete(url__regex=rf"{BASE}/v2/a/manifests/sha256:[0-9a-f]{{64}}$")
    delete_dummy.mock(return_value=httpx.Response(202))
    assert reg.tag_delete("a", "v1") == TagDeleted("v1", original.digest, image_deleted=False)
    dummy = Manifest.from_bytes(put.calls.last.request.content)
    assert dummy.annotations["dev.boda.untag"] == "v1"
    assert dummy.config is not None and dummy.config.digest == EMPTY_DIGEST
    assert delete_dummy.calls.last.request.url.path == f"/v2/a/manifests/{dummy.digest}"
    assert dummy.digest != original.digest
    reg.tag_delete("a", "v1")
    assert Manifest.from_bytes(put.calls.last.request.content).digest != dummy.digest  # unique each time


def test_tag_delete_of_missing_tag_on_refusing_registry(reg: OciRegistry, router: respx.MockRouter) -> None:
    router.delete(f"{BASE}/v2/a/manifests/v1").mock(return_value=httpx.Response(405))
    router.head(f"{BASE}/v2/a/manifests/v1").mock(return_value=httpx.Response(404))
    with pytest.raises(NotFound):
        reg.tag_delete("a", "v1")


def test_image_list_groups_tags_by_digest(reg: OciRegistry, router: respx.MockRouter) -> None:
    one, two = image("1"), image("2")
    router.get(f"{BASE}/v2/a/tags/list").mock(
        return_value=httpx.Response(200, json={"tags": ["b", "a", "c"]})
    )
    router.head(f"{BASE}/v2/a/manifests/a").mock(return_value=head_of(one))
    router.head(f"{BASE}/v2/a/manifests/b").mock(return_value=head_of(two))
    router.head(f"{BASE}/v2/a/manifests/c").mock(return_value=head_of(one))
    records = {r.digest: r for r in reg.image_list("a")}
    assert records[one.digest].tags == ("a", "c") and records[two.digest].tags == ("b",)
    assert records[one.digest].pushed_at is None and records[one.digest].size == one.size


# -- blobs -----------------------------------------------------------------------------------------


def test_mount_201_is_true(reg: OciRegistry, router: respx.MockRouter) -> None:
    d = Digest.of(b"layer")
    route = router.post(f"{BASE}/v2/dst/blobs/uploads/", params={"mount": str(d), "from": "src/app"})
    route.mock(return_value=httpx.Response(201, headers={"Location": f"/v2/dst/blobs/{d}"}))
    assert reg.blob_mount("dst", d, "src/app") is True
    assert reg.stats.bytes_sent == 0


def test_mount_202_cancels_the_session_at_the_joined_location(
    reg: OciRegistry, router: respx.MockRouter
) -> None:
    d = Digest.of(b"layer")
    router.post(f"{BASE}/v2/dst/blobs/uploads/").mock(
        return_value=httpx.Response(
            202, headers={"Location": "/v2/dst/blobs/uploads/u-1?_state=abc", "Range": "0-0"}
        )
    )
    cancel = router.delete(f"{BASE}/v2/dst/blobs/uploads/u-1", params={"_state": "abc"})
    cancel.mock(return_value=httpx.Response(204))
    assert reg.blob_mount("dst", d, "src") is False
    assert cancel.call_count == 1


def test_monolithic_upload_appends_digest_to_state_query(reg: OciRegistry, router: respx.MockRouter) -> None:
    data = b"0123456789" * 10
    d = Digest.of(data)
    router.post(f"{BASE}/v2/a/blobs/uploads/").mock(
        return_value=httpx.Response(202, headers={"Location": "u-1?_state=s1"})
    )
    put = router.put(f"{BASE}/v2/a/blobs/uploads/u-1", params={"_state": "s1", "digest": str(d)})
    put.mock(return_value=httpx.Response(201))
    reg.blob_put("a", d, len(data), iter([data[:30], data[30:]]))
    request = put.calls.last.request
    assert request.content == data and request.headers["Content-Length"] == str(len(data))
    assert reg.stats.bytes_sent == len(data)


def test_chunked_upload_patches_with_content_range(reg: OciRegistry, router: respx.MockRouter) -> None:
    data = bytes(range(250))
    d = Digest.of(data)
    reg.monolithic_limit, reg.chunk_size = 100, 100
    router.post(f"{BASE}/v2/a/blobs/uploads/").mock(
        return_value=httpx.Response(202, headers={"Location": "/up/0"})
    )
    ranges: list[str] = []

    def patch(request: httpx.Request) -> httpx.Response:
        ranges.append(request.headers["Content-Range"])
        step = int(request.url.path.rsplit("/", 1)[1]) + 1
        return httpx.Response(202, headers={"Location": f"/up/{step}"})

    router.patch(url__regex=rf"{BASE}/up/\d$").mock(side_effect=patch)
    final = router.put(f"{BASE}/up/3", params={"digest": str(d)}).mock(return_value=httpx.Response(201))
    reg.blob_put("a", d, len(data), iter([data[:42], data[42:199], data[199:]]))
    assert ranges == ["0-99", "100-199", "200-249"]
    assert final.call_count == 1 and final.calls.last.request.content == b""
    assert reg.stats.bytes_sent == len(data)


def test_streamed_upload_is_not_retried_and_session_is_cancelled(
    reg: OciRegistry, router: respx.MockRouter, delays: list[float]
) -> None:
    data = b"payload"
    d = Digest.of(data)
    router.post(f"{BASE}/v2/a/blobs/uploads/").mock(
        return_value=httpx.Response(202, headers={"Location": "/up/1"})
    )
    put = router.put(f"{BASE}/up/1", params={"digest": str(d)}).mock(return_value=httpx.Response(503))
    cancel = router.delete(f"{BASE}/up/1").mock(return_value=httpx.Response(204))
    with pytest.raises(RegistryError, match="503"):
        reg.blob_put("a", d, len(data), iter([data]))
    assert put.call_count == 1 and delays == [] and cancel.call_count == 1


def test_upload_refuses_a_stream_of_the_wrong_size(reg: OciRegistry, router: respx.MockRouter) -> None:
    router.post(f"{BASE}/v2/a/blobs/uploads/").mock(
        return_value=httpx.Response(202, headers={"Location": "/up/1"})
    )
    router.put(url__startswith=f"{BASE}/up/1").mock(return_value=httpx.Response(201))
    cancel = router.delete(f"{BASE}/up/1").mock(return_value=httpx.Response(204))
    with pytest.raises(DigestMismatch, match="longer than its declared 3 bytes"):
        reg.blob_put("a", Digest.of(b"abcd"), 3, iter([b"abcd"]))
    assert cancel.call_count == 1


@pytest.mark.parametrize(
    ("sent", "cut", "needle"),
    [(240, 120, "has 240 bytes, not the declared 250"), (260, 120, "longer"), (260, 250, "longer")],
)
def test_chunked_upload_refuses_a_stream_of_the_wrong_size(
    reg: OciRegistry, router: respx.MockRouter, sent: int, cut: int, needle: str
) -> None:
    data = bytes(range(250)) + bytes(10)
    reg.monolithic_limit, reg.chunk_size = 100, 100
    router.post(f"{BASE}/v2/a/blobs/uploads/").mock(
        return_value=httpx.Response(202, headers={"Location": "/up/0"})
    )
    router.patch(url__regex=rf"{BASE}/up/\d$").mock(
        return_value=httpx.Response(202, headers={"Location": "/up/1"})
    )
    final = router.put(url__startswith=f"{BASE}/up/").mock(return_value=httpx.Response(201))
    cancel = router.delete(url__startswith=f"{BASE}/up/").mock(return_value=httpx.Response(204))
    with pytest.raises(DigestMismatch, match=needle):
        reg.blob_put("a", Digest.of(data[:250]), 250, iter([data[:sent][:cut], data[:sent][cut:]]))
    assert final.call_count == 0 and cancel.call_count == 1


def test_blob_get_follows_redirect_without_forwarding_authorization(
    reg: OciRegistry,
    router: respx.MockRouter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = tmp_path / "docker-creds"
    config.mkdir()
    (config / "config.json").write_text(
        json.dumps({"auths": {HOST: {"auth": base64.b64encode(b"u:p").decode()}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    data = b"blob-bytes" * 1000
    d = Digest.of(data)

    def registry_side(request: httpx.Request) -> httpx.Response:
        if "Authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return httpx.Response(307, headers={"Location": "https://cdn.test/blob?sig=secret"})

    router.get(f"{BASE}/v2/a/blobs/{d}").mock(side_effect=registry_side)
    cdn = router.get("https://cdn.test/blob").mock(return_value=httpx.Response(200, content=data))
    with reg.blob_get("a", d) as chunks:
        assert b"".join(chunks) == data
    assert "Authorization" not in cdn.calls.last.request.headers
    assert reg.stats.bytes_received == len(data)
    assert "cdn.test/blob?sig=***" in caplog.text and "secret" not in caplog.text  # httpx logs URLs
    assert base64.b64encode(b"u:p").decode() not in caplog.text


# -- referrers -------------------------------------------------------------------------------------


def test_native_referrers_filtered_by_the_registry(reg: OciRegistry, router: respx.MockRouter) -> None:
    subject = image()
    sig = entry(image("s").digest, SIG)
    route = router.get(f"{BASE}/v2/a/referrers/{subject.digest}", params={"artifactType": SIG})
    route.mock(
        return_value=httpx.Response(
            200,
            json=index_of(sig),
            headers={"Content-Type": OCI_INDEX, "OCI-Filters-Applied": "artifactType"},
        )
    )
    found = reg.referrers("a", subject.digest, SIG)
    assert [d.digest for d in found] == [image("s").digest]
    assert route.calls.last.request.headers["Accept"] == OCI_INDEX


def test_native_referrers_filtered_here_and_paginated(reg: OciRegistry, router: respx.MockRouter) -> None:
    subject = image()
    sig, sbom, sig2 = (
        entry(image("s").digest, SIG),
        entry(image("b").digest, SBOM),
        entry(image("s2").digest, SIG),
    )
    page2 = router.get(f"{BASE}/v2/a/referrers/{subject.digest}", params={"page": "2"})
    page2.mock(return_value=httpx.Response(200, json=index_of(sig2)))
    router.get(f"{BASE}/v2/a/referrers/{subject.digest}").mock(
        return_value=httpx.Response(
            200,
            json=index_of(sig, sbom),
            headers={"Link": f'</v2/a/referrers/{subject.digest}?page=2>; rel="next"'},
        )
    )
    assert [d.digest for d in reg.referrers("a", subject.digest, SIG)] == [
        image("s").digest,
        image("s2").digest,
    ]
    assert len(reg.referrers("a", subject.digest)) == 3


def test_referrers_fallback_tag_when_api_missing_is_cached(
    reg: OciRegistry, router: respx.MockRouter
) -> None:
    subject = image()
    api = router.get(f"{BASE}/v2/a/referrers/{subject.digest}")
    api.mock(return_value=httpx.Response(404, text="404 page not found"))
    fallback_index = Manifest.from_json(
        index_of(entry(image("s").digest, SIG), entry(image("b").digest, SBOM))
    )
    router.get(f"{BASE}/v2/a/manifests/{subject.digest.tag_form}").mock(return_value=served(fallback_index))
    router.get(f"{BASE}/v2/a/manifests/{image('other').digest.tag_form}").mock(
        return_value=httpx.Response(404)
    )
    assert [d.artifact_type for d in reg.referrers("a", subject.digest)] == [SIG, SBOM]
    assert [d.artifact_type for d in reg.referrers("a", subject.digest, SBOM)] == [SBOM]
    assert reg.referrers("a", image("other").digest) == []
    assert api.call_count == 1


def test_fallback_tag_holding_an_image_means_no_referrers(reg: OciRegistry, router: respx.MockRouter) -> None:
    subject = image()
    reg._referrers_api = False
    router.get(f"{BASE}/v2/a/manifests/{subject.digest.tag_form}").mock(
        return_value=served(image("cosign-like"))
    )
    assert reg.referrers("a", subject.digest) == []


def test_put_with_subject_maintains_fallback_tag(reg: OciRegistry, router: respx.MockRouter) -> None:
    subject = image()
    existing = entry(image("old").digest, SBOM)
    referrer = image("sig", subject=subject)
    router.put(f"{BASE}/v2/a/manifests/{referrer.digest}").mock(return_value=httpx.Response(201))
    tag_url = f"{BASE}/v2/a/manifests/{subject.digest.tag_form}"
    router.get(tag_url).mock(return_value=served(Manifest.from_json(index_of(existing))))
    put_index = router.put(tag_url).mock(return_value=httpx.Response(201))
    reg.manifest_put("a", str(referrer.digest), referrer)
    written = Manifest.from_bytes(put_index.calls.last.request.content)
    assert put_index.calls.last.request.headers["Content-Type"] == OCI_INDEX
    assert [c.digest for c in written.children] == [image("old").digest, referrer.digest]
    added = written.children[1]
    assert added.artifact_type == SIG and added.annotations == {"seed": "sig"}


def test_put_with_subject_on_registry_with_api_leaves_tags_alone(
    reg: OciRegistry, router: respx.MockRouter
) -> None:
    subject = image()
    referrer = image("sig", subject=subject)
    router.put(f"{BASE}/v2/a/manifests/{referrer.digest}").mock(
        return_value=httpx.Response(201, headers={"OCI-Subject": str(subject.digest)})
    )
    reg.manifest_put("a", str(referrer.digest), referrer)  # any other request would be unmocked


def test_delete_referrer_removes_its_fallback_entry(reg: OciRegistry, router: respx.MockRouter) -> None:
    subject = image()
    referrer = image("sig", subject=subject)
    keep = entry(image("keep").digest, SBOM)
    router.get(f"{BASE}/v2/a/manifests/{referrer.digest}").mock(return_value=served(referrer))
    delete = router.delete(f"{BASE}/v2/a/manifests/{referrer.digest}").mock(return_value=httpx.Response(202))
    tag_url = f"{BASE}/v2/a/manifests/{subject.digest.tag_form}"
    router.get(tag_url).mock(
        return_value=served(Manifest.from_json(index_of(keep, entry(referrer.digest, SIG))))
    )
    put_index = router.put(tag_url).mock(return_value=httpx.Response(201))
    reg.manifest_delete("a", referrer.digest)
    assert delete.call_count == 1
    assert [c.digest for c in Manifest.from_bytes(put_index.calls.last.request.content).children] == [
        image("keep").digest
    ]


# -- retries ---------------------------------------------------------------------------------------


def test_429_honours_retry_after(reg: OciRegistry, router: respx.MockRouter, delays: list[float]) -> None:
    m = image()
    route = router.get(f"{BASE}/v2/a/manifests/v1")
    route.mock(side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), served(m)])
    assert reg.manifest_get("a", "v1").digest == m.digest
    assert delays == [2.0] and route.call_count == 2


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True), now=now) == 0.0
    assert parse_retry_after("86400") == 60.0  # capped
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_5xx_retried_with_bounded_backoff_then_success(
    reg: OciRegistry, router: respx.MockRouter, delays: list[float]
) -> None:
    m = image()
    route = router.get(f"{BASE}/v2/a/manifests/v1")
    route.mock(side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(500), served(m)])
    assert reg.manifest_get("a", "v1").digest == m.digest
    assert route.call_count == 4
    assert len(delays) == 3
    for attempt, delay in enumerate(delays):
        assert 0.01 * 2**attempt / 2 <= delay <= 0.01 * 2**attempt


def test_retries_exhausted_raise_registry_error(reg: OciRegistry, router: respx.MockRouter) -> None:
    route = router.get(f"{BASE}/v2/a/manifests/v1").mock(return_value=httpx.Response(503))
    with pytest.raises(RegistryError) as caught:
        reg.manifest_get("a", "v1")
    assert route.call_count == 4  # one try and max_retries=3 retries
    assert caught.value.status == 503 and isinstance(caught.value, Unavailable)
    assert caught.value.message.startswith("GET https://registry.test/v2/a/manifests/v1: 503")


def test_500_is_not_retried_for_post(reg: OciRegistry, router: respx.MockRouter) -> None:
    route = router.post(f"{BASE}/v2/a/blobs/uploads/").mock(return_value=httpx.Response(500))
    with pytest.raises(RegistryError):
        reg.blob_mount("a", Digest.of(b"x"), "b")
    assert route.call_count == 1


def test_transport_errors_are_retried_for_replayable_requests(
    reg: OciRegistry, router: respx.MockRouter, delays: list[float]
) -> None:
    m = image()
    route = router.get(f"{BASE}/v2/a/manifests/v1")
    route.mock(side_effect=[httpx.ConnectError("connection reset"), httpx.ReadTimeout("slow"), served(m)])
    assert reg.manifest_get("a", "v1").digest == m.digest
    assert len(delays) == 2


def test_a_refused_connection_is_retried_once_not_the_whole_budget(
    reg: OciRegistry, router: respx.MockRouter, delays: list[float]
) -> None:
    route = router.get(f"{BASE}/v2/a/tags/list")
    route.mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(RegistryError, match="unreachable"):
        reg.tag_list("a")
    assert route.call_count == 2 and len(delays) == 1


# -- errors and secrets ----------------------------------------------------------------------------


def test_connection_refused_is_one_clear_line() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reg = OciRegistry(f"127.0.0.1:{port}", scheme="http", max_retries=1, backoff=0.001)
    with pytest.raises(Unavailable) as caught:
        reg.tag_list("a")
    error = caught.value
    assert isinstance(error, RegistryError)
    assert error.message == (
        f"registry 127.0.0.1:{port} is unreachable (connection refused): GET http://127.0.0.1:{port}/v2/a/tags/list"
    )
    assert error.exit_code == 6


def test_timeout_names_host_and_limit(reg: OciRegistry, router: respx.MockRouter) -> None:
    router.get(f"{BASE}/v2/a/tags/list").mock(side_effect=httpx.ConnectTimeout("timed out"))
    with pytest.raises(
        RegistryError, match=r"^registry registry.test is unreachable \(no answer within 30 s\)"
    ):
        reg.tag_list("a")


def test_credentials_never_appear_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, router: respx.MockRouter
) -> None:
    secret = "pa55-w0rd-xyz"
    encoded = base64.b64encode(f"user:{secret}".encode()).decode()
    config = tmp_path / "creds"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {HOST: {"auth": encoded}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    router.get(f"{BASE}/v2/a/manifests/v1").mock(
        return_value=httpx.Response(
            401, headers={"WWW-Authenticate": 'Basic realm="r"'}, json={"errors": [{"code": "UNAUTHORIZED"}]}
        )
    )
    reg = OciRegistry(HOST)
    with pytest.raises(RegistryDenied) as caught:
        reg.manifest_get("a", "v1")
    shown = " ".join([caught.value.diagnostics(), repr(caught.value), str(caught.value.args), repr(reg)])
    assert secret not in shown and encoded not in shown
    assert caught.value.message == "GET https://registry.test/v2/a/manifests/v1: 401 UNAUTHORIZED"


def test_redact_url_hides_the_password_and_state() -> None:
    url = "https://user:pw@reg.test/v2/a/blobs/uploads/u?_state=SECRET&digest=sha256:ab&token=t0k"
    assert (
        redact_url(url, keep_query=SAFE_QUERY)
        == "https://user:***@reg.test/v2/a/blobs/uploads/u?_state=***&digest=sha256:ab&token=***"
    )


def test_upload_error_message_has_redacted_location(reg: OciRegistry, router: respx.MockRouter) -> None:
    data = b"abc"
    d = Digest.of(data)
    router.post(f"{BASE}/v2/a/blobs/uploads/").mock(
        return_value=httpx.Response(202, headers={"Location": "/up/1?_state=STATEVALUE"})
    )
    router.put(url__startswith=f"{BASE}/up/1").mock(
        return_value=httpx.Response(
            400, json={"errors": [{"code": "DIGEST_INVALID", "message": "digest mismatch"}]}
        )
    )
    router.delete(url__startswith=f"{BASE}/up/1").mock(return_value=httpx.Response(204))
    with pytest.raises(RegistryError) as caught:
        reg.blob_put("a", d, len(data), [data])
    assert "STATEVALUE" not in caught.value.message
    assert caught.value.message == (
        f"PUT https://registry.test/up/1?_state=***&digest={d}: 400 DIGEST_INVALID: digest mismatch"
    )


def test_stats_count_every_request(reg: OciRegistry, router: respx.MockRouter) -> None:
    m = image()
    router.get(f"{BASE}/v2/a/manifests/v1").mock(side_effect=[httpx.Response(503), served(m)])
    reg.manifest_get("a", "v1")
    requests, sent, received = reg.stats.snapshot()
    assert (requests, sent) == (2, 0) and received == m.size


def test_concurrency_is_capped_per_host(router: respx.MockRouter) -> None:
    reg = OciRegistry(HOST, max_concurrency=2)
    m = image()
    tags = [f"t{i}" for i in range(8)]
    lock = threading.Lock()
    in_flight = [0, 0]  # now, peak

    def slow_head(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return head_of(m)

    router.get(f"{BASE}/v2/a/tags/list").mock(return_value=httpx.Response(200, json={"tags": tags}))
    router.head(url__startswith=f"{BASE}/v2/a/manifests/").mock(side_effect=slow_head)
    (record,) = reg.image_list("a")
    assert record.tags == tuple(tags)
    assert in_flight[1] == 2


def test_known_referrers_api_skips_the_lookup_before_delete(
    reg: OciRegistry, router: respx.MockRouter
) -> None:
    subject = image()
    router.get(f"{BASE}/v2/a/referrers/{subject.digest}").mock(
        return_value=httpx.Response(200, json=index_of())
    )
    delete = router.delete(f"{BASE}/v2/a/manifests/{subject.digest}").mock(return_value=httpx.Response(202))
    assert reg.referrers("a", subject.digest) == []
    reg.manifest_delete("a", subject.digest)  # no GET of the manifest: the registry keeps referrers itself
    assert delete.call_count == 1 and len(router.calls) == 2


class _BrokenBody(httpx.SyncByteStream):
    """A body that sends a few bytes and then loses the connection."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"tags":'
        raise httpx.ReadError("connection reset by peer")


def test_a_body_that_breaks_off_is_retried(
    reg: OciRegistry, router: respx.MockRouter, delays: list[float]
) -> None:
    route = router.get(f"{BASE}/v2/a/tags/list")
    route.mock(
        side_effect=[
            httpx.Response(200, stream=_BrokenBody()),
            httpx.Response(200, json={"tags": ["v1"]}),
        ]
    )
    assert reg.tag_list("a") == ["v1"]
    assert route.call_count == 2 and len(delays) == 1


def test_retry_transport_composes_with_any_transport() -> None:
    from boda.registry._retry import RetryPolicy, RetryTransport

    answers = iter([503, 429, 200])
    waits: list[float] = []
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        status = next(answers)
        return httpx.Response(status, headers={"Retry-After": "1"} if status == 429 else {})

    policy = RetryPolicy(max_retries=3, backoff=0.01, sleep=waits.append)
    with httpx.Client(transport=RetryTransport(httpx.MockTransport(handler), policy)) as client:
        assert client.put("http://x.test/a", content=b"body").status_code == 200
        assert seen == [b"body"] * 3 and len(waits) == 2 and waits[1] == 1.0
        answers = iter([503, 200])
        streamed = client.put("http://x.test/a", content=iter([b"one-shot"]))
    assert streamed.status_code == 503  # a stream is never replayed
    assert len(waits) == 2


# -- hostile manifests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"<html>login first</html>", "is not valid JSON"),
        (b"[1, 2]", "is not a JSON object"),
        (b'{"schemaVersion":2,"manifests":[],"x":' + b"[" * 5000 + b"]" * 5000 + b"}", "nested more than 64"),
    ],
)
def test_a_manifest_that_is_no_manifest_is_a_registry_failure(
    reg: OciRegistry, router: respx.MockRouter, body: bytes, needle: str
) -> None:
    router.get(f"{BASE}/v2/a/manifests/v1").mock(
        return_value=httpx.Response(200, content=body, headers={"Content-Type": OCI_MANIFEST})
    )
    with pytest.raises(UnusableManifest, match=needle) as caught:
        reg.manifest_get("a", "v1")
    error = caught.value
    assert error.exit_code == 6 and "\n" not in error.message
    assert error.message.startswith("GET registry.test/a:v1 is no usable manifest")
    assert error.__cause__ is not None


class _Endless(httpx.SyncByteStream):
    """A manifest body of 35 MiB in 1 MiB chunks, counting how many were read."""

    def __init__(self) -> None:
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(35):
            self.sent += 1
            yield b" " * (1 << 20)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_huge_manifest_is_refused_while_it_streams(
    reg: OciRegistry, router: respx.MockRouter, declared: bool
) -> None:
    body = _Endless()
    headers = {"Content-Type": OCI_MANIFEST}
    if declared:
        headers["Content-Length"] = str(35 << 20)
    router.get(f"{BASE}/v2/a/manifests/v1").mock(
        return_value=httpx.Response(200, headers=headers, stream=body)
    )
    started = time.perf_counter()
    with pytest.raises(RegistryError, match="is larger than 4 MiB; refusing it") as caught:
        reg.manifest_get("a", "v1")
    assert time.perf_counter() - started < 2.0
    assert body.sent <= 5  # stopped just past the limit (nothing read when the size was declared)
    assert caught.value.exit_code == 6 and "\n" not in caught.value.message


def test_copy_of_a_hostile_manifest_is_one_line_exit_6(
    router: respx.MockRouter, boda: Any, tmp_path: Path
) -> None:
    hostile = b'{"schemaVersion":2,"layers":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    digest = Digest.of(hostile)
    router.head(f"{BASE}/v2/a/manifests/v1").mock(
        return_value=httpx.Response(
            200,
            headers={
                "Content-Type": OCI_MANIFEST,
                "Docker-Content-Digest": str(digest),
                "Content-Length": str(len(hostile)),
            },
        )
    )
    router.get(f"{BASE}/v2/a/manifests/{digest}").mock(
        return_value=httpx.Response(200, content=hostile, headers={"Content-Type": OCI_MANIFEST})
    )
    run = boda("copy", f"{HOST}/a:v1", f"oci-layout:{tmp_path / 'out'}:a:v1")
    assert run.code == 6 and run.out == ""
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err
    assert "no usable manifest" in run.err
