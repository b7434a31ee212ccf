"""The ledger failing midway: nothing changes in the registry before the ledger has proved it can
write, text it cannot store is refused before anything happens, and a connection cut after the
registry write leaves an open intent that `boda repair` reconciles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from faults.conftest import Faulty, current, finish, promoted
from fixtures.files import immutable
from fixtures.project import make_project

pytestmark = pytest.mark.registry


def test_a_read_only_sqlite_ledger_stops_the_promotion_before_the_registry(
    tmp_path: Path, registry: Any, boda: Any
) -> None:
    ledger = tmp_path / "ledger.db"
    p = make_project(tmp_path / "p", registry.url, f"sqlite:///{ledger}", "tags", boda)
    app = p.app("web")
    commit, _digest = p.build(app, 0)
    before = p.tags(app)
    with immutable(ledger):
        run = p.boda("promote", app, "--to", "dev", "--commit", commit)
    assert run.code == 6, run.err
    assert len(run.err.strip().splitlines()) == 1 and "ledger" in run.err
    assert p.tags(app) == before


def test_text_the_ledger_cannot_store_is_refused_before_any_write(
    tmp_path: Path, registry: Any, sqlite_url: str, boda: Any
) -> None:
    p = make_project(tmp_path / "p", registry.url, sqlite_url, "tags", boda)
    app = p.app("web")
    commit, _digest = p.build(app, 0)
    before = p.snapshot([app])
    args = [sys.executable, "-m", "boda", "--config", str(p.config), "promote", app, "--to", "dev"]
    done = subprocess.run(
        [*map(os.fsencode, args), b"--commit", commit.encode(), b"--reason", b"hotfix \xff\xfe"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and b"Traceback" not in done.stderr
    assert p.snapshot([app]) == before


@pytest.mark.postgres
def test_a_postgresql_connection_cut_after_the_write_is_repaired(
    tmp_path: Path, fault_proxy: Any, registry: Any, postgres_url: str, boda: Any
) -> None:
    from fixtures.faultproxy import FaultProxy  # noqa: F401 - the fixture's type

    f = Faulty(
        make_project(tmp_path / "p", fault_proxy.url, postgres_url, "tags", boda),
        fault_proxy,
        registry,
        tmp_path,
    )
    app = f.p.app("web")
    commits, d = promoted(f, app, 2)
    rule = f.proxy.add("hold-answer", "PUT", f"/{app}/manifests/dev$")
    proc = f.spawn("promote", app, "--to", "dev", "--commit", commits[0])
    assert rule.done.wait(30)  # the tag moved; now cut every connection of the boda process
    admin = postgres_url.split("?")[0]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'boda' AND pid <> pg_backend_pid() AND datname = current_database()"
        )
    rule.release.set()
    code, _out, err = finish(proc)
    assert code == 6, err
    assert len(err.strip().splitlines()) == 1
    assert current(f, app) == d[1]  # not recorded
    repaired = f.p.boda("repair", app, "--json")
    assert repaired.code == 0, repaired.out + repaired.err
    assert f.p.tags(app)["dev"] == d[1]
    f.agree(app)
    f.in_use_pulls_whole(app)
