"""ECR's failures as boda errors: botocore exceptions and BatchDeleteImage's per-image failures.

Every message is one line and says where (`ECR OPERATION HOST/REPO`); the cause is chained.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from boda.aws import CREDENTIAL_SOURCES, DENIED_CODES
from boda.errors import RegistryDenied, RegistryDiagnostic, RegistryError, RegistryNotFound
from boda.registry.ecr.client import MAX_RETRIES

_MAX_FAILURES_SHOWN = 3
_NOT_FOUND_CODES = frozenset(
    {"RepositoryNotFoundException", "ImageNotFoundException", "LifecyclePolicyNotFoundException"}
)
CREDENTIALS_HINT = f"boda uses the AWS default credential chain: {CREDENTIAL_SOURCES}"


def code_of(exc: ClientError) -> str:
    """The error code of an ECR API error (`ImageNotFoundException`, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    text = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    return " ".join(text.split())[:300]


def describe_id(image_id: Any) -> str:
    """An ECR image id for people: `tag@digest`, `tag` or `digest`."""
    if not isinstance(image_id, dict):
        return "?"
    if image_id.get("imageTag") and image_id.get("imageDigest"):
        return f"{image_id['imageTag']}@{image_id['imageDigest']}"
    return str(image_id.get("imageTag") or image_id.get("imageDigest") or "?")


class EcrErrors:
    """The error mapping of one ECR registry (its host names every message)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def where(self, operation: str, repo: str) -> str:
        return f"ECR {operation} {self.name}/{repo}" if repo else f"ECR {operation} {self.name}"

    @contextmanager
    def api(self, operation: str, repo: str) -> Iterator[None]:
        """Map botocore failures of one call to boda.errors (one line each, cause chained)."""
        try:
            yield
        except ClientError as exc:
            raise self.client_error(operation, repo, exc) from exc
        except BotoCoreError as exc:
            raise self.boto_error(operation, repo, exc) from exc

    def client_error(self, operation: str, repo: str, exc: ClientError) -> RegistryError:
        code = code_of(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"{self.where(operation, repo)}: {code}: {_message(exc)}"
        codes = (RegistryDiagnostic(code, _message(exc)),)
        kwargs: dict[str, Any] = {"method": operation, "url": self.name, "status": status, "codes": codes}
        if code in _NOT_FOUND_CODES:
            return RegistryNotFound(message, **kwargs)
        if code in DENIED_CODES:
            return RegistryDenied(message, hint=CREDENTIALS_HINT, **kwargs)
        if "Throttl" in code or code in ("TooManyRequestsException", "LimitExceededException"):
            return RegistryError(
                message,
                hint=f"ECR kept throttling through {MAX_RETRIES} retries; retry later or ask"
                " AWS for a higher quota",
                **kwargs,
            )
        return RegistryError(message, **kwargs)

    def boto_error(self, operation: str, repo: str, exc: BotoCoreError) -> RegistryError:
        detail = " ".join(str(exc).split())[:200]
        where = self.where(operation, repo)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return RegistryDenied(f"{where}: no usable AWS credentials ({detail})", hint=CREDENTIALS_HINT)
        if isinstance(exc, NoRegionError):
            return RegistryError(f"{where}: {detail}")
        if isinstance(exc, BotoConnectionError):
            return RegistryError(
                f"{where}: ECR is unreachable ({detail})",
                hint="check the network, and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_ECR if you set them",
            )
        return RegistryError(f"{where}: {type(exc).__name__}: {detail}")

    def delete_error(self, repo: str, failures: Sequence[dict[str, Any]], total: int) -> RegistryError:
        """One error for BatchDeleteImage failures: each failed id with ECR's code (first few shown)."""
        codes = tuple(
            RegistryDiagnostic(
                str(f.get("failureCode", "")),
                f"{describe_id(f.get('imageId'))}: {f.get('failureReason', '')}",
            )
            for f in failures
        )
        shown = "; ".join(
            f"{describe_id(f.get('imageId'))} {f.get('failureCode', '')}"
            for f in failures[:_MAX_FAILURES_SHOWN]
        )
        more = f" (and {len(codes) - _MAX_FAILURES_SHOWN} more)" if len(codes) > _MAX_FAILURES_SHOWN else ""
        message = (
            f"{self.where('BatchDeleteImage', repo)}: {len(failures)} of {total} not deleted: {shown}{more}"
        )
        kwargs: dict[str, Any] = {"method": "BatchDeleteImage", "url": self.name, "codes": codes}
        if all(c.code == "ImageNotFound" for c in codes):
            return RegistryNotFound(message, **kwargs)
        hint = None
        if any(c.code == "ImageReferencedByManifestList" for c in codes):
            hint = "an index (manifest list) still lists the image: delete or keep the index first"
        return RegistryError(message, hint=hint, **kwargs)
