"""Releases are all-or-none as the user sees them: a registry write that fails midway puts back
what moved and records nothing; if putting back fails too, the error says per app what moved
(exit 5, in --json as well) and `boda repair` finishes the job. A slow registry for one app never
blocks another app."""

from __future__ import annotations

import time

import pytest

from boda.services.imagegen import make_image
from faults.conftest import Faulty, current, finish

pytestmark = pytest.mark.registry


def _three_apps(f: Faulty) -> tuple[list[str], str, dict[str, str]]:
    """Three apps built from one commit, each with an earlier digest current in dev."""
    apps = [f.p.app(name) for name in ("web", "api", "worker")]
    earlier = {}
    for app in apps:
        commit, digest = f.p.build(app, 0)
        assert f.p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
        earlier[app] = digest
    shared = "ab" * 20
    for app in apps:
        f.p.push(app, make_image(f"{app}-rel"), "rel")
        assert f.p.boda("build", app, "--commit", shared, "--image", ":rel").code == 0
    return apps, shared, earlier


def test_a_release_with_a_failing_middle_app_changes_nothing(faulty: Faulty) -> None:
    f = faulty
    apps, commit, earlier = _three_apps(f)
    f.proxy.add("respond", "PUT", f"/{apps[1]}/manifests/dev$", times=None, status=500)
    run = f.p.boda("promote", *apps, "--to", "dev", "--commit", commit, "--json")
    assert run.code == 6, run.err
    assert (
        run.json["error"]["code"] == "unavailable" and "nothing was promoted" in run.json["error"]["message"]
    )
    assert len(run.err.strip().splitlines()) == 1 and apps[1] in run.err
    for app in apps:
        assert current(f, app) == earlier[app]
        assert f.p.tags(app)["dev"] == earlier[app]  # what moved was put back
    assert all(
        f.p.boda("history", app, "--json").json["entries"][0]["digest"] == earlier[app] for app in apps
    )
    for app in apps:
        f.agree(app)


def test_a_release_that_cannot_be_put_back_says_what_moved_and_repair_finishes(faulty: Faulty) -> None:
    f = faulty
    apps, commit, earlier = _three_apps(f)
    # web's tag moves, then its way back fails; api's write fails; worker's moves and goes back.
    f.proxy.add("pass", "PUT", f"/{apps[0]}/manifests/dev$", times=1)
    f.proxy.add("respond", "PUT", f"/{apps[0]}/manifests/dev$", times=None, status=500)
    f.proxy.add("respond", "PUT", f"/{apps[1]}/manifests/dev$", times=None, status=500)
    run = f.p.boda("promote", *apps, "--to", "dev", "--commit", commit, "--json")
    assert run.code == 5, run.err
    error = run.json["error"]
    assert error["code"] == "conflict"
    by_app = {a["app"]: a for a in error["apps"]}
    assert (
        by_app[apps[0]]["written"] and not by_app[apps[0]]["put_back"] and by_app[apps[0]]["put_back_error"]
    )
    assert not by_app[apps[1]]["written"]
    assert by_app[apps[2]]["written"] and by_app[apps[2]]["put_back"]
    assert any("could not be put back" in r for r in error["reasons"])
    for app in apps:
        assert current(f, app) == earlier[app]  # nothing recorded
    f.proxy.clear()
    repaired = f.p.boda("repair", "--json")
    assert repaired.code == 0, repaired.out
    for app in apps:
        assert f.p.tags(app)["dev"] == earlier[app]
        f.agree(app)


def test_a_slow_registry_for_one_app_never_blocks_another(faulty: Faulty) -> None:
    f = faulty
    slow, quick = f.p.app("slow"), f.p.app("quick")
    slow_commit, _ = f.p.build(slow, 0)
    quick_commit, quick_digest = f.p.build(quick, 0)
    held = f.proxy.add("hold", "PUT", f"/{slow}/manifests/dev$")
    proc = f.spawn("promote", slow, "--to", "dev", "--commit", slow_commit)
    try:
        assert held.arrived.wait(30)  # slow's promotion holds its app lock, its write in flight
        started = time.monotonic()
        run = f.p.boda("promote", quick, "--to", "dev", "--commit", quick_commit)
        assert run.code == 0, run.err
        run = f.p.boda(
            "evidence", quick, "--env", "dev", "--commit", quick_commit, "--kind", "tests", "--result", "pass"
        )
        assert run.code == 0, run.err
        assert time.monotonic() - started < 20  # not the 60 s a held database lock used to cost
    finally:
        held.release.set()
    code, _out, err = finish(proc)
    assert code == 0, err
    assert current(f, quick) == quick_digest
