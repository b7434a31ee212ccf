"""Lambda: the images that functions of package type Image serve.

For every such function (one by name, those a glob matches, or all of a region): `$LATEST`, and
every version an alias points to (both versions of a weighted alias) or that has provisioned
concurrency, each by `Code.ResolvedImageUri`, the digest Lambda resolved when the version was
created. Calls: ListFunctions (all pages) or one GetFunction for a named function; per function
ListAliases and ListProvisionedConcurrencyConfigs (all pages) and one GetFunction per version.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from boda.locations import RuntimeLocation
from boda.runtime._aws import AwsApi, parallel
from boda.runtime.base import Observation, RunningImage, RuntimeUnavailable, digest_after_at, merge

LATEST = "$LATEST"
PAGE_SIZE = 50


@dataclass(frozen=True)
class _Use:
    """Why a version is in use: the qualifier that names it and a note for people."""

    qualifier: str
    detail: str


class LambdaObserver:
    """Reads `lambda:REGION/FUNCTION` or `lambda:REGION/*`; `client` is injectable for tests."""

    def __init__(self, location: RuntimeLocation, *, client: Any = None, workers: int | None = None) -> None:
        if location.kind != "lambda":
            raise ValueError(f"not a Lambda runtime: {location}")
        self.location = location
        self._api = AwsApi(location, "lambda", location.region, client)
        self._workers = workers or 8
        self._glob = any(c in location.function for c in "*?")

    def close(self) -> None:
        """Close the client."""
        self._api.close()

    def observe(self) -> Observation:
        """Every image the matching functions serve."""
        if self._glob:
            functions = [
                f
                for f in self._api.items(
                    "list_functions", "Functions", PaginationConfig={"PageSize": PAGE_SIZE}
                )
                if fnmatchcase(f.get("FunctionName", ""), self.location.function)
            ]
            latest: dict[str, dict[str, Any]] = {}
        else:
            answer = self._api.call("get_function", FunctionName=self.location.function)
            functions = [answer.get("Configuration") or {}]
            latest = {self.location.function: answer}
        images = [
            image
            for found in parallel(
                lambda f: self._function(f, latest.get(f.get("FunctionName", ""))),
                [f for f in functions if f.get("PackageType") == "Image"],
                self._workers,
            )
            for image in found
        ]
        return Observation(self.location, merge(images), self._api.counter.count)

    def _function(self, config: dict[str, Any], latest: dict[str, Any] | None) -> list[RunningImage]:
        name = config.get("FunctionName", "")
        if not name:
            raise RuntimeUnavailable(self.location, "Lambda ListFunctions answered a function without a name")
        uses: dict[str, list[_Use]] = {LATEST: [_Use(LATEST, "$LATEST")]}
        aliases = self._api.items(
            "list_aliases", "Aliases", FunctionName=name, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        alias_version: dict[str, str] = {}
        for alias in aliases:
            alias_name = alias.get("Name", "")
            version = alias.get("FunctionVersion", "")
            alias_version[alias_name] = version
            weights: dict[str, float] = (alias.get("RoutingConfig") or {}).get(
                "AdditionalVersionWeights"
            ) or {}
            primary = 1.0 - sum(weights.values())
            note = f", weight {primary:g}" if weights else ""
            uses.setdefault(version, []).append(
                _Use(alias_name, f"alias {alias_name} -> version {version}{note}")
            )
            for other, weight in weights.items():
                uses.setdefault(other, []).append(
                    _Use(alias_name, f"alias {alias_name} -> version {other}, weight {weight:g}")
                )
        configs = self._api.items(
            "list_provisioned_concurrency_configs",
            "ProvisionedConcurrencyConfigs",
            FunctionName=name,
            PaginationConfig={"PageSize": PAGE_SIZE},
        )
        for pc in configs:
            qualifier = str(pc.get("FunctionArn", "")).rsplit(":", 1)[-1]
            version = alias_version.get(qualifier, qualifier)
            if not version.isdigit() and version != LATEST:
                raise RuntimeUnavailable(
                    self.location,
                    f"Lambda {name}: provisioned concurrency on {qualifier!r}, which is neither a version"
                    " nor an alias ListAliases returned",
                )
            count = pc.get("RequestedProvisionedConcurrentExecutions")
            uses.setdefault(version, []).append(
                _Use(qualifier, f"provisioned concurrency {count} on {qualifier} -> version {version}")
            )
        images: list[RunningImage] = []
        for version in sorted(uses, key=lambda v: (v != LATEST, int(v) if v.isdigit() else 0)):
            answer = latest if version == LATEST and latest is not None else None
            if answer is None:
                answer = self._api.call("get_function", FunctionName=name, Qualifier=version)
            code = answer.get("Code") or {}
            image = str(code.get("ImageUri") or code.get("ResolvedImageUri") or "")
            resolved = str(code.get("ResolvedImageUri") or "")
            digest = digest_after_at(resolved) or digest_after_at(image)
            if not image:
                raise RuntimeUnavailable(
                    self.location,
                    f"Lambda GetFunction {name}:{version} answered no image URI for an Image function",
                )
            for use in uses[version]:
                images.append(
                    RunningImage(
                        f"lambda:{self.location.region}/{name}:{use.qualifier}",
                        image,
                        digest,
                        "running",
                        "function",
                        container=name,
                        detail=use.detail,
                    )
                )
        return images
