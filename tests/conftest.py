from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest_plugins = [
    "fixtures.registry",
    "fixtures.ledger",
    "fixtures.cli",
    "fixtures.moto",
    "fixtures.faultproxy",
    "fixtures.browser",
]

#: Fixtures that start or need a real service, and the marker a test using them must carry, so
#: that `pytest -m "not registry and not postgres and not ecr"` really is an offline suite.
SERVICE_FIXTURES = {
    "registry": "registry",
    "registry2": "registry",
    "auth_registry": "registry",
    "own_registry": "registry",
    "postgres_admin_url": "postgres",
    "moto_endpoint": "ecr",
    "chromium": "browser",
    "ecr_semantics_endpoint": "ecr",
}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own empty manifest cache (never the user's, never another test's)."""
    monkeypatch.setenv("BODA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _markers_match_services(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that used a service without carrying its marker (fixtures requested lazily,
    through `getfixturevalue`, included)."""
    yield
    marks = {m.name for m in request.node.iter_markers()}
    parameters = set(getattr(getattr(request.node, "callspec", None), "params", {}))
    used = {name for name in request.fixturenames if name not in parameters}
    missing = {mark for name, mark in SERVICE_FIXTURES.items() if name in used and mark not in marks}
    if missing:
        what = ", ".join(sorted(missing))
        pytest.fail(f"{request.node.nodeid} uses {what} without its marker", pytrace=False)
