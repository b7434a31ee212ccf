"""Fixtures of the ledger tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from ledger_helpers import READY, Spawn, wait_ready


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """`spawn(code, url)`: run `code` in a fresh interpreter with `url` as sys.argv[1] and `ledger`
    opened on it; `ready()` in the code prints READY, and `spawn` returns once it did. Children
    still running at the end are killed."""
    children: list[subprocess.Popen[str]] = []

    def start(code: str, url: str) -> subprocess.Popen[str]:
        program = (
            "import sys, time\n"
            "from boda.ledger import open_ledger\n"
            "def ready():\n"
            f"    print({READY!r}, flush=True)\n"
            "ledger = open_ledger(sys.argv[1])\n" + textwrap.dedent(code)
        )
        process = subprocess.Popen(
            [sys.executable, "-c", program, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        children.append(process)
        wait_ready(process)
        return process

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=30)
