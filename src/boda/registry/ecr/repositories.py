"""ECR repository administration: creating a missing repository with the configured settings,
reading and storing its lifecycle policy and its tag mutability."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boda.errors import ConfigError, RegistryError, RegistryNotFound
from boda.registry.base import TagMutability
from boda.registry.ecr.errors import EcrErrors
from boda.types import validate_repository

if TYPE_CHECKING:
    from mypy_boto3_ecr.client import ECRClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepositorySettings:
    """How boda creates a missing repository (strategy `repos`).

    `lifecycle_policy_text` is stored on every new repository; the caller has validated it.
    `exclusion_filters` (wildcards) go with a `*_WITH_EXCLUSION` tag mutability.
    """

    tag_mutability: str = "MUTABLE"
    scan_on_push: bool = False
    lifecycle_policy_text: str | None = None
    exclusion_filters: tuple[str, ...] = ()


class Repositories:
    """The repositories of one ECR registry (account), and which of them are known to exist."""

    def __init__(
        self, client: ECRClient, account: str, errors: EcrErrors, settings: RepositorySettings | None
    ) -> None:
        self._client = client
        self._account = account
        self._errors = errors
        self.settings = settings
        self._lock = threading.Lock()
        self._known: set[str] = set()

    def mark_known(self, repo: str) -> None:
        """Remember that `repo` exists (an API call on it just succeeded)."""
        with self._lock:
            self._known.add(repo)

    def ensure(self, repo: str) -> bool:
        """Create `repo` if it does not exist; True when this call created it.

        New repositories get the configured tag mutability, scan-on-push and lifecycle policy (the
        policy is validated before anything is created). An existing repository is left as it is.
        """
        validate_repository(repo)
        with self._lock:
            if repo in self._known:
                return False
        try:
            with self._errors.api("DescribeRepositories", repo):
                self._client.describe_repositories(registryId=self._account, repositoryNames=[repo])
        except RegistryNotFound:
            created = self._create(repo)
        else:
            created = False
        self.mark_known(repo)
        return created

    def _create(self, repo: str) -> bool:
        settings = self.settings or RepositorySettings()
        with_exclusion = settings.tag_mutability.endswith("_WITH_EXCLUSION")
        if with_exclusion and not settings.exclusion_filters:
            raise ConfigError(
                f"ecr.tag_mutability = {settings.tag_mutability!r} needs exclusion filters, which boda"
                f" does not invent; create repository {repo!r} yourself, or use MUTABLE or IMMUTABLE"
            )
        extra: dict[str, Any] = {}
        if with_exclusion:
            extra["imageTagMutabilityExclusionFilters"] = _filters(settings.exclusion_filters)
        try:
            with self._errors.api("CreateRepository", repo):
                self._client.create_repository(
                    registryId=self._account,
                    repositoryName=repo,
                    imageTagMutability=settings.tag_mutability,  # type: ignore[arg-type]
                    imageScanningConfiguration={"scanOnPush": settings.scan_on_push},
                    **extra,
                )
        except RegistryError as exc:
            if "RepositoryAlreadyExistsException" in exc.code_names:
                return False  # created concurrently by another runner: theirs stands
            raise
        log.info("created ECR repository %s/%s", self._errors.name, repo)
        if settings.lifecycle_policy_text is not None:
            self.put_lifecycle_policy(repo, settings.lifecycle_policy_text)
        return True

    def lifecycle_policy(self, repo: str) -> str | None:
        """The repository's own lifecycle policy text; None when it has none (NotFound without
        the repository)."""
        try:
            with self._errors.api("GetLifecyclePolicy", repo):
                response = self._client.get_lifecycle_policy(registryId=self._account, repositoryName=repo)
        except RegistryNotFound as exc:
            if "LifecyclePolicyNotFoundException" in exc.code_names:
                return None
            raise
        return response.get("lifecyclePolicyText") or None

    def put_lifecycle_policy(self, repo: str, text: str) -> None:
        """Store `text` as the repository's lifecycle policy (callers validate it first)."""
        with self._errors.api("PutLifecyclePolicy", repo):
            self._client.put_lifecycle_policy(
                registryId=self._account, repositoryName=repo, lifecyclePolicyText=text
            )

    def tag_mutability(self, repo: str) -> TagMutability:
        """The repository's tag mutability and exclusion filters (NotFound without the repository)."""
        with self._errors.api("DescribeRepositories", repo):
            response = self._client.describe_repositories(registryId=self._account, repositoryNames=[repo])
        found = response["repositories"][0]
        filters = tuple(
            f["filter"]
            for f in found.get("imageTagMutabilityExclusionFilters") or []
            if f.get("filterType", "WILDCARD") == "WILDCARD"
        )
        return TagMutability(found.get("imageTagMutability", "MUTABLE"), filters)

    def put_tag_mutability(self, repo: str, setting: TagMutability) -> TagMutability:
        """Store the tag mutability (and exclusion filters), then read the repository back."""
        extra: dict[str, Any] = {}
        if setting.mutability.endswith("_WITH_EXCLUSION"):
            extra["imageTagMutabilityExclusionFilters"] = _filters(setting.filters)
        with self._errors.api("PutImageTagMutability", repo):
            self._client.put_image_tag_mutability(
                registryId=self._account,
                repositoryName=repo,
                imageTagMutability=setting.mutability,  # type: ignore[arg-type]
                **extra,
            )
        return self.tag_mutability(repo)


def _filters(wildcards: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"filterType": "WILDCARD", "filter": f} for f in wildcards]
