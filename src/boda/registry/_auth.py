"""Registry authentication as an `httpx.Auth` flow: WWW-Authenticate challenges and bearer tokens.

The flow is driven by the registry's answers: a request goes out anonymously (or with what the last
challenge asked for); a 401 names the scheme (Basic or Bearer) and, for Bearer, the token realm,
service and scope. The token exchange is a request of the flow itself, so it shares the client's
retries and counters. Tokens are cached per (realm, service, set of scopes). A request names the
scopes it needs in its SCOPES extension (`repository:NAME:pull,push`).

Credentials stay with their origin, as Docker and httpx's redirects do: only requests to the
registry's own scheme, host and port are answered or given an Authorization header; a pagination
`Link` or an upload `Location` on another host gets none. The token realm the registry names in
its challenge receives the Basic credentials (as with Docker), never over plain HTTP when the
registry itself is HTTPS. Secrets never appear in a repr, a message or a log line.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from boda.errors import RegistryDenied, RegistryError
from boda.registry._credentials import Credentials, CredentialsProvider, load_credentials
from boda.registry._errors import one_line, shown_url, status_error
from boda.registry._httpx import httpx
from boda.registry._retry import replayable

#: Request extension: the scopes a request needs (a tuple of `repository:NAME:ACTIONS`).
SCOPES = "boda.scopes"
DEFAULT_TOKEN_LIFETIME = 60.0
# Renew a token this many seconds before the registry says it expires.
_EXPIRY_MARGIN = 5.0
# Answers to 401 per request: a new challenge, then a wider scope or a refreshed token.
_MAX_ROUNDS = 2
_DEFAULT_PORTS = {"http": 80, "https": 443}

_TOKEN_CHARS = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_PARAM = re.compile(rf'\s*,?\s*({_TOKEN_CHARS})\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_SCHEME = re.compile(rf"\s*,?\s*({_TOKEN_CHARS})(?=\s|,|$)")

Flow = Generator[httpx.Request, httpx.Response, None]


@dataclass(frozen=True)
class Challenge:
    """One challenge of a `WWW-Authenticate` header (scheme lower-cased, parameter names too)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> list[str]:
        """The scopes a Bearer challenge asks for (space-separated in the header)."""
        return [s for s in self.params.get("scope", "").split(" ") if s]

    def same_endpoint(self, other: Challenge) -> bool:
        """Same scheme, realm and service: a token for one is a token for the other."""
        return (self.scheme, self.realm, self.service) == (other.scheme, other.realm, other.service)


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a `WWW-Authenticate` value into its challenges (RFC 7235 auth-params; token68 ignored)."""
    challenges: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while pos < len(header):
        param = _PARAM.match(header, pos)
        if param and challenges:
            value = param.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            challenges[-1][1][param.group(1).lower()] = value
            pos = param.end()
            continue
        scheme = _SCHEME.match(header, pos)
        if not scheme:
            break
        challenges.append((scheme.group(1).lower(), {}))
        pos = scheme.end()
    return [Challenge(scheme, params) for scheme, params in challenges]


def select_challenge(header: str) -> Challenge | None:
    """The challenge boda answers: Bearer when offered, else Basic, else None."""
    found = {c.scheme: c for c in reversed(parse_challenges(header))}
    return found.get("bearer") or found.get("basic")


def repository_scope(repo: str, *actions: str) -> str:
    """`repository:<repo>:<actions>` with the actions in a canonical order."""
    return f"repository:{repo}:{','.join(sorted(set(actions)))}"


def merge_scopes(current: Iterable[str], extra: Iterable[str]) -> list[str]:
    """`current` with the actions of `extra` merged in; order is kept (push scope first for mounts)."""
    merged: list[str] = []
    index: dict[str, int] = {}
    for scope in [*current, *extra]:
        resource, sep, actions = scope.rpartition(":")
        if not sep or not resource:
            if scope not in merged:
                merged.append(scope)
            continue
        if resource in index:
            have = merged[index[resource]].rpartition(":")[2].split(",")
            union = sorted({*have, *actions.split(",")} - {""})
            merged[index[resource]] = f"{resource}:{','.join(union)}"
        else:
            index[resource] = len(merged)
            merged.append(f"{resource}:{','.join(sorted(set(actions.split(','))))}")
    return merged


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    return url.scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(url.scheme)


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float


class RegistryAuth(httpx.Auth):
    """Per-registry auth state (the last challenge, credentials loaded once, a token cache) and
    the flow that uses it for every request of the registry's client."""

    def __init__(
        self,
        base_url: str,
        *,
        docker_config: Path | None = None,
        credentials: CredentialsProvider | None = None,
        denied_hint: Callable[[], str] | None = None,
    ) -> None:
        parsed = httpx.URL(base_url)
        self.host = parsed.netloc.decode("ascii")
        self._origin = origin(parsed)
        self._provider = credentials
        self._docker_config = docker_config
        self._denied_hint = denied_hint or (lambda: "")
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._tokens: dict[tuple[str, str, tuple[str, ...]], Token] = {}

    def __repr__(self) -> str:
        return f"RegistryAuth(host={self.host!r})"

    @property
    def challenge(self) -> Challenge | None:
        return self._challenge

    @property
    def credentials(self) -> Credentials | None:
        """The credentials for this host: the provider's, else config.json's (read on first use)."""
        if self._provider is not None:
            return self._provider()
        with self._lock:
            if not self._credentials_loaded:
                self._credentials = load_credentials(self.host, self._docker_config)
                self._credentials_loaded = True
            return self._credentials

    @property
    def has_credentials(self) -> bool:
        return self.credentials is not None

    def same_origin(self, url: httpx.URL) -> bool:
        """True for a URL of the registry itself (scheme, host and port), where credentials go."""
        return origin(url) == self._origin

    # -- the flow ----------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Flow:
        """Drive `auth_flow`, closing it however the exchange ends (it may hold the token lock)."""
        flow = self.auth_flow(request)
        try:
            outgoing = next(flow)
            while True:
                response = yield outgoing
                try:
                    outgoing = flow.send(response)
                except StopIteration:
                    return
        finally:
            flow.close()

    def auth_flow(self, request: httpx.Request) -> Flow:
        if not self.same_origin(request.url):
            request.headers.pop("Authorization", None)
            yield request  # another origin: never our credentials, never an answer to its challenge
            return
        scopes = merge_scopes(request.extensions.get(SCOPES, ()), [])
        header = yield from self._authorization(scopes)
        if header is not None:
            request.headers["Authorization"] = header
        response = yield request
        for round_ in range(_MAX_ROUNDS):
            if response.status_code != 401 or not replayable(request):
                return
            answer = yield from self._answer(response.headers.get("www-authenticate", ""), scopes, round_)
            if answer is None:
                return
            scopes, header = answer
            request.headers["Authorization"] = header
            response = yield request

    def _authorization(
        self, scopes: list[str], *, refresh: bool = False
    ) -> Generator[httpx.Request, httpx.Response, str | None]:
        """The Authorization header for a request needing `scopes`, per the last challenge."""
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self.credentials
            return creds.basic_header() if creds is not None else None
        key = (challenge.realm, challenge.service, tuple(sorted(set(scopes))))
        with self._fetch_lock:  # one exchange at a time; the others then find the token cached
            cached = self._tokens.get(key)
            if cached is not None and not refresh and cached.expires_at > time.monotonic():
                return f"Bearer {cached.value}"
            value, lifetime = yield from self._exchange(challenge, list(scopes))
            expires_at = time.monotonic() + max(lifetime - _EXPIRY_MARGIN, 1.0)
            self._tokens[key] = Token(value, expires_at)
        return f"Bearer {value}"

    def _answer(
        self, header: str, scopes: list[str], round_: int
    ) -> Generator[httpx.Request, httpx.Response, tuple[list[str], str] | None]:
        """React to a 401: (scopes, Authorization) for one more try, or None when a retry is futile.

        A new challenge endpoint is always worth a try; a Bearer challenge asking for more scope
        re-exchanges with the merged scopes; a rejected cached token is refreshed once.
        """
        challenge = select_challenge(header)
        if challenge is None:
            return None
        previous = self._challenge
        changed = previous is None or not challenge.same_endpoint(previous)
        self._challenge = challenge
        if challenge.scheme == "basic":
            if not changed:
                return None
            auth = yield from self._authorization(scopes)
            return (scopes, auth) if auth is not None else None
        merged = merge_scopes(scopes, challenge.scopes)
        if not changed and merged == scopes and round_ > 0:
            return None
        auth = yield from self._authorization(merged, refresh=not changed and merged == scopes)
        return (merged, auth) if auth is not None else None

    def _exchange(
        self, challenge: Challenge, scopes: list[str]
    ) -> Generator[httpx.Request, httpx.Response, tuple[str, float]]:
        """Exchange credentials (or nothing) for a bearer token at the challenge's realm."""
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"registry {self.host} sent a Bearer challenge without a usable realm")
        if self._origin[0] == "https" and realm.startswith("http://"):
            raise RegistryDenied(
                f"registry {self.host} asks for a token from plain-http realm {shown_url(realm)}; refusing"
            )
        creds = self.credentials
        if creds is not None and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "boda",
                "scope": " ".join(scopes),
            }
            if challenge.service:
                form["service"] = challenge.service
            request = httpx.Request("POST", realm, data=form)
        else:
            params = [("service", challenge.service)] if challenge.service else []
            params += [("scope", s) for s in scopes]
            basic = creds.basic_header() if creds is not None else None
            request = httpx.Request(
                "GET", realm, params=tuple(params), headers={"Authorization": basic} if basic else None
            )
        response = yield request
        body = response.read()
        if response.status_code != 200:
            error = status_error(
                request.method,
                request.url,
                response.status_code,
                response.reason_phrase,
                body,
                denied_hint=self._denied_hint(),
            )
            denied = isinstance(error, RegistryDenied)
            kind = RegistryDenied if denied else RegistryError
            raise kind(
                one_line(
                    f"token request for {self.host} {'was refused' if denied else 'failed'}: {error.message}"
                ),
                method=error.method,
                url=error.url,
                status=error.status,
                codes=error.codes,
                hint=self._denied_hint() if denied else None,
            ) from error
        try:
            data = response.json()
            token = data.get("token") or data.get("access_token")
            lifetime = data.get("expires_in") or DEFAULT_TOKEN_LIFETIME
            if not isinstance(token, str) or not token or not isinstance(lifetime, int | float):
                raise TypeError("no token or expires_in in the answer")
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            raise RegistryError(
                f"token endpoint {shown_url(realm)} of {self.host} returned no token", method="GET"
            ) from exc
        return token, float(lifetime)
