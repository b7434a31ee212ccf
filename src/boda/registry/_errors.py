"""The one place the oci backend turns HTTP answers and transport failures into boda errors.

Every message is one line and names the method and the URL with its secrets redacted (upload
session state, signed query values); the OCI `errors[]` of a body become diagnostics.
"""

from __future__ import annotations

import json

from boda.errors import RegistryDenied, RegistryDiagnostic, RegistryError, RegistryNotFound
from boda.locations import redact_url
from boda.registry._httpx import httpx

# Query parameters whose values are safe to show; every other value (`_state`, tokens) is redacted.
SAFE_QUERY = frozenset({"mount", "from", "digest", "n", "last", "artifactType", "service", "scope"})
_MAX_CODES_SHOWN = 3


def shown_url(url: str | httpx.URL) -> str:
    """A request URL as messages and logs show it."""
    return redact_url(str(url), keep_query=SAFE_QUERY)


def one_line(text: str) -> str:
    """`text` with every run of white space (newlines included) made one space."""
    return " ".join(text.split())


def parse_diagnostics(body: bytes) -> tuple[RegistryDiagnostic, ...]:
    """The OCI `errors[]` of an error body; () when the body is not such a document."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
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


def status_error(
    method: str, url: str | httpx.URL, status: int, reason: str, body: bytes, *, denied_hint: str
) -> RegistryError:
    """The error for an unexpected status: NotFound for 404, Denied for 401/403, else RegistryError."""
    codes = parse_diagnostics(body)
    where = f"{method} {shown_url(url)}: {status}"
    if codes:
        shown = "; ".join(f"{c.code}: {c.message}" if c.message else c.code for c in codes[:_MAX_CODES_SHOWN])
        more = f" (and {len(codes) - _MAX_CODES_SHOWN} more)" if len(codes) > _MAX_CODES_SHOWN else ""
        message = f"{where} {shown}{more}"
    else:
        message = f"{where} {reason}".rstrip()
        if method == "HEAD":
            message += " (a HEAD response has no body to say why)"
    message = one_line(message)
    if status == 404:
        return RegistryNotFound(message, method=method, url=shown_url(url), status=status, codes=codes)
    if status in (401, 403):
        return RegistryDenied(
            message, method=method, url=shown_url(url), status=status, codes=codes, hint=denied_hint
        )
    return RegistryError(message, method=method, url=shown_url(url), status=status, codes=codes)


def transport_error(
    host: str, method: str, url: str | httpx.URL, exc: httpx.TransportError, *, timeout: float
) -> RegistryError:
    """The error for a request that got no answer (refused, timed out, reset, TLS failure)."""
    if isinstance(exc, httpx.TimeoutException):
        reason = f"no answer within {timeout:g} s"
    elif isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower():
        reason = "connection refused"
    else:
        detail = one_line(str(exc))[:120]
        reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return RegistryError(
        one_line(f"registry {host} is unreachable ({reason}): {method} {shown_url(url)}"),
        method=method,
        url=shown_url(url),
        hint="check that the registry is running and that its URL is right",
    )
