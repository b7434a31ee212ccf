"""Registry backends behind one protocol, chosen by location.

    oci-layout:PATH                              boda.registry.layout.LayoutRegistry (embedded default)
    http(s)://host[:port], host[:port]           boda.registry.oci.OciRegistry
    ecr://ACCOUNT.dkr.ecr.REGION.amazonaws.com   boda.registry.ecr.EcrRegistry

Backends are imported when a registry is opened, so that `boda --help` and the commands that need
no registry do not pay for httpx or boto3 (measured: httpx and httpcore ~90 ms, boto3 ~150 ms).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from boda.locations import RegistryLocation
from boda.types import Reference

if TYPE_CHECKING:
    from boda.registry.base import Registry
    from boda.registry.ecr import RepositorySettings
    from boda.registry.manifest_cache import ManifestCache

__all__ = ["manifest_cache_for", "open_reference", "open_registry"]


def open_registry(
    location: RegistryLocation | str,
    *,
    base_dir: Path | None = None,
    insecure: bool = False,
    ecr: RepositorySettings | None = None,
) -> Registry:
    """Open the backend a registry location names (a string is parsed first, see boda.locations).

    `ecr` configures the repositories an ECR backend creates.
    """
    if isinstance(location, str):
        location = RegistryLocation.parse(location, base_dir=base_dir, insecure=insecure)
    if location.kind == "layout":
        from boda.registry.layout import LayoutRegistry

        assert location.path is not None
        return LayoutRegistry(location.path)
    if location.kind == "ecr":
        from boda.registry.ecr import EcrRegistry

        return EcrRegistry(location.host, settings=ecr)
    from boda.registry.oci import OciRegistry

    return OciRegistry(location.host, scheme=location.scheme)


def open_reference(text: str, *, insecure: bool = False) -> tuple[Registry, Reference]:
    """Parse an image reference and open the backend it lives in."""
    ref = Reference.parse(text)
    return open_registry(ref.registry, insecure=insecure), ref


def manifest_cache_for(location: RegistryLocation) -> ManifestCache | None:
    """The on-disk manifest cache for a registry (None for the OCI layout, whose manifests are
    local files, and when `BODA_CACHE_DIR=off`)."""
    if location.kind == "layout":
        return None
    from boda.registry.manifest_cache import default_manifest_cache

    return default_manifest_cache()
