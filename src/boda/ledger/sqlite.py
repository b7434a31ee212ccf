"""The SQLite dialect: one file (WAL, foreign keys on), writers serialised by `BEGIN IMMEDIATE`
for the few milliseconds of a write; app locks are `flock`ed files beside the database."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from boda.errors import LedgerError, NotFound
from boda.ledger.dialect import Clock, Dialect, Row
from boda.ledger.locks import FileLocks, NamedLocks, ProcessLocks
from boda.ledger.store import SqlLedger, open_migrated

# How long a writer waits for another one's (short) write transaction.
BUSY_TIMEOUT_S = 60.0
MEMORY = ":memory:"


class SqliteDialect(Dialect):
    name = "sqlite"
    timestamp_type = "TEXT"
    errors = (sqlite3.Error,)

    def __init__(self, path: str, url: str, *, create: bool = False) -> None:
        self.url = url
        self._path = path
        if path != MEMORY:
            file = Path(path)
            if create:
                try:
                    file.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise LedgerError(f"ledger {url}: cannot create {file.parent}: {exc.strerror}") from exc
            elif not file.exists():
                raise NotFound(
                    f"ledger {url}: there is no ledger file {file}",
                    hint="`boda init` or `boda build` creates it; check the ledger URL in boda.toml",
                )
        # mode=rw never creates the file, even if it vanished since the check above.
        target = MEMORY if path == MEMORY else f"file:{quote(path)}?mode={'rwc' if create else 'rw'}"
        try:
            self._conn = sqlite3.connect(
                target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False, uri=True
            )
        except sqlite3.Error as exc:
            raise self.error(exc) from exc
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._use_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            self._conn.close()
            raise self.error(exc) from exc

    def _use_wal(self) -> None:
        """Switch a new database to WAL (the mode is stored in the file, so once is enough).

        While processes open a fresh database at once, the switch can fail with "database is locked"
        without SQLite's busy handler ever waiting; retry for up to the busy timeout.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def script(self, sql: str) -> None:
        # executescript() would commit the open transaction, so run the statements one by one.
        statement = ""
        for line in sql.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                self._conn.execute(statement)
                statement = ""
        if statement.strip() and not statement.strip().startswith("--"):
            self._conn.execute(statement)

    def begin_write(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def lock_in_transaction(self, key: str) -> None:
        """Nothing to do: `BEGIN IMMEDIATE` already holds the database's one write lock."""

    def table_exists(self, name: str) -> bool:
        rows = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return rows.fetchone() is not None

    def to_db_time(self, value: datetime) -> object:
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def from_db_time(self, value: Any) -> datetime:
        return datetime.fromisoformat(value).astimezone(UTC)

    def named_locks(self) -> NamedLocks:
        if self._path == MEMORY:
            return ProcessLocks()
        return FileLocks(Path(self._path + ".locks"), self.url)

    def describe(self, exc: BaseException) -> str:
        text = super().describe(exc)
        if "database is locked" in text:
            return f"{text} (another process held it longer than {BUSY_TIMEOUT_S:.0f} s)"
        return text

    def close(self) -> None:
        self._conn.close()


def open_sqlite(path: str, url: str, clock: Clock | None = None, *, create: bool = False) -> SqlLedger:
    """Open and migrate a SQLite ledger; a missing file is NotFound unless `create` (then the file
    and its folder are made)."""
    return open_migrated(SqliteDialect(path, url, create=create), clock)
