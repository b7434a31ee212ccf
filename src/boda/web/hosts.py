"""Answer only the `Host` names the server is served as: a defence against DNS rebinding.

A page on another site can make a browser resolve its own name to 127.0.0.1 and then read
`http://evil.example:8080/api/...` from boda; the browser sends `Host: evil.example:8080`, which is
refused here. Allowed: the address the server binds to and localhost, 127.0.0.1 and [::1], each
with the served port (or without one when the port is 80), plus every `--allow-host NAME` (a
reverse proxy's public name: any port, or only the one given as NAME:PORT). A server bound to every
interface (0.0.0.0, ::) also answers an IP address with its port: DNS rebinding needs a name.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from boda.errors import EXIT_USAGE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_WILDCARDS = frozenset({"0.0.0.0", "::", "[::]", ""})


def _split(host: str) -> tuple[str, int | None]:
    """(name, port) of a Host value (`name`, `name:port`, `[v6]`, `[v6]:port`), name lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else "x")
    else:
        name, sep, port_text = host.rpartition(":")
        if not sep:
            name, port_text = host, ""
    if not port_text:
        return name, None
    return (name, int(port_text)) if port_text.isdigit() and len(port_text) <= 5 else ("", -1)


def _bracketed(host: str) -> str:
    """An IPv6 address as a Host header writes it."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host.strip("[]")).version == 6 else host
    except ValueError:
        return host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]") if name.startswith("[") else name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """Which `Host` values a server bound to `bind`:`port` answers."""

    bind: str
    port: int
    allowed: tuple[str, ...] = ()

    def _served(self) -> Iterable[str]:
        names = list(LOOPBACK_NAMES)
        if self.bind.strip("[]") not in _WILDCARDS:
            names.append(_bracketed(self.bind).lower())
        return dict.fromkeys(names)

    def allows(self, host: str | None) -> bool:
        """True when a request with this Host header value may be answered."""
        if not host:
            return False
        name, port = _split(host)
        if not name or port == -1:
            return False
        on_our_port = port == self.port or (port is None and self.port == 80)
        if on_our_port and name in self._served():
            return True
        if on_our_port and self.bind.strip("[]") in _WILDCARDS and _is_ip(name):
            return True
        for allowed in self.allowed:
            allowed_name, allowed_port = _split(allowed)
            if name == allowed_name and (allowed_port is None or allowed_port == port):
                return True
        return False

    def describe(self) -> str:
        """The allowed names, for the start-up message."""
        names = [f"{n}:{self.port}" for n in self._served()]
        if self.bind.strip("[]") in _WILDCARDS:
            names.append(f"any IP address:{self.port}")
        return ", ".join(names + list(self.allowed))


class HostCheck:
    """ASGI middleware: 400 with one line for a request whose Host the policy refuses."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
        if self.policy.allows(host):
            await self.app(scope, receive, send)
            return
        shown = (host or "").encode("ascii", "backslashreplace").decode()[:100]
        message = (
            f"Host {shown!r} is not a name this server is served as"
            " (start boda serve with --allow-host NAME to add one)"
            if host
            else "the request names no Host"
        )
        body = json.dumps({"error": message, "exit_code": EXIT_USAGE}).encode()
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
