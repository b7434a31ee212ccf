"""What every lifecycle service needs: the config, the registry, the ledger and who is acting.

The registry and the ledger are opened on first use, so a command that fails validation never
touches either.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from boda.config import Config
from boda.errors import ConfigError, NotFound, PolicyError, ReferenceError_, UsageError
from boda.types import (
    COMMIT_PREFIX,
    FULL_COMMIT_SHA,
    MIN_PREFIX,
    Digest,
    check_free_text,
    validate_repository,
)

if TYPE_CHECKING:
    from boda.ledger.base import Build, Ledger
    from boda.registry.base import Registry
    from boda.registry.ecr import RepositorySettings

# CI systems name the person or bot behind a run in these variables, most specific first.
CI_IDENTITY_VARIABLES = (
    "BODA_ACTOR",
    "GITHUB_ACTOR",
    "GITLAB_USER_LOGIN",
    "BUILDKITE_BUILD_CREATOR_EMAIL",
    "CIRCLE_USERNAME",
    "BITBUCKET_STEP_TRIGGERER_UUID",
    "BUILD_REQUESTEDFOREMAIL",
    "USER",
    "LOGNAME",
)


def identity(by: str | None) -> str:
    """Who is acting: `--by`, else the CI identity variables, else the login name; UsageError when
    that is not text boda accepts (check_free_text)."""
    if by:
        return check_free_text(by, "the name of who acts")
    for name in CI_IDENTITY_VARIABLES:
        value = os.environ.get(name)
        if value:
            return check_free_text(value, f"the name of who acts (${name})")
    return "unknown"


def check_commit(text: str) -> str:
    """A commit to look up: a SHA or a prefix of it (MIN_PREFIX to 64 hex digits), lower case."""
    commit = text.strip().lower()
    if not COMMIT_PREFIX.match(commit):
        raise ReferenceError_(f"invalid commit {text!r}: expected {MIN_PREFIX} to 64 hexadecimal digits")
    return commit


def check_full_commit(text: str) -> str:
    """A commit to record: its full SHA (40 or 64 hex digits), lower case; a prefix is refused."""
    commit = text.strip().lower()
    if not FULL_COMMIT_SHA.match(commit):
        raise ReferenceError_(
            f"invalid commit {text!r}: expected the full SHA (40 or 64 hexadecimal digits), not a prefix"
        )
    return commit


def check_app(app: str) -> str:
    """An app name is a repository path such as `foo/bar`."""
    try:
        return validate_repository(app)
    except ReferenceError_ as exc:
        raise ReferenceError_(f"invalid app name {app!r}: {exc.message}") from exc


def repository_settings(config: Config) -> RepositorySettings:
    """The `[ecr]` settings as the ECR backend takes them, the lifecycle policy read and validated."""
    # Imported here: boto3 costs ~150 ms and the policy engine ~10 ms of every command's start-up.
    from boda.policy.document import parse_policy
    from boda.registry.ecr import RepositorySettings

    text = None
    path = config.ecr.lifecycle_policy
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"ecr.lifecycle_policy: cannot read {path}: {exc}") from exc
        try:
            parse_policy(text)
        except PolicyError as exc:
            raise PolicyError(f"ecr.lifecycle_policy {path}: {exc.message}") from exc
    filters: tuple[str, ...] = ()
    if config.retention.mode == "native" and config.ecr.tag_mutability == "IMMUTABLE_WITH_EXCLUSION":
        # Native retention: the tags that move are the only mutable ones (README: Native retention).
        filters = (f"{config.retention.protection_prefix}*",)
    return RepositorySettings(config.ecr.tag_mutability, config.ecr.scan_on_push, text, filters)


def create_ledger(config: Config) -> str:
    """Create (or migrate) the configured ledger, as `boda init` does; returns where it is."""
    from boda.ledger import open_ledger

    open_ledger(config.ledger, create=True).close()
    return config.ledger.display


@dataclass
class Context:
    """The open resources of one command. Close it when done (or use it as a context manager)."""

    config: Config
    _registry: Registry | None = field(default=None, repr=False)
    _ledger: Ledger | None = field(default=None, repr=False)
    #: Create a SQLite ledger file that does not exist yet (`boda build`); otherwise it is NotFound.
    create_ledger: bool = False

    @cached_property
    def registry(self) -> Registry:
        """The configured registry backend."""
        if self._registry is None:
            from boda.registry import open_registry

            settings = repository_settings(self.config) if self.config.registry.kind == "ecr" else None
            self._registry = open_registry(self.config.registry, ecr=settings)
        return self._registry

    @cached_property
    def ledger(self) -> Ledger:
        """The configured ledger, migrated on first use (a missing SQLite file: see `create_ledger`)."""
        if self._ledger is None:
            from boda.ledger import open_ledger

            self._ledger = open_ledger(self.config.ledger, create=self.create_ledger)
        return self._ledger

    def close(self) -> None:
        """Close whatever was opened."""
        if "registry" in self.__dict__:
            self.registry.close()
        if "ledger" in self.__dict__:
            self.ledger.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reference(self, repo: str, *, tag: str | None = None, digest: Digest | None = None) -> str:
        """A pull reference for people and deploy tools, by digest when one is given."""
        prefix = self.config.registry.reference_prefix(repo)
        if digest is not None:
            return f"{prefix}@{digest}"
        return f"{prefix}:{tag}" if tag else prefix

    def commit_tag(self, build: Build) -> str:
        """The commit tag `build` got: as recorded, or for a build recorded before the ledger kept
        it (schema 4), what the configured template gives."""
        return build.tag or self.config.commit_tag_for(build.commit)

    def require_app(self, app: str) -> str:
        """`app` if the ledger knows builds of it, else NotFound."""
        check_app(app)
        known = self.ledger.apps()
        if app not in known:
            close = difflib.get_close_matches(app, known, n=1)
            raise NotFound(
                f"unknown app {app!r}: no build of it is recorded",
                hint=f"did you mean {close[0]!r}?" if close else "record one with `boda build`",
            )
        return app

    def find_build(self, app: str, *, commit: str | None = None, digest: str | None = None) -> Build:
        """The build of `app` named by a commit (or unique prefix of >= 7 digits) or a digest."""
        if (commit is None) == (digest is None):
            raise UsageError("name the build by exactly one of a commit or a digest")
        self.require_app(app)
        if digest is not None:
            wanted = Digest.parse(digest)
            builds = self.ledger.builds_by_digest(wanted, app)
            if not builds:
                raise NotFound(f"no build of {app} has digest {wanted}")
            return builds[0]
        assert commit is not None
        prefix = check_commit(commit)
        matches = self.ledger.builds_by_commit_prefix(app, prefix)
        if not matches:
            raise NotFound(f"no build of {app} for commit {prefix}")
        if len(matches) > 1:
            shown = ", ".join(b.commit[:12] for b in matches[:5])
            raise ReferenceError_(f"commit prefix {prefix!r} is ambiguous for {app}: {shown}")
        return matches[0]
