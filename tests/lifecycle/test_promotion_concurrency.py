"""Concurrent promotions from many processes land in one order, and the registry agrees."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from boda.ledger import open_ledger
from conftest import make_project

WRITERS = 8


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("backend", ["layout", pytest.param("registry", marks=pytest.mark.registry)])
def test_eight_processes_promote_one_environment(
    tmp_path: Path, boda: Any, db: str, backend: str, request: pytest.FixtureRequest
) -> None:
    ledger_url = str(request.getfixturevalue(f"{db}_url"))
    registry_url = (
        f"oci-layout:{tmp_path / 'registry'}"
        if backend == "layout"
        else request.getfixturevalue("registry").url
    )
    p = make_project(tmp_path / "project", registry_url, ledger_url, "tags", boda)
    app = p.app("race")
    builds = [p.build(app, n) for n in range(WRITERS)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "boda",
                "--config",
                str(p.config),
                "promote",
                app,
                "--to",
                "dev",
                "--commit",
                commit,
                "--by",
                f"runner-{i}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i, (commit, _digest) in enumerate(builds)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    ledger = open_ledger(ledger_url, base_dir=p.root)
    try:
        history = list(reversed(ledger.promotions(app, "dev")))
        current = ledger.current(app, "dev")
    finally:
        ledger.close()
    assert len(history) == WRITERS  # none lost
    assert {str(h.digest) for h in history} == {d for _c, d in builds}
    assert history[0].previous_digest is None
    for before, after in pairwise(history):
        assert after.previous_digest == before.digest  # one total order, compare-and-set held
    assert current is not None and current.digest == history[-1].digest
    assert p.tags(app)["dev"] == str(current.digest)  # the environment tag equals the ledger
    assert p.boda("verify", app).code == 0
