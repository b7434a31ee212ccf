"""In use means what runs: a ruthless policy, gc apply and a registry garbage collection later,
every digest a runtime runs still pulls whole, whatever the ledger says; a runtime that cannot be
read fails the expiry closed (nothing deleted) unless it is skipped by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_gc_e2e import RUTHLESS, gone, pull_whole

from boda.services.imagegen import make_image
from fixtures.config import boda_toml
from fixtures.project import Project, make_project
from fixtures.registry import RegistryProcess

pytestmark = pytest.mark.registry

ENVIRONMENTS = (
    '\n[[environments]]\nname = "dev"\n'
    '\n[[environments]]\nname = "prd"\nafter = "dev"\nruntimes = ["file:prd-runs.txt"]\n'
    '\n[retention]\nrollback_depth = 0\nmin_age = "0s"\npolicy = "lifecycle.json"\n'
)


def _project(root: Path, registry: str, ledger: str, boda: Any) -> Project:
    p = make_project(root, registry, ledger, "tags", boda)
    p.config.write_text(boda_toml(registry=registry, ledger=ledger, environments=(), extra=ENVIRONMENTS))
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    return p


def test_what_runs_survives_a_ruthless_policy_and_garbage_collection(
    tmp_path: Path, own_registry: RegistryProcess, sqlite_url: str, boda: Any
) -> None:
    p = _project(tmp_path / "p", own_registry.url, sqlite_url, boda)
    app = p.app("web")
    builds = [p.build(app, n) for n in range(5)]
    for commit, _digest in builds:  # each promoted in turn: the ledger's prd ends at the last one
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
        assert p.boda("promote", app, "--to", "prd", "--commit", commit, "--force", "--reason", "t").code == 0
    superseded = builds[1][1]  # the service never got the newer releases: it still runs this one
    by_hand = p.push(app, make_image(f"{p.prefix}/by-hand"), "hotfix")  # a task started by hand
    p.registry().tag_delete(app, "hotfix")  # nothing names it in the registry any more
    host = own_registry.host
    (p.root / "prd-runs.txt").write_text(f"{host}/{app}@{superseded}\n{host}/{app}@{by_hand}\n")
    plan = p.boda("gc", "plan", app, "--json").json
    kept = {e["digest"]: e for e in plan["images"]}
    assert "running" in {r.get("protection") for r in kept[superseded]["reasons"]}
    assert any("file:" in r.get("detail", "") for r in kept[superseded]["reasons"])
    run = p.boda("gc", "apply", app, "--yes", "--json")
    assert run.code == 0, run.err
    deleted = {x["digest"] for x in run.json["deleted"]}
    assert builds[0][1] in deleted and superseded not in deleted and by_hand not in deleted
    own_registry.garbage_collect(delete_untagged=False)
    for digest in (superseded, by_hand, builds[-1][1]):
        pull_whole(p, tmp_path, app, digest)
    assert gone(p, app, builds[0][1])
    status = p.boda("status", app, "--json").json
    prd = next(e for e in status["environments"] if e["name"] == "prd")
    assert prd["state"] == "drift"  # the task started by hand runs a digest never promoted to prd
    verify = p.boda("verify", app, "--runtime", "--json")
    assert verify.code == 0, verify.out


def test_an_unreadable_runtime_deletes_nothing_unless_skipped(
    tmp_path: Path, registry: RegistryProcess, sqlite_url: str, boda: Any
) -> None:
    p = _project(tmp_path / "p", registry.url, sqlite_url, boda)
    app = p.app("web")
    for n in range(3):
        commit, _ = p.build(app, n)
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    before = p.snapshot([app])
    run = p.boda("gc", "apply", app, "--yes")  # prd-runs.txt does not exist: the runtime is unreadable
    assert run.code == 6 and "prd-runs.txt" in run.err and len(run.err.strip().splitlines()) == 1
    assert p.snapshot([app]) == before
    skipped = p.boda("gc", "apply", app, "--yes", "--skip-runtime", "file:prd-runs.txt", "--json")
    assert skipped.code == 0, skipped.err
    assert any("skipped by request" in n for n in skipped.json["plan"]["notes"])
    assert skipped.json["deleted"]
