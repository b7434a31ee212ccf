"""ECR's own lifecycle policy preview: StartLifecyclePolicyPreview, then GetLifecyclePolicyPreview
polled until COMPLETE, every page of results read.

A preview is asynchronous and ECR runs one per repository at a time. boda asks for it to compare
ECR's answer with its own evaluation (ECR is the judge of its own semantics), so a preview ECR cannot
give is an answer too, never an error: an endpoint without the operation (moto, LocalStack: HTTP 500
or UnknownOperation), access denied, another preview still running, a FAILED or EXPIRED preview, or
one still IN_PROGRESS after the timeout. The calls go through a client of their own without retries
(a stand-in's 500 answers at once instead of after ten backed-off retries); polling is the retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from boda.registry.base import PreviewRow, RegistryPreview
from boda.registry.ecr.errors import code_of

if TYPE_CHECKING:
    from mypy_boto3_ecr.client import ECRClient

#: Seconds between two GetLifecyclePolicyPreview calls while the preview is IN_PROGRESS.
POLL_SECONDS = 2.0
_ACTIONS = {"EXPIRE": "expire", "TRANSITION": "transition"}


class Previews:
    """Lifecycle policy previews of one registry (account)."""

    def __init__(
        self,
        client: Callable[[], ECRClient],
        account: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._client = client
        self._account = account
        self._sleep = sleep
        self._clock = clock
        self._poll = poll_seconds

    def run(self, repo: str, text: str, *, timeout: float) -> RegistryPreview:
        """ECR's preview of `text` on `repo`, or why there is none."""
        try:
            client = self._client()
            client.start_lifecycle_policy_preview(
                registryId=self._account, repositoryName=repo, lifecyclePolicyText=text
            )
            deadline = self._clock() + timeout
            while True:
                page = client.get_lifecycle_policy_preview(
                    registryId=self._account, repositoryName=repo, maxResults=100
                )
                status = page.get("status", "")
                if status == "COMPLETE":
                    return RegistryPreview(True, tuple(self._rows(client, repo, page)))
                if status != "IN_PROGRESS":
                    why = f"ECR's preview ended {status or 'without a status'}"
                    return RegistryPreview(False, reason=why)
                if self._clock() >= deadline:
                    why = f"ECR's preview did not complete within {timeout:g} s"
                    return RegistryPreview(False, reason=why)
                self._sleep(self._poll)
        except ClientError as exc:
            return RegistryPreview(False, reason=_why(exc))
        except BotoCoreError as exc:
            detail = " ".join(str(exc).split())[:200]
            return RegistryPreview(False, reason=f"ECR's preview could not be asked: {detail}")

    def _rows(self, client: ECRClient, repo: str, page: Any) -> list[PreviewRow]:
        rows: list[PreviewRow] = []
        while True:
            for result in page.get("previewResults") or []:
                action = _ACTIONS.get(str((result.get("action") or {}).get("type", "")), "")
                rows.append(
                    PreviewRow(
                        result["imageDigest"],
                        tuple(sorted(result.get("imageTags") or ())),
                        action,
                        result.get("appliedRulePriority"),
                    )
                )
            token = page.get("nextToken")
            if not token:
                return rows
            page = client.get_lifecycle_policy_preview(
                registryId=self._account, repositoryName=repo, maxResults=100, nextToken=token
            )


def _why(exc: ClientError) -> str:
    code = code_of(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "LifecyclePolicyPreviewInProgressException":
        return "another lifecycle policy preview of this repository is still running"
    unknown = code in ("UnknownOperationException", "NotImplemented")
    if unknown or (status is not None and int(status) >= 500):
        return f"this endpoint does not give lifecycle policy previews ({code or status})"
    message = " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())[:200]
    return f"ECR refused the preview: {code}: {message}".rstrip(": ")
