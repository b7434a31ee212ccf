"""A boda project whose registry sits behind the fault proxy, on SQLite and PostgreSQL, and the
helpers the fault tests share: running boda as a separate process (to hold it, kill it, race it),
and checking that everything in use still pulls whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.faultproxy import FaultProxy
from fixtures.project import Project, make_project
from fixtures.registry import RegistryProcess, skopeo_copy

RUTHLESS = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep only the newest image",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    ]
}
RETENTION = '\n[retention]\nrollback_depth = 1\nmin_age = "0s"\npolicy = "lifecycle.json"\n'


@dataclass
class Faulty:
    """A project on the fault proxy, with the real registry behind it for checks."""

    p: Project
    proxy: FaultProxy
    registry: RegistryProcess
    tmp: Path

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """`boda --config … ARGS` as a separate process (so it can be held, raced and killed)."""
        env = {**os.environ, "BODA_ACTOR": "racer"}
        return subprocess.Popen(
            [sys.executable, "-m", "boda", "--config", str(self.p.config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def pulls_whole(self, repo: str, digest: str) -> None:
        """skopeo copies every blob of the image from the real registry (fails if any is missing)."""
        target = self.tmp / "pulled" / repo.replace("/", "_") / digest.replace(":", "-")
        target.parent.mkdir(parents=True, exist_ok=True)
        skopeo_copy(f"{self.registry.host}/{repo}@{digest}", f"oci:{target}:x", extra=["--all"])

    def in_use_pulls_whole(self, app: str) -> None:
        """Every digest current in an environment, or in its rollback window, pulls whole."""
        status = self.p.boda("status", app, "--json").json
        for env in status["environments"]:
            for placed in ([env["current"]] if env["current"] else []) + env["previous"][:1]:
                repo = app if self.p.strategy == "tags" else f"{app}-{env['name']}"
                self.pulls_whole(repo, placed["digest"])

    def agree(self, app: str) -> None:
        """`verify` exits 0: the registry and the ledger agree."""
        run = self.p.boda("verify", app, "--json")
        assert run.code == 0, run.out + run.err


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def finish(process: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def faulty(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fault_proxy: FaultProxy,
    registry: RegistryProcess,
    boda: Any,
) -> Iterator[Faulty]:
    """A project (strategy tags) on the fault proxy, once per ledger database."""
    ledger_url = str(request.getfixturevalue(f"{request.param}_url"))
    p = make_project(tmp_path / "project", fault_proxy.url, ledger_url, "tags", boda, extra=RETENTION)
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    yield Faulty(p, fault_proxy, registry, tmp_path)


def promoted(f: Faulty, app: str, count: int) -> tuple[list[str], list[str]]:
    """`count` builds of `app`, each promoted to dev in turn: (commits, digests)."""
    commits, digests = [], []
    for n in range(count):
        commit, digest = f.p.build(app, n)
        run = f.p.boda("promote", app, "--to", "dev", "--commit", commit)
        assert run.code == 0, run.err
        commits.append(commit)
        digests.append(digest)
    return commits, digests


def current(f: Faulty, app: str, env: str = "dev") -> str | None:
    data = f.p.boda("status", app, "--json").json
    cur = next(e for e in data["environments"] if e["name"] == env)["current"]
    return str(cur["digest"]) if cur else None
