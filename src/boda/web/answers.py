"""Answers that depend on the ledger alone, reused while the ledger has not changed.

Every change to the ledger appends an event in the same transaction (DESIGN: "every change is an
append-only event"), so the newest event id stamps the ledger's state: one indexed query decides
whether a stored answer is still the one the services would compute. A stored answer also expires
after `max_age` seconds: on PostgreSQL, ids are handed out before commit, so an event with a lower
id can become visible after a higher one (two concurrent promotions); the age bounds how long such
an answer can lag. Dashboards poll the same few apps; this turns most of those requests into one
query.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from boda.ledger.base import Ledger

#: How long an answer may be reused while the newest event id stays the same.
MAX_AGE_S = 2.0
#: Answers kept (least recently used go first).
MAX_ENTRIES = 1024


def ledger_version(ledger: Ledger) -> int:
    """The id of the newest event (0 for a ledger without events)."""
    newest = ledger.events(None, 1)
    return newest[0].id if newest else 0


class Answers:
    """Serialised answers by key, each valid for one ledger version and at most `max_age` seconds."""

    def __init__(
        self,
        *,
        max_age: float = MAX_AGE_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[int, float, bytes]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, ledger: Ledger, compute: Callable[[], bytes]) -> bytes:
        """The stored answer for `key` if the ledger has not changed since, else `compute()`."""
        if self.max_age <= 0:
            return compute()
        version = ledger_version(ledger)  # read before computing: the answer is at least this new
        now = self._clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == version and now - found[1] < self.max_age:
                self._entries.move_to_end(key)
                self.hits += 1
                return found[2]
            self.misses += 1
        answer = compute()
        with self._lock:
            self._entries[key] = (version, now, answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return answer
