"""The PostgreSQL dialect (psycopg 3): promotions of one (app, env) are serialised by a
transaction-scoped advisory lock, so runners on many machines share one history.

Imported only for postgresql:// URLs: psycopg is an optional dependency (`boda[postgres]`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from boda.errors import LedgerError, UsageError
from boda.ledger.dialect import Clock, Dialect, Row
from boda.ledger.store import SqlLedger, open_migrated

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `pg_advisory_xact_lock`."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class PostgresDialect(Dialect):
    name = "postgres"
    timestamp_type = "TIMESTAMPTZ"

    def __init__(self, url: str, redacted: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise LedgerError(
                f"ledger {redacted}: PostgreSQL support is not installed",
                hint="pip install 'boda[postgres]'",
            ) from exc
        self.url = redacted
        self.errors = (psycopg.Error,)
        self._password = unquote(urlsplit(url).password or "") if "@" in url else ""
        self._placeholders: dict[str, str] = {}
        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise UsageError(f"invalid ledger URL {redacted!r}: {self.describe(exc)}") from exc
        defaults = {"connect_timeout": str(CONNECT_TIMEOUT_S), "application_name": "boda"}
        self._conninfo = psycopg.conninfo.make_conninfo(
            url, **{k: v for k, v in defaults.items() if k not in params}
        )
        self._conn = self.connect()

    def connect(self) -> psycopg.Connection[Any]:
        """A new autocommit connection; LedgerError (one line, no password) when it fails."""
        import psycopg

        try:
            return psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise LedgerError(
                f"ledger {self.url} is unreachable: {self.describe(exc)}",
                hint="check that PostgreSQL runs there and accepts this user",
            ) from exc

    def _sql(self, sql: str) -> str:
        converted = self._placeholders.get(sql)
        if converted is None:
            converted = self._placeholders[sql] = sql.replace("?", "%s")
        return converted

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        cursor = self._conn.execute(self._sql(sql), params) if params else self._conn.execute(sql)
        return cursor.fetchall() if cursor.description is not None else []

    def script(self, sql: str) -> None:
        self._conn.execute(sql)  # no parameters: the simple protocol runs every statement

    def begin_write(self) -> None:
        self._conn.execute("BEGIN")

    def lock_in_transaction(self, key: str) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(key),))

    def table_exists(self, name: str) -> bool:
        row = self._conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        return bool(row and row[0])

    def to_db_time(self, value: datetime) -> object:
        return value

    def from_db_time(self, value: Any) -> datetime:
        if not isinstance(value, datetime):
            raise LedgerError(f"ledger {self.url}: expected a timestamp, got {value!r}")
        return value.astimezone(UTC)

    def describe(self, exc: BaseException) -> str:
        text = super().describe(exc)
        return text.replace(self._password, "***") if self._password else text

    def close(self) -> None:
        self._conn.close()


def open_postgres(url: str, redacted: str, clock: Clock | None = None) -> SqlLedger:
    """Connect to and migrate a PostgreSQL ledger."""
    return open_migrated(PostgresDialect(url, redacted), clock)
