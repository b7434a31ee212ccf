"""Registry authentication: WWW-Authenticate challenges, bearer tokens, Docker's config.json.

The flow is driven by the registry's answers: a request goes out anonymously (or with what the last
challenge asked for); a 401 names the scheme (Basic or Bearer) and, for Bearer, the token realm,
service and scope. Tokens are cached per (realm, service, set of scopes). Credentials come from
`$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`): `credHelpers[host]`, then `credsStore`,
then `auths[host]`. Secrets never appear in a repr, a message or a log line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boda.errors import ConfigError

# Docker Hub is stored in config.json under its legacy index URL.
_DOCKER_HUB_NAMES = frozenset({"registry-1.docker.io", "index.docker.io", "docker.io"})
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DEFAULT_TOKEN_LIFETIME = 60.0
# Renew a token this many seconds before the registry says it expires.
_EXPIRY_MARGIN = 5.0

_TOKEN_CHARS = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_PARAM = re.compile(rf'\s*,?\s*({_TOKEN_CHARS})\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_SCHEME = re.compile(rf"\s*,?\s*({_TOKEN_CHARS})(?=\s|,|$)")


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


@dataclass(frozen=True)
class Credentials:
    """A username with a password, or an identity (refresh) token. Secrets are kept out of repr."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def basic_header(self) -> str | None:
        """`Basic base64(user:password)`, or None without a password."""
        if not self.password:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def docker_config_path(explicit: Path | None = None) -> Path:
    """The config.json to read: `explicit` (a file or a folder), `$DOCKER_CONFIG`, `~/.docker`."""
    if explicit is not None:
        return explicit / "config.json" if explicit.is_dir() else explicit
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return Path(env) / "config.json"
    return Path.home() / ".docker" / "config.json"


def _key_host(key: str) -> str:
    """The `host[:port]` of a config.json key (`https://host/v1/` and bare `host` both occur)."""
    text = key.split("://", 1)[1] if "://" in key else key
    return text.split("/", 1)[0].lower()


def _matches(key: str, host: str) -> bool:
    key_host = _key_host(key)
    host = host.lower()
    if host in _DOCKER_HUB_NAMES:
        return key_host in _DOCKER_HUB_NAMES
    return key_host == host


def _lookup(section: Any, host: str) -> tuple[str, Any] | None:
    if not isinstance(section, dict):
        return None
    exact = section.get(host)
    if exact is not None:
        return host, exact
    for key, value in section.items():
        if isinstance(key, str) and _matches(key, host):
            return key, value
    return None


def run_credential_helper(name: str, server: str) -> Credentials | None:
    """Run `docker-credential-<name> get` with `server` on stdin; None when it has no entry."""
    program = f"docker-credential-{name}"
    try:
        done = subprocess.run(
            [program, "get"], input=server, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise ConfigError(
            f"credential helper {program} is not on PATH",
            hint="install it or remove it from credHelpers/credsStore in Docker's config.json",
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"credential helper {program} did not answer within 60 s") from None
    if done.returncode != 0:
        output = (done.stdout.strip() or done.stderr.strip()).splitlines()
        first = output[0][:200] if output else f"exit status {done.returncode}"
        if "not found" in first.lower():
            return None
        raise ConfigError(f"credential helper {program} failed for {server}: {first}")
    try:
        data = json.loads(done.stdout)
        username, secret = data.get("Username", ""), data.get("Secret", "")
        if not isinstance(username, str) or not isinstance(secret, str):
            raise TypeError
    except (ValueError, TypeError, AttributeError):
        raise ConfigError(f"credential helper {program} returned malformed JSON for {server}") from None
    if not secret:
        return None
    if username == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(username=username, password=secret)


def load_credentials(host: str, config: Path | None = None) -> Credentials | None:
    """Credentials for `host` from Docker's config.json and its helpers; None when there are none."""
    path = docker_config_path(config)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read Docker config {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Docker config {path} is not a JSON object")
    server = _DOCKER_HUB_KEY if host.lower() in _DOCKER_HUB_NAMES else host
    helper = _lookup(data.get("credHelpers"), host)
    if helper is not None and isinstance(helper[1], str) and helper[1]:
        return run_credential_helper(helper[1], server)
    store = data.get("credsStore")
    if isinstance(store, str) and store:
        found = run_credential_helper(store, server)
        if found is not None:
            return found
    entry = _lookup(data.get("auths"), host)
    if entry is None or not isinstance(entry[1], dict):
        return None
    return _from_auth_entry(entry[1], path)


def _from_auth_entry(entry: dict[str, Any], path: Path) -> Credentials | None:
    token = entry.get("identitytoken")
    encoded = entry.get("auth")
    username, password = entry.get("username") or "", entry.get("password") or ""
    if isinstance(encoded, str) and encoded:
        try:
            username, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise ConfigError(f"Docker config {path}: an 'auth' entry is not base64 of user:password")
    if isinstance(token, str) and token:
        return Credentials(username=str(username), identity_token=token)
    if isinstance(username, str) and isinstance(password, str) and password:
        return Credentials(username=username, password=password)
    return None


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float


#: Fetches a token: (challenge, scopes, credentials) -> (token, lifetime in seconds).
TokenFetcher = Callable[[Challenge, list[str], Credentials | None], tuple[str, float]]
#: Supplies credentials on every use instead of Docker's config.json (e.g. ECR's 12-hour tokens).
CredentialsProvider = Callable[[], Credentials | None]


class Authenticator:
    """Per-registry auth state: the last challenge, credentials (loaded once) and a token cache."""

    def __init__(
        self,
        host: str,
        *,
        docker_config: Path | None,
        fetch_token: TokenFetcher,
        credentials: CredentialsProvider | None = None,
    ) -> None:
        self.host = host
        self._provider = credentials
        self._docker_config = docker_config
        self._fetch_token = fetch_token
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._tokens: dict[tuple[str, str, tuple[str, ...]], Token] = {}

    def __repr__(self) -> str:
        return f"Authenticator(host={self.host!r})"

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

    def authorize(self, scopes: list[str], *, refresh: bool = False) -> str | None:
        """The Authorization header for a request needing `scopes`, per the last challenge."""
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self.credentials
            return creds.basic_header() if creds is not None else None
        key = (challenge.realm, challenge.service, tuple(sorted(set(scopes))))
        with self._fetch_lock:
            cached = self._tokens.get(key)
            if cached is not None and not refresh and cached.expires_at > time.monotonic():
                return f"Bearer {cached.value}"
            value, lifetime = self._fetch_token(challenge, list(scopes), self.credentials)
            expires_at = time.monotonic() + max(lifetime - _EXPIRY_MARGIN, 1.0)
            self._tokens[key] = Token(value, expires_at)
        return f"Bearer {value}"

    def answer(self, header: str, scopes: list[str], round_: int) -> tuple[list[str], str] | None:
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
            auth = self.authorize(scopes)
            return (scopes, auth) if auth is not None else None
        merged = merge_scopes(scopes, challenge.scopes)
        if not changed and merged == scopes and round_ > 0:
            return None
        auth = self.authorize(merged, refresh=not changed and merged == scopes)
        return (merged, auth) if auth is not None else None
