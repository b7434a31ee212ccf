"""The last inventory of each repository, kept a few seconds: gc asks for the referrers of every
image right after listing them, and this answers all of those from one describe_images read."""

from __future__ import annotations

import threading
from collections.abc import Callable

from boda.registry.base import ImageRecord

#: How long an `image_list` result serves `referrers` before it is read again.
SNAPSHOT_SECONDS = 10.0


class Snapshots:
    """Inventories by repository, younger than `max_age`; a write to a repository forgets its own."""

    def __init__(self, clock: Callable[[], float], max_age: float = SNAPSHOT_SECONDS) -> None:
        self._clock = clock
        self._max_age = max_age
        self._lock = threading.Lock()
        self._taken: dict[str, tuple[float, list[ImageRecord]]] = {}

    def store(self, repo: str, records: list[ImageRecord]) -> None:
        with self._lock:
            self._taken[repo] = (self._clock(), records)

    def recent(self, repo: str) -> list[ImageRecord] | None:
        """The repository's inventory if one was taken less than `max_age` ago and no write came since."""
        with self._lock:
            taken = self._taken.get(repo)
            if taken is not None and self._clock() - taken[0] < self._max_age:
                return taken[1]
        return None

    def forget(self, repo: str) -> None:
        with self._lock:
            self._taken.pop(repo, None)
