"""The ledger: builds, promotions, evidence, pins, intents, repository owners and the event log,
on SQLite or PostgreSQL.

    ledger = open_ledger(config.ledger)                 # a LedgerLocation, or a URL string
    with ledger.promotion_lock("foo/bar", "prd") as tx:  # the app's lock, not a transaction
        current = tx.current()
        intent = ledger.begin_intent("promote", "foo/bar", env="prd", digest=d, by=who)
        ...  # write the registry while the lock is held
        tx.record_promotion(digest=d, ..., expected_previous=current.digest if current else None,
                            intent=intent)

URLs: `sqlite:///relative/path.db` (relative to `base_dir`, else the working directory),
`sqlite:////absolute/path.db`, `sqlite:///:memory:`, `postgresql://user@host:port/db` (or
`postgres://`). The schema is migrated on first use. Where each job lives: `records` (what is
stored), `base` (the protocol), `store` (its implementation), `queries/` (SQL by kind of record),
`transaction`, `locks`, `text` (what can be stored), `migrate`, `sqlite` and `postgres` (dialects).
"""

from __future__ import annotations

from pathlib import Path

from boda.ledger.base import Ledger, PromotionTx
from boda.ledger.dialect import Clock
from boda.ledger.locks import DEFAULT_TIMEOUT_S as LOCK_TIMEOUT_S
from boda.ledger.locks import Holder, LockTimeout
from boda.ledger.queries.repositories import RepositoryClaimed
from boda.ledger.records import (
    EVIDENCE_RESULTS,
    INTENT_RESOLUTIONS,
    PROMOTION_KINDS,
    Attestation,
    Build,
    Event,
    Evidence,
    Intent,
    NewEvent,
    NewPromotion,
    Pin,
    Promotion,
    RepositoryOwner,
)
from boda.ledger.text import check_detail, check_text
from boda.locations import LedgerLocation, redact_url

__all__ = [
    "EVIDENCE_RESULTS",
    "INTENT_RESOLUTIONS",
    "LOCK_TIMEOUT_S",
    "PROMOTION_KINDS",
    "Attestation",
    "Build",
    "Clock",
    "Event",
    "Evidence",
    "Holder",
    "Intent",
    "Ledger",
    "LockTimeout",
    "NewEvent",
    "NewPromotion",
    "Pin",
    "Promotion",
    "PromotionTx",
    "RepositoryClaimed",
    "RepositoryOwner",
    "check_detail",
    "check_text",
    "open_ledger",
    "redact_url",
]


def open_ledger(
    location: LedgerLocation | str,
    base_dir: Path | None = None,
    *,
    clock: Clock | None = None,
    create: bool = False,
) -> Ledger:
    """Open the ledger at `location` (a string is parsed first), migrating its schema if needed.

    A SQLite file that does not exist is NotFound (exit 4, naming the path) unless `create` (only
    `boda init` and `boda build` create ledgers); `:memory:` and PostgreSQL need no creating. A
    malformed URL is a UsageError; a database that cannot be opened is a LedgerError. `clock`
    (tests, imports) supplies the timestamps of recorded facts; it must return aware datetimes.
    """
    if isinstance(location, str):
        location = LedgerLocation.parse(location, base_dir=base_dir)
    if location.kind == "postgres":
        from boda.ledger.postgres import open_postgres

        return open_postgres(location.url, location.display, clock)
    from boda.ledger.sqlite import MEMORY, open_sqlite

    path = str(location.path) if location.path is not None else MEMORY
    return open_sqlite(path, location.display, clock, create=create)
