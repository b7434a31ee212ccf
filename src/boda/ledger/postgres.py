"""The PostgreSQL dialect (psycopg 3), shared by runners on many machines: a write transaction
serialises the promotions of one (app, env) with a transaction-scoped advisory lock; app locks are
session-level advisory locks on connections of their own, idle and outside any transaction.

Imported only for postgresql:// URLs: psycopg is an optional dependency (`boda[postgres]`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from boda.errors import LedgerError, UsageError
from boda.ledger.dialect import Clock, Dialect, Row
from boda.ledger.locks import Holder, LockTimeout, NamedLocks, Release
from boda.ledger.store import SqlLedger, open_migrated

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 10
# Every table a command writes, and how.
_WRITTEN = {
    "apps": "INSERT",
    "builds": "INSERT",
    "promotions": "INSERT",
    "heads": "INSERT, UPDATE",
    "evidence": "INSERT",
    "attestations": "INSERT",
    "pins": "INSERT, DELETE",
    "events": "INSERT",
    "intents": "INSERT, UPDATE",
    "repository_owners": "INSERT",
}


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for the advisory lock functions."""
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

    def probe_write(self) -> None:
        """A rolled-back write (read-only transactions, a standby, a lost connection), then the
        privileges of every table a command writes."""
        super().probe_write()
        wanted = [
            (table, privilege.strip()) for table, kinds in _WRITTEN.items() for privilege in kinds.split(",")
        ]
        rows = self._conn.execute(
            "SELECT t, p FROM unnest(%s::text[], %s::text[]) AS w(t, p) WHERE NOT has_table_privilege(t, p)",
            ([t for t, _ in wanted], [p for _, p in wanted]),
        ).fetchall()
        if rows:
            missing = ", ".join(f"{p} on {t}" for t, p in rows)
            raise LedgerError(f"ledger {self.url} cannot be written now: this user lacks {missing}")

    def named_locks(self) -> NamedLocks:
        schema = self._conn.execute("SELECT current_schema()").fetchone()
        return AdvisoryLocks(self, str(schema[0]) if schema else "")

    def describe(self, exc: BaseException) -> str:
        text = super().describe(exc)
        return text.replace(self._password, "***") if self._password else text

    def close(self) -> None:
        self._conn.close()


class AdvisoryLocks(NamedLocks):
    """Session-level advisory locks, one connection per holding block (pooled): idle, outside any
    transaction, so holding a lock blocks no write. Keys include the schema, so ledgers sharing one
    database in different schemas lock apart."""

    def __init__(self, dialect: PostgresDialect, schema: str) -> None:
        super().__init__()
        self._dialect = dialect
        self._schema = schema
        self._free: list[psycopg.Connection[Any]] = []
        self._pool = threading.Lock()

    def _key(self, name: str) -> int:
        return lock_key(f"{self._schema}\0{name}")

    def _take(self) -> psycopg.Connection[Any]:
        with self._pool:
            while self._free:
                conn = self._free.pop()
                if not conn.closed:
                    return conn
        return self._dialect.connect()

    def _give(self, conn: psycopg.Connection[Any]) -> None:
        with self._pool:
            self._free.append(conn)

    def _acquire(self, names: list[str], deadline: float, me: Holder, timeout: float) -> Release:
        import psycopg

        conn = self._take()
        label = f"boda {me.pid}@{me.host} {me.purpose}"[:63]  # what waiters read in pg_stat_activity
        try:
            for name in names:
                # One round trip when nobody holds it (a try never waits, so the order still holds).
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s), set_config('application_name', %s, false)",
                    (self._key(name), label),
                ).fetchone()
                if row is not None and row[0]:
                    continue
                remaining = deadline - time.monotonic()
                # lock_timeout 0 would mean "wait forever": wait at least a millisecond.
                conn.execute(f"SET lock_timeout = {max(1, int(remaining * 1000))}")
                try:
                    conn.execute("SELECT pg_advisory_lock(%s)", (self._key(name),))
                except psycopg.errors.LockNotAvailable as exc:
                    raise LockTimeout(name, self._holder(conn, name), timeout) from exc
                conn.execute("SELECT set_config('application_name', %s, false)", (label,))
        except LockTimeout:
            self._release(conn)
            raise
        except psycopg.Error as exc:
            with suppress(psycopg.Error):
                conn.close()
            raise self._dialect.error(exc) from exc
        except BaseException:
            with suppress(psycopg.Error):
                conn.close()  # the server drops the session's locks with it
            raise

        def release() -> None:
            self._release(conn)

        return release

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        import psycopg

        try:
            conn.execute("SELECT pg_advisory_unlock_all(), set_config('application_name', 'boda', false)")
        except psycopg.Error:
            with suppress(psycopg.Error):
                conn.close()  # the server drops the session's locks with it
            return
        self._give(conn)

    def _holder(self, conn: psycopg.Connection[Any], name: str) -> Holder | None:
        """Who holds `name`, from pg_locks and pg_stat_activity (None if that cannot be read)."""
        import psycopg

        key = self._key(name) & 0xFFFFFFFFFFFFFFFF
        try:
            row = conn.execute(
                "SELECT a.pid, a.application_name, a.client_hostname, host(a.client_addr), a.state_change"
                " FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.database = ("
                "  SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid AND l.objsubid = 1",
                (key >> 32, key & 0xFFFFFFFF),
            ).fetchone()
        except psycopg.Error:
            return None
        if row is None:
            return None
        pid, application, client_host, client_addr, since = row
        purpose = ""
        if isinstance(application, str) and application.startswith("boda ") and "@" in application:
            owner, _, purpose = application[5:].partition(" ")
            client_pid, _, client_host = owner.partition("@")
            with suppress(ValueError):
                pid = int(client_pid)
        return Holder(pid, client_host or client_addr, since, purpose)

    def probe(self) -> None:
        """Nothing to prove beyond the connection `probe_write` used."""

    def close(self) -> None:
        with self._pool:
            free, self._free = self._free, []
        for conn in free:
            with suppress(Exception):
                conn.close()


def open_postgres(url: str, redacted: str, clock: Clock | None = None) -> SqlLedger:
    """Connect to and migrate a PostgreSQL ledger."""
    return open_migrated(PostgresDialect(url, redacted), clock)
