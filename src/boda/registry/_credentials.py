"""Registry credentials from where users keep them: Docker's config.json and its credential helpers.

`$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`) is read as Docker does:
`credHelpers[host]`, then `credsStore`, then `auths[host]`. Secrets never appear in a repr, a
message or a log line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boda.errors import ConfigError

# Docker Hub is stored in config.json under its legacy index URL.
_DOCKER_HUB_NAMES = frozenset({"registry-1.docker.io", "index.docker.io", "docker.io"})
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HELPER_TIMEOUT = 60


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


#: Supplies credentials on every use instead of Docker's config.json (e.g. ECR's 12-hour tokens).
CredentialsProvider = Callable[[], Credentials | None]


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
            [program, "get"],
            input=server,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ConfigError(
            f"credential helper {program} is not on PATH",
            hint="install it or remove it from credHelpers/credsStore in Docker's config.json",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"credential helper {program} did not answer within {_HELPER_TIMEOUT} s") from exc
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
            raise TypeError("Username and Secret must be strings")
    except (ValueError, TypeError, AttributeError) as exc:  # a JSON error's text quotes no input
        raise ConfigError(f"credential helper {program} returned malformed JSON for {server}") from exc
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
    except (OSError, ValueError) as exc:  # a JSON error's text quotes no input
        raise ConfigError(f"cannot read Docker config {path}: {type(exc).__name__}") from exc
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
