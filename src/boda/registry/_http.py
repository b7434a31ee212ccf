"""HTTP client of the oci backend, assembled from composable parts.

    Transport.request          scopes, expected statuses, byte counters, one error mapping
      httpx.Client(auth=RegistryAuth)         answers WWW-Authenticate challenges (see `_auth`)
        RetryTransport                        retries transient failures (see `_retry`)
          deadline                            each try, and its body, ends by the command's deadline
            counting                          every request on the wire counts once
              HTTPTransport / TlsOnFirstUse   plain HTTP, or HTTPS verified on first use

Errors are mapped in `_errors`, with redacted URLs. A per-host concurrency cap covers sending a
request and receiving its headers (and the whole body of a non-streamed response); a streamed blob
body is read outside it, so a copy that reads one blob while uploading another to the same host
cannot deadlock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from boda import deadline
from boda.errors import RegistryError
from boda.registry._auth import SCOPES, RegistryAuth
from boda.registry._credentials import CredentialsProvider
from boda.registry._errors import shown_url, status_error, transport_error
from boda.registry._httpx import httpx
from boda.registry._retry import BODY_LIMIT, READ_BODY, BodyTooLarge, RetryPolicy, RetryTransport
from boda.registry.base import RegistryStats

USER_AGENT = "boda/0.1"


class _RedactedUrls(logging.Filter):
    """httpx logs each request's URL at INFO; an upload session's state or a signed redirect
    carries a secret there, so its URLs are shown the way boda's messages show them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(shown_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactedUrls())

Content = bytes | Iterable[bytes] | None


class TlsOnFirstUse(httpx.BaseTransport):
    """An HTTPS transport (certificates verified) built on its first request.

    Loading the CA bundle costs tens of milliseconds of start-up; a command talking to a
    plain-HTTP registry, or not talking at all, should not pay it.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._real: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._real is None:
                self._real = httpx.HTTPTransport(http1=True, http2=False, limits=self._limits)
        return self._real.handle_request(request)

    def close(self) -> None:
        if self._real is not None:
            self._real.close()


class _Counted(httpx.BaseTransport):
    """Counts every request it sends (retries, redirects and token requests included)."""

    def __init__(self, inner: httpx.BaseTransport, stats: RegistryStats) -> None:
        self._inner = inner
        self._stats = stats

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._stats.add(requests=1)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


_TIMEOUTS = ("connect", "read", "write", "pool")


class _Deadlined(httpx.BaseTransport):
    """Bounds every try by what remains of the command's deadline (see `boda.deadline`): its
    timeouts are shortened to the time left, and the body it returns is checked against the
    clock on every chunk the network delivers, so an answer trickled a byte at a time ends too."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        left = deadline.remaining()
        if left is None:
            return self._inner.handle_request(request)
        doing = f"{request.method} {shown_url(request.url)}"
        if left <= 0:
            raise deadline.exceeded(doing)
        timeouts = dict(request.extensions.get("timeout") or {})
        shortened = False
        for name in _TIMEOUTS:
            configured = timeouts.get(name)
            if configured is None or configured > left:
                timeouts[name] = left
                shortened = True
        request.extensions["timeout"] = timeouts
        try:
            response = self._inner.handle_request(request)
        except httpx.TimeoutException as exc:
            if shortened:
                raise deadline.exceeded(f"{doing} (no answer yet)") from exc
            raise
        response.stream = _DeadlinedBody(response.stream, doing)
        return response

    def close(self) -> None:
        self._inner.close()


class _DeadlinedBody(httpx.SyncByteStream):
    """A response body that ends with DeadlineExceeded once the command's deadline has passed."""

    def __init__(self, inner: httpx.SyncByteStream | httpx.AsyncByteStream, doing: str) -> None:
        assert isinstance(inner, httpx.SyncByteStream)
        self._inner = inner
        self._doing = doing

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                deadline.check(f"{self._doing} (reading the answer)")
                yield chunk
        except httpx.TimeoutException as exc:
            left = deadline.remaining()
            if left is not None and left <= 0:
                raise deadline.exceeded(f"{self._doing} (reading the answer)") from exc
            raise

    def close(self) -> None:
        self._inner.close()


class Transport:
    """One registry host's HTTP client: auth, retries, counters, errors and a concurrency cap."""

    def __init__(
        self,
        host: str,
        *,
        scheme: str,
        stats: RegistryStats,
        docker_config: Path | None = None,
        max_concurrency: int = 8,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        credentials: CredentialsProvider | None = None,
    ) -> None:
        self.host = host
        self.scheme = scheme
        self.base_url = f"{scheme}://{host}"
        self.stats = stats
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff)
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        limits = httpx.Limits(max_connections=max(4, 2 * max_concurrency))
        self.auth = RegistryAuth(
            self.base_url, docker_config=docker_config, credentials=credentials, denied_hint=self._denied_hint
        )
        # Plain HTTP never needs certificates; HTTPS builds its verifying context on first use.
        plain = httpx.HTTPTransport(http1=True, http2=False, limits=limits, verify=False)
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            auth=self.auth,
            transport=RetryTransport(_Deadlined(_Counted(plain, stats)), self.retry),
            mounts={
                "https://": RetryTransport(_Deadlined(_Counted(TlsOnFirstUse(limits), stats)), self.retry)
            },
        )

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r})"

    @property
    def sleep(self) -> Callable[[float], None]:
        """How the transport waits between retries (tests replace it to record the delays)."""
        return self.retry.sleep

    @sleep.setter
    def sleep(self, value: Callable[[float], None]) -> None:
        self.retry.sleep = value

    def close(self) -> None:
        self.client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str] = (),
        expect: Collection[int] = (200,),
        headers: Mapping[str, str] | None = None,
        content: Content = None,
        params: list[tuple[str, str]] | None = None,
        stream: bool = False,
        follow_redirects: bool = False,
        body_limit: int | None = None,
    ) -> httpx.Response:
        """Send a request; return the response when its status is in `expect`, else raise.

        With `stream`, the returned response is open and its body unread: the caller closes it.
        Without, a body larger than `body_limit` bytes is refused while it streams in.
        """
        body = content if content is None or isinstance(content, bytes) else self._counting(content)
        request = self.client.build_request(
            method,
            url,
            headers=headers,
            content=body,
            params=tuple(params) if params else None,
            extensions={SCOPES: tuple(scopes), READ_BODY: not stream, BODY_LIMIT: body_limit},
        )
        if isinstance(content, bytes):
            self.stats.add(sent=len(content))
        try:
            with self._slots:
                response = self.client.send(request, stream=True, follow_redirects=follow_redirects)
        except httpx.TransportError as exc:
            raise transport_error(self.host, method, url, exc, timeout=self.timeout) from exc
        except BodyTooLarge as exc:
            raise RegistryError(
                f"{method} {shown_url(url)}: the answer is larger than {_size(exc.limit)}; refusing it",
                method=method,
                url=shown_url(url),
            ) from exc
        if not stream:
            self.stats.add(received=len(response.content))
        if response.status_code in expect:
            return response
        raise self.error(method, url, response, streamed=stream)

    def _counting(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            deadline.check("sending a request body")
            self.stats.add(sent=len(chunk))
            yield chunk

    def iter_body(self, response: httpx.Response, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The body of a streamed response in chunks, counted as received."""
        try:
            for chunk in response.iter_bytes(chunk_size):
                self.stats.add(received=len(chunk))
                yield chunk
        except httpx.TransportError as exc:
            raise transport_error(self.host, "GET", response.request.url, exc, timeout=self.timeout) from exc

    def error(
        self, method: str, url: str, response: httpx.Response, *, streamed: bool = False
    ) -> RegistryError:
        """The boda error for an unexpected response (reads the body of a `streamed` one, closes it)."""
        try:
            body = response.read()
            if streamed:
                self.stats.add(received=len(body))
        except httpx.HTTPError:
            body = b""
        finally:
            response.close()
        return status_error(
            method, url, response.status_code, response.reason_phrase, body, denied_hint=self._denied_hint()
        )

    def _denied_hint(self) -> str:
        if self.auth.has_credentials:
            return (
                f"check the credentials for {self.host} (docker login {self.host}, or Docker's config.json)"
            )
        return (
            f"log in with 'docker login {self.host}' (boda reads Docker's config.json and credential helpers)"
        )


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count % (1 << 20) == 0 else f"{count} bytes"
