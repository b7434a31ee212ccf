"""How failures reach people and scripts: one line on stderr, one JSON object with --json, the whole
chain of causes with BODA_DEBUG=1, and nothing a user typed can rewrite the terminal."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from boda.cli.errors import report
from boda.cli.render import printable, table
from boda.errors import LedgerError, Refused


def _chained_ledger_error() -> LedgerError:
    try:
        try:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        except sqlite3.Error as driver:
            raise LedgerError(
                "ledger sqlite:///x.db failed: attempt to write a readonly database"
            ) from driver
    except LedgerError as exc:
        return exc


def test_an_error_is_one_line_and_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(_chained_ledger_error()) == 6
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("boda: error: ledger")


def test_debug_prints_the_whole_chain_for_boda_errors_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BODA_DEBUG", "1")
    assert report(_chained_ledger_error()) == 6
    err = capsys.readouterr().err
    assert "sqlite3.OperationalError: attempt to write a readonly database" in err
    assert "The above exception was the direct cause" in err and "boda.errors.LedgerError" in err


def test_json_errors_give_scripts_every_reason(capsys: pytest.CaptureFixture[str]) -> None:
    refusal = Refused(
        "promotion to prd refused", hint="record evidence", reasons=("web: no 'tests'", "api: x")
    )
    assert report(refusal, as_json=True) == 3
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "error": {
            "code": "refused",
            "exit_code": 3,
            "message": "promotion to prd refused",
            "hint": "record evidence",
            "reasons": ["web: no 'tests'", "api: x"],
        }
    }
    assert captured.err.startswith("boda: error: promotion to prd refused")


def test_an_unexpected_error_is_exit_1_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(ZeroDivisionError("division by zero"), as_json=True) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "failure"
    assert "BODA_DEBUG=1" in captured.err and captured.err.count("\n") == 1


def test_usage_errors_from_click_are_exit_2_in_json_too(boda: Any) -> None:
    run = boda("promote", "--json")
    assert run.code == 2
    assert run.json["error"]["code"] == "usage" and run.json["error"]["exit_code"] == 2


def test_json_error_from_a_real_command(boda: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = boda("status", "shop/web", "--json")
    assert run.code == 2 and run.json["error"]["code"] == "usage"  # no boda.toml here
    assert "boda.toml" in run.json["error"]["message"]


def test_control_characters_cannot_forge_rows_or_rewrite_the_terminal() -> None:
    assert printable("ok\nFORGED ROW\x1b[2J\u202e") == "ok\\nFORGED ROW\\x1b[2J\\u202e"
    text = table(["BY", "REASON"], [["mallory\n2026-01-01  prd  sha256:evil", "\x1b]0;pwned\x07"]])
    assert len(text.splitlines()) == 3 and "\x1b" not in text


def test_config_may_follow_the_command_and_mistypes_get_suggestions(
    boda: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "elsewhere.toml"
    assert boda("init", "--path", str(config)).code == 0
    monkeypatch.chdir(tmp_path)
    run = boda("promote", "shop/web", "--to", "prod", "--commit", "a" * 40, "--config", str(config))
    assert run.code == 4 and "unknown environment 'prod'" in run.err and "did you mean 'prd'?" in run.err
    assert boda("gc", "apply", "shop/web", "--yes", "--config", str(config)).code == 4
