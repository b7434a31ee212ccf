"""gc plan/apply, pin/unpin and policy check through the CLI, and their bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_gc_e2e import RETENTION, RUTHLESS

from boda.services.demo import run_demo
from conftest import Project, make_project


@pytest.fixture
def small(tmp_path: Path, backend_url: str, sqlite_url: str, boda: Any) -> tuple[Project, str, list[str]]:
    """Four builds; the last two went to dev; the ruthless policy is configured."""
    p = make_project(tmp_path / "project", backend_url, sqlite_url, "tags", boda, extra=RETENTION)
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    app = p.app("small")
    digests = []
    for n in range(4):
        commit, digest = p.build(app, n)
        digests.append(digest)
        if n >= 2:
            assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
    return p, app, digests


def actions(plan: dict[str, Any]) -> dict[str, str]:
    return {e["digest"]: e["action"] for e in plan["images"]}


def test_pin_protects_until_unpinned(small: tuple[Project, str, list[str]]) -> None:
    p, app, d = small
    assert actions(p.boda("gc", "plan", app, "--json").json)[d[0]] == "expire"
    pinned = p.boda("pin", app, d[0], "--reason", "legal hold", "--json")
    assert pinned.code == 0 and pinned.json["pinned"] is True
    entry = next(e for e in p.boda("gc", "plan", app, "--json").json["images"] if e["digest"] == d[0])
    assert entry["action"] == "keep"
    assert {"type": "protection", "protection": "pinned"}.items() <= entry["reasons"][-1].items()
    assert p.boda("unpin", app, d[0]).code == 0
    assert actions(p.boda("gc", "plan", app, "--json").json)[d[0]] == "expire"
    assert p.boda("unpin", app, d[0]).code == 4  # not pinned any more


def test_plan_text_and_reasons(small: tuple[Project, str, list[str]]) -> None:
    p, app, d = small
    plan = p.boda("gc", "plan", app, "--json").json
    assert plan["summary"] == {"images": 4, "expire": 2, "keep": 2}
    by_digest = {e["digest"]: e for e in plan["images"]}
    assert {"current", "env-tag"} <= {r.get("protection") for r in by_digest[d[3]]["reasons"]}
    assert by_digest[d[2]]["reasons"][-1]["protection"] == "rollback"
    assert by_digest[d[0]]["reasons"] == [
        {
            "type": "rule",
            "rulePriority": 1,
            "action": "expire",
            "detail": by_digest[d[0]]["reasons"][0]["detail"],
        }
    ]
    text = p.boda("gc", "plan", app)
    assert text.code == 0 and "EXPIRE" in text.out and "current in dev" in text.out
    future = p.boda("gc", "plan", app, "--now", "2030-01-01T00:00:00Z", "--json")
    assert future.code == 0 and future.json["now"].startswith("2030-01-01")


def test_plan_all_apps(small: tuple[Project, str, list[str]]) -> None:
    p, app, _d = small
    other = p.app("other")
    p.build(other, 0)
    plans = p.boda("gc", "plan", "--all", "--json").json["plans"]
    assert {x["app"] for x in plans} == {app, other}
    assert p.boda("gc", "plan").code == 2
    assert p.boda("gc", "plan", app, "--all").code == 2


def test_policy_check_predicts_the_outage(small: tuple[Project, str, list[str]]) -> None:
    p, app, d = small
    run = p.boda("policy", "check", app, "--json")
    assert run.code == 3
    at_risk = {v["digest"] for v in run.json["violations"]}
    assert at_risk == {d[2]}  # ECR keeps the newest (dev runs it) but expires its rollback target
    benign = p.root / "benign.json"
    benign.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "untagged",
                            "countType": "sinceImagePushed",
                            "countUnit": "days",
                            "countNumber": 30,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        )
    )
    ok = p.boda("policy", "check", app, "--policy", str(benign))
    assert ok.code == 0 and "no protected image" in ok.out


BAD_POLICIES = [
    (
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1},
                    "action": {"type": "expire"},
                }
            ]
        },
        "tagPatternList",
    ),
    (
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 0},
                    "action": {"type": "expire"},
                }
            ]
        },
        "countNumber",
    ),
    ("not json", "JSON"),
]


@pytest.mark.parametrize(("policy", "needle"), BAD_POLICIES, ids=["no-patterns", "zero-count", "not-json"])
def test_bad_policy_changes_nothing(small: tuple[Project, str, list[str]], policy: Any, needle: str) -> None:
    p, app, _d = small
    bad = p.root / "bad.json"
    bad.write_text(policy if isinstance(policy, str) else json.dumps(policy))
    before = p.snapshot([app])
    for args in (["gc", "plan", app], ["gc", "apply", app, "--yes"], ["policy", "check", app]):
        run = p.boda(*args, "--policy", str(bad))
        assert run.code == 2, run.err
        assert needle in run.err and len(run.err.strip().splitlines()) == 1
    assert p.snapshot([app]) == before


def test_gc_bad_input(small: tuple[Project, str, list[str]]) -> None:
    p, app, d = small
    before = p.snapshot([app])
    cases = [
        (["gc", "plan", p.app("nope")], 4),
        (["gc", "apply", p.app("nope"), "--yes"], 4),
        (["policy", "check", p.app("nope")], 4),
        (["pin", p.app("nope"), d[0], "--reason", "x"], 4),
        (["gc", "plan", app, "--policy", str(p.root / "missing.json")], 2),
        (["gc", "plan", app, "--now", "tomorrow"], 2),
        (["pin", app, "sha256:abc", "--reason", "x"], 2),
        (["pin", app, d[0], "--reason", "  "], 2),
        (["pin", app, d[0]], 2),
    ]
    for args, code in cases:
        run = p.boda(*args)
        assert run.code == code, (args, run.err)
        assert len(run.err.strip().splitlines()) == 1, run.err
    assert p.snapshot([app]) == before


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    lines: list[str] = []
    shown: list[str] = []
    run_demo(tmp_path / "demo", images=6, say=lines.append, show=lambda kind, _data: shown.append(kind))
    text = "\n".join(lines)
    assert text.count("refused (exit 3)") == 2
    assert "is back on" in text and "verify: registry and ledger agree" in text
    assert shown == ["status", "status", "history", "plan"]
    # A second run replaces its own folder; a foreign folder is refused.
    run_demo(tmp_path / "demo", images=4, say=lines.append, show=lambda *_: None)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(Exception, match="not a boda demo folder"):
        run_demo(foreign, images=4, say=lines.append, show=lambda *_: None)
    assert (foreign / "precious.txt").exists()


def test_plan_reports_progress_per_repository(small: tuple[Project, str, list[str]]) -> None:
    from boda.config import load_config
    from boda.services.context import Context
    from boda.services.expiry.plan import plan

    p, app, _d = small
    messages: list[str] = []
    with Context(load_config(p.config)) as ctx:
        plan(ctx, app, progress=messages.append)
    assert messages == [
        f"reading {app}: tags, manifests, index children and referrers",
        f"read {app}: 4 manifests",
    ]


def test_gc_apply_all_applies_every_app(small: tuple[Project, str, list[str]]) -> None:
    p, app, _d = small
    dry = p.boda("gc", "apply", "--all", "--json")
    assert dry.code == 0, dry.err
    assert app in {r["plan"]["app"] for r in dry.json["results"]}
    assert all(r["applied"] is False for r in dry.json["results"])
    assert p.boda("gc", "apply", app, "--all").code == 2
    done = p.boda("gc", "apply", "--all", "--yes", "--json")
    assert done.code == 0, done.err
    mine = next(r for r in done.json["results"] if r["plan"]["app"] == app)
    assert mine["applied"] is True and len(mine["deleted"]) == mine["plan"]["summary"]["expire"]
