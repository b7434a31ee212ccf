"""Commit-tag collisions: two commits whose first 8 hex digits are equal. The second gets a longer
tag, says so, and every command that writes or checks a commit tag follows the tag the ledger
recorded; a tag naming anything but another commit's recorded build stays a Conflict."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from test_lifecycle_e2e import promote_through

from boda.config import load_config
from boda.registry.base import Registry
from boda.services.build import BuildResult, record_build
from boda.services.context import Context
from boda.services.imagegen import make_image, push
from boda.types import Digest
from conftest import Project, make_project
from fixtures.ledger import forget_build_facts

# Three commits of one app: A and B share 8 digits, B and C share 12.
A = "daf46a8f" + "0" * 32
B = "daf46a8f" + "1111" + "b" * 28
C = "daf46a8f" + "1111" + "c" * 28


def images(p: Project, app: str, *names: str) -> dict[str, str]:
    """Push an image per name (tagged ci-NAME); name -> digest."""
    registry = p.registry()
    try:
        return {
            n: str(push(registry, app, make_image(f"{p.prefix}/{app}/{n}"), tag=f"ci-{n}")) for n in names
        }
    finally:
        registry.close()


def repos(p: Project, app: str) -> list[str]:
    return [app] + ([f"{app}-{env}" for env in ("dev", "stg", "prd")] if p.strategy == "repos" else [])


def build(p: Project, app: str, commit: str, name: str, *extra: str) -> Any:
    return p.boda("build", app, "--commit", commit, "--image", f":ci-{name}", *extra)


def test_a_colliding_commit_gets_a_longer_tag_that_every_command_follows(project: Project) -> None:
    p = project
    app = p.app("collide")
    digests = images(p, app, "a", "b", "c")
    first = build(p, app, A, "a", "--json")
    assert first.code == 0, first.err
    assert first.json["tag"] == A[:8] and first.json["collisions"] == []

    second = build(p, app, B, "b", "--json")
    assert second.code == 0, second.err
    assert second.json["tag"] == B[:12]
    assert second.json["collisions"] == [{"tag": A[:8], "commit": A, "digest": digests["a"]}]
    assert f"tagged {B[:12]} instead" in second.err and A[:8] in second.err

    third = build(p, app, C, "c")  # text output: the tag on stdout, the note on stderr
    assert third.code == 0, third.err
    assert f"(commit tag {C[:16]})" in third.out
    assert f"{A[:8]} (commit {A[:12]}), {B[:12]} (commit {B[:12]})" in third.err

    assert p.tags(app) == {
        **{f"ci-{n}": d for n, d in digests.items()},
        A[:8]: digests["a"],
        B[:12]: digests["b"],
        C[:16]: digests["c"],
    }

    # Both colliding commits go all the way, and every check follows the recorded tags.
    promote_through(p, app, B)
    promote_through(p, app, A)
    if p.strategy == "repos":
        prd = p.tags(f"{app}-prd")
        assert prd == {A[:8]: digests["a"], B[:12]: digests["b"]}
    verified = p.boda("verify", app, "--json")
    assert verified.code == 0 and verified.json["ok"], verified.out
    rolled = p.boda("rollback", app, "--env", "prd", "--json")
    assert rolled.code == 0, rolled.err
    assert p.boda("verify", app).code == 0

    # Building again changes nothing and answers with the tag the build got.
    before = p.snapshot(repos(p, app))
    again = build(p, app, B, "b", "--json")
    assert again.code == 0 and not again.json["created"]
    assert again.json["tag"] == B[:12] and again.json["collisions"] == []
    assert p.snapshot(repos(p, app)) == before

    # Someone moves B's tag: verify names the recorded tag, repair puts it back there.
    registry = p.registry()
    try:
        registry.manifest_put(app, B[:12], registry.manifest_get(app, digests["c"]))
        if p.strategy == "repos":  # and prd's repository loses its current image (B since the rollback)
            registry.manifest_delete(f"{app}-prd", Digest.parse(digests["b"]))
    finally:
        registry.close()
    drifted = p.boda("verify", app, "--json")
    assert drifted.code == 5
    where = {d["where"] for d in drifted.json["drifts"]}
    assert f"{app}:{B[:12]}" in where
    repaired = p.boda("repair", app, "--json")
    assert repaired.code == 0, repaired.out + repaired.err
    assert p.tags(app)[B[:12]] == digests["b"] and p.tags(app)[A[:8]] == digests["a"]
    if p.strategy == "repos":
        assert p.tags(f"{app}-prd")[B[:12]] == digests["b"]
    assert p.boda("verify", app).code == 0


def test_a_tag_naming_anything_but_another_commits_build_stays_a_conflict(project: Project) -> None:
    p = project
    app = p.app("conflict")
    digests = images(p, app, "a", "b", "x")
    registry = p.registry()
    try:
        # A digest the ledger does not know under B's tag: pushed by hand.
        registry.manifest_put(app, B[:8], registry.manifest_get(app, digests["x"]))
    finally:
        registry.close()
    before = p.snapshot([app])
    refused = build(p, app, B, "b")
    assert refused.code == 5 and "immutable" in refused.err
    assert p.snapshot([app]) == before

    # A commit of another app's digest does not count either: only this app's builds hold its tags.
    other = p.app("other")
    images(p, other, "x")
    assert build(p, other, B, "x").code == 0
    tags = p.tags(app)
    assert build(p, app, B, "b").code == 5
    assert p.tags(app) == tags

    # The same commit's other digest: a commit has one image, and its tag never moves.
    commit = "e" * 40
    assert p.boda("build", app, "--commit", commit, "--digest", digests["a"]).code == 0
    before = p.snapshot([app])
    moved = p.boda("build", app, "--commit", commit, "--digest", digests["b"])
    assert moved.code == 5 and "already recorded with digest" in moved.err
    assert p.snapshot([app]) == before


def test_a_tag_holder_whose_tag_was_moved_is_drift_not_a_collision(project: Project) -> None:
    p = project
    app = p.app("moved")
    digests = images(p, app, "a", "b", "x")
    assert build(p, app, A, "a").code == 0
    registry = p.registry()
    try:
        registry.manifest_put(app, A[:8], registry.manifest_get(app, digests["x"]))
    finally:
        registry.close()
    before = p.snapshot([app])
    refused = build(p, app, B, "b")
    assert refused.code == 5 and "boda verify" in refused.err and A[:12] in refused.err
    assert p.snapshot([app]) == before


def test_the_tag_of_an_image_gone_is_never_given_to_another_commit(project: Project) -> None:
    p = project
    app = p.app("gone")
    digests = images(p, app, "a", "b")
    assert build(p, app, A, "a").code == 0
    registry = p.registry()
    try:
        registry.manifest_delete(app, Digest.parse(digests["a"]))  # its commit tag goes with it
    finally:
        registry.close()
    assert A[:8] not in p.tags(app)
    second = build(p, app, B, "b", "--json")
    assert second.code == 0, second.err
    assert second.json["tag"] == B[:12]
    assert A[:8] not in p.tags(app)


def test_builds_recorded_before_the_ledger_kept_tags_use_the_template(
    tmp_path: Path, sqlite_url: str, boda: Any
) -> None:
    p = make_project(tmp_path / "p", f"oci-layout:{tmp_path / 'registry'}", sqlite_url, "repos", boda)
    app = p.app("old")
    digests = images(p, app, "a", "b")
    assert build(p, app, A, "a").code == 0
    forget_build_facts(sqlite_url)  # as if A was built by a boda before ledger schema 4
    second = build(p, app, B, "b", "--json")
    assert second.code == 0, second.err
    assert second.json["tag"] == B[:12] and second.json["collisions"][0]["tag"] == A[:8]
    promote_through(p, app, A, until="dev")
    assert p.tags(f"{app}-dev") == {A[:8]: digests["a"]}
    assert p.boda("verify", app).code == 0
    again = build(p, app, A, "a", "--json")
    assert again.code == 0 and again.json["tag"] == A[:8] and not again.json["created"]


@pytest.mark.parametrize("order", ["A first", "B first"])
def test_two_colliding_builds_at_once_get_two_tags(
    tmp_path: Path, ledger_url: str, boda: Any, order: str
) -> None:
    """Forced interleaving: the first build is stopped just before it writes its tag; the second
    must wait for it (under the lock of the app's commit tags) and then take the longer tag."""
    p = make_project(tmp_path / "p", f"oci-layout:{tmp_path / 'registry'}", ledger_url, "tags", boda)
    app = p.app("race")
    digests = images(p, app, "a", "b")
    first, second = (A, B) if order == "A first" else (B, A)
    name = {A: "a", B: "b"}
    writing, go = threading.Event(), threading.Event()
    results: dict[str, BuildResult | BaseException] = {}

    def run(commit: str, hold: bool) -> None:
        with Context(load_config(p.config), create_ledger=True) as ctx:
            if hold:
                registry: Registry = ctx.registry
                real_put = registry.manifest_put

                def held_put(repo: str, ref: str, manifest: Any) -> Digest:
                    writing.set()
                    assert go.wait(30)
                    return real_put(repo, ref, manifest)

                registry.manifest_put = held_put  # type: ignore[method-assign]
            try:
                results[commit] = record_build(ctx, app, commit=commit, image=f":ci-{name[commit]}", by="ci")
            except BaseException as exc:  # reported below
                results[commit] = exc

    holder = threading.Thread(target=run, args=(first, True))
    holder.start()
    assert writing.wait(30)
    waiter = threading.Thread(target=run, args=(second, False))
    waiter.start()
    waiter.join(timeout=1.5)
    assert waiter.is_alive(), f"the second build did not wait for the first: {results}"
    go.set()
    holder.join(30)
    waiter.join(30)
    done = {c: r for c, r in results.items() if isinstance(r, BuildResult)}
    assert set(done) == {A, B}, results
    assert done[first].tag == first[:8] and done[second].tag == second[:12]
    assert [c.tag for c in done[second].collisions] == [first[:8]]
    assert p.tags(app) == {
        "ci-a": digests["a"],
        "ci-b": digests["b"],
        first[:8]: digests[name[first]],
        second[:12]: digests[name[second]],
    }
