"""What differs between SQLite and PostgreSQL, behind one small interface.

A `Dialect` owns one connection (autocommit between explicit transactions) and knows its
database's quirks: placeholders, how a write transaction starts, transaction-scoped locks, time and
JSON columns, how the ledger proves it can write, and which named locks (`locks.NamedLocks`) its
processes share. Queries are written once, with `?` placeholders.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

from boda.errors import LedgerError
from boda.ledger.locks import NamedLocks

Row = tuple[Any, ...]
Clock = Callable[[], datetime]

# An app name can never contain a space, so this row never collides with a real one.
WRITE_PROBE_APP = " boda write probe "


class Dialect(ABC):
    """One open connection to one database."""

    name: str
    url: str  # redacted, for messages
    timestamp_type: str
    errors: tuple[type[Exception], ...]

    @abstractmethod
    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement (placeholders `?`) and return its rows ([] for none)."""

    @abstractmethod
    def script(self, sql: str) -> None:
        """Run a migration script of several statements inside the open transaction."""

    @abstractmethod
    def begin_write(self) -> None:
        """Start a transaction that will write."""

    @abstractmethod
    def lock_in_transaction(self, key: str) -> None:
        """Hold a lock named `key` until the open transaction ends (SQLite: its write lock does)."""

    @abstractmethod
    def table_exists(self, name: str) -> bool: ...

    @abstractmethod
    def to_db_time(self, value: datetime) -> object: ...

    @abstractmethod
    def from_db_time(self, value: Any) -> datetime: ...

    @abstractmethod
    def named_locks(self) -> NamedLocks:
        """The named locks every process using this ledger shares (held outside transactions)."""

    @abstractmethod
    def close(self) -> None: ...

    def probe_write(self) -> None:
        """Prove a write would succeed now: write a row and roll it back. Raises a driver error."""
        self.begin_write()
        try:
            self.execute(
                "INSERT INTO apps (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (WRITE_PROBE_APP,)
            )
        except BaseException:
            with suppress(*self.errors):  # a lost connection rolls back by itself
                self.execute("ROLLBACK")
            raise
        self.execute("ROLLBACK")

    def from_db_json(self, value: Any) -> dict[str, Any]:
        """A JSON column's value as a dict."""
        data = json.loads(value) if isinstance(value, str | bytes) else value
        return dict(data) if isinstance(data, dict) else {}

    def describe(self, exc: BaseException) -> str:
        """The first line of a driver error."""
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return lines[0] if lines else type(exc).__name__

    def error(self, exc: BaseException) -> LedgerError:
        """A LedgerError for a driver error (raise it `from exc`)."""
        return LedgerError(f"ledger {self.url} failed: {self.describe(exc)}")
