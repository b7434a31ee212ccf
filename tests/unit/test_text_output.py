"""Text output: what a person, a registry or a runtime wrote is shown escaped in every renderer, so
that it can neither start a line of its own (forge a row) nor rewrite the terminal; JSON stays raw."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from boda.cli.ecr import _sync_text
from boda.cli.ecr import _text as ecr_policy_text
from boda.cli.gc import apply_text, plan_text
from boda.cli.lifecycle import events_text, history_text, status_text, whereis_text
from boda.cli.policy import _check_text
from boda.cli.render import emit, note, printable_lines
from boda.cli.repair import repair_text

HOSTILE = "mallory\n2026-01-01  prd  sha256:forged\r\x1b[2J\x1b]0;pwned\x07\u202eevil\u2028\udcff"
BENIGN = "mallory"
D = "sha256:" + "a" * 64
#: Anything a terminal obeys or that breaks a line, other than the renderer's own line breaks.
RAW = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _plan(t: str) -> dict[str, Any]:
    reasons = [{"type": "protection", "protection": "pinned", "detail": f"pinned: {t}"}]
    image = {"action": "keep", "repository": "shop/web", "digest": D, "tags": [t], "pushedAt": None}
    return {
        "images": [{**image, "reasons": reasons}],
        "summary": {"expire": 0, "keep": 1, "images": 1},
        "notes": [t],
    }


def _apply(t: str) -> dict[str, Any]:
    item = {"repository": "shop/web", "digest": D, "reason": t, "already_gone": False}
    return {
        "applied": True,
        "deleted": [item],
        "skipped": [item],
        "failed": [item],
        "collected_blobs": {},
    }


def _repair(t: str) -> dict[str, Any]:
    return {
        "repairs": [{"app": "shop/web", "action": "put back", "where": f"shop/web:{t}", "detail": t}],
        "remaining": [{"app": "shop/web", "kind": "environment", "where": t, "expected": D, "found": None}],
        "ok": False,
    }


def _check(t: str) -> dict[str, Any]:
    violation = {
        "repository": "shop/web",
        "digest": D,
        "tags": [t],
        "action": "expire",
        "appliedRulePriority": 1,
        "protections": [{"type": "protection", "protection": "pinned", "detail": f"pinned: {t}"}],
    }
    return {
        "app": "shop/web",
        "violations": [violation],
        "ecr_preview": [{"repository": "shop/web", "available": False, "reason": t}],
        "notes": [t],
    }


def _promotion(t: str) -> dict[str, Any]:
    return {
        "at": "2026-01-01T00:00:00+00:00",
        "env": "prd",
        "digest": D,
        "commit": "a" * 40,
        "kind": "promote",
    } | {
        "by": t,
        "reason": t,
        "promoted_at": "2026-01-01T00:00:00+00:00",
        "promoted_by": t,
    }


def _status(t: str) -> dict[str, Any]:
    evidence = [{"kind": "tests", "result": "pass", "signed": False}]
    env = {"name": "prd", "current": _promotion(t), "evidence": evidence, "previous": []}
    return {"app": "shop/web", "environments": [env]}


def _events(t: str) -> dict[str, Any]:
    event = {"at": "2026-01-01T00:00:00+00:00", "action": "pin", "app": "shop/web", "env": None}
    return {"events": [event | {"digest": D, "by": t, "reason": t}]}


def _whereis(t: str) -> dict[str, Any]:
    match = {"app": "shop/web", "commit": "a" * 40, "digest": D, "expired": False}
    return {"matches": [match | {"running_in": [{"env": t}], "ran_in": [{"env": t}]}]}


RENDERERS: dict[str, tuple[Callable[[dict[str, Any]], str], Callable[[str], dict[str, Any]]]] = {
    "gc plan": (plan_text, _plan),
    "gc apply": (apply_text, _apply),
    "repair": (repair_text, _repair),
    "policy check": (_check_text, _check),
    "history": (history_text, lambda t: {"entries": [_promotion(t)]}),
    "status": (status_text, _status),
    "events": (events_text, _events),
    "whereis": (whereis_text, _whereis),
    "ecr policy get": (
        ecr_policy_text,
        lambda t: {"registry": "ecr", "repository": "r", "rules": [t], "invalid": t, "policy": {"d": t}},
    ),
    "ecr sync": (
        _sync_text,
        lambda t: {
            "app": "a",
            "repositories": [
                {
                    "repository": "r",
                    "add": [{"digest": D, "tag": t}],
                    "remove": [{"digest": D, "tag": t}],
                    "untag": [{"digest": D, "tags": [t]}],
                }
            ],
        },
    ),
}


@pytest.mark.parametrize("name", list(RENDERERS))
def test_hostile_text_is_shown_escaped_on_its_own_line(name: str) -> None:
    render, data = RENDERERS[name]
    hostile, benign = render(data(HOSTILE)), render(data(BENIGN))
    assert not RAW.search(hostile), repr(hostile)
    assert hostile.count("\n") == benign.count("\n"), hostile  # no line was forged
    assert "\\x1b[2J" in hostile and "\\u202e" in hostile and "\\n2026-01-01" in hostile


def test_emit_and_note_guard_every_line_and_json_stays_raw(capsys: pytest.CaptureFixture[str]) -> None:
    data = {"reason": HOSTILE.replace("\udcff", "")}
    emit(data, False, lambda d: f"first\n{d['reason']}")
    note(f"boda: note: {HOSTILE}")
    captured = capsys.readouterr()
    assert not RAW.search(captured.out) and not RAW.search(captured.err)
    assert captured.out.startswith("first\nmallory\n2026-01-01")  # lines of the text itself are kept
    emit(data, True)
    assert "\\u001b[2J" in capsys.readouterr().out  # JSON: escaped by JSON, the value unchanged
    assert printable_lines("a\nb\x1b") == "a\nb\\x1b"
