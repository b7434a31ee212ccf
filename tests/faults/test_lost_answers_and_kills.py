"""Lost answers and killed commands never lose a record: a deletion whose answer was lost is
recorded once the registry shows the image gone, and a command SIGKILLed between its registry
write and its record leaves an open intent that `boda repair` reconciles (verify agrees again,
everything in use pulls whole)."""

from __future__ import annotations

import signal

import pytest

from faults.conftest import Faulty, current, finish, promoted

pytestmark = pytest.mark.registry


def test_a_deletion_whose_answer_was_lost_is_recorded(faulty: Faulty) -> None:
    f = faulty
    app = f.p.app("web")
    _commits, d = promoted(f, app, 3)
    f.proxy.add("drop-answer", "DELETE", f"/{app}/manifests/{d[0]}")
    run = f.p.boda("gc", "apply", app, "--yes", "--json")
    assert run.code == 0, run.err
    deleted = {x["digest"]: x for x in run.json["deleted"]}
    assert deleted[d[0]]["already_gone"] is True
    events = f.p.boda("events", app, "--json").json["events"]
    assert any(e["action"] == "expire" and e["digest"] == d[0] for e in events)
    f.agree(app)


@pytest.mark.parametrize("step", ["before the write", "after the write"])
def test_a_promotion_killed_at_each_step_is_repaired(faulty: Faulty, step: str) -> None:
    f = faulty
    app = f.p.app("web")
    commits, d = promoted(f, app, 2)
    before = f.p.tags(app)
    f.p.build(app, 5)
    commit = f.p.boda("whereis", app, "--commit", commits[0], "--json").json["matches"][0]["commit"]
    action = "hold" if step == "before the write" else "hold-answer"
    rule = f.proxy.add(action, "PUT", f"/{app}/manifests/dev$")
    proc = f.spawn("promote", app, "--to", "dev", "--commit", commit)
    assert rule.arrived.wait(30)
    if step == "after the write":
        assert rule.done.wait(30)  # the registry moved the tag; the answer is held
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    rule.release.set()
    verify = f.p.boda("verify", app, "--json")
    assert verify.code == 5 and any(x["kind"] == "open-intent" for x in verify.json["drifts"])
    repaired = f.p.boda("repair", app, "--reason", "the CI runner was killed", "--json")
    assert repaired.code == 0, repaired.out + repaired.err
    assert current(f, app) == d[1]  # the ledger's word: put back, nothing recorded
    assert f.p.tags(app)["dev"] == before["dev"] == d[1]
    f.agree(app)
    f.in_use_pulls_whole(app)


def test_a_killed_promotion_can_be_kept_as_it_happened(faulty: Faulty) -> None:
    f = faulty
    app = f.p.app("web")
    commits, d = promoted(f, app, 2)
    rule = f.proxy.add("hold-answer", "PUT", f"/{app}/manifests/dev$")
    proc = f.spawn("promote", app, "--to", "dev", "--commit", commits[0])  # a rollback by promotion
    assert rule.done.wait(30)
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    rule.release.set()
    repaired = f.p.boda("repair", app, "--keep-registry", "--json")
    assert repaired.code == 0, repaired.out + repaired.err
    assert current(f, app) == d[0]
    history = f.p.boda("history", app, "--json").json["entries"]
    assert history[0]["digest"] == d[0] and history[0]["by"] != "racer"  # recorded by the repair
    f.agree(app)


def test_a_deletion_killed_after_the_registry_acted_is_recorded_by_repair(faulty: Faulty) -> None:
    f = faulty
    app = f.p.app("web")
    _commits, d = promoted(f, app, 3)
    rule = f.proxy.add("hold-answer", "DELETE", f"/{app}/manifests/{d[0]}")
    proc = f.spawn("gc", "apply", app, "--yes")
    assert rule.done.wait(30)  # d0 is gone from the registry; gc never heard it
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    rule.release.set()
    repaired = f.p.boda("repair", app, "--json")
    assert repaired.code == 0, repaired.out + repaired.err
    assert any(r["action"] == "recorded as expired" and d[0] in r["where"] for r in repaired.json["repairs"])
    f.agree(app)
    f.in_use_pulls_whole(app)
    status = f.p.boda("status", app, "--json").json
    assert current(f, app) == d[2] and status


def test_a_deletion_killed_before_the_registry_acted_is_abandoned_by_repair(faulty: Faulty) -> None:
    f = faulty
    app = f.p.app("web")
    _commits, d = promoted(f, app, 3)
    rule = f.proxy.add("hold", "DELETE", f"/{app}/manifests/{d[0]}")
    proc = f.spawn("gc", "apply", app, "--yes")
    assert rule.arrived.wait(30)  # the DELETE is held before the registry saw it
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    f.proxy.clear()  # the held request is let go only after its client is dead
    assert f.p.boda("verify", app).code == 5  # the open intent
    repaired = f.p.boda("repair", app, "--json")
    assert repaired.code == 0, repaired.out + repaired.err
    events = f.p.boda("events", app, "--action", "expire", "--json").json["events"]
    still_there = f.p.registry().manifest_head(app, d[0]) is not None
    assert (d[0] in {e["digest"] for e in events}) == (not still_there)  # recorded iff gone
    f.agree(app)
    f.in_use_pulls_whole(app)
