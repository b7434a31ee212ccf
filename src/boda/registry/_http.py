"""HTTP transport of the oci backend: one httpx.Client, auth, retries, errors, a concurrency cap.

Every request goes through `Transport.request`, which adds the Authorization the last challenge
asks for, answers 401 challenges (see `_auth`), retries 429/502/503/504 (and 500 for idempotent
methods) and connection errors with bounded exponential backoff and jitter honouring `Retry-After`,
and turns unexpected statuses into `boda.errors` with a redacted URL. A request whose body is a
stream is sent once: a consumed stream cannot be replayed.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import httpx

from boda.errors import RegistryDenied, RegistryDiagnostic, RegistryError, RegistryNotFound
from boda.registry._auth import (
    DEFAULT_TOKEN_LIFETIME,
    Authenticator,
    Challenge,
    Credentials,
    CredentialsProvider,
    merge_scopes,
)
from boda.registry.base import RegistryStats

log = logging.getLogger(__name__)

USER_AGENT = "boda/0.1"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
MAX_RETRY_AFTER = 60.0
MAX_BACKOFF = 30.0
CONNECT_RETRIES = 1
# Query parameters whose values are safe to show; every other value (`_state`, tokens) is redacted.
_SAFE_QUERY = frozenset({"mount", "from", "digest", "n", "last", "artifactType", "service", "scope"})
_MAX_CODES_SHOWN = 3

Content = bytes | Iterable[bytes] | None


def redact_url(url: str | httpx.URL) -> str:
    """`url` without user:password and with the values of unsafe query parameters replaced."""
    parsed = httpx.URL(str(url))
    text = f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace').rpartition('@')[2]}{parsed.path}"
    query = parsed.query.decode("ascii", "replace")
    if query:
        pairs = [
            (k, v if k in _SAFE_QUERY else "REDACTED") for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        text += "?" + urlencode(pairs, safe=":/,")
    return text


def parse_diagnostics(body: bytes) -> tuple[RegistryDiagnostic, ...]:
    """The OCI `errors[]` of an error body; () when the body is not such a document."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ()
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return ()
    found = []
    for item in errors:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            message = item.get("message")
            found.append(
                RegistryDiagnostic(
                    item["code"], message if isinstance(message, str) else "", item.get("detail")
                )
            )
    return tuple(found)


def _one_line(text: str) -> str:
    return " ".join(text.split())


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


class Transport:
    """One registry host's HTTP client with auth, retries and a per-host concurrency limit.

    The limit covers sending a request and receiving its headers (and the whole body of a
    non-streamed response); a streamed blob body is read outside it, so a copy that reads one blob
    while uploading another to the same host cannot deadlock.
    """

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
        self.max_retries = max_retries
        self.backoff = backoff
        #: How the transport waits between retries (tests replace it to record the delays).
        self.sleep: Callable[[float], None] = time.sleep
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        limits = httpx.Limits(max_connections=max(4, 2 * max_concurrency))
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            # Plain HTTP never needs certificates; HTTPS builds its verifying context on first use.
            transport=httpx.HTTPTransport(http1=True, http2=False, limits=limits, verify=False),
            mounts={"https://": TlsOnFirstUse(limits)},
            event_hooks={"request": [self._count_request]},
        )
        self.auth = Authenticator(
            host, docker_config=docker_config, fetch_token=self._fetch_token, credentials=credentials
        )

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r})"

    def close(self) -> None:
        self.client.close()

    def _count_request(self, request: httpx.Request) -> None:
        """Event hook: every request on the wire, redirects and token requests included."""
        self.stats.add(requests=1)

    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str] = (),
        expect: Collection[int] = (200,),
        headers: Mapping[str, str] | None = None,
        content: Content = None,
        data: Mapping[str, str] | None = None,
        params: list[tuple[str, str]] | None = None,
        stream: bool = False,
        follow_redirects: bool = False,
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send a request; return the response when its status is in `expect`, else raise.

        With `stream`, the returned response is open and its body unread: the caller closes it.
        """
        replayable = content is None or isinstance(content, bytes)
        body = content if content is None or isinstance(content, bytes) else self._counting(content)
        current_scopes = merge_scopes(scopes, [])
        auth = self.auth.authorize(current_scopes) if authenticate else None
        attempt = auth_round = 0
        while True:
            sent_headers = dict(headers or {})
            if auth is not None:
                sent_headers["Authorization"] = auth
            try:
                response = self._send(
                    method, url, sent_headers, body, data, params, stream=stream, follow=follow_redirects
                )
            except httpx.TransportError as exc:
                # A refused connection is retried once (a registry restarting), not the full budget.
                limit = CONNECT_RETRIES if isinstance(exc, httpx.ConnectError) else self.max_retries
                if replayable and attempt < limit and not isinstance(exc, httpx.UnsupportedProtocol):
                    self._pause(attempt, None, method, url, type(exc).__name__)
                    attempt += 1
                    continue
                raise self._unreachable(method, url, exc) from None
            status = response.status_code
            if status == 401 and authenticate and replayable and auth_round < 2:
                answer = self.auth.answer(
                    response.headers.get("www-authenticate", ""), current_scopes, auth_round
                )
                if answer is not None:
                    response.close()
                    current_scopes, auth = answer
                    auth_round += 1
                    continue
            retryable = status in RETRY_STATUSES or (status == 500 and method in IDEMPOTENT_METHODS)
            if retryable and replayable and attempt < self.max_retries:
                delay = parse_retry_after(response.headers.get("retry-after"))
                response.close()
                self._pause(attempt, delay, method, url, str(status))
                attempt += 1
                continue
            if status in expect:
                return response
            raise self.error(method, url, response, streamed=stream)

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: Content,
        data: Mapping[str, str] | None,
        params: list[tuple[str, str]] | None,
        *,
        stream: bool,
        follow: bool,
    ) -> httpx.Response:
        request = self.client.build_request(
            method, url, headers=headers, content=content, data=data, params=tuple(params) if params else None
        )
        if isinstance(content, bytes):
            self.stats.add(sent=len(content))
        elif data is not None:
            self.stats.add(sent=len(request.read()))
        with self._slots:
            response = self.client.send(request, stream=True, follow_redirects=follow)
            if not stream:
                try:
                    response.read()
                finally:
                    response.close()
                self.stats.add(received=len(response.content))
        return response

    def _counting(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.stats.add(sent=len(chunk))
            yield chunk

    def iter_body(self, response: httpx.Response, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The body of a streamed response in chunks, counted as received."""
        try:
            for chunk in response.iter_bytes(chunk_size):
                self.stats.add(received=len(chunk))
                yield chunk
        except httpx.TransportError as exc:
            raise self._unreachable("GET", str(response.request.url), exc) from None

    def _pause(self, attempt: int, retry_after: float | None, method: str, url: str, reason: str) -> None:
        if retry_after is not None:
            delay = retry_after
        else:
            ceiling = min(MAX_BACKOFF, self.backoff * (2**attempt))
            delay = random.uniform(ceiling / 2, ceiling)
        log.debug("retrying %s %s in %.2f s after %s", method, redact_url(url), delay, reason)
        self.sleep(delay)

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
        status = response.status_code
        codes = parse_diagnostics(body)
        where = f"{method} {redact_url(url)}: {status}"
        if codes:
            shown = "; ".join(
                f"{c.code}: {c.message}" if c.message else c.code for c in codes[:_MAX_CODES_SHOWN]
            )
            more = f" (and {len(codes) - _MAX_CODES_SHOWN} more)" if len(codes) > _MAX_CODES_SHOWN else ""
            message = f"{where} {shown}{more}"
        else:
            message = f"{where} {response.reason_phrase}".rstrip()
            if method == "HEAD":
                message += " (a HEAD response has no body to say why)"
        message = _one_line(message)
        kwargs = {"method": method, "url": redact_url(url), "status": status, "codes": codes}
        if status == 404:
            return RegistryNotFound(message, **kwargs)  # type: ignore[arg-type]
        if status in (401, 403):
            return RegistryDenied(message, hint=self._denied_hint(), **kwargs)  # type: ignore[arg-type]
        return RegistryError(message, **kwargs)  # type: ignore[arg-type]

    def _denied_hint(self) -> str:
        if self.auth.has_credentials:
            return (
                f"check the credentials for {self.host} (docker login {self.host}, or Docker's config.json)"
            )
        return (
            f"log in with 'docker login {self.host}' (boda reads Docker's config.json and credential helpers)"
        )

    def _unreachable(self, method: str, url: str, exc: httpx.TransportError) -> RegistryError:
        if isinstance(exc, httpx.TimeoutException):
            reason = f"no answer within {self.timeout:g} s"
        elif isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower():
            reason = "connection refused"
        else:
            detail = _one_line(str(exc))[:120]
            reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return RegistryError(
            _one_line(f"registry {self.host} is unreachable ({reason}): {method} {redact_url(url)}"),
            method=method,
            url=redact_url(url),
            hint="check that the registry is running and that its URL is right",
        )

    def _fetch_token(
        self, challenge: Challenge, scopes: list[str], creds: Credentials | None
    ) -> tuple[str, float]:
        """Exchange credentials (or nothing) for a bearer token at the challenge's realm."""
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"registry {self.host} sent a Bearer challenge without a usable realm")
        if self.scheme == "https" and realm.startswith("http://"):
            raise RegistryDenied(
                f"registry {self.host} asks for a token from plain-http realm {redact_url(realm)}; refusing"
            )
        try:
            if creds is not None and creds.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "client_id": "boda",
                    "scope": " ".join(scopes),
                }
                if challenge.service:
                    form["service"] = challenge.service
                response = self.request("POST", realm, data=form, authenticate=False)
            else:
                params = [("service", challenge.service)] if challenge.service else []
                params += [("scope", s) for s in scopes]
                basic = creds.basic_header() if creds is not None else None
                headers = {"Authorization": basic} if basic else None
                response = self.request("GET", realm, params=params, headers=headers, authenticate=False)
        except RegistryDenied as exc:
            raise RegistryDenied(
                _one_line(f"token request for {self.host} was refused: {exc.message}"),
                method=exc.method,
                url=exc.url,
                status=exc.status,
                codes=exc.codes,
                hint=self._denied_hint(),
            ) from None
        try:
            data = response.json()
            token = data.get("token") or data.get("access_token")
            lifetime = data.get("expires_in") or DEFAULT_TOKEN_LIFETIME
            if not isinstance(token, str) or not token or not isinstance(lifetime, int | float):
                raise TypeError
        except (ValueError, TypeError, AttributeError):
            raise RegistryError(
                f"token endpoint {redact_url(realm)} of {self.host} returned no token", method="GET"
            ) from None
        return token, float(lifetime)
