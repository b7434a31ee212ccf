"""A retrying httpx transport: transient answers and lost connections are tried again.

429, 502, 503 and 504 are retried for every method, 500 only for idempotent ones, and transport
errors (reset, timeout) too, with bounded exponential backoff and jitter, honouring `Retry-After`.
A refused connection is retried once only (a registry restarting), not the whole budget. A request
whose body is a stream is sent once: a consumed stream cannot be replayed. Requests carrying the
READ_BODY extension have their body read inside the retry loop, so a body that breaks off is
retried like a lost connection.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from boda import deadline
from boda.registry._errors import shown_url
from boda.registry._httpx import httpx

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_RETRY_AFTER = 60.0
MAX_BACKOFF = 30.0
CONNECT_RETRIES = 1
#: Request extension: read the whole response body before returning (and retry if it breaks off).
READ_BODY = "boda.read_body"
#: Request extension: with READ_BODY, the most bytes the body may have (BodyTooLarge beyond).
BODY_LIMIT = "boda.body_limit"


class BodyTooLarge(Exception):
    """A response body is larger than its request's BODY_LIMIT (never retried)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit} bytes")
        self.limit = limit


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass
class RetryPolicy:
    """How often and how long to retry; shared by the transports of one client."""

    max_retries: int = 4
    backoff: float = 0.5
    #: How to wait between tries (tests replace it to record the delays).
    sleep: Callable[[float], None] = field(default=time.sleep)

    def pause(self, attempt: int, retry_after: float | None, request: httpx.Request, reason: str) -> None:
        if retry_after is not None:
            delay = retry_after
        else:
            ceiling = min(MAX_BACKOFF, self.backoff * (2**attempt))
            delay = random.uniform(ceiling / 2, ceiling)
        left = deadline.remaining()
        if left is not None and left <= delay:
            raise deadline.exceeded(
                f"{request.method} {shown_url(request.url)} failed ({reason}) and a retry in"
                f" {delay:.1f} s would end after it"
            )
        log.debug("retrying %s %s in %.2f s after %s", request.method, shown_url(request.url), delay, reason)
        self.sleep(delay)


def replayable(request: httpx.Request) -> bool:
    """True when the request's body can be sent again (bytes or nothing, not a stream)."""
    return isinstance(request.stream, httpx.ByteStream)


class RetryTransport(httpx.BaseTransport):
    """Wraps a transport and retries what is worth retrying (see the module docstring)."""

    def __init__(self, inner: httpx.BaseTransport, policy: RetryPolicy) -> None:
        self._inner = inner
        self.policy = policy

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        again = replayable(request)
        attempt = 0
        while True:
            try:
                response = self._inner.handle_request(request)
                if request.extensions.get(READ_BODY):
                    response = _read(request, response, request.extensions.get(BODY_LIMIT))
            except httpx.TransportError as exc:
                limit = CONNECT_RETRIES if isinstance(exc, httpx.ConnectError) else self.policy.max_retries
                if again and attempt < limit and not isinstance(exc, httpx.UnsupportedProtocol):
                    self.policy.pause(attempt, None, request, type(exc).__name__)
                    attempt += 1
                    continue
                raise
            status = response.status_code
            retry = status in RETRY_STATUSES or (status == 500 and request.method in IDEMPOTENT_METHODS)
            if retry and again and attempt < self.policy.max_retries:
                delay = parse_retry_after(response.headers.get("retry-after"))
                response.close()
                self.policy.pause(attempt, delay, request, str(status))
                attempt += 1
                continue
            return response

    def close(self) -> None:
        self._inner.close()


def _read(request: httpx.Request, response: httpx.Response, limit: int | None) -> httpx.Response:
    """The response with its whole body read (decoded), refusing more than `limit` bytes early."""
    try:
        if request.method == "HEAD":  # no body; its Content-Length is the resource's
            response.read()
            return response
        declared = response.headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if limit is not None and size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
    finally:
        response.close()
    dropped = {"content-encoding", "content-length", "transfer-encoding"}  # the body is now plain bytes
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
    return httpx.Response(
        response.status_code, headers=headers, content=b"".join(chunks), extensions=response.extensions
    )
