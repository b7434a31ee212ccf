"""What the ECS and Lambda observers share: clients from the AWS default chain, adaptive retries,
request counting, complete paging, and botocore's failures mapped to RuntimeUnavailable.

boto3 is imported here; this module is imported only when an ECS or Lambda runtime is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

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

from boda.aws import CREDENTIAL_SOURCES, DENIED_CODES
from boda.locations import RuntimeLocation
from boda.runtime.base import RequestCounter, RuntimeUnavailable

T = TypeVar("T")
R = TypeVar("R")

#: Retries after the first attempt (botocore's `max_attempts`, which excludes the first), adaptive.
MAX_RETRIES = 10
#: Concurrent requests of one observer (per-object calls: ListServiceDeployments, GetFunction).
WORKERS = 8
_CREDENTIALS_HINT = (
    f"boda reads runtimes with the AWS default credential chain ({CREDENTIAL_SOURCES});"
    " it needs the read-only {permissions}"
)
PERMISSIONS = {
    "ecs": "ecs:ListServices, DescribeServices, ListTasks, DescribeTasks, DescribeTaskDefinition,"
    " ListServiceDeployments, DescribeServiceDeployments and DescribeServiceRevisions",
    "lambda": "lambda:ListFunctions, GetFunction, ListAliases and ListProvisionedConcurrencyConfigs",
}


def client_config() -> Config:
    """Adaptive retries, 10 attempts: throttling is waited out before a read is given up."""
    return Config(retries={"mode": "adaptive", "max_attempts": MAX_RETRIES}, user_agent_extra="boda")


def make_client(service: str, region: str | None) -> Any:
    """A boto3 client from the AWS default chain; endpoint overrides (AWS_ENDPOINT_URL,
    AWS_ENDPOINT_URL_ECS, AWS_ENDPOINT_URL_LAMBDA) are honoured by boto3 itself."""
    session: Any = boto3.session.Session()
    return session.client(service, region_name=region or None, config=client_config())


class AwsApi:
    """One client of one runtime: every call counted, every failure a RuntimeUnavailable."""

    def __init__(self, location: RuntimeLocation, service: str, region: str, client: Any = None) -> None:
        self.location = location
        self.service = service
        self.counter = RequestCounter()
        if client is None:
            try:
                client = make_client(service, region)
            except BotoCoreError as exc:
                raise self._boto_error("open a client", exc) from exc
        self.client = client
        self.client.meta.events.register(f"before-send.{service}", self._count)

    def _count(self, **_: Any) -> None:
        self.counter.add()

    @contextmanager
    def api(self, operation: str) -> Iterator[None]:
        """Map botocore failures of `operation` to RuntimeUnavailable (one line, cause chained)."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(operation, exc) from exc
        except BotoCoreError as exc:
            raise self._boto_error(operation, exc) from exc

    def call(self, method: str, **kwargs: Any) -> Any:
        """One call of the client's `method` (snake_case)."""
        with self.api(_operation(method)):
            return getattr(self.client, method)(**kwargs)

    def items(self, method: str, key: str, **kwargs: Any) -> list[Any]:
        """Every item under `key` of every page: botocore's paginator where there is one, else the
        `nextToken` loop. A repeated token or any failing page raises; nothing partial is returned."""
        found: list[Any] = []
        with self.api(_operation(method)):
            if self.client.can_paginate(method):
                for page in self.client.get_paginator(method).paginate(**kwargs):
                    found.extend(page.get(key) or ())
                return found
            token: str | None = None
            seen: set[str] = set()
            while True:
                page = getattr(self.client, method)(**kwargs, **({"nextToken": token} if token else {}))
                found.extend(page.get(key) or ())
                token = page.get("nextToken") or None
                if token is None:
                    return found
                if token in seen:
                    raise RuntimeUnavailable(
                        self.location, f"{self._name} {_operation(method)} repeated a page token"
                    )
                seen.add(token)

    @property
    def _name(self) -> str:
        return "ECS" if self.service == "ecs" else "Lambda"

    def _client_error(self, operation: str, exc: ClientError) -> RuntimeUnavailable:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        text = " ".join(str(error.get("Message", "") or exc).split())[:300]
        message = f"{self._name} {operation}: {code}: {text}" if code else f"{self._name} {operation}: {text}"
        hint = None
        if code in DENIED_CODES:
            hint = _CREDENTIALS_HINT.format(permissions=PERMISSIONS.get(self.service, "permissions"))
        elif "Throttl" in code or code in ("TooManyRequestsException", "RequestLimitExceeded"):
            hint = f"throttled through {MAX_RETRIES} retries; retry later or ask AWS for a higher quota"
        return RuntimeUnavailable(self.location, message, hint=hint)

    def _boto_error(self, operation: str, exc: BotoCoreError) -> RuntimeUnavailable:
        detail = " ".join(str(exc).split())[:200]
        where = f"{self._name} {operation}"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return RuntimeUnavailable(
                self.location,
                f"{where}: no usable AWS credentials ({detail})",
                hint=_CREDENTIALS_HINT.format(permissions=PERMISSIONS.get(self.service, "permissions")),
            )
        if isinstance(exc, NoRegionError):
            return RuntimeUnavailable(
                self.location,
                f"{where}: no AWS region",
                hint="set AWS_REGION or AWS_DEFAULT_REGION (or a region in ~/.aws/config); an ECS"
                " cluster may also be named by its ARN",
            )
        if isinstance(exc, BotoConnectionError):
            return RuntimeUnavailable(
                self.location,
                f"{where}: unreachable ({detail})",
                hint="check the network, and AWS_ENDPOINT_URL if you set it",
            )
        return RuntimeUnavailable(self.location, f"{where}: {type(exc).__name__}: {detail}")

    def close(self) -> None:
        """Close the client's connections."""
        close = getattr(self.client, "close", None)
        if callable(close):
            close()


def _operation(method: str) -> str:
    """`describe_services` -> `DescribeServices`, as AWS names operations in messages."""
    return "".join(part.capitalize() for part in method.split("_"))


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def parallel(func: Callable[[T], R], items: Iterable[T], workers: int = WORKERS) -> list[R]:
    """`[func(i) for i in items]` on a few threads, in order; the first failure cancels what has not
    started and is raised."""
    todo = list(items)
    if len(todo) <= 1 or workers <= 1:
        return [func(i) for i in todo]
    with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        futures: list[Future[R]] = [pool.submit(func, i) for i in todo]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            failed.result()
        return [f.result() for f in futures]
