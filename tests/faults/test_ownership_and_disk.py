"""A repository belongs to one app; rollbacks in strategy `repos` find their digest wherever it
still is; expiry on the embedded default frees disk."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from boda.config import load_config
from boda.services.context import Context
from boda.services.imagegen import make_image
from boda.types import Digest
from faults.conftest import RETENTION, RUTHLESS
from fixtures.project import make_project, sha


def _layout(tmp_path: Path, sqlite_url: str, boda: Any, strategy: str) -> Any:
    p = make_project(
        tmp_path / "p", f"oci-layout:{tmp_path / 'registry'}", sqlite_url, strategy, boda, extra=RETENTION
    )
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    return p


def test_two_apps_can_never_share_a_repository(tmp_path: Path, sqlite_url: str, boda: Any) -> None:
    p = _layout(tmp_path, sqlite_url, boda, "repos")
    web = p.app("web")
    commit, _digest = p.build(web, 0)
    assert p.boda("promote", web, "--to", "dev", "--commit", commit).code == 0  # web-dev is web's
    p.push(f"{web}-dev", make_image("intruder"), "ci-1")
    before = p.snapshot([web, f"{web}-dev"])
    run = p.boda("build", f"{web}-dev", "--commit", sha("intruder"), "--image", ":ci-1")
    assert run.code == 2 and "belongs to app" in run.err and len(run.err.strip().splitlines()) == 1
    assert p.boda("status", f"{web}-dev").code == 4  # nothing recorded for it
    assert p.snapshot([web, f"{web}-dev"]) == before


def test_the_other_way_round_a_promotion_into_a_build_repository_is_refused(
    tmp_path: Path, sqlite_url: str, boda: Any
) -> None:
    p = _layout(tmp_path, sqlite_url, boda, "repos")
    web = p.app("web")
    other, _ = p.build(f"{web}-dev", 0)  # an app named like web's dev repository, first
    commit, _digest = p.build(web, 1)
    before = p.snapshot([web, f"{web}-dev"])
    run = p.boda("promote", web, "--to", "dev", "--commit", commit)
    assert run.code == 2 and "belongs to app" in run.err
    assert p.snapshot([web, f"{web}-dev"])[0] == before[0]
    assert other


def test_expiry_plans_a_shared_repository_with_every_app_s_protections(
    tmp_path: Path, sqlite_url: str, boda: Any
) -> None:
    """A ledger from before ownership was recorded: two apps already meet in one repository."""
    p = _layout(tmp_path, sqlite_url, boda, "repos")
    web = p.app("web")
    commit, digest = p.build(web, 0)
    assert p.boda("promote", web, "--to", "dev", "--commit", commit).code == 0
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:  # an old ledger had no claims
        db.execute("DELETE FROM repository_owners")
    later, _ = p.build(f"{web}-dev", 1)
    for n in range(2, 4):
        p.build(f"{web}-dev", n)
    plan = p.boda("gc", "plan", f"{web}-dev", "--json").json
    entry = next(e for e in plan["images"] if e["digest"] == digest and e["repository"] == f"{web}-dev")
    assert entry["action"] == "keep" and any(
        f"current in {web} dev" in r.get("detail", "") for r in entry["reasons"]
    )
    assert later


def test_a_rollback_in_repos_copies_from_the_environment_s_own_repository(
    tmp_path: Path, sqlite_url: str, boda: Any
) -> None:
    p = _layout(tmp_path, sqlite_url, boda, "repos")
    app = p.app("web")
    c0, d0 = p.build(app, 0)
    c1, _d1 = p.build(app, 1)
    for commit in (c0, c1):
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    with Context(load_config(p.config)) as ctx:  # the build repository's copy of d0 expired
        ctx.registry.manifest_delete(app, Digest.parse(d0))
    run = p.boda("rollback", app, "--env", "dev", "--json")
    assert run.code == 0, run.err
    assert run.json["digest"] == d0


def test_expiry_frees_disk_on_the_embedded_default(tmp_path: Path, sqlite_url: str, boda: Any) -> None:
    p = _layout(tmp_path, sqlite_url, boda, "tags")
    (p.config).write_text(
        p.config.read_text().replace(
            'policy = "lifecycle.json"', 'policy = "lifecycle.json"\nblob_grace = "0s"'
        )
    )
    app = p.app("web")
    for n in range(6):
        commit, _ = p.build(app, n)
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0

    def used() -> int:
        return sum(f.stat().st_size for f in (tmp_path / "registry").rglob("*") if f.is_file())

    before = used()
    run = p.boda("gc", "apply", app, "--yes", "--json")
    assert run.code == 0, run.err
    assert len(run.json["deleted"]) == 4 and run.json["collected_blobs"]
    assert used() < before * 0.5  # 4 of 6 images, layers included, are gone from disk


@pytest.mark.parametrize("strategy", ["tags"])
def test_gc_apply_uses_one_delete_call_per_image_on_a_registry_without_batches(
    tmp_path: Path, sqlite_url: str, boda: Any, strategy: str
) -> None:
    p = _layout(tmp_path, sqlite_url, boda, strategy)
    app = p.app("web")
    for n in range(5):
        commit, _ = p.build(app, n)
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    run = p.boda("gc", "apply", app, "--yes", "--json")
    assert run.json["delete_calls"] == len(run.json["deleted"]) == 3
