"""In use means in use: what the registry's environment tags name is protected whatever the ledger
says (a fresh ledger, a CI runner with its own SQLite file, a promotion made by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_gc_e2e import RETENTION, RUTHLESS, gone, pull_whole

from boda.ledger import open_ledger
from boda.services.imagegen import make_image
from conftest import Project, make_project, sha

pytestmark = pytest.mark.registry


def _push(p: Project, repo: str, n: int, *tags: str) -> str:
    image = make_image(f"{p.prefix}/{repo}/{n}", layers=1, layer_size=256)
    digest = p.push(repo, image, tags[0])
    for tag in tags[1:]:
        p.push(repo, image, tag)
    return digest


@pytest.fixture
def handmade(
    tmp_path: Path, registry: Any, sqlite_url: str, boda: Any
) -> tuple[Project, str, dict[str, str]]:
    """A repository promoted by hand before boda: dev and stg on one digest, prd on another, and a
    fresh ledger that knows a single later build."""
    p = make_project(tmp_path / "p", registry.url, sqlite_url, "tags", boda, extra=RETENTION)
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    app = p.app("web")
    digests = {
        "prd": _push(p, app, 0, "ci-0", "prd"),
        "dev": _push(p, app, 1, "ci-1", "dev", "stg"),
        "old": _push(p, app, 2, "ci-2"),
    }
    _push(p, app, 3, "ci-3")
    assert p.boda("build", app, "--commit", sha("older build"), "--image", ":ci-2").code == 0
    assert p.boda("build", app, "--commit", sha("newer build"), "--image", ":ci-3").code == 0
    return p, app, digests


def test_a_fresh_ledger_never_expires_what_environment_tags_name(
    handmade: tuple[Project, str, dict[str, str]], tmp_path: Path
) -> None:
    p, app, digests = handmade
    plan = p.boda("gc", "plan", app, "--json").json
    actions = {e["digest"]: e for e in plan["images"]}
    for name in ("prd", "dev"):
        entry = actions[digests[name]]
        assert entry["action"] == "keep"
        assert "env-tag" in {r.get("protection") for r in entry["reasons"]}
    assert actions[digests["old"]]["action"] == "expire"
    drift = {(d["env"], d["registry"], d["ledger"]) for d in plan["drift"]}
    assert drift == {
        ("prd", digests["prd"], None),
        ("dev", digests["dev"], None),
        ("stg", digests["dev"], None),
    }
    text = p.boda("gc", "plan", app).out
    assert "drift:" in text and "the ledger says nothing" in text

    run = p.boda("gc", "apply", app, "--yes", "--json")
    assert run.code == 0, run.err
    assert digests["old"] in {d["digest"] for d in run.json["deleted"]}
    assert gone(p, app, digests["old"])
    for name in ("prd", "dev"):
        pull_whole(p, tmp_path, app, digests[name])


def test_an_app_the_ledger_does_not_know_is_planned_but_never_applied(
    tmp_path: Path, registry: Any, sqlite_url: str, boda: Any
) -> None:
    p = make_project(tmp_path / "p", registry.url, sqlite_url, "tags", boda, extra=RETENTION)
    open_ledger(p.ledger_url, base_dir=p.root, create=True).close()  # empty, as `boda init` leaves it
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    app = p.app("stranger")
    tagged = _push(p, app, 0, "ci-0", "prd")
    loose = _push(p, app, 1, "ci-1")
    _push(p, app, 2, "ci-2")
    plan = p.boda("gc", "plan", app, "--json")
    assert plan.code == 0, plan.err
    assert plan.json["ledger_knows_app"] is False
    assert any("knows no build" in note for note in plan.json["notes"])
    entries = {e["digest"]: e for e in plan.json["images"]}
    assert "env-tag" in {r.get("protection") for r in entries[tagged]["reasons"]}
    assert entries[loose]["action"] == "keep"  # no build records its age: boda cannot prove it old
    before = p.snapshot([app])
    run = p.boda("gc", "apply", app, "--yes")
    assert run.code == 4 and "without its history" in run.err
    assert p.snapshot([app]) == before
    missing = p.boda("gc", "plan", p.app("nothing-here"))
    assert missing.code == 4


def test_repos_strategy_protects_every_tagged_image_of_an_environment_repository(
    tmp_path: Path, registry: Any, sqlite_url: str, boda: Any
) -> None:
    p = make_project(tmp_path / "p", registry.url, sqlite_url, "repos", boda, extra=RETENTION)
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    app = p.app("web")
    prd_repo = f"{app}-prd"
    by_hand = _push(p, prd_repo, 0, "hotfix-1")
    _push(p, app, 1, "ci-1")
    assert p.boda("build", app, "--commit", sha("b"), "--image", ":ci-1").code == 0
    plan = p.boda("gc", "plan", app, "--json").json
    entry = next(e for e in plan["images"] if e["repository"] == prd_repo and e["digest"] == by_hand)
    assert entry["action"] == "keep" and "env-tag" in {r.get("protection") for r in entry["reasons"]}
    assert p.boda("gc", "apply", app, "--yes").code == 0
    pull_whole(p, tmp_path, prd_repo, by_hand)


def test_verify_deep_finds_what_a_registry_garbage_collection_took(
    tmp_path: Path, own_registry: Any, sqlite_url: str, boda: Any
) -> None:
    p = make_project(tmp_path / "p", own_registry.url, sqlite_url, "tags", boda, extra=RETENTION)
    app = p.app("multi")
    commit, digest = p.build(app, 0, index=True)
    assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    deep = p.boda("verify", app, "--deep", "--json")
    assert deep.code == 0, deep.out
    assert deep.json["checked"] > 4
    # Registry 2.8's --delete-untagged deletes the untagged children of a tagged index.
    own_registry.garbage_collect(delete_untagged=True)
    assert p.boda("verify", app).code == 0  # tags and top-level digests still agree
    deep = p.boda("verify", app, "--deep", "--json")
    assert deep.code == 5
    kinds = {d["kind"] for d in deep.json["drifts"]}
    assert "missing-manifest" in kinds
    assert all("current in dev" in d["why"] for d in deep.json["drifts"])
    assert "child of" in p.boda("verify", app, "--deep").out
    assert digest
