"""What one server process shares across requests: the registry client and a pool of ledgers.

A request borrows a ledger from the pool (each pooled ledger is one database connection, opened and
migration-checked once) and gets the one registry client, opened on the first request that needs
it. A ledger whose request failed with a ledger error is closed instead of returned, so a broken
connection (PostgreSQL restarted, a network cut) is replaced on the next request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

from boda.config import Config
from boda.errors import LedgerError
from boda.services.context import Context

if TYPE_CHECKING:
    from boda.ledger.base import Ledger
    from boda.registry.base import Registry

#: Ledgers (connections) one server process keeps; more requests than this wait for one.
POOL_SIZE = 8
#: How long a request waits for a free ledger before it is answered 503.
POOL_WAIT_S = 30.0


class LedgerPool:
    """Up to `size` open ledgers, each used by one request at a time."""

    def __init__(self, config: Config, size: int = POOL_SIZE, wait: float = POOL_WAIT_S) -> None:
        self._config = config
        self._wait = wait
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[Ledger] = []
        self._closed = False
        #: Ledgers opened so far (tests and benchmarks read it: one per connection, not per request).
        self.opened = 0

    @contextmanager
    def borrow(self) -> Iterator[Ledger]:
        """An open ledger for the length of the block."""
        if not self._slots.acquire(timeout=self._wait):
            raise LedgerError(f"no ledger connection was free within {self._wait:g} s: the server is busy")
        try:
            ledger = self._take()
            try:
                yield ledger
            except LedgerError:
                ledger.close()  # maybe broken: the next request opens a fresh one
                raise
            except BaseException:
                self._give_back(ledger)
                raise
            self._give_back(ledger)
        finally:
            self._slots.release()

    def _take(self) -> Ledger:
        with self._lock:
            if self._closed:
                raise LedgerError("the server is shutting down")
            if self._idle:
                return self._idle.pop()
        from boda.ledger import open_ledger

        ledger = open_ledger(self._config.ledger)
        with self._lock:
            self.opened += 1
        return ledger

    def _give_back(self, ledger: Ledger) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(ledger)
                return
        ledger.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for ledger in idle:
            ledger.close()


class SharedRegistry:
    """The registry client of the process, opened by the first request that needs it."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._registry: Registry | None = None
        #: Registry clients opened so far.
        self.opened = 0

    def get(self) -> Registry:
        with self._lock:
            if self._registry is None:
                # Context knows how to open the configured backend (the ECR settings included).
                self._registry = Context(self._config).registry
                self.opened += 1
            return self._registry

    def close(self) -> None:
        with self._lock:
            registry, self._registry = self._registry, None
        if registry is not None:
            registry.close()


class RequestContext(Context):
    """A Context over the process's shared resources; never closed by a request."""

    def __init__(self, config: Config, ledger: Ledger, registry: SharedRegistry) -> None:
        super().__init__(config, _ledger=ledger)
        self._shared_registry = registry

    @cached_property
    def registry(self) -> Registry:
        return self._shared_registry.get()

    def close(self) -> None:
        """Nothing to close: the server owns what this context uses."""


class Resources:
    """The registry client and the ledger pool of one server process."""

    def __init__(self, config: Config, *, pool_size: int = POOL_SIZE) -> None:
        self.config = config
        self.registry = SharedRegistry(config)
        self.ledgers = LedgerPool(config, pool_size)

    @contextmanager
    def context(self) -> Iterator[Context]:
        """A Context for one request."""
        with self.ledgers.borrow() as ledger:
            yield RequestContext(self.config, ledger, self.registry)

    def close(self) -> None:
        self.ledgers.close()
        self.registry.close()
