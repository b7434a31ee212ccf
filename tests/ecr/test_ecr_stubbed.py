"""ECR paths moto cannot serve: botocore's Stubber for the ECR API, respx for the `/v2/` API.

MOTO-NO-V2 (tests/fixtures/moto.py): moto has no registry API, no layer API and no
get_account_setting, and never returns subjectManifestDigest, lastRecordedPullTime or imageStatus.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import botocore.retries.adaptive
import httpx
import pytest
import respx
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from boda.errors import (
    EXIT_CONFLICT,
    EXIT_UNAVAILABLE,
    Conflict,
    RegistryDenied,
    RegistryError,
    UnusableManifest,
)
from boda.registry.copy import copy_image
from boda.registry.ecr import ACCEPTED_MEDIA_TYPES, PUT_IMAGE_RATE, EcrRegistry, TokenBucket
from boda.types import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Digest, Manifest
from fixtures.moto import HOST, make_manifest

ACCOUNT = "123456789012"
PROXY = f"https://{HOST}"
PASSWORD = "ecr-token-secret"
BASIC = "Basic " + base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()
S3 = "https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Credentials that sign but reach nothing: every call is stubbed or intercepted."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class Clock:
    """A fake monotonic clock; `sleep` advances it and records the wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stubbed(aws_env: None, clock: Clock) -> Iterator[tuple[EcrRegistry, Stubber]]:
    ecr = EcrRegistry(
        HOST, put_limiter=TokenBucket(PUT_IMAGE_RATE, clock=clock, sleep=clock.sleep), clock=clock
    )
    with Stubber(ecr.client) as stubber:
        yield ecr, stubber
        stubber.assert_no_pending_responses()
    ecr.close()


def _image(seed: str) -> tuple[Manifest, dict[Digest, bytes]]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer bytes of {seed}".encode() * 50
    data = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": str(Digest.of(config)), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": str(Digest.of(layer)), "size": len(layer)}],
    }
    manifest = Manifest.from_bytes(json.dumps(data, indent=3).encode())
    return manifest, {Digest.of(config): config, Digest.of(layer): layer}


def _detail(repo: str, manifest: Manifest, tags: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "registryId": ACCOUNT,
        "repositoryName": repo,
        "imageDigest": str(manifest.digest),
        "imageTags": tags,
        "imageSizeInBytes": 1234,
        "imagePushedAt": datetime(2026, 1, 2, tzinfo=UTC),
        "imageManifestMediaType": manifest.media_type,
        **extra,
    }


def _token(expires: datetime | None = None) -> dict[str, Any]:
    return {
        "authorizationData": [
            {
                "authorizationToken": base64.b64encode(f"AWS:{PASSWORD}".encode()).decode(),
                "expiresAt": expires or datetime.now(UTC) + timedelta(hours=12),
                "proxyEndpoint": PROXY,
            }
        ]
    }


def _authorized(
    handler: Callable[[httpx.Request], httpx.Response],
) -> Callable[[httpx.Request], httpx.Response]:
    """ECR's `/v2/` answers 401 with a Basic challenge unless the request carries the token."""

    def check(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != BASIC:
            return httpx.Response(
                401, headers={"WWW-Authenticate": f'Basic realm="{PROXY}/",service="ecr.amazonaws.com"'}
            )
        return handler(request)

    return check


def _stub_copy_prologue(stubber: Stubber, manifest: Manifest) -> None:
    """Calls of copy_image before any blob moves: source head, target head, source manifest."""
    stubber.add_response(
        "describe_images",
        {"imageDetails": [_detail("shop/api", manifest, ["daf46a8f"])]},
        {
            "registryId": ACCOUNT,
            "repositoryName": "shop/api",
            "imageIds": [{"imageDigest": str(manifest.digest)}],
        },
    )
    stubber.add_client_error(
        "describe_images", "RepositoryNotFoundException", "no repository shop/api-prd", http_status_code=400
    )
    stubber.add_response(
        "batch_get_image",
        {
            "images": [
                {
                    "registryId": ACCOUNT,
                    "repositoryName": "shop/api",
                    "imageId": {"imageDigest": str(manifest.digest)},
                    "imageManifest": manifest.raw.decode(),
                    "imageManifestMediaType": manifest.media_type,
                }
            ],
            "failures": [],
        },
        {
            "registryId": ACCOUNT,
            "repositoryName": "shop/api",
            "imageIds": [{"imageDigest": str(manifest.digest)}],
            "acceptedMediaTypes": ACCEPTED_MEDIA_TYPES,
        },
    )
    # The target repository is missing: created on first use (strategy `repos`).
    stubber.add_client_error("describe_repositories", "RepositoryNotFoundException", "missing", 400)
    stubber.add_response(
        "create_repository",
        {"repository": {"repositoryName": "shop/api-prd", "imageTagMutability": "MUTABLE"}},
        {
            "registryId": ACCOUNT,
            "repositoryName": "shop/api-prd",
            "imageTagMutability": "MUTABLE",
            "imageScanningConfiguration": {"scanOnPush": False},
        },
    )


def _stub_put(stubber: Stubber, repo: str, manifest: Manifest, tag: str) -> None:
    stubber.add_response(
        "put_image",
        {
            "image": {
                "repositoryName": repo,
                "imageId": {"imageDigest": str(manifest.digest), "imageTag": tag},
            }
        },
        {
            "registryId": ACCOUNT,
            "repositoryName": repo,
            "imageManifest": manifest.raw.decode(),
            "imageManifestMediaType": manifest.media_type,
            "imageDigest": str(manifest.digest),
            "imageTag": tag,
        },
    )


def test_copy_streams_blobs_over_v2_with_the_token_when_mounting_is_disabled(
    stubbed: tuple[EcrRegistry, Stubber],
) -> None:
    ecr, stubber = stubbed
    manifest, blobs = _image("streamed")
    _stub_copy_prologue(stubber, manifest)
    stubber.add_response(
        "get_account_setting", {"name": "BLOB_MOUNTING", "value": "DISABLED"}, {"name": "BLOB_MOUNTING"}
    )
    stubber.add_response("get_authorization_token", _token(), {"registryIds": [ACCOUNT]})
    _stub_put(stubber, "shop/api-prd", manifest, "daf46a8f")

    uploaded: dict[str, bytes] = {}

    def start_upload(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            202, headers={"Location": f"/v2/shop/api-prd/blobs/uploads/{len(uploaded)}?_state=x"}
        )

    def finish_upload(request: httpx.Request) -> httpx.Response:
        uploaded[request.url.params["digest"]] = request.read()
        return httpx.Response(201)

    with respx.mock(assert_all_mocked=True) as router:
        router.head(url__regex=rf"^{PROXY}/v2/shop/api-prd/blobs/").mock(
            side_effect=_authorized(lambda r: httpx.Response(404))
        )
        for digest, data in blobs.items():
            # ECR redirects blob reads to S3; the token must not follow the redirect.
            router.get(f"{PROXY}/v2/shop/api/blobs/{digest}").mock(
                side_effect=_authorized(
                    lambda r, d=digest: httpx.Response(307, headers={"Location": f"{S3}/{d.hex}"})
                )
            )
            router.get(f"{S3}/{digest.hex}").mock(
                side_effect=lambda r, data=data: httpx.Response(
                    401 if "authorization" in r.headers else 200, content=data
                )
            )
        router.post(f"{PROXY}/v2/shop/api-prd/blobs/uploads/").mock(side_effect=_authorized(start_upload))
        router.put(url__regex=rf"^{PROXY}/v2/shop/api-prd/blobs/uploads/").mock(
            side_effect=_authorized(finish_upload)
        )

        report = copy_image(
            ecr, "shop/api", str(manifest.digest), ecr, "shop/api-prd", "daf46a8f", concurrency=1
        )

    assert report.blobs_uploaded == 2 and report.blobs_mounted == 0
    assert uploaded == {str(d): b for d, b in blobs.items()}
    assert report.bytes_uploaded == sum(len(b) for b in blobs.values())
    assert report.digest == str(manifest.digest)
    assert report.requests > 8  # ECR API calls and /v2/ requests share one counter


def test_copy_mounts_blobs_when_the_account_enables_blob_mounting(
    stubbed: tuple[EcrRegistry, Stubber],
) -> None:
    ecr, stubber = stubbed
    manifest, blobs = _image("mounted")
    _stub_copy_prologue(stubber, manifest)
    stubber.add_response(
        "get_account_setting", {"name": "BLOB_MOUNTING", "value": "ENABLED"}, {"name": "BLOB_MOUNTING"}
    )
    stubber.add_response("get_authorization_token", _token(), {"registryIds": [ACCOUNT]})
    _stub_put(stubber, "shop/api-prd", manifest, "daf46a8f")
    mounted: list[str] = []

    def mount(request: httpx.Request) -> httpx.Response:
        assert request.url.params["from"] == "shop/api"
        mounted.append(request.url.params["mount"])
        return httpx.Response(
            201, headers={"Location": f"/v2/shop/api-prd/blobs/{request.url.params['mount']}"}
        )

    with respx.mock(assert_all_mocked=True) as router:
        router.post(f"{PROXY}/v2/shop/api-prd/blobs/uploads/").mock(side_effect=_authorized(mount))
        report = copy_image(
            ecr, "shop/api", str(manifest.digest), ecr, "shop/api-prd", "daf46a8f", concurrency=1
        )

    assert report.blobs_mounted == 2 and report.blobs_uploaded == 0 and report.bytes_uploaded == 0
    assert sorted(mounted) == sorted(str(d) for d in blobs)


def test_blob_mounting_unreadable_means_streaming(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    stubber.add_client_error("get_account_setting", "AccessDeniedException", "not allowed", 400)
    assert ecr.blob_mounting_enabled() is False
    assert ecr.blob_mounting_enabled() is False  # asked once, cached


def test_authorization_token_is_renewed_before_it_expires(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    stubber.add_response("get_authorization_token", _token(datetime.now(UTC) + timedelta(minutes=2)))
    stubber.add_response("get_authorization_token", _token())
    digest = Digest.of(b"blob")
    with respx.mock(assert_all_mocked=True) as router:
        route = router.head(f"{PROXY}/v2/app/blobs/{digest}").mock(
            side_effect=_authorized(lambda r: httpx.Response(200, headers={"Content-Length": "4"}))
        )
        assert ecr.blob_head("app", digest) == 4  # the first token is about to expire: a second is fetched
        assert ecr.blob_head("app", digest) == 4  # the second is still good: no call left to stub
    assert route.call_count == 3  # 401 challenge, then two authorised requests


def test_batch_delete_reports_each_failure_with_its_code(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    digests = [Digest.of(f"image {i}".encode()) for i in range(100)]
    referenced, missing = digests[20], digests[21]
    stubber.add_response(
        "batch_delete_image",
        {
            "imageIds": [{"imageDigest": str(d)} for d in digests if d not in (referenced, missing)],
            "failures": [
                {
                    "imageId": {"imageDigest": str(referenced)},
                    "failureCode": "ImageReferencedByManifestList",
                    "failureReason": "Requested image referenced by manifest list: [sha256:abc]",
                },
                {
                    "imageId": {"imageDigest": str(missing)},
                    "failureCode": "ImageNotFound",
                    "failureReason": "Requested image not found",
                },
            ],
        },
        {
            "registryId": ACCOUNT,
            "repositoryName": "app",
            "imageIds": [{"imageDigest": str(d)} for d in digests],
        },
    )

    outcomes = ecr.manifest_delete_batch("app", digests + digests[:3])  # repeats are sent once

    assert [o.digest for o in outcomes] == digests
    by_digest = {o.digest: o for o in outcomes}
    assert (by_digest[referenced].status, by_digest[referenced].code) == (
        "failed",
        "ImageReferencedByManifestList",
    )
    assert "manifest list" in by_digest[referenced].reason
    assert by_digest[missing].status == "not_found"
    assert sum(o.status == "deleted" for o in outcomes) == 98


def test_a_failing_batch_delete_call_raises(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    stubber.add_client_error("batch_delete_image", "AccessDeniedException", "not allowed", 400)
    with pytest.raises(RegistryDenied, match="BatchDeleteImage"):
        ecr.manifest_delete_batch("app", [Digest.of(b"x")])


def test_tag_delete_failure_is_surfaced(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    manifest = make_manifest("tagged")
    stubber.add_response(
        "describe_images",
        {"imageDetails": [_detail("app", manifest, ["prd", "daf46a8f"])]},
        {"registryId": ACCOUNT, "repositoryName": "app", "imageIds": [{"imageTag": "prd"}]},
    )
    stubber.add_response(
        "batch_delete_image",
        {
            "failures": [
                {"imageId": {"imageTag": "prd"}, "failureCode": "InvalidImageTag", "failureReason": "bad"}
            ],
        },
        {"registryId": ACCOUNT, "repositoryName": "app", "imageIds": [{"imageTag": "prd"}]},
    )
    with pytest.raises(RegistryError, match="prd InvalidImageTag"):
        ecr.tag_delete("app", "prd")


def test_manifest_delete_failure_names_the_code_and_hints(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    digest = Digest.of(b"child")
    stubber.add_response(
        "batch_delete_image",
        {
            "failures": [
                {
                    "imageId": {"imageDigest": str(digest)},
                    "failureCode": "ImageReferencedByManifestList",
                    "failureReason": "referenced",
                }
            ]
        },
    )
    with pytest.raises(RegistryError) as caught:
        ecr.manifest_delete("app", digest)
    assert caught.value.exit_code == EXIT_UNAVAILABLE and caught.value.code_names == (
        "ImageReferencedByManifestList",
    )
    assert "1 of 1 not deleted" in caught.value.message and caught.value.hint is not None


def test_put_image_calls_are_spaced_by_the_rate_limiter(
    stubbed: tuple[EcrRegistry, Stubber], clock: Clock
) -> None:
    ecr, stubber = stubbed
    manifest = make_manifest("paced")
    stubber.add_response("describe_repositories", {"repositories": [{"repositoryName": "app"}]})
    for tag in ("a", "b", "c", "d"):
        _stub_put(stubber, "app", manifest, tag)
    started = clock.now
    for tag in ("a", "b", "c", "d"):
        assert ecr.manifest_put("app", tag, manifest) == manifest.digest
    assert clock.sleeps == [0.125, 0.125, 0.125]  # 8 per second, below ECR's PutImage quota of 10
    assert clock.now - started == pytest.approx(0.375)


def test_token_bucket_refills_and_allows_bursts(clock: Clock) -> None:
    bucket = TokenBucket(4.0, burst=2, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(4)] == [0.0, 0.0, 0.25, 0.25]
    clock.now += 10  # idle: the bucket refills to its burst, no further
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.25]
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_image_list_maps_every_ecr_field_and_serves_referrers(
    stubbed: tuple[EcrRegistry, Stubber], clock: Clock
) -> None:
    ecr, stubber = stubbed
    image = make_manifest("subject")
    signature = make_manifest(
        "sig", subject=image, artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json"
    )
    sbom = make_manifest("sbom", subject=image, artifact_type="application/spdx+json")
    pulled = datetime(2026, 3, 1, tzinfo=UTC)
    archived = datetime(2026, 4, 1, tzinfo=UTC)
    page = {
        "imageDetails": [
            _detail(
                "app",
                image,
                ["prd", "daf46a8f"],
                lastRecordedPullTime=pulled,
                imageStatus="ARCHIVED",
                lastArchivedAt=archived,
            ),
            _detail(
                "app",
                signature,
                [],
                subjectManifestDigest=str(image.digest),
                artifactMediaType="application/vnd.dev.cosign.artifact.sig.v1+json",
            ),
            _detail(
                "app",
                sbom,
                [],
                subjectManifestDigest=str(image.digest),
                artifactMediaType="application/spdx+json",
            ),
        ]
    }
    expected = {
        "registryId": ACCOUNT,
        "repositoryName": "app",
        "filter": {"tagStatus": "ANY", "imageStatus": "ANY"},
        "maxResults": 1000,
    }
    stubber.add_response("describe_images", page, expected)

    records = {r.digest: r for r in ecr.image_list("app")}
    one = records[image.digest]
    assert one.tags == ("daf46a8f", "prd")
    assert one.size is None  # imageSizeInBytes is the image's size, not the manifest's
    assert (one.last_pulled_at, one.status, one.last_archived_at, one.image_size) == (
        pulled,
        "ARCHIVED",
        archived,
        1234,
    )
    assert records[signature.digest].subject == image.digest
    assert records[signature.digest].artifact_type == "application/vnd.dev.cosign.artifact.sig.v1+json"

    # gc asks for the referrers of every image right after listing: served from that listing.
    found = ecr.referrers("app", image.digest)
    assert {d.digest for d in found} == {signature.digest, sbom.digest}
    only_sboms = ecr.referrers("app", image.digest, artifact_type="application/spdx+json")
    assert [d.digest for d in only_sboms] == [sbom.digest]
    assert ecr.referrers("app", signature.digest) == []

    clock.now += 60  # an old listing is read again
    stubber.add_response("describe_images", {"imageDetails": []}, expected)
    assert ecr.referrers("app", image.digest) == []


def test_head_uses_describe_images_so_no_pull_is_recorded(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    manifest = make_manifest("head")
    stubber.add_response(
        "describe_images",
        {"imageDetails": [_detail("app", manifest, ["prd"])]},
        {"registryId": ACCOUNT, "repositoryName": "app", "imageIds": [{"imageTag": "prd"}]},
    )
    stubber.add_client_error("describe_images", "ImageNotFoundException", "no such image", 400)
    head = ecr.manifest_head("app", "prd")
    assert head is not None and head.digest == manifest.digest and head.media_type == OCI_MANIFEST
    assert head.size is None  # not imageSizeInBytes (1234 here): that is the image, not the manifest
    assert ecr.manifest_head("app", "gone") is None


def test_access_denied_is_unavailable_with_a_credentials_hint(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    stubber.add_client_error("list_images", "AccessDeniedException", "User is not authorized", 400)
    with pytest.raises(RegistryDenied) as caught:
        ecr.tag_list("app")
    assert caught.value.exit_code == EXIT_UNAVAILABLE
    assert "AccessDeniedException" in caught.value.message and "credential chain" in (caught.value.hint or "")


def test_missing_credentials_are_unavailable(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    ecr = EcrRegistry(HOST)
    try:
        with pytest.raises(RegistryDenied) as caught:
            ecr.tag_list("app")
    finally:
        ecr.close()
    assert caught.value.exit_code == EXIT_UNAVAILABLE
    assert "no usable AWS credentials" in caught.value.message


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


@pytest.fixture
def wire(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[EcrRegistry, list[float], list[int]]]:
    """An EcrRegistry with its real retry configuration whose HTTP layer answers ThrottlingException
    for the first N requests. Retry sleeps are recorded instead of slept, and the adaptive mode's
    client-side rate limiter (which would wait in real time after throttling) is switched off."""
    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=sleeps.append, time=time.time))
    monkeypatch.setattr(
        botocore.retries.adaptive.ClientRateLimiter, "on_sending_request", lambda *a, **k: None
    )
    throttle = [0]
    ecr = EcrRegistry(HOST)

    def send(request: Any, **_: Any) -> Any:
        headers: Any = {"Content-Type": "application/x-amz-json-1.1"}
        if throttle[0] > 0:
            throttle[0] -= 1
            error = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            return AWSResponse(request.url, 400, headers, _Raw(json.dumps(error).encode()))
        listing = {"imageIds": [{"imageTag": "v1", "imageDigest": "sha256:" + "a" * 64}]}
        return AWSResponse(request.url, 200, headers, _Raw(json.dumps(listing).encode()))

    ecr.client.meta.events.register("before-send.ecr", send)
    yield ecr, sleeps, throttle
    ecr.close()


def test_throttling_is_retried(wire: tuple[EcrRegistry, list[float], list[int]]) -> None:
    ecr, sleeps, throttle = wire
    throttle[0] = 3
    assert ecr.tag_list("app") == ["v1"]
    assert len(sleeps) == 3
    assert ecr.stats.requests == 4


def test_endless_throttling_is_unavailable(wire: tuple[EcrRegistry, list[float], list[int]]) -> None:
    ecr, sleeps, throttle = wire
    throttle[0] = 1000
    with pytest.raises(RegistryError) as caught:
        ecr.tag_list("app")
    assert caught.value.exit_code == EXIT_UNAVAILABLE
    assert "ThrottlingException" in caught.value.message and "quota" in (caught.value.hint or "")
    assert ecr.stats.requests == 11 and len(sleeps) == 10


def test_put_image_sends_exact_manifest_and_digest(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    manifest = make_manifest("exact")
    stubber.add_response("describe_repositories", {"repositories": [{"repositoryName": "app"}]})
    stubber.add_response(
        "put_image",
        {"image": {"imageId": {"imageDigest": str(manifest.digest)}}},
        {
            "registryId": ACCOUNT,
            "repositoryName": "app",
            "imageManifest": manifest.raw.decode(),
            "imageManifestMediaType": OCI_MANIFEST,
            "imageDigest": str(manifest.digest),
        },
    )
    assert ecr.manifest_put("app", str(manifest.digest), manifest) == manifest.digest


def test_real_ecr_immutable_tag_error_is_a_conflict(stubbed: tuple[EcrRegistry, Stubber]) -> None:
    ecr, stubber = stubbed
    manifest = make_manifest("immutable")
    stubber.add_response("describe_repositories", {"repositories": [{"repositoryName": "app"}]})
    stubber.add_client_error(
        "put_image",
        "ImageTagAlreadyExistsException",
        "The image tag 'prd' already exists",
        400,
        expected_params={
            "registryId": ACCOUNT,
            "repositoryName": "app",
            "imageManifest": manifest.raw.decode(),
            "imageManifestMediaType": OCI_MANIFEST,
            "imageDigest": str(manifest.digest),
            "imageTag": "prd",
        },
    )
    with pytest.raises(Conflict) as caught:
        ecr.manifest_put("app", "prd", manifest)
    assert caught.value.exit_code == EXIT_CONFLICT
    assert "immutable" in caught.value.message and "exclusion" in caught.value.diagnostics()


def test_a_manifest_ecr_serves_that_is_no_manifest_is_a_registry_failure(
    stubbed: tuple[EcrRegistry, Stubber],
) -> None:
    ecr, stubber = stubbed
    stubber.add_response(
        "batch_get_image",
        {
            "images": [
                {
                    "registryId": ACCOUNT,
                    "repositoryName": "app",
                    "imageId": {"imageTag": "v1"},
                    "imageManifest": '{"schemaVersion":2,"x":' + "[" * 5000 + "]" * 5000 + "}",
                    "imageManifestMediaType": OCI_MANIFEST,
                }
            ],
            "failures": [],
        },
    )
    with pytest.raises(UnusableManifest, match="nested more than 64 levels") as caught:
        ecr.manifest_get("app", "v1")
    assert caught.value.exit_code == EXIT_UNAVAILABLE and "\n" not in caught.value.message
