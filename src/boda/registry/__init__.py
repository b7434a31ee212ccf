"""Registry backends behind one protocol, chosen by URL.

    oci-layout:PATH                         boda.registry.layout.LayoutRegistry (embedded default)
    http://host[:port], https://host[:port] boda.registry.oci.OciRegistry
    host[:port]                             the same; plain HTTP only for loopback or --insecure hosts
    ecr://ACCOUNT.dkr.ecr.REGION.amazonaws.com  boda.registry.ecr.EcrRegistry

Backends are imported lazily so that `boda --help` does not pay for httpx or boto3.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from boda.errors import UsageError
from boda.types import LAYOUT_SCHEME, Reference

if TYPE_CHECKING:
    from boda.config import EcrSettings
    from boda.registry.base import Registry

ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")

__all__ = ["ECR_HOST", "insecure_hosts", "is_loopback", "open_reference", "open_registry", "registry_url_of"]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (with or without a port)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        import ipaddress

        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def insecure_hosts() -> frozenset[str]:
    """Hosts the user allows plain HTTP to (BODA_INSECURE_REGISTRIES, comma-separated)."""
    return frozenset(
        h.strip() for h in os.environ.get("BODA_INSECURE_REGISTRIES", "").split(",") if h.strip()
    )


def open_registry(
    url: str, *, base_dir: Path | None = None, insecure: bool = False, ecr: EcrSettings | None = None
) -> Registry:
    """Open the backend a registry URL names.

    `base_dir` anchors a relative layout path (the config file's folder). `insecure` allows plain
    HTTP to a non-loopback host (as does listing it in BODA_INSECURE_REGISTRIES). `ecr` configures the
    repositories an ECR backend creates.
    """
    if url.startswith(LAYOUT_SCHEME):
        from boda.registry.layout import LayoutRegistry

        path = Path(url[len(LAYOUT_SCHEME) :])
        if not str(path):
            raise UsageError(f"registry URL {url!r} names no folder")
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return LayoutRegistry(path)
    if url.startswith("ecr://"):
        host = url[len("ecr://") :].rstrip("/")
        if not ECR_HOST.match(host):
            raise UsageError(f"registry URL {url!r}: expected ecr://ACCOUNT.dkr.ecr.REGION.amazonaws.com")
        from boda.registry.ecr import EcrRegistry

        return EcrRegistry(host, settings=ecr)
    scheme = None
    host = url
    if "://" in url:
        scheme, host = url.split("://", 1)
        if scheme not in ("http", "https"):
            raise UsageError(f"registry URL {url!r}: scheme must be http, https, ecr or oci-layout")
    host = host.rstrip("/")
    if not host or "/" in host:
        raise UsageError(f"registry URL {url!r}: expected a host[:port] without a path")
    if ECR_HOST.match(host) and scheme is None:
        from boda.registry.ecr import EcrRegistry

        return EcrRegistry(host, settings=ecr)
    plain_ok = is_loopback(host) or insecure or host in insecure_hosts()
    if scheme == "http" and not plain_ok:
        raise UsageError(
            f"registry URL {url!r}: plain http is only used for loopback hosts",
            hint="pass --insecure or list the host in BODA_INSECURE_REGISTRIES if you mean it",
        )
    if scheme is None:
        scheme = "http" if plain_ok else "https"
    from boda.registry.oci import OciRegistry

    return OciRegistry(host, scheme=scheme)


def registry_url_of(ref: Reference) -> str:
    """The registry URL that `open_registry` takes for a reference's registry."""
    return ref.registry


def open_reference(text: str, *, insecure: bool = False) -> tuple[Registry, Reference]:
    """Parse an image reference and open the backend it lives in."""
    ref = Reference.parse(text)
    return open_registry(registry_url_of(ref), insecure=insecure), ref
