"""Expiry never races a promotion: the re-check and the deletion happen under the same app locks
promotions and rollbacks take. The interleavings are forced, not hoped for: the fault proxy holds
one command's registry write while the other runs."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from boda.config import load_config
from boda.ledger import open_ledger
from boda.services.context import Context
from boda.services.expiry.apply import ApplyResult, apply
from faults.conftest import Faulty, current, finish, promoted, wait_for

pytestmark = pytest.mark.registry


def test_a_rollback_during_a_held_deletion_waits_and_never_revives_a_deleted_image(faulty: Faulty) -> None:
    f = faulty
    app = f.p.app("web")
    _commits, d = promoted(f, app, 4)  # dev: d3 current, d2 the rollback target, d0 and d1 expire
    held = f.proxy.add("hold", "DELETE", f"/{app}/manifests/{d[1]}")
    results: list[ApplyResult] = []
    with Context(load_config(f.p.config)) as ctx:
        gc = threading.Thread(target=lambda: results.append(apply(ctx, app, yes=True)))
        gc.start()
        assert held.arrived.wait(30)  # gc holds the app lock, its DELETE of d1 is in flight
        rollback = f.spawn("rollback", app, "--env", "dev", "--to", d[1])
        try:
            with pytest.raises(Exception):  # noqa: B017 - it must still be waiting for the lock
                rollback.wait(timeout=1.5)
            held.release.set()
            gc.join(60)
        finally:
            held.release.set()
        code, _out, err = finish(rollback)
    assert not gc.is_alive() and results and d[1] in {x["digest"] for x in results[0].deleted}
    assert code in (3, 4) and "Traceback" not in err  # refused: the image went before it got the lock
    assert len(err.strip().splitlines()) == 1
    assert current(f, app) == d[3]
    f.in_use_pulls_whole(app)
    f.agree(app)


class _Announcing:
    """A ledger whose `lock_apps` says when it is called (then waits like the real one)."""

    def __init__(self, real: Any, calling: threading.Event) -> None:
        self._real = real
        self._calling = calling

    def lock_apps(self, *args: Any, **kwargs: Any) -> Any:
        self._calling.set()
        return self._real.lock_apps(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_deletion_planned_before_a_rollback_rechecks_after_it_and_keeps_the_image(faulty: Faulty) -> None:
    f = faulty
    app = f.p.app("web")
    _commits, d = promoted(f, app, 4)
    held = f.proxy.add("hold", "PUT", f"/{app}/manifests/dev$")
    rollback = f.spawn("rollback", app, "--env", "dev", "--to", d[1])
    results: list[ApplyResult] = []
    errors: list[BaseException] = []
    try:
        assert held.arrived.wait(30)  # the rollback holds the app lock; its tag move is in flight
        config = load_config(f.p.config)
        calling = threading.Event()
        ledger = _Announcing(open_ledger(config.ledger), calling)
        ctx = Context(config, _ledger=ledger)  # type: ignore[arg-type]

        def run_gc() -> None:
            try:
                results.append(apply(ctx, app, yes=True))
            except BaseException as exc:
                errors.append(exc)

        gc = threading.Thread(target=run_gc)
        gc.start()
        wait_for(calling.is_set, what="gc to plan and reach the lock")
        held.release.set()
        code, _out, err = finish(rollback)
        gc.join(60)
        ctx.close()
    finally:
        held.release.set()
    assert code == 0, err
    assert not errors, errors
    assert d[1] not in {x["digest"] for x in results[0].deleted}
    assert any(x["digest"] == d[1] for x in results[0].skipped)
    assert current(f, app) == d[1]
    f.in_use_pulls_whole(app)
    f.agree(app)
