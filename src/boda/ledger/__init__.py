"""The ledger: builds, promotions, evidence, pins and the event log, on SQLite or PostgreSQL.

    ledger = open_ledger("sqlite:///.boda/ledger.db", base_dir=project_root)
    with ledger.promotion_lock("foo/bar", "prd") as tx:
        current = tx.current()
        ...  # write the registry while the lock is held
        tx.record_promotion(digest=d, ..., expected_previous=current.digest if current else None)

URLs: `sqlite:///relative/path.db` (relative to `base_dir`, else the working directory),
`sqlite:////absolute/path.db`, `sqlite:///:memory:`, `postgresql://user@host:port/db` (or
`postgres://`). The schema is migrated on first use.
"""

from __future__ import annotations

from pathlib import Path

from boda.errors import UsageError
from boda.ledger._sql import Clock
from boda.ledger.base import (
    EVIDENCE_RESULTS,
    PROMOTION_KINDS,
    Build,
    Event,
    Evidence,
    Ledger,
    Pin,
    Promotion,
    PromotionTx,
    redact_url,
)

__all__ = [
    "EVIDENCE_RESULTS",
    "PROMOTION_KINDS",
    "Build",
    "Event",
    "Evidence",
    "Ledger",
    "Pin",
    "Promotion",
    "PromotionTx",
    "open_ledger",
    "redact_url",
]

_SQLITE = "sqlite:///"


def open_ledger(url: str, base_dir: Path | None = None, *, clock: Clock | None = None) -> Ledger:
    """Open the ledger at `url`, migrating its schema if needed.

    A malformed URL is a UsageError; a database that cannot be opened is a LedgerError. `clock`
    (tests, imports) supplies the timestamps of recorded facts; it must return aware datetimes.
    """
    redacted = redact_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from boda.ledger.postgres import open_postgres

        return open_postgres(url, redacted, clock)
    if url.startswith(_SQLITE):
        path = url[len(_SQLITE) :]
        if path and "?" not in path and "#" not in path:
            from boda.ledger.sqlite import MEMORY, open_sqlite

            if path != MEMORY and not path.startswith("/"):
                path = str((base_dir or Path.cwd()) / path)
            return open_sqlite(path, redacted, clock)
    raise UsageError(
        f"invalid ledger URL {redacted!r}: expected sqlite:///RELATIVE/PATH.db, sqlite:////ABSOLUTE/PATH.db,"
        " sqlite:///:memory: or postgresql://USER@HOST:PORT/DATABASE"
    )
