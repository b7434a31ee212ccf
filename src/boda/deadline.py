"""The deadline of the running command: every registry request, and the reading of every answer,
ends by then.

Timeouts alone are per read: a registry that trickles an answer one byte every few seconds never
trips them and would hold a command (and any lock it holds) for ever. The CLI starts the clock
when a command starts (`start`); the HTTP transport bounds each request's timeouts by what
remains and checks the clock on every chunk of a body it reads or sends; the ECR client bounds its
timeouts and checks before every attempt. Past the deadline, DeadlineExceeded (exit 6).

The deadline is `[limits] deadline` in boda.toml (a duration such as "10m"), or `BODA_DEADLINE`,
which wins; "off" means none. Without either it is DEFAULT. A long-running server (`boda serve`)
has none: its requests are bounded by their timeouts.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta

from boda.errors import Unavailable

#: The deadline of a command when neither the config nor the environment sets one.
DEFAULT = timedelta(minutes=30)
#: The environment variable that sets the deadline (wins over the config).
VARIABLE = "BODA_DEADLINE"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class DeadlineExceeded(Unavailable):
    """The command's deadline passed while a registry request was running or about to run."""


def parse(text: str) -> float | None:
    """Seconds from "90s", "10m", "1h", "250ms" or a bare number of seconds; None for "off"."""
    if text.strip().lower() in ("off", "none"):
        return None
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f'{text!r} is not a deadline such as "90s", "10m" or "1h" (or "off")')
    return float(match.group(1)) * _SECONDS[match.group(2)]


class _Clock:
    """When the running command started and how long it may take."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.budget: float | None = None
        self.source = ""

    @property
    def at(self) -> float | None:
        return None if self.budget is None else self.started + self.budget


_clock = _Clock()


def start(configured: float | None = DEFAULT.total_seconds(), *, source: str = "default") -> None:
    """Start the command's clock now, with `configured` seconds (None: no deadline), unless
    BODA_DEADLINE says otherwise. A ValueError names a malformed BODA_DEADLINE."""
    _clock.started = time.monotonic()
    configure(configured, source=source)


def configure(configured: float | None, *, source: str) -> None:
    """Set the budget of the running command (counted from `start`); BODA_DEADLINE wins."""
    from_environment = os.environ.get(VARIABLE)
    if from_environment is not None and from_environment.strip():
        try:
            _clock.budget = parse(from_environment)
        except ValueError as exc:
            raise ValueError(f"{VARIABLE}: {exc}") from exc
        _clock.source = VARIABLE
        return
    _clock.budget = configured
    _clock.source = source


def clear() -> None:
    """No deadline (a server process, a library caller that did not start one)."""
    _clock.budget = None
    _clock.source = ""


def remaining() -> float | None:
    """Seconds left (negative once passed); None without a deadline."""
    at = _clock.at
    return None if at is None else at - time.monotonic()


def check(doing: str) -> None:
    """Raise DeadlineExceeded, naming what was `doing`, once the deadline has passed."""
    left = remaining()
    if left is not None and left <= 0:
        raise exceeded(doing)


def exceeded(doing: str) -> DeadlineExceeded:
    """The error for a deadline that passed while `doing`."""
    budget = _clock.budget or 0.0
    shown = f"{budget:g} s" if budget < 120 else f"{budget / 60:g} min"
    where = "[limits] deadline in boda.toml" if _clock.source != VARIABLE else VARIABLE
    return DeadlineExceeded(
        f"the command's deadline of {shown} passed: {doing}",
        hint=f"the registry answers too slowly; if the work needs longer, raise {where}",
    )
