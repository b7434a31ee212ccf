"""The ledger over a thin DB-API layer, shared by SQLite and PostgreSQL.

A `Dialect` owns one connection and knows its database's quirks (placeholders, locks, time and JSON
columns); `SqlLedger` holds every query, written once with `?` placeholders. Writes run in one
explicit transaction each (SQLite `BEGIN IMMEDIATE`, PostgreSQL `BEGIN`); promotions of one
(app, env) also hold a per-pair lock for the whole `promotion_lock` block. Calls made while a
transaction is open on the same ledger join it.
"""

from __future__ import annotations

import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boda.errors import Conflict, LedgerError, NotFound, UsageError
from boda.ledger.attestations import AttestationQueries
from boda.ledger.base import (
    EVIDENCE_RESULTS,
    PROMOTION_KINDS,
    Build,
    Event,
    Evidence,
    Pin,
    Promotion,
)
from boda.types import Digest

Row = tuple[Any, ...]
Clock = Callable[[], datetime]

_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{1,64}$")
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$")

_BUILD = "app, commit_sha, digest, reference, recorded_at, recorded_by"
_PROMOTION = (
    "id, app, env, digest, commit_sha, reference, recorded_at, recorded_by, kind, reason, previous_digest"
)
_HEAD_PROMOTION = ", ".join(f"p.{c.strip()}" for c in _PROMOTION.split(","))
_EVIDENCE = "id, app, env, digest, kind, result, recorded_by, recorded_at, url"
_PIN = "app, digest, reason, recorded_by, recorded_at"
_EVENT = "id, recorded_at, recorded_by, action, app, env, digest, reason, detail"


class Dialect(ABC):
    """One open connection to one database, in autocommit mode between explicit transactions."""

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
    def lock(self, key: str) -> None:
        """Hold a lock named `key` until the open transaction ends."""

    @abstractmethod
    def table_exists(self, name: str) -> bool: ...

    @abstractmethod
    def to_db_time(self, value: datetime) -> object: ...

    @abstractmethod
    def from_db_time(self, value: Any) -> datetime: ...

    @abstractmethod
    def close(self) -> None: ...

    def from_db_json(self, value: Any) -> dict[str, Any]:
        """A JSON column's value as a dict."""
        data = json.loads(value) if isinstance(value, str | bytes) else value
        return dict(data) if isinstance(data, dict) else {}

    def describe(self, exc: Exception) -> str:
        """The first line of a driver error."""
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return lines[0] if lines else type(exc).__name__

    def error(self, exc: Exception) -> LedgerError:
        """A LedgerError for a driver error."""
        return LedgerError(f"ledger {self.url} failed: {self.describe(exc)}")


class _PromotionTx:
    """What `SqlLedger.promotion_lock` yields; valid only inside its `with` block."""

    def __init__(self, ledger: SqlLedger, app: str, env: str) -> None:
        self.app = app
        self.env = env
        self._ledger = ledger
        self.open = True

    def _check(self) -> SqlLedger:
        if not self.open:
            raise RuntimeError("promotion transaction used after its `with` block ended")
        return self._ledger

    def current(self) -> Promotion | None:
        return self._check().current(self.app, self.env)

    def previous_digests(self, depth: int) -> list[Digest]:
        return self._check().previous_digests(self.app, self.env, depth)

    def previous_promotions(self, depth: int) -> list[Promotion]:
        return self._check().previous_promotions(self.app, self.env, depth)

    def record_promotion(
        self,
        *,
        digest: Digest,
        commit: str | None,
        reference: str,
        by: str,
        kind: str,
        reason: str | None,
        expected_previous: Digest | None,
    ) -> Promotion:
        return self._check()._record_promotion(
            self.app,
            self.env,
            digest=digest,
            commit=commit,
            reference=reference,
            by=by,
            kind=kind,
            reason=reason,
            expected_previous=expected_previous,
        )

    def record_event(
        self,
        action: str,
        *,
        by: str,
        digest: Digest | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Event:
        return self._check().record_event(
            action, app=self.app, env=self.env, by=by, digest=digest, reason=reason, detail=detail
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SqlLedger(AttestationQueries):
    """The `Ledger` over a `Dialect`. Thread-safe: one operation (or open transaction) at a time."""

    _db: Dialect

    def __init__(self, db: Dialect, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock or _utc_now
        self._mutex = threading.RLock()
        self._in_tx = False
        self.url = db.url

    # -- plumbing -------------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the ledger clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        with self._mutex:
            try:
                return self._db.execute(sql, params)
            except self._db.errors as exc:
                raise self._db.error(exc) from None

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, or the one already open on this ledger."""
        with self._mutex:
            if self._in_tx:
                yield
                return
            try:
                self._db.begin_write()
            except self._db.errors as exc:
                raise self._db.error(exc) from None
            self._in_tx = True
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, self._db.errors):
                    raise self._db.error(exc) from None
                raise
            finally:
                self._in_tx = False

    def _rollback(self) -> None:
        # The transaction may be gone with the connection, or may never have started.
        with suppress(*self._db.errors):
            self._db.execute("ROLLBACK")

    def _touch_app(self, app: str) -> None:
        self._db.execute("INSERT INTO apps (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (app,))

    @staticmethod
    def _limit(sql: str, params: list[object], limit: int | None) -> str:
        if limit is None:
            return sql
        params.append(max(limit, 0))
        return f"{sql} LIMIT ?"

    # -- decoding -------------------------------------------------------------------------------

    def _build(self, row: Row) -> Build:
        return Build(row[0], row[1], Digest.parse(row[2]), row[3], self._db.from_db_time(row[4]), row[5])

    def _promotion(self, row: Row) -> Promotion:
        return Promotion(
            id=int(row[0]),
            app=row[1],
            env=row[2],
            digest=Digest.parse(row[3]),
            commit=row[4],
            reference=row[5],
            at=self._db.from_db_time(row[6]),
            by=row[7],
            kind=row[8],
            reason=row[9],
            previous_digest=Digest.parse(row[10]) if row[10] is not None else None,
        )

    def _evidence(self, row: Row) -> Evidence:
        return Evidence(
            id=int(row[0]),
            app=row[1],
            env=row[2],
            digest=Digest.parse(row[3]),
            kind=row[4],
            result=row[5],
            by=row[6],
            at=self._db.from_db_time(row[7]),
            url=row[8],
        )

    def _pin(self, row: Row) -> Pin:
        return Pin(row[0], Digest.parse(row[1]), row[2], row[3], self._db.from_db_time(row[4]))

    def _event(self, row: Row) -> Event:
        return Event(
            id=int(row[0]),
            at=self._db.from_db_time(row[1]),
            by=row[2],
            action=row[3],
            app=row[4],
            env=row[5],
            digest=Digest.parse(row[6]) if row[6] is not None else None,
            reason=row[7],
            detail=self._db.from_db_json(row[8]),
        )

    # -- builds ---------------------------------------------------------------------------------

    def record_build(
        self, app: str, *, commit: str, digest: Digest, reference: str, by: str
    ) -> tuple[Build, bool]:
        if not _COMMIT.match(commit):
            raise UsageError(
                f"invalid commit {commit!r}: expected a full lower-case hex SHA (40 or 64 digits)"
            )
        with self._write():
            rows = self._db.execute(
                f"INSERT INTO builds ({_BUILD}) VALUES (?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT (app, commit_sha) DO NOTHING RETURNING {_BUILD}",
                (app, commit, str(digest), reference, self._db.to_db_time(self._now()), by),
            )
            if not rows:
                existing = self._db.execute(
                    f"SELECT {_BUILD} FROM builds WHERE app = ? AND commit_sha = ?", (app, commit)
                )
                build = self._build(existing[0])
                if build.digest != digest:
                    raise Conflict(
                        f"commit {commit} of {app} was built as {build.digest}, not {digest}",
                        hint="a commit has one digest per app; a rebuild needs a new commit",
                    )
                return build, False
            build = self._build(rows[0])
            self._touch_app(app)
            self._append_event(
                "build", app=app, by=by, digest=digest, detail={"commit": commit, "reference": reference}
            )
            return build, True

    def get_build(self, app: str, commit: str) -> Build | None:
        rows = self._query(f"SELECT {_BUILD} FROM builds WHERE app = ? AND commit_sha = ?", (app, commit))
        return self._build(rows[0]) if rows else None

    def builds_by_commit_prefix(self, app: str | None, prefix: str, limit: int | None = None) -> list[Build]:
        if not _HEX_PREFIX.match(prefix):
            raise UsageError(f"invalid commit {prefix!r}: expected lower-case hex digits")
        # A range instead of LIKE so both databases use the index; 'g' sorts after every hex digit.
        params: list[object] = [prefix, prefix + "g"]
        sql = f"SELECT {_BUILD} FROM builds WHERE commit_sha >= ? AND commit_sha < ?"
        if app is not None:
            sql += " AND app = ?"
            params.append(app)
        sql = self._limit(sql + " ORDER BY id DESC", params, limit)
        return [self._build(r) for r in self._query(sql, params)]

    def builds_by_digest(self, digest: Digest, app: str | None = None) -> list[Build]:
        params: list[object] = [str(digest)]
        sql = f"SELECT {_BUILD} FROM builds WHERE digest = ?"
        if app is not None:
            sql += " AND app = ?"
            params.append(app)
        return [self._build(r) for r in self._query(sql + " ORDER BY id DESC", params)]

    def list_builds(self, app: str, limit: int | None = None) -> list[Build]:
        params: list[object] = [app]
        sql = self._limit(f"SELECT {_BUILD} FROM builds WHERE app = ? ORDER BY id DESC", params, limit)
        return [self._build(r) for r in self._query(sql, params)]

    def apps(self) -> list[str]:
        return [r[0] for r in self._query("SELECT name FROM apps ORDER BY name")]

    # -- evidence -------------------------------------------------------------------------------

    def record_evidence(
        self,
        app: str,
        *,
        env: str,
        digest: Digest,
        kind: str,
        result: str,
        by: str,
        url: str | None = None,
    ) -> Evidence:
        if result not in EVIDENCE_RESULTS:
            raise UsageError(f"invalid evidence result {result!r}: expected pass or fail")
        with self._write():
            rows = self._db.execute(
                "INSERT INTO evidence (app, env, digest, kind, result, recorded_by, recorded_at, url)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_EVIDENCE}",
                (app, env, str(digest), kind, result, by, self._db.to_db_time(self._now()), url),
            )
            evidence = self._evidence(rows[0])
            self._touch_app(app)
            self._append_event(
                "evidence",
                app=app,
                env=env,
                by=by,
                digest=digest,
                detail={"evidence_id": evidence.id, "kind": kind, "result": result, "url": url},
            )
            return evidence

    def evidence(self, app: str, env: str | None = None, digest: Digest | None = None) -> list[Evidence]:
        params: list[object] = [app]
        sql = f"SELECT {_EVIDENCE} FROM evidence WHERE app = ?"
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        if digest is not None:
            sql += " AND digest = ?"
            params.append(str(digest))
        return [self._evidence(r) for r in self._query(sql + " ORDER BY id DESC", params)]

    # -- promotions -----------------------------------------------------------------------------

    @contextmanager
    def promotion_lock(self, app: str, env: str) -> Iterator[_PromotionTx]:
        with self.promotion_locks([(app, env)]) as txs:
            yield txs[0]

    @contextmanager
    def promotion_locks(self, pairs: Sequence[tuple[str, str]]) -> Iterator[Sequence[_PromotionTx]]:
        # Locks are taken in one sorted order, so two releases sharing apps cannot deadlock.
        with self._write():
            for app, env in sorted(set(pairs)):
                self._db.lock(f"boda:promotion:{app}\0{env}")
            txs = [_PromotionTx(self, app, env) for app, env in pairs]
            try:
                yield txs
            finally:
                for tx in txs:
                    tx.open = False

    def _record_promotion(
        self,
        app: str,
        env: str,
        *,
        digest: Digest,
        commit: str | None,
        reference: str,
        by: str,
        kind: str,
        reason: str | None,
        expected_previous: Digest | None,
    ) -> Promotion:
        if kind not in PROMOTION_KINDS:
            raise UsageError(f"invalid promotion kind {kind!r}: expected promote, rollback or force")
        with self._write():
            head = self.current(app, env)
            previous = head.digest if head is not None else None
            if previous != expected_previous:
                raise Conflict(
                    f"{app} in {env} is now {previous or 'empty'}, not the expected "
                    f"{expected_previous or 'empty'}",
                    hint="another promotion happened meanwhile; check `boda status` and retry",
                )
            rows = self._db.execute(
                "INSERT INTO promotions (app, env, digest, commit_sha, reference, recorded_at,"
                " recorded_by, kind, reason, previous_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" RETURNING {_PROMOTION}",
                (
                    app,
                    env,
                    str(digest),
                    commit,
                    reference,
                    self._db.to_db_time(self._now()),
                    by,
                    kind,
                    reason,
                    str(previous) if previous is not None else None,
                ),
            )
            promotion = self._promotion(rows[0])
            self._db.execute(
                "INSERT INTO heads (app, env, promotion_id, digest) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (app, env) DO UPDATE"
                " SET promotion_id = excluded.promotion_id, digest = excluded.digest",
                (app, env, promotion.id, str(digest)),
            )
            self._touch_app(app)
            self._append_event(
                kind,
                app=app,
                env=env,
                by=by,
                digest=digest,
                reason=reason,
                detail={
                    "promotion_id": promotion.id,
                    "previous_digest": str(previous) if previous is not None else None,
                    "commit": commit,
                    "reference": reference,
                },
            )
            return promotion

    def promotions(self, app: str, env: str | None = None, limit: int | None = None) -> list[Promotion]:
        params: list[object] = [app]
        sql = f"SELECT {_PROMOTION} FROM promotions WHERE app = ?"
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        sql = self._limit(sql + " ORDER BY id DESC", params, limit)
        return [self._promotion(r) for r in self._query(sql, params)]

    def current(self, app: str, env: str) -> Promotion | None:
        rows = self._query(
            f"SELECT {_HEAD_PROMOTION} FROM heads h JOIN promotions p ON p.id = h.promotion_id"
            " WHERE h.app = ? AND h.env = ?",
            (app, env),
        )
        return self._promotion(rows[0]) if rows else None

    def current_all(self, app: str) -> dict[str, Promotion]:
        rows = self._query(
            f"SELECT {_HEAD_PROMOTION} FROM heads h JOIN promotions p ON p.id = h.promotion_id"
            " WHERE h.app = ? ORDER BY h.env",
            (app,),
        )
        return {p.env: p for p in map(self._promotion, rows)}

    def previous_digests(self, app: str, env: str, depth: int) -> list[Digest]:
        return [p.digest for p in self.previous_promotions(app, env, depth)]

    def previous_promotions(self, app: str, env: str, depth: int) -> list[Promotion]:
        """Walks the history backwards in pages and stops as soon as `depth` digests are found."""
        head = self.current(app, env)
        if head is None or depth <= 0:
            return []
        seen = {str(head.digest)}
        found: list[Promotion] = []
        before = head.id
        page = max(32, depth * 4)
        while True:
            rows = self._query(
                f"SELECT {_PROMOTION} FROM promotions WHERE app = ? AND env = ? AND id < ?"
                " ORDER BY id DESC LIMIT ?",
                (app, env, before, page),
            )
            for row in rows:
                if row[3] not in seen:
                    seen.add(row[3])
                    found.append(self._promotion(row))
                    if len(found) == depth:
                        return found
            if len(rows) < page:
                return found
            before = rows[-1][0]

    def environments_with(self, digest: Digest, app: str | None = None) -> list[Promotion]:
        params: list[object] = [str(digest)]
        sql = (
            f"SELECT {_HEAD_PROMOTION} FROM heads h JOIN promotions p ON p.id = h.promotion_id"
            " WHERE h.digest = ?"
        )
        if app is not None:
            sql += " AND h.app = ?"
            params.append(app)
        return [self._promotion(r) for r in self._query(sql + " ORDER BY h.app, h.env", params)]

    def promotions_of(
        self, digest: Digest, app: str | None = None, env: str | None = None
    ) -> list[Promotion]:
        params: list[object] = [str(digest)]
        sql = f"SELECT {_PROMOTION} FROM promotions WHERE digest = ?"
        if app is not None:
            sql += " AND app = ?"
            params.append(app)
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        return [self._promotion(r) for r in self._query(sql + " ORDER BY id DESC", params)]

    # -- pins -----------------------------------------------------------------------------------

    def pin(self, app: str, digest: Digest, *, reason: str, by: str) -> tuple[Pin, bool]:
        with self._write():
            rows = self._db.execute(
                f"INSERT INTO pins ({_PIN}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (app, digest) DO NOTHING"
                f" RETURNING {_PIN}",
                (app, str(digest), reason, by, self._db.to_db_time(self._now())),
            )
            if not rows:
                existing = self._db.execute(
                    f"SELECT {_PIN} FROM pins WHERE app = ? AND digest = ?", (app, str(digest))
                )
                return self._pin(existing[0]), False
            self._touch_app(app)
            self._append_event("pin", app=app, by=by, digest=digest, reason=reason)
            return self._pin(rows[0]), True

    def unpin(self, app: str, digest: Digest, *, by: str) -> Pin:
        with self._write():
            rows = self._db.execute(
                f"DELETE FROM pins WHERE app = ? AND digest = ? RETURNING {_PIN}", (app, str(digest))
            )
            if not rows:
                raise NotFound(f"{digest} is not pinned in {app}")
            pin = self._pin(rows[0])
            self._append_event("unpin", app=app, by=by, digest=digest, detail={"pin_reason": pin.reason})
            return pin

    def pins(self, app: str) -> list[Pin]:
        rows = self._query(f"SELECT {_PIN} FROM pins WHERE app = ? ORDER BY recorded_at DESC, digest", (app,))
        return [self._pin(r) for r in rows]

    # -- events ---------------------------------------------------------------------------------

    def _append_event(
        self,
        action: str,
        *,
        app: str,
        by: str,
        env: str | None = None,
        digest: Digest | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Event:
        rows = self._db.execute(
            "INSERT INTO events (recorded_at, recorded_by, action, app, env, digest, reason, detail)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_EVENT}",
            (
                self._db.to_db_time(self._now()),
                by,
                action,
                app,
                env,
                str(digest) if digest is not None else None,
                reason,
                json.dumps(dict(detail or {}), sort_keys=True, default=str),
            ),
        )
        return self._event(rows[0])

    def record_event(
        self,
        action: str,
        *,
        app: str,
        by: str,
        env: str | None = None,
        digest: Digest | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Event:
        with self._write():
            return self._append_event(
                action, app=app, by=by, env=env, digest=digest, reason=reason, detail=detail
            )

    def events(self, app: str | None = None, limit: int | None = None) -> list[Event]:
        params: list[object] = []
        sql = f"SELECT {_EVENT} FROM events"
        if app is not None:
            sql += " WHERE app = ?"
            params.append(app)
        sql = self._limit(sql + " ORDER BY id DESC", params, limit)
        return [self._event(r) for r in self._query(sql, params)]

    # -- lifecycle ------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version of the database (0 before the first migration)."""
        with self._mutex:
            try:
                return _schema_version(self._db)
            except self._db.errors as exc:
                raise self._db.error(exc) from None

    def close(self) -> None:
        with self._mutex:
            try:
                self._db.close()
            except self._db.errors as exc:
                raise self._db.error(exc) from None

    def __enter__(self) -> SqlLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- migrations ---------------------------------------------------------------------------------


def migrations(dialect: str) -> list[tuple[int, str, Path]]:
    """(version, name, file) of every migration for `dialect`, oldest first.

    `NNNN_name.sql` serves every dialect; `NNNN_name.<dialect>.sql` serves one.
    """
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


def _schema_version(db: Dialect) -> int:
    if not db.table_exists("schema_version"):
        return 0
    rows = db.execute("SELECT MAX(version) FROM schema_version")
    return int(rows[0][0] or 0)


def _too_new(db: Dialect, version: int, latest: int) -> LedgerError:
    return LedgerError(
        f"ledger {db.url} has schema version {version}, newer than version {latest} this boda knows",
        hint="upgrade boda; an older boda must not write to a newer ledger",
    )


def open_migrated(db: Dialect, clock: Clock | None = None) -> SqlLedger:
    """Migrate a freshly opened database and wrap it; the connection is closed if that fails."""
    try:
        migrate(db, clock)
    except BaseException:
        db.close()
        raise
    return SqlLedger(db, clock)


def migrate(db: Dialect, clock: Clock | None = None) -> None:
    """Bring the schema to the latest version; safe when many processes do it at once."""
    steps = migrations(db.name)
    latest = steps[-1][0] if steps else 0
    now = (clock or _utc_now)().astimezone(UTC)
    try:
        version = _schema_version(db)
        if version == latest:
            return
        if version > latest:
            raise _too_new(db, version, latest)
        db.begin_write()
        try:
            db.lock("boda:migrate")
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                f" name TEXT NOT NULL, applied_at {db.timestamp_type} NOT NULL)"
            )
            version = _schema_version(db)  # another process may have migrated meanwhile
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
        ) from None
