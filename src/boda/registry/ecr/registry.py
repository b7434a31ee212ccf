"""EcrRegistry: manifests, tags, deletes and the inventory of one ECR registry through its API.

See the package docstring for the ECR behaviour this relies on; blobs, repositories, errors, the
put rate and the inventory snapshot each live in their own file of this package.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from boda.errors import (
    Conflict,
    DigestMismatch,
    ReferenceError_,
    Refused,
    RegistryDiagnostic,
    RegistryError,
    RegistryNotFound,
    UnusableManifest,
    UsageError,
)
from boda.locations import ECR_HOST
from boda.registry._manifests import served_manifest
from boda.registry.base import (
    DeleteOutcome,
    DeleteStatus,
    ImageRecord,
    ManifestHead,
    RegistryPreview,
    RegistryStats,
    TagDeleted,
    TagMutability,
)
from boda.registry.ecr.blobs import BlobProxy
from boda.registry.ecr.client import open_client
from boda.registry.ecr.errors import EcrErrors, code_of
from boda.registry.ecr.previews import Previews
from boda.registry.ecr.ratelimit import PUT_IMAGE_RATE, TokenBucket
from boda.registry.ecr.repositories import Repositories, RepositorySettings
from boda.registry.ecr.snapshots import Snapshots
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

    from boda.registry.oci import OciRegistry

#: Every manifest type boda handles; with fewer, ECR may answer with one platform of an index.
ACCEPTED_MEDIA_TYPES = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST]
#: ECR's maximum number of image ids per batch call (botocore does not enforce it).
BATCH_LIMIT = 100


def _image_id(ref: str) -> ImageIdentifierTypeDef:
    if is_digest(ref):
        return {"imageDigest": ref}
    return {"imageTag": validate_tag(ref)}


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
        image_size=detail.get("imageSizeInBytes"),
        subject=Digest.parse(subject) if subject and is_digest(subject) else None,
        artifact_type=detail.get("artifactMediaType"),
        last_pulled_at=detail.get("lastRecordedPullTime"),
        status=detail.get("imageStatus", "ACTIVE"),
        last_archived_at=detail.get("lastArchivedAt"),
    )


class EcrRegistry:
    """One ECR registry (account and region), named by its host `ACCOUNT.dkr.ecr.REGION.amazonaws.com`.

    `settings` configure the repositories boda creates; `client`, `preview_client` and `put_limiter`
    are injectable for tests. The client is built from the AWS default credential chain and honours
    the standard endpoint overrides (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_ECR) by itself. Lifecycle
    previews use a client without retries (see previews.py): `preview_client`, else the injected
    `client`, else one opened on first use.

    Capabilities beyond the core protocol: ImageLister (every image, with push times),
    LifecyclePolicyStore, TagMutabilityStore, LifecyclePreviewer and BatchDelete.
    """

    lists_every_manifest = True
    has_push_times = True
    delete_batch_size = BATCH_LIMIT

    def __init__(
        self,
        host: str,
        *,
        settings: RepositorySettings | None = None,
        client: ECRClient | None = None,
        preview_client: ECRClient | None = None,
        put_limiter: TokenBucket | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        match = ECR_HOST.match(host)
        if not match:
            raise UsageError(f"{host!r} is not an ECR registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com)")
        self.name = host
        self.account, self.region = match.group(1), match.group(2)
        self.stats = RegistryStats()
        self._errors = EcrErrors(host)
        self._put_limiter = put_limiter or TokenBucket(PUT_IMAGE_RATE)
        self._preview_client = preview_client if preview_client is not None else client
        if client is None:
            try:
                client = open_client(self.region)
            except BotoCoreError as exc:
                raise self._errors.boto_error("open", "", exc) from exc
        self._client = client
        self._client.meta.events.register("before-send.ecr", self._count_request)
        self._repos = Repositories(client, self.account, self._errors, settings)
        self._snapshots = Snapshots(clock)
        self._blobs = BlobProxy(client, self.account, self._errors, self.stats)
        self._previews = Previews(self._open_preview_client, self.account)

    def __repr__(self) -> str:
        return f"EcrRegistry({self.name!r})"

    @property
    def client(self) -> ECRClient:
        """The boto3 ECR client."""
        return self._client

    @property
    def settings(self) -> RepositorySettings | None:
        """How missing repositories are created."""
        return self._repos.settings

    def _count_request(self, **_: Any) -> None:
        """botocore event hook: one HTTP request (a retry counts again)."""
        self.stats.add(requests=1)

    # -- repositories and lifecycle policies (see repositories.py) ---------------------------------

    def ensure_repository(self, repo: str) -> bool:
        """Create `repo` with the configured settings if it does not exist; True when created."""
        return self._repos.ensure(repo)

    def lifecycle_policy(self, repo: str) -> str | None:
        """The repository's own lifecycle policy text; None when it has none."""
        return self._repos.lifecycle_policy(repo)

    def put_lifecycle_policy(self, repo: str, text: str) -> None:
        """Store `text` as the repository's lifecycle policy (callers validate it first)."""
        self._repos.put_lifecycle_policy(repo, text)

    def tag_mutability(self, repo: str) -> TagMutability:
        """The repository's tag mutability and exclusion filters."""
        return self._repos.tag_mutability(repo)

    def put_tag_mutability(self, repo: str, setting: TagMutability) -> TagMutability:
        """Store the tag mutability and exclusion filters; return what ECR then reports."""
        return self._repos.put_tag_mutability(repo, setting)

    def lifecycle_preview(self, repo: str, text: str, *, timeout: float) -> RegistryPreview:
        """ECR's own preview of `text` on `repo` (see previews.py), or why there is none."""
        return self._previews.run(validate_repository(repo), text, timeout=timeout)

    def _open_preview_client(self) -> ECRClient:
        if self._preview_client is None:
            self._preview_client = open_client(self.region, retries=1)
            self._preview_client.meta.events.register("before-send.ecr", self._count_request)
        return self._preview_client

    # -- manifests ---------------------------------------------------------------------------------

    def _detail(self, repo: str, ref: str) -> ImageDetailTypeDef | None:
        """describe_images of one tag or digest (no pull is recorded); None when absent."""
        try:
            with self._errors.api("DescribeImages", repo):
                response = self._client.describe_images(
                    registryId=self.account,
                    repositoryName=validate_repository(repo),
                    imageIds=[_image_id(ref)],
                )
        except RegistryNotFound:
            return None
        self._repos.mark_known(repo)
        details = response.get("imageDetails") or []
        if not details:
            return None
        if is_digest(ref) and details[0]["imageDigest"] != ref:
            raise DigestMismatch(f"{self.name}/{repo}@{ref}: ECR reports digest {details[0]['imageDigest']}")
        return details[0]

    def manifest_head(self, repo: str, ref: str) -> ManifestHead | None:
        """Resolve with describe_images, which records no pull and knows no manifest size: the
        size is None (ECR's imageSizeInBytes is the image's compressed size, not the manifest's)."""
        detail = self._detail(repo, ref)
        if detail is None:
            return None
        digest = Digest.parse(detail["imageDigest"])
        media_type = detail.get("imageManifestMediaType")
        if not media_type:  # images ECR stored without one (it has recorded it since 2019)
            manifest = self.manifest_get(repo, str(digest))
            return ManifestHead(manifest.media_type, manifest.digest, manifest.size)
        return ManifestHead(media_type, digest, None)

    def manifest_get(self, repo: str, ref: str) -> Manifest:
        """batch_get_image with every manifest type; the exact string, verified against its digest."""
        with self._errors.api("BatchGetImage", repo):
            response = self._client.batch_get_image(
                registryId=self.account,
                repositoryName=validate_repository(repo),
                imageIds=[_image_id(ref)],
                acceptedMediaTypes=ACCEPTED_MEDIA_TYPES,
            )
        self._repos.mark_known(repo)
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
        where = f"ECR BatchGetImage {self.name}/{repo}" + (f"@{ref}" if is_digest(ref) else f":{ref}")
        if is_digest(ref):
            return served_manifest(raw, media_type, where=where, expected=Digest.parse(ref))
        manifest = served_manifest(raw, media_type, where=where)
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
        except UnicodeDecodeError as exc:
            raise ReferenceError_(
                f"manifest {manifest.digest} is not UTF-8 JSON; ECR cannot store it"
            ) from exc
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
        self._snapshots.forget(repo)
        try:
            with self._errors.api("PutImage", repo):
                try:
                    response = self._client.put_image(**kwargs)
                except ClientError as exc:
                    code = code_of(exc)
                    if code == "ImageTagAlreadyExistsException" and tag is not None:
                        raise self._immutable(repo, tag, manifest.digest, None) from exc
                    if code == "ImageDigestDoesNotMatchException":
                        where = self._errors.where("PutImage", repo)
                        raise DigestMismatch(
                            f"{where}: ECR hashes the manifest to another digest than {manifest.digest}"
                        ) from exc
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
            raise self._errors.delete_error(repo, failures, 1)

    def manifest_delete_batch(self, repo: str, digests: Sequence[Digest]) -> list[DeleteOutcome]:
        """Delete up to 100 images by digest with one BatchDeleteImage; one outcome per digest.

        A failure names ECR's code (e.g. ImageReferencedByManifestList: an index still lists it);
        ImageNotFound is the outcome "not_found". A failing call raises, and then the outcome of
        every digest of the batch is unknown.
        """
        wanted = list(dict.fromkeys(digests))
        if len(wanted) > BATCH_LIMIT:
            raise ValueError(f"a batch delete takes at most {BATCH_LIMIT} digests, not {len(wanted)}")
        if not wanted:
            return []
        deleted, failures = self._batch_delete(repo, [{"imageDigest": str(d)} for d in wanted])
        failed: dict[str, dict[str, Any]] = {}
        for reported in failures:
            image_id = reported.get("imageId")
            if isinstance(image_id, dict) and isinstance(image_id.get("imageDigest"), str):
                failed[image_id["imageDigest"]] = reported
        gone = set(deleted)
        outcomes = []
        for digest in wanted:
            failure = failed.get(str(digest))
            if failure is not None:
                code = str(failure.get("failureCode") or "")
                reason = " ".join(str(failure.get("failureReason") or "").split())[:300]
                status: DeleteStatus = "not_found" if code == "ImageNotFound" else "failed"
                outcomes.append(DeleteOutcome(digest, status, code, reason))
            elif digest in gone:
                outcomes.append(DeleteOutcome(digest, "deleted"))
            else:
                outcomes.append(
                    DeleteOutcome(digest, "failed", "", "ECR reported neither a deletion nor a failure")
                )
        return outcomes

    def _batch_delete(
        self, repo: str, ids: Sequence[ImageIdentifierTypeDef]
    ) -> tuple[list[Digest], list[dict[str, Any]]]:
        """One BatchDeleteImage call: (digests deleted, failures as ECR reports them)."""
        validate_repository(repo)
        self._snapshots.forget(repo)
        with self._errors.api("BatchDeleteImage", repo):
            response = self._client.batch_delete_image(
                registryId=self.account, repositoryName=repo, imageIds=list(ids)
            )
        deleted: list[Digest] = []
        for image_id in response.get("imageIds") or []:
            value = image_id.get("imageDigest")
            if value and is_digest(value):
                deleted.append(Digest.parse(value))
        return list(dict.fromkeys(deleted)), [dict(f) for f in response.get("failures") or []]

    # -- tags --------------------------------------------------------------------------------------

    def tag_list(self, repo: str) -> list[str]:
        """Tags from list_images (tagged only), sorted; NotFound for an unknown repository."""
        tags: set[str] = set()
        paginator = self._client.get_paginator("list_images")
        with self._errors.api("ListImages", repo):
            pages = paginator.paginate(
                registryId=self.account,
                repositoryName=validate_repository(repo),
                filter={"tagStatus": "TAGGED"},
                PaginationConfig={"PageSize": 1000},
            )
            for page in pages:
                tags.update(i["imageTag"] for i in page.get("imageIds") or [] if i.get("imageTag"))
        self._repos.mark_known(repo)
        return sorted(tags)

    def tag_delete(self, repo: str, tag: str, *, keep_image: bool = True) -> TagDeleted:
        """Remove one tag with batch_delete_image.

        ECR has no untag-without-delete: when `tag` is the image's last tag, ECR deletes the image
        itself. boda does not work around it (putting the manifest again by digest does not keep
        an image whose last tag goes, and a placeholder tag would defeat untagged-image lifecycle
        rules): with `keep_image` it refuses to remove a last tag (Refused, nothing changed), and
        without, the image goes and the result says so. The image's tags are read first with
        describe_images (no pull is recorded), and whether the image went is read back after.
        """
        detail = self._detail(repo, validate_tag(tag))
        if detail is None:
            raise RegistryNotFound(
                f"{self.name}/{repo}: no tag {tag!r}", method="DescribeImages", url=self.name, status=404
            )
        digest = Digest.parse(detail["imageDigest"])
        if keep_image and set(detail.get("imageTags") or ()) <= {tag}:
            raise Refused(
                f"{self.name}/{repo}:{tag} is the last tag of {digest}: ECR deletes an image with its"
                " last tag, so removing it would delete the image; nothing was changed"
            )
        failures = self._batch_delete(repo, [{"imageTag": tag}])[1]
        if failures:
            raise self._errors.delete_error(repo, failures, 1)
        return TagDeleted(tag, digest, image_deleted=self._detail(repo, str(digest)) is None)

    # -- blobs, through the registry API (see blobs.py) ------------------------------------------

    def registry_api(self) -> OciRegistry:
        """The `/v2/` API of this registry, authenticated with ECR's authorization token."""
        return self._blobs.api()

    def blob_mounting_enabled(self) -> bool:
        """Whether the account allows cross-repository mounts (BLOB_MOUNTING), asked once."""
        return self._blobs.mounting_enabled()

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
        with self._errors.api("DescribeImages", repo):
            pages = paginator.paginate(
                registryId=self.account,
                repositoryName=validate_repository(repo),
                filter={"tagStatus": "ANY", "imageStatus": "ANY"},
                PaginationConfig={"PageSize": 1000},
            )
            for page in pages:
                records.extend(_record(d) for d in page.get("imageDetails") or [])
        self._repos.mark_known(repo)
        records.sort(key=lambda r: r.digest)
        self._snapshots.store(repo, records)
        return list(records)

    def _recent_images(self, repo: str) -> list[ImageRecord]:
        """The last `image_list` of `repo` if it is recent (see snapshots.py), else a new one."""
        recent = self._snapshots.recent(repo)
        return recent if recent is not None else self.image_list(repo)

    def referrers(self, repo: str, digest: Digest, artifact_type: str | None = None) -> list[Descriptor]:
        """Images whose subjectManifestDigest is `digest`, plus the `sha256-<hex>` fallback index."""
        try:
            records = self._recent_images(repo)
        except RegistryNotFound:
            return []
        found: dict[Digest, Descriptor] = {}
        for record in records:
            if record.subject == digest:
                # describe_images knows no manifest size: the image size stands in (see __init__)
                found[record.digest] = Descriptor(
                    record.media_type,
                    record.digest,
                    record.image_size or 0,
                    artifact_type=record.artifact_type,
                )
        if any(digest.tag_form in r.tags for r in records):
            index = self.manifest_get(repo, digest.tag_form)
            try:
                children = index.children
            except ReferenceError_ as exc:
                raise UnusableManifest(
                    f"{self.name}/{repo}:{digest.tag_form}: the referrers index is malformed: {exc.message}"
                ) from exc
            for child in children:
                found.setdefault(child.digest, child)
        return [d for d in found.values() if artifact_type is None or d.artifact_type == artifact_type]

    def close(self) -> None:
        self._blobs.close()
        if self._preview_client is not None and self._preview_client is not self._client:
            self._preview_client.close()
        self._client.close()
