"""The `ecr` backend: Amazon ECR through boto3, blobs through ECR's `/v2/` API.

Manifests, tags, deletes and the inventory use the ECR API (explicit semantics, batching, no token
plumbing); blobs go through the registry API with an ECR authorization token, reusing the `oci`
backend. ECR-specific behaviour, relied on below:

* `manifest_head` and `referrers` read `describe_images`, never `batch_get_image`: ECR records a
  pull (`lastRecordedPullTime`) on every BatchGetImage, so reading manifests to check a tag would
  defeat `sinceImagePulled` lifecycle rules. The size they report is therefore ECR's
  `imageSizeInBytes` (the image's compressed size), not the manifest's byte length; `manifest_get`
  returns the exact bytes.
* There is no untag in ECR: deleting an image's last tag deletes the image (see `tag_delete`).
* PutImage has a default quota of 10 calls per second and region; puts are spaced by a client-side
  token bucket at 8 per second. Every other call relies on botocore's adaptive retries.
* Cross-repository blob mounts work only when the account enabled `BLOB_MOUNTING`.

boto3 is imported here, and this module is imported only when an ECR registry is opened.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from boda.errors import (
    ConfigError,
    Conflict,
    DigestMismatch,
    ReferenceError_,
    RegistryDenied,
    RegistryDiagnostic,
    RegistryError,
    RegistryNotFound,
    UsageError,
)
from boda.registry import ECR_HOST
from boda.registry._auth import Credentials
from boda.registry.base import ImageRecord, RegistryStats
from boda.types import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Digest,
    Manifest,
    is_digest,
    validate_repository,
    validate_tag,
)

if TYPE_CHECKING:
    from mypy_boto3_ecr.client import ECRClient
    from mypy_boto3_ecr.type_defs import ImageDetailTypeDef, ImageIdentifierTypeDef

    from boda.config import EcrSettings
    from boda.registry.oci import OciRegistry

log = logging.getLogger(__name__)

#: Every manifest type boda handles; with fewer, ECR may answer with one platform of an index.
ACCEPTED_MEDIA_TYPES = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST]
#: ECR's maximum number of image ids per batch call (botocore does not enforce it).
BATCH_LIMIT = 100
#: Client-side PutImage rate, below ECR's default quota of 10 per second and region.
PUT_IMAGE_RATE = 8.0
#: Retries after the first attempt (botocore's `max_attempts`), in adaptive mode.
MAX_RETRIES = 10
#: How long an `image_list` result serves `referrers` before it is read again.
SNAPSHOT_SECONDS = 10.0
# Renew the authorization token (valid 12 hours) when less than this is left.
_TOKEN_MARGIN = timedelta(minutes=5)
_MAX_FAILURES_SHOWN = 3
_DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "MissingAuthenticationToken",
    }
)
_NOT_FOUND_CODES = frozenset(
    {"RepositoryNotFoundException", "ImageNotFoundException", "LifecyclePolicyNotFoundException"}
)
_CREDENTIALS_HINT = (
    "boda uses the AWS default credential chain: AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,"
    " ~/.aws, SSO, or an instance/task role"
)


class TokenBucket:
    """At most `rate` acquisitions per second on average, with bursts of up to `burst`.

    `acquire` reserves a slot and sleeps until it is due, outside the lock, so concurrent callers
    queue up in order. `clock` and `sleep` are injectable for tests.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for one token; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


def client_config() -> Config:
    """The botocore config of boda's ECR clients: adaptive retries, 10 attempts."""
    # A fresh dict each time: botocore rewrites the one it is given.
    return Config(retries={"mode": "adaptive", "max_attempts": MAX_RETRIES}, user_agent_extra="boda")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    text = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    return " ".join(text.split())[:300]


def _image_id(ref: str) -> ImageIdentifierTypeDef:
    if is_digest(ref):
        return {"imageDigest": ref}
    return {"imageTag": validate_tag(ref)}


def _describe(image_id: Any) -> str:
    if not isinstance(image_id, dict):
        return "?"
    if image_id.get("imageTag") and image_id.get("imageDigest"):
        return f"{image_id['imageTag']}@{image_id['imageDigest']}"
    return str(image_id.get("imageTag") or image_id.get("imageDigest") or "?")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _record(detail: ImageDetailTypeDef) -> ImageRecord:
    subject = detail.get("subjectManifestDigest")
    return ImageRecord(
        digest=Digest.parse(detail["imageDigest"]),
        tags=tuple(sorted(detail.get("imageTags") or ())),
        media_type=detail.get("imageManifestMediaType", ""),
        pushed_at=detail.get("imagePushedAt"),
        size=detail.get("imageSizeInBytes"),
        subject=Digest.parse(subject) if subject and is_digest(subject) else None,
        artifact_type=detail.get("artifactMediaType"),
        last_pulled_at=detail.get("lastRecordedPullTime"),
        status=detail.get("imageStatus", "ACTIVE"),
        last_archived_at=detail.get("lastArchivedAt"),
    )


class EcrRegistry:
    """One ECR registry (account and region), named by its host `ACCOUNT.dkr.ecr.REGION.amazonaws.com`.

    `settings` configure the repositories boda creates; `client` and `put_limiter` are injectable for
    tests. The client is built from the AWS default credential chain and honours the standard
    endpoint overrides (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_ECR) by itself.
    """

    def __init__(
        self,
        host: str,
        *,
        settings: EcrSettings | None = None,
        client: ECRClient | None = None,
        put_limiter: TokenBucket | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        match = ECR_HOST.match(host)
        if not match:
            raise UsageError(f"{host!r} is not an ECR registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com)")
        self.name = host
        self.account, self.region = match.group(1), match.group(2)
        self.stats = RegistryStats()
        self.settings = settings
        self._clock = clock
        self._put_limiter = put_limiter or TokenBucket(PUT_IMAGE_RATE)
        if client is None:
            try:
                client = boto3.session.Session().client(
                    "ecr", region_name=self.region, config=client_config()
                )
            except BotoCoreError as exc:
                raise self._boto_error("open", "", exc) from None
        self._client = client
        self._client.meta.events.register("before-send.ecr", self._count_request)
        self._lock = threading.Lock()
        self._known_repos: set[str] = set()
        self._snapshots: dict[str, tuple[float, list[ImageRecord]]] = {}
        self._blob_mounting: bool | None = None
        self._oci: OciRegistry | None = None
        self._token: tuple[Credentials, datetime] | None = None

    def __repr__(self) -> str:
        return f"EcrRegistry({self.name!r})"

    @property
    def client(self) -> ECRClient:
        """The boto3 ECR client."""
        return self._client

    def _count_request(self, **_: Any) -> None:
        """botocore event hook: one HTTP request (a retry counts again)."""
        self.stats.add(requests=1)

    # -- errors ------------------------------------------------------------------------------------

    @contextmanager
    def _api(self, operation: str, repo: str) -> Iterator[None]:
        """Map botocore failures of one call to boda.errors (one line each)."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(operation, repo, exc) from None
        except BotoCoreError as exc:
            raise self._boto_error(operation, repo, exc) from None

    def _where(self, operation: str, repo: str) -> str:
        return f"ECR {operation} {self.name}/{repo}" if repo else f"ECR {operation} {self.name}"

    def _client_error(self, operation: str, repo: str, exc: ClientError) -> RegistryError:
        code = _code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"{self._where(operation, repo)}: {code}: {_message(exc)}"
        codes = (RegistryDiagnostic(code, _message(exc)),)
        kwargs: dict[str, Any] = {"method": operation, "url": self.name, "status": status, "codes": codes}
        if code in _NOT_FOUND_CODES:
            return RegistryNotFound(message, **kwargs)
        if code in _DENIED_CODES:
            return RegistryDenied(message, hint=_CREDENTIALS_HINT, **kwargs)
        if "Throttl" in code or code in ("TooManyRequestsException", "LimitExceededException"):
            return RegistryError(
                message,
                hint=f"ECR kept throttling through {MAX_RETRIES} retries; retry later or ask"
                " AWS for a higher quota",
                **kwargs,
            )
        return RegistryError(message, **kwargs)

    def _boto_error(self, operation: str, repo: str, exc: BotoCoreError) -> RegistryError:
        detail = " ".join(str(exc).split())[:200]
        where = self._where(operation, repo)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return RegistryDenied(f"{where}: no usable AWS credentials ({detail})", hint=_CREDENTIALS_HINT)
        if isinstance(exc, NoRegionError):
            return RegistryError(f"{where}: {detail}")
        if isinstance(exc, BotoConnectionError):
            return RegistryError(
                f"{where}: ECR is unreachable ({detail})",
                hint="check the network, and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_ECR if you set them",
            )
        return RegistryError(f"{where}: {type(exc).__name__}: {detail}")

    # -- repositories ------------------------------------------------------------------------------

    def _mark_known(self, repo: str) -> None:
        with self._lock:
            self._known_repos.add(repo)

    def ensure_repository(self, repo: str) -> bool:
        """Create `repo` if it does not exist; True when this call created it.

        New repositories get the configured tag mutability, scan-on-push and lifecycle policy (the
        policy is validated before anything is created). An existing repository is left as it is.
        """
        validate_repository(repo)
        with self._lock:
            if repo in self._known_repos:
                return False
        try:
            with self._api("DescribeRepositories", repo):
                self._client.describe_repositories(registryId=self.account, repositoryNames=[repo])
        except RegistryNotFound:
            created = self._create_repository(repo)
        else:
            created = False
        self._mark_known(repo)
        return created

    def _create_repository(self, repo: str) -> bool:
        from boda.config import EcrSettings

        settings = self.settings or EcrSettings()
        if settings.tag_mutability.endswith("_WITH_EXCLUSION"):
            raise ConfigError(
                f"ecr.tag_mutability = {settings.tag_mutability!r} needs exclusion filters, which boda"
                f" does not invent; create repository {repo!r} yourself, or use MUTABLE or IMMUTABLE"
            )
        policy_text = self._policy_text(settings)
        try:
            with self._api("CreateRepository", repo):
                self._client.create_repository(
                    registryId=self.account,
                    repositoryName=repo,
                    imageTagMutability=settings.tag_mutability,  # type: ignore[arg-type]
                    imageScanningConfiguration={"scanOnPush": settings.scan_on_push},
                )
        except RegistryError as exc:
            if "RepositoryAlreadyExistsException" in exc.code_names:
                return False  # created concurrently by another runner: theirs stands
            raise
        log.info("created ECR repository %s/%s", self.name, repo)
        if policy_text is not None:
            self.put_lifecycle_policy(repo, policy_text)
        return True

    @staticmethod
    def _policy_text(settings: EcrSettings) -> str | None:
        if settings.lifecycle_policy is None:
            return None
        from boda.policy.document import parse_policy

        try:
            text = settings.lifecycle_policy.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"ecr.lifecycle_policy: cannot read {settings.lifecycle_policy}: {exc.strerror}"
            ) from None
        parse_policy(text)
        return text

    def lifecycle_policy(self, repo: str) -> str | None:
        """The repository's own lifecycle policy text; None when it has none."""
        try:
            with self._api("GetLifecyclePolicy", repo):
                response = self._client.get_lifecycle_policy(registryId=self.account, repositoryName=repo)
        except RegistryNotFound as exc:
            if "LifecyclePolicyNotFoundException" in exc.code_names:
                return None
            raise
        return response.get("lifecyclePolicyText") or None

    def put_lifecycle_policy(self, repo: str, text: str) -> None:
        """Store `text` as the repository's lifecycle policy (callers validate it first)."""
        with self._api("PutLifecyclePolicy", repo):
            self._client.put_lifecycle_policy(
                registryId=self.account, repositoryName=repo, lifecyclePolicyText=text
            )

    # -- manifests ---------------------------------------------------------------------------------

    def manifest_head(self, repo: str, ref: str) -> Descriptor | None:
        """Resolve with describe_images (no pull is recorded); the size is ECR's image size."""
        try:
            with self._api("DescribeImages", repo):
                response = self._client.describe_images(
                    registryId=self.account,
                    repositoryName=validate_repository(repo),
                    imageIds=[_image_id(ref)],
                )
        except RegistryNotFound:
            return None
        self._mark_known(repo)
        details = response.get("imageDetails") or []
        if not details:
            return None
        detail = details[0]
        digest = Digest.parse(detail["imageDigest"])
        if is_digest(ref) and Digest.parse(ref) != digest:
            raise DigestMismatch(f"{self.name}/{repo}@{ref}: ECR reports digest {digest}")
        media_type = detail.get("imageManifestMediaType")
        if not media_type:
            return self.manifest_get(repo, str(digest)).descriptor()
        return Descriptor(media_type, digest, detail.get("imageSizeInBytes") or 0)

    def manifest_get(self, repo: str, ref: str) -> Manifest:
        """batch_get_image with every manifest type; the exact string, verified against its digest."""
        with self._api("BatchGetImage", repo):
            response = self._client.batch_get_image(
                registryId=self.account,
                repositoryName=validate_repository(repo),
                imageIds=[_image_id(ref)],
                acceptedMediaTypes=ACCEPTED_MEDIA_TYPES,
            )
        self._mark_known(repo)
        images = response.get("images") or []
        if not images:
            failures = response.get("failures") or []
            code = failures[0].get("failureCode", "") if failures else ""
            reason = failures[0].get("failureReason", "") if failures else "no image returned"
            message = f"{self.name}/{repo}: no manifest {ref} ({code or 'unknown'}: {reason})"
            diagnostics = (RegistryDiagnostic(str(code), str(reason)),)
            if code in ("ImageNotFound", ""):
                raise RegistryNotFound(message, method="BatchGetImage", url=self.name, codes=diagnostics)
            raise RegistryError(message, method="BatchGetImage", url=self.name, codes=diagnostics)
        image = images[0]
        raw = image.get("imageManifest", "").encode("utf-8")
        media_type = image.get("imageManifestMediaType")
        if is_digest(ref):
            return Manifest.from_bytes(raw, media_type, expected=Digest.parse(ref))
        manifest = Manifest.from_bytes(raw, media_type)
        reported = image.get("imageId", {}).get("imageDigest")
        expected = Digest.parse(reported) if reported and is_digest(reported) else None
        if expected is not None and Digest.of(raw, expected.algorithm) != expected:
            raise DigestMismatch(
                f"{self.name}/{repo}:{ref}: ECR reports digest {reported} but the manifest hashes to"
                f" {manifest.digest}"
            )
        return manifest

    def manifest_put(self, repo: str, ref: str, manifest: Manifest) -> Digest:
        """put_image of the exact string under a tag (or by digest); returns the digest ECR reports.

        `imageDigest` is always sent, so ECR itself checks the bytes (ImageDigestDoesNotMatch).
        A missing repository is created first (strategy `repos`).
        """
        if is_digest(ref) and Digest.parse(ref) != manifest.digest:
            raise DigestMismatch(f"cannot store manifest {manifest.digest} under digest {ref}")
        try:
            text = manifest.raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ReferenceError_(
                f"manifest {manifest.digest} is not UTF-8 JSON; ECR cannot store it"
            ) from None
        self.ensure_repository(repo)
        tag = None if is_digest(ref) else validate_tag(ref)
        kwargs: dict[str, Any] = {
            "registryId": self.account,
            "repositoryName": repo,
            "imageManifest": text,
            "imageManifestMediaType": manifest.media_type,
            "imageDigest": str(manifest.digest),
        }
        if tag is not None:
            kwargs["imageTag"] = tag
        self._put_limiter.acquire()
        self._forget(repo)
        try:
            with self._api("PutImage", repo):
                try:
                    response = self._client.put_image(**kwargs)
                except ClientError as exc:
                    code = _code(exc)
                    if code == "ImageTagAlreadyExistsException" and tag is not None:
                        raise self._immutable(repo, tag, manifest.digest, None) from None
                    if code == "ImageDigestDoesNotMatchException":
                        raise DigestMismatch(
                            f"{self._where('PutImage', repo)}: ECR hashes the manifest to another digest than"
                            f" {manifest.digest}"
                        ) from None
                    raise
        except RegistryError as exc:
            if "ImageAlreadyExistsException" not in exc.code_names:
                raise
            return self._already_there(repo, tag, manifest)
        reported = response.get("image", {}).get("imageId", {}).get("imageDigest")
        return Digest.parse(reported) if reported else manifest.digest

    def _already_there(self, repo: str, tag: str | None, manifest: Manifest) -> Digest:
        """ImageAlreadyExistsException: this manifest already has this tag, so the put is done.

        The tag is read back anyway: a stand-in (moto) answers this for an immutable tag that
        names another image, and boda must not report a move that did not happen.
        """
        if tag is None:
            return manifest.digest
        head = self.manifest_head(repo, tag)
        if head is not None and head.digest != manifest.digest:
            raise self._immutable(repo, tag, manifest.digest, head.digest)
        return manifest.digest

    def _immutable(self, repo: str, tag: str, wanted: Digest, current: Digest | None) -> Conflict:
        names = f" (it names {current.short})" if current is not None else ""
        return Conflict(
            f"ECR refused to move tag {repo}:{tag}{names} to {wanted.short}: the repository's tags are"
            " immutable (imageTagMutability IMMUTABLE, or the tag matches no exclusion filter of"
            " IMMUTABLE_WITH_EXCLUSION / is matched by one of MUTABLE_WITH_EXCLUSION)",
            hint="environment tags move on every promotion with strategy 'tags': make the repository MUTABLE,"
            " or IMMUTABLE_WITH_EXCLUSION with exclusion filters matching the environment names"
            " (aws ecr put-image-tag-mutability); commit tags never move either way",
        )

    def manifest_delete(self, repo: str, digest: Digest) -> None:
        """Delete the image by digest: ECR removes it together with every tag on it."""
        failures = self._batch_delete(repo, [{"imageDigest": str(digest)}])[1]
        if failures:
            raise self._delete_error(repo, failures, 1)

    def manifest_delete_many(self, repo: str, digests: Sequence[Digest]) -> list[Digest]:
        """Delete many images by digest, 100 per call; returns those deleted.

        Every call is made even when an earlier one reports failures; then one error names each
        failed digest with ECR's code (e.g. ImageReferencedByManifestList: an index still lists it).
        """
        ids: list[ImageIdentifierTypeDef] = [{"imageDigest": str(d)} for d in dict.fromkeys(digests)]
        deleted, failures = self._batch_delete(repo, ids)
        if failures:
            raise self._delete_error(repo, failures, len(ids))
        return deleted

    def _batch_delete(
        self, repo: str, ids: Sequence[ImageIdentifierTypeDef]
    ) -> tuple[list[Digest], list[dict[str, Any]]]:
        validate_repository(repo)
        deleted: list[Digest] = []
        failures: list[dict[str, Any]] = []
        self._forget(repo)
        for chunk in _chunks(ids, BATCH_LIMIT):
            with self._api("BatchDeleteImage", repo):
                response = self._client.batch_delete_image(
                    registryId=self.account, repositoryName=repo, imageIds=list(chunk)
                )
            for image_id in response.get("imageIds") or []:
                value = image_id.get("imageDigest")
                if value and is_digest(value):
                    deleted.append(Digest.parse(value))
            failures.extend(dict(f) for f in response.get("failures") or [])
        return list(dict.fromkeys(deleted)), failures

    def _delete_error(self, repo: str, failures: list[dict[str, Any]], total: int) -> RegistryError:
        codes = tuple(
            RegistryDiagnostic(
                str(f.get("failureCode", "")), f"{_describe(f.get('imageId'))}: {f.get('failureReason', '')}"
            )
            for f in failures
        )
        shown = "; ".join(
            f"{_describe(f.get('imageId'))} {f.get('failureCode', '')}"
            for f in failures[:_MAX_FAILURES_SHOWN]
        )
        more = f" (and {len(codes) - _MAX_FAILURES_SHOWN} more)" if len(codes) > _MAX_FAILURES_SHOWN else ""
        message = (
            f"{self._where('BatchDeleteImage', repo)}: {len(failures)} of {total} not deleted: {shown}{more}"
        )
        kwargs: dict[str, Any] = {"method": "BatchDeleteImage", "url": self.name, "codes": codes}
        if all(c.code == "ImageNotFound" for c in codes):
            return RegistryNotFound(message, **kwargs)
        hint = None
        if any(c.code == "ImageReferencedByManifestList" for c in codes):
            hint = "an index (manifest list) still lists the image: delete or keep the index first"
        return RegistryError(message, hint=hint, **kwargs)

    # -- tags --------------------------------------------------------------------------------------

    def tag_list(self, repo: str) -> list[str]:
        """Tags from list_images (tagged only), sorted; NotFound for an unknown repository."""
        tags: set[str] = set()
        paginator = self._client.get_paginator("list_images")
        with self._api("ListImages", repo):
            pages = paginator.paginate(
                registryId=self.account,
                repositoryName=validate_repository(repo),
                filter={"tagStatus": "TAGGED"},
                PaginationConfig={"PageSize": 1000},
            )
            for page in pages:
                tags.update(i["imageTag"] for i in page.get("imageIds") or [] if i.get("imageTag"))
        self._mark_known(repo)
        return sorted(tags)

    def tag_delete(self, repo: str, tag: str) -> None:
        """Remove one tag with batch_delete_image.

        ECR has no untag-without-delete: when `tag` is the image's last tag, ECR deletes the image
        itself. boda accepts that rather than working around it (putting the manifest again by
        digest does not keep an image whose last tag goes, and an extra placeholder tag would
        defeat untagged-image lifecycle rules). Callers that must keep the image move or add
        another tag first; the lifecycle services keep the commit tag on every build.
        """
        failures = self._batch_delete(repo, [{"imageTag": validate_tag(tag)}])[1]
        if failures:
            raise self._delete_error(repo, failures, 1)

    # -- blobs, through the registry API -----------------------------------------------------------

    def _credentials(self) -> Credentials:
        """`AWS:<password>` from get_authorization_token, renewed shortly before it expires."""
        with self._lock:
            if self._token is not None and self._token[1] - datetime.now(UTC) > _TOKEN_MARGIN:
                return self._token[0]
        credentials, expires, _ = self._authorization()
        with self._lock:
            self._token = (credentials, expires)
        return credentials

    def _authorization(self) -> tuple[Credentials, datetime, str]:
        with self._api("GetAuthorizationToken", ""):
            response = self._client.get_authorization_token(registryIds=[self.account])
        data = (response.get("authorizationData") or [{}])[0]
        try:
            decoded = base64.b64decode(data.get("authorizationToken", ""), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, sep, password = decoded.partition(":")
        if not sep or not password:
            raise RegistryError(f"{self._where('GetAuthorizationToken', '')}: the token is not user:password")
        expires = data.get("expiresAt") or datetime.now(UTC)
        endpoint = data.get("proxyEndpoint") or f"https://{self.name}"
        return Credentials(username=username, password=password), expires, endpoint

    def registry_api(self) -> OciRegistry:
        """The `/v2/` API of this registry at the token's `proxyEndpoint`, authenticated with it."""
        with self._lock:
            if self._oci is not None:
                return self._oci
        credentials, expires, endpoint = self._authorization()
        parts = urlsplit(endpoint)
        from boda.registry.oci import OciRegistry

        with self._lock:
            if self._oci is None:
                self._token = (credentials, expires)
                self._oci = OciRegistry(
                    parts.netloc or self.name,
                    scheme=parts.scheme or "https",
                    credentials=self._credentials,
                    stats=self.stats,
                )
            return self._oci

    def blob_mounting_enabled(self) -> bool:
        """Whether the account allows cross-repository mounts (BLOB_MOUNTING), asked once.

        When ECR cannot say (an old endpoint, missing permission), boda streams: always correct.
        """
        with self._lock:
            if self._blob_mounting is not None:
                return self._blob_mounting
        try:
            with self._api("GetAccountSetting", ""):
                response = self._client.get_account_setting(name="BLOB_MOUNTING")
            enabled = str(response.get("value", "")).upper() == "ENABLED"
        except RegistryError as exc:
            log.warning("cannot read BLOB_MOUNTING of %s (%s); blobs will be copied", self.name, exc.message)
            enabled = False
        with self._lock:
            self._blob_mounting = enabled
        return enabled

    def blob_head(self, repo: str, digest: Digest) -> int | None:
        return self.registry_api().blob_head(repo, digest)

    def blob_get(self, repo: str, digest: Digest) -> AbstractContextManager[Iterator[bytes]]:
        return self.registry_api().blob_get(repo, digest)

    def blob_put(self, repo: str, digest: Digest, size: int, chunks: Iterable[bytes]) -> None:
        self.ensure_repository(repo)
        self.registry_api().blob_put(repo, digest, size, chunks)

    def blob_mount(self, repo: str, digest: Digest, from_repo: str) -> bool:
        """Mount when BLOB_MOUNTING is enabled; otherwise True only if `repo` already has the blob,
        and False so that the copy streams it."""
        self.ensure_repository(repo)
        if not self.blob_mounting_enabled():
            return self.blob_head(repo, digest) is not None
        return self.registry_api().blob_mount(repo, digest, from_repo)

    # -- inventory and referrers -------------------------------------------------------------------

    def image_list(self, repo: str) -> list[ImageRecord]:
        """Every image, tagged or not, active or archived, from the describe_images paginator."""
        records: list[ImageRecord] = []
        paginator = self._client.get_paginator("describe_images")
        with self._api("DescribeImages", repo):
            pages = paginator.paginate(
                registryId=self.account,
                repositoryName=validate_repository(repo),
                filter={"tagStatus": "ANY", "imageStatus": "ANY"},
                PaginationConfig={"PageSize": 1000},
            )
            for page in pages:
                records.extend(_record(d) for d in page.get("imageDetails") or [])
        self._mark_known(repo)
        records.sort(key=lambda r: r.digest)
        with self._lock:
            self._snapshots[repo] = (self._clock(), records)
        return list(records)

    def _forget(self, repo: str) -> None:
        with self._lock:
            self._snapshots.pop(repo, None)

    def _recent_images(self, repo: str) -> list[ImageRecord]:
        """The last `image_list` of `repo` if younger than SNAPSHOT_SECONDS and no write came since;
        gc asks for the referrers of every image, and this keeps that at one inventory read."""
        with self._lock:
            snapshot = self._snapshots.get(repo)
            if snapshot is not None and self._clock() - snapshot[0] < SNAPSHOT_SECONDS:
                return snapshot[1]
        return self.image_list(repo)

    def referrers(self, repo: str, digest: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """Images whose subjectManifestDigest is `digest`, plus the `sha256-<hex>` fallback index."""
        try:
            records = self._recent_images(repo)
        except RegistryNotFound:
            return []
        found: dict[Digest, Descriptor] = {}
        for record in records:
            if record.subject == digest:
                found[record.digest] = Descriptor(
                    record.media_type, record.digest, record.size or 0, artifact_type=record.artifact_type
                )
        if any(digest.tag_form in r.tags for r in records):
            index = self.manifest_get(repo, digest.tag_form)
            for child in index.children:
                found.setdefault(child.digest, child)
        return [d for d in found.values() if artifact_type is None or d.artifact_type == artifact_type]

    def close(self) -> None:
        with self._lock:
            oci, self._oci = self._oci, None
        if oci is not None:
            oci.close()
        self._client.close()
