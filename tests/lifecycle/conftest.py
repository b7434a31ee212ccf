"""A boda project in a tmp folder: a config, a registry (layout or a real registry) and a ledger."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from boda.ledger import open_ledger
from boda.registry import open_registry
from boda.registry.base import Registry
from boda.services.imagegen import SyntheticImage, make_image, make_index, push
from fixtures.cli import Run
from fixtures.config import boda_toml
from fixtures.registry import RegistryProcess, _start


def sha(n: int | str) -> str:
    """A deterministic 40-digit commit SHA."""
    return hashlib.sha1(f"commit-{n}".encode()).hexdigest()


@dataclass
class Project:
    """One configured boda project and handles to inspect its registry and ledger."""

    root: Path
    registry_url: str
    ledger_url: str
    strategy: str
    run_cli: Callable[..., Run]
    prefix: str

    @property
    def config(self) -> Path:
        return self.root / "boda.toml"

    def app(self, name: str) -> str:
        """An app name unique to this test (the real registry is shared by a session)."""
        return f"{self.prefix}/{name}"

    def boda(self, *args: str) -> Run:
        return self.run_cli("--config", str(self.config), *args)

    def registry(self) -> Registry:
        return open_registry(self.registry_url, base_dir=self.root)

    def push(self, app: str, image: SyntheticImage, tag: str) -> str:
        registry = self.registry()
        try:
            return str(push(registry, app, image, tag=tag))
        finally:
            registry.close()

    def build(self, app: str, n: int, *, index: bool = False) -> tuple[str, str]:
        """Push a fresh image for commit `n` and record it; returns (commit, digest)."""
        seed = f"{self.prefix}/{app}/{n}"
        image = make_index(seed) if index else make_image(seed, layers=2, layer_size=512)
        self.push(app, image, f"ci-{n}")
        commit = sha(f"{self.prefix}-{app}-{n}")
        result = self.boda("build", app, "--commit", commit, "--image", f":ci-{n}", "--json")
        assert result.code == 0, result.err
        return commit, result.json["digest"]

    def tags(self, repo: str) -> dict[str, str]:
        """tag -> digest of a repository ({} when it does not exist)."""
        registry = self.registry()
        try:
            from boda.errors import NotFound

            try:
                names = registry.tag_list(repo)
            except NotFound:
                return {}
            out = {}
            for tag in names:
                head = registry.manifest_head(repo, tag)
                assert head is not None
                out[tag] = str(head.digest)
            return out
        finally:
            registry.close()

    def snapshot(self, repos: list[str]) -> tuple[dict[str, dict[str, str]], int]:
        """Everything a bad command must leave unchanged: every tag, and the number of events
        (0 while no command has created the ledger yet)."""
        from boda.errors import NotFound

        try:
            ledger = open_ledger(self.ledger_url, base_dir=self.root)
        except NotFound:
            return {repo: self.tags(repo) for repo in repos}, 0
        try:
            events = len(ledger.events())
        finally:
            ledger.close()
        return {repo: self.tags(repo) for repo in repos}, events


def make_project(
    root: Path,
    registry_url: str,
    ledger_url: str,
    strategy: str,
    run_cli: Callable[..., Run],
    extra: str = "",
) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "boda.toml").write_text(
        boda_toml(registry=registry_url, ledger=ledger_url, strategy=strategy, extra=extra)
    )
    return Project(root, registry_url, ledger_url, strategy, run_cli, f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture(params=["layout", pytest.param("registry", marks=pytest.mark.registry)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A registry URL: an OCI layout on disk, or the real registry process."""
    if request.param == "layout":
        return f"oci-layout:{tmp_path / 'registry'}"
    return str(request.getfixturevalue("registry").url)


@pytest.fixture(params=["tags", "repos"])
def strategy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def project(tmp_path: Path, backend_url: str, strategy: str, sqlite_url: str, boda: Any) -> Iterator[Project]:
    """A project on each backend and strategy with a SQLite ledger."""
    yield make_project(tmp_path / "project", backend_url, sqlite_url, strategy, boda)


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    """A registry of this test alone: garbage collection must not touch other tests' images."""
    process = _start(tmp_path / "gc-registry")
    try:
        yield process
    finally:
        process.stop()
