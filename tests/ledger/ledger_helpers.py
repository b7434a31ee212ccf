"""Ledger test helpers: another process that works on the same ledger and stops where we say."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any

import psycopg
import pytest

READY = "ready"

Spawn = Callable[[str, str], subprocess.Popen[str]]


def wait_ready(process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """Wait until the child prints READY; fail with its stderr if it exits first."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.1)
        if readable:
            line = process.stdout.readline()
            if line.strip() == READY:
                return
            if line == "":
                break
    process.kill()
    _, err = process.communicate(timeout=10)
    pytest.fail(f"the child process never got ready (exit {process.returncode}): {err}")


def kill9(process: subprocess.Popen[str]) -> None:
    """SIGKILL: no cleanup of any kind runs in the child."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def raw(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement on the ledger database behind boda's back."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)) as conn:
            return conn.execute(statement).fetchall()
    with psycopg.connect(url, autocommit=True) as pg:
        cursor = pg.execute(statement.encode())
        return cursor.fetchall() if cursor.description else []


def fail_event_inserts(url: str) -> None:
    """Make the database refuse every new event from now on: a ledger failing midway."""
    if url.startswith("sqlite"):
        raw(
            url,
            "CREATE TRIGGER fail_events BEFORE INSERT ON events"
            " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
        )
    else:
        raw(
            url,
            "CREATE FUNCTION fail_events() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'disk on fire'; END; $$",
        )
        raw(
            url,
            "CREATE TRIGGER fail_events BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fail_events()",
        )
