"""The schema migration runner: numbered SQL files in `migrations/`, applied once, in order.

`NNNN_name.sql` serves every dialect; `NNNN_name.<dialect>.sql` serves one. Each number is taken
by one change of the schema, for both dialects alike.
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import UTC
from pathlib import Path

from boda.errors import LedgerError
from boda.ledger.dialect import Clock, Dialect
from boda.ledger.transaction import utc_now

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$")


def migrations(dialect: str) -> list[tuple[int, str, Path]]:
    """(version, name, file) of every migration for `dialect`, oldest first."""
    found: dict[int, tuple[str, Path]] = {}
    for entry in MIGRATIONS_DIR.iterdir():
        match = _MIGRATION.match(entry.name)
        if not match or match.group(3) not in (None, dialect):
            continue
        version = int(match.group(1))
        if version not in found or match.group(3) is not None:
            found[version] = (match.group(2), entry)
    ordered = sorted(found.items())
    if [v for v, _ in ordered] != list(range(1, len(ordered) + 1)):
        raise RuntimeError(f"ledger migrations for {dialect} are not numbered 1..N: {sorted(found)}")
    return [(v, name, entry) for v, (name, entry) in ordered]


def schema_version(db: Dialect) -> int:
    """The schema version of the database (0 before the first migration)."""
    if not db.table_exists("schema_version"):
        return 0
    rows = db.execute("SELECT MAX(version) FROM schema_version")
    return int(rows[0][0] or 0)


def _too_new(db: Dialect, version: int, latest: int) -> LedgerError:
    return LedgerError(
        f"ledger {db.url} has schema version {version}, newer than version {latest} this boda knows",
        hint="upgrade boda; an older boda must not write to a newer ledger",
    )


def migrate(db: Dialect, clock: Clock | None = None) -> None:
    """Bring the schema to the latest version; safe when many processes do it at once."""
    steps = migrations(db.name)
    latest = steps[-1][0] if steps else 0
    now = (clock or utc_now)().astimezone(UTC)
    try:
        version = schema_version(db)
        if version == latest:
            return
        if version > latest:
            raise _too_new(db, version, latest)
        db.begin_write()
        try:
            db.lock_in_transaction("boda:migrate")
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                f" name TEXT NOT NULL, applied_at {db.timestamp_type} NOT NULL)"
            )
            version = schema_version(db)  # another process may have migrated meanwhile
            if version > latest:
                raise _too_new(db, version, latest)
            for step, name, entry in steps[version:]:
                db.script(entry.read_text(encoding="utf-8"))
                db.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (step, name, db.to_db_time(now)),
                )
        except BaseException:
            with suppress(*db.errors):  # a lost connection rolls back by itself
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except db.errors as exc:
        raise LedgerError(
            f"ledger {db.url}: cannot migrate the schema to version {latest}: {db.describe(exc)}"
        ) from exc
