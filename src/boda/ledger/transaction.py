"""Transactions on a ledger's one connection: short, explicit, one thread at a time.

Every write runs in one explicit transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL `BEGIN`) that
commits when its block ends and rolls back if the block raises; a write started inside another
joins it. No transaction is ever held across registry I/O: the locks that serialise registry
writes are `locks.NamedLocks`, outside any transaction. Driver errors become a one-line
LedgerError whose `__cause__` is the driver's error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TypeVar

from boda.ledger.dialect import Clock, Dialect, Row

T = TypeVar("T")


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


class Transactions:
    """A `Dialect`'s connection shared by threads: one statement or transaction at a time."""

    def __init__(self, db: Dialect, clock: Clock | None = None) -> None:
        self.db = db
        self._clock = clock or utc_now
        self._mutex = threading.RLock()
        self._in_tx = False

    def now(self) -> datetime:
        """The time to record a fact with (the ledger's clock, in UTC)."""
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement outside any explicit transaction (or inside the open one)."""
        with self._mutex:
            try:
                return self.db.execute(sql, params)
            except self.db.errors as exc:
                raise self.db.error(exc) from exc

    def call(self, work: Callable[[Dialect], T]) -> T:
        """Run `work` on the connection while no other thread uses it; driver errors mapped."""
        with self._mutex:
            try:
                return work(self.db)
            except self.db.errors as exc:
                raise self.db.error(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Dialect]:
        """One write transaction, or the one already open on this connection."""
        with self._mutex:
            if self._in_tx:
                yield self.db
                return
            try:
                self.db.begin_write()
            except self.db.errors as exc:
                raise self.db.error(exc) from exc
            self._in_tx = True
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException as exc:
                # The transaction may be gone with the connection, or may never have started.
                with suppress(*self.db.errors):
                    self.db.execute("ROLLBACK")
                if isinstance(exc, self.db.errors):
                    raise self.db.error(exc) from exc
                raise
            finally:
                self._in_tx = False
