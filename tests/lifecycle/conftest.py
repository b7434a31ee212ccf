"""Fixtures of the lifecycle tests: a project on each backend and strategy (see fixtures.project)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.project import Project, make_project, sha
from fixtures.registry import RegistryProcess, _start

__all__ = ["Project", "make_project", "sha"]


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
