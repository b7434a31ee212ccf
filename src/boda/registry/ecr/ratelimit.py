"""A token bucket that spaces calls below an API quota (ECR's PutImage: 10 per second and region)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Client-side PutImage rate, below ECR's default quota of 10 per second and region.
PUT_IMAGE_RATE = 8.0


class TokenBucket:
    """At most `rate` acquisitions per second on average, with bursts of up to `burst`.

    `acquire` reserves a slot and sleeps until it is due, outside the lock, so concurrent callers
    queue up in order. `clock` and `sleep` are injectable for tests.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for one token; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
