"""`SqlLedger`: the `Ledger` over one database, made of the query groups in `ledger.queries`, the
transactions of `ledger.transaction` and the app locks of `ledger.locks`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from boda.errors import LedgerError
from boda.ledger.dialect import Clock, Dialect
from boda.ledger.locks import DEFAULT_TIMEOUT_S, app_lock_name, build_tags_lock_name
from boda.ledger.migrate import migrate, schema_version
from boda.ledger.queries.apps import AppQueries
from boda.ledger.queries.attestations import AttestationQueries
from boda.ledger.queries.builds import BuildQueries
from boda.ledger.queries.events import EventQueries
from boda.ledger.queries.evidence import EvidenceQueries
from boda.ledger.queries.intents import IntentQueries
from boda.ledger.queries.pins import PinQueries
from boda.ledger.queries.promotions import EnvironmentView, PromotionQueries
from boda.ledger.queries.repositories import RepositoryQueries
from boda.ledger.transaction import Transactions


class SqlLedger(
    AppQueries,
    BuildQueries,
    AttestationQueries,
    EvidenceQueries,
    PromotionQueries,
    PinQueries,
    EventQueries,
    IntentQueries,
    RepositoryQueries,
):
    """The `Ledger`. Thread-safe: one statement or transaction at a time on its connection; app
    locks are per thread (reentrant) within the process and exclusive across processes."""

    def __init__(self, db: Dialect, clock: Clock | None = None) -> None:
        self._tx = Transactions(db, clock)
        self._locks = db.named_locks()
        self.url = db.url

    # -- locks and writability ------------------------------------------------------------------

    def lock_apps(
        self, apps: Iterable[str], *, timeout: float = DEFAULT_TIMEOUT_S, purpose: str = ""
    ) -> AbstractContextManager[None]:
        return self._locks.hold([app_lock_name(a) for a in apps], timeout=timeout, purpose=purpose)

    def lock_build_tags(
        self, app: str, *, timeout: float = DEFAULT_TIMEOUT_S, purpose: str = ""
    ) -> AbstractContextManager[None]:
        return self._locks.hold([build_tags_lock_name(app)], timeout=timeout, purpose=purpose)

    @contextmanager
    def promotion_locks(
        self, pairs: Sequence[tuple[str, str]], *, timeout: float = DEFAULT_TIMEOUT_S, purpose: str = ""
    ) -> Iterator[Sequence[EnvironmentView]]:
        with self.lock_apps({app for app, _ in pairs}, timeout=timeout, purpose=purpose):
            views = [EnvironmentView(self, app, env) for app, env in pairs]
            try:
                yield views
            finally:
                for view in views:
                    view.open = False

    @contextmanager
    def promotion_lock(
        self, app: str, env: str, *, timeout: float = DEFAULT_TIMEOUT_S, purpose: str = ""
    ) -> Iterator[EnvironmentView]:
        with self.promotion_locks([(app, env)], timeout=timeout, purpose=purpose) as views:
            yield views[0]

    def check_writable(self) -> None:
        def probe(db: Dialect) -> None:
            try:
                db.probe_write()
            except db.errors as exc:
                raise LedgerError(f"ledger {self.url} cannot be written now: {db.describe(exc)}") from exc

        self._tx.call(probe)
        self._locks.probe()

    # -- lifecycle ------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version of the database (0 before the first migration)."""
        return self._tx.call(schema_version)

    def close(self) -> None:
        try:
            self._locks.close()
        finally:
            self._tx.call(lambda db: db.close())

    def __enter__(self) -> SqlLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_migrated(db: Dialect, clock: Clock | None = None) -> SqlLedger:
    """Migrate a freshly opened database and wrap it; the connection is closed if that fails."""
    try:
        migrate(db, clock)
    except BaseException:
        db.close()
        raise
    return SqlLedger(db, clock)
