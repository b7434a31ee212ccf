"""The deadline's clock and its settings: BODA_DEADLINE wins over `[limits] deadline`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from boda import deadline
from boda.config import parse_config
from boda.errors import ConfigError
from fixtures.config import boda_toml


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("BODA_DEADLINE", raising=False)
    yield
    deadline.clear()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("250ms", 0.25),
        ("2.5", 2.5),
        ("off", None),
        ("OFF", None),
    ],
)
def test_parse(text: str, seconds: float | None) -> None:
    assert deadline.parse(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-1s", "soon", "10 min", "1d"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        deadline.parse(text)


def test_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    assert deadline.remaining() is None
    deadline.check("nothing")  # no deadline, nothing to raise
    deadline.start(0.05)
    left = deadline.remaining()
    assert left is not None and 0 < left <= 0.05
    time.sleep(0.06)
    with pytest.raises(deadline.DeadlineExceeded, match=r"deadline of 0\.05 s passed: reading"):
        deadline.check("reading")
    monkeypatch.setenv("BODA_DEADLINE", "1h")
    deadline.start(0.05)  # the environment wins
    left = deadline.remaining()
    assert left is not None and left > 3000
    deadline.configure(1.0, source="config")
    left = deadline.remaining()
    assert left is not None and left > 3000
    monkeypatch.setenv("BODA_DEADLINE", "later")
    with pytest.raises(ValueError, match="BODA_DEADLINE"):
        deadline.start()
    deadline.clear()
    assert deadline.remaining() is None


def test_config_key(tmp_path: Path) -> None:
    def config(extra: str) -> Any:
        text = boda_toml(registry="oci-layout:r", ledger="sqlite:///l.db", extra=extra)
        return parse_config(text, tmp_path / "boda.toml")

    assert config("").limits.deadline == deadline.DEFAULT.total_seconds()
    assert config('\n[limits]\ndeadline = "5m"\n').limits.deadline == 300.0
    assert config('\n[limits]\ndeadline = "off"\n').limits.deadline is None
    for bad in ("deadline = 5", 'deadline = "5 minutes"', 'timeout = "5m"'):
        with pytest.raises(ConfigError, match="limits"):
            config(f"\n[limits]\n{bad}\n")
