"""Expiry fails closed: when the registry or the ledger cannot be read completely, nothing is deleted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_gc_e2e import RETENTION, RUTHLESS

from boda.config import load_config
from boda.errors import LedgerError, RegistryError
from boda.ledger import open_ledger
from boda.registry import open_registry
from boda.services.context import Context
from boda.services.expiry import apply as expiry_apply
from boda.services.expiry import plan as expiry_plan
from conftest import Project, make_project

READS = ("manifest_head", "manifest_get", "tag_list", "image_list", "referrers", "blob_head")
LEDGER_READS = ("current_all", "previous_digests", "pins", "list_builds", "promotions", "events", "apps")


class Breaking:
    """A proxy that delegates to a real backend and fails its `fail_at`-th read (counted from 1)."""

    def __init__(self, real: Any, reads: tuple[str, ...], fail_at: int, error: Exception) -> None:
        self._real, self._reads, self._fail_at, self._error = real, reads, fail_at, error
        self.calls = 0
        self.deleted: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name in self._reads:

            def read(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                if self.calls == self._fail_at:
                    raise self._error
                return attr(*args, **kwargs)

            return read
        if name == "manifest_delete":

            def delete(repo: str, digest: Any) -> None:
                self.deleted.append((repo, str(digest)))
                attr(repo, digest)

            return delete
        return attr


pytestmark = pytest.mark.registry


@pytest.fixture(autouse=True)
def _no_manifest_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests fail the N-th registry read of a plan counted on a dry run; a manifest cache
    filled by that dry run would make later runs read less (a cache hit cannot fail)."""
    monkeypatch.setenv("BODA_CACHE_DIR", "off")


@pytest.fixture
def busy(tmp_path: Path, registry: Any, sqlite_url: str, boda: Any) -> tuple[Project, str]:
    """A repository with ten builds, some deployed, and a ruthless policy."""
    p = make_project(tmp_path / "project", registry.url, sqlite_url, "tags", boda, extra=RETENTION)
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    app = p.app("busy")
    for n in range(10):
        commit, _digest = p.build(app, n, index=(n == 4))
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    return p, app


def count_reads(p: Project, app: str, reads: tuple[str, ...], ledger_side: bool) -> int:
    """How many reads a complete apply makes of one side (measured on a dry run)."""
    ctx = Context(load_config(p.config))
    probe = Breaking(ctx.ledger if ledger_side else ctx.registry, reads, fail_at=0, error=RuntimeError())
    if ledger_side:
        ctx._ledger = probe
        del ctx.ledger
    else:
        ctx._registry = probe
        del ctx.registry
    try:
        expiry_plan.plan(ctx, app)
    finally:
        ctx.close()
    return probe.calls


@pytest.mark.parametrize("side", ["registry", "ledger"])
def test_a_failing_read_anywhere_in_the_plan_deletes_nothing(busy: tuple[Project, str], side: str) -> None:
    p, app = busy
    reads = READS if side == "registry" else LEDGER_READS
    total = count_reads(p, app, reads, side == "ledger")
    assert total > 5
    before = p.snapshot([app])
    # Fail the first, a middle and the last read of the plan's complete read.
    for fail_at in sorted({1, total // 2, total}):
        config = load_config(p.config)
        error: Exception = (
            RegistryError("injected failure") if side == "registry" else LedgerError("injected")
        )
        real_registry = open_registry(config.registry, base_dir=config.base_dir)
        real_ledger = open_ledger(config.ledger, base_dir=config.base_dir)
        broken_registry = Breaking(real_registry, READS if side == "registry" else (), fail_at, error)
        broken_ledger = Breaking(real_ledger, LEDGER_READS if side == "ledger" else (), fail_at, error)
        ctx = Context(config, _registry=broken_registry, _ledger=broken_ledger)  # type: ignore[arg-type]
        try:
            with pytest.raises(type(error)):
                expiry_apply.apply(ctx, app, yes=True)
        finally:
            real_registry.close()
            real_ledger.close()
        assert broken_registry.deleted == []
        assert p.snapshot([app]) == before


def test_registry_down_deletes_nothing(busy: tuple[Project, str], tmp_path: Path, sqlite_url: str) -> None:
    """A real registry process that is gone: apply exits 6 and the ledger records no deletion."""
    from fixtures.registry import _start

    p, app = busy
    own = _start(tmp_path / "down")
    q = make_project(tmp_path / "down-project", own.url, p.ledger_url, "tags", p.run_cli, extra=RETENTION)
    (q.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    for n in range(3):
        commit, _ = q.build(app, 100 + n)
        q.boda("promote", app, "--to", "dev", "--commit", commit)
    own.stop()
    run = q.boda("gc", "apply", app, "--yes")
    assert run.code == 6 and len(run.err.strip().splitlines()) == 1, run.err
    ledger = open_ledger(p.ledger_url)
    try:
        assert not [e for e in ledger.events(app) if e.action == "expire"]
    finally:
        ledger.close()
    own.start()
    assert all(digest for digest in q.tags(app).values())
    own.stop()


def test_apply_rechecks_before_each_deletion(busy: tuple[Project, str]) -> None:
    """A digest promoted between plan and deletion is not deleted."""
    p, app = busy
    config = load_config(p.config)
    ctx = Context(config)
    try:
        expiry = expiry_plan.plan(ctx, app)
        doomed = expiry.expiring[-1]
        build = next(b for b in ctx.ledger.list_builds(app) if str(b.digest) == doomed.digest)
    finally:
        ctx.close()

    real_plan = expiry_plan.plan

    def plan_then_promote(ctx: Context, app_: str, **kwargs: Any) -> expiry_plan.ExpiryPlan:
        made = real_plan(ctx, app_, **kwargs)
        # Someone rolls dev back to the doomed digest while the plan is being applied.
        assert p.boda("rollback", app, "--env", "dev", "--to", build.commit).code == 0
        return made

    ctx = Context(load_config(p.config))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(expiry_apply, "plan", plan_then_promote)
            result = expiry_apply.apply(ctx, app, yes=True)
    finally:
        ctx.close()
    assert doomed.digest in {s["digest"] for s in result.skipped}
    assert doomed.digest not in {d["digest"] for d in result.deleted}
    assert p.tags(app)[build.commit[:8]] == doomed.digest
