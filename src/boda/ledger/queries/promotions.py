"""Promotions: which digest is current in each (app, env), as a compare-and-set history.

A promotion is recorded only if the environment still holds `expected_previous`, in one short
transaction that also moves the head, appends the event and closes the intent (if any). Several
promotions (a release) can be recorded all or none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from boda.errors import Conflict, UsageError
from boda.ledger.base import Ledger
from boda.ledger.dialect import Dialect, Row
from boda.ledger.queries import PAGE_SIZE, Queries, limited, newest_first
from boda.ledger.queries.apps import touch_app
from boda.ledger.queries.events import append_event
from boda.ledger.records import PROMOTION_KINDS, Event, Intent, NewEvent, NewPromotion, Promotion
from boda.ledger.text import check_text
from boda.types import Digest

PROMOTION_COLUMNS = (
    "id, app, env, digest, commit_sha, reference, recorded_at, recorded_by, kind, reason, previous_digest"
)
_HEAD_COLUMNS = ", ".join(f"p.{c.strip()}" for c in PROMOTION_COLUMNS.split(","))
_HEADS = f"SELECT {_HEAD_COLUMNS} FROM heads h JOIN promotions p ON p.id = h.promotion_id"


def decode_promotion(db: Dialect, row: Row) -> Promotion:
    return Promotion(
        id=int(row[0]),
        app=row[1],
        env=row[2],
        digest=Digest.parse(row[3]),
        commit=row[4],
        reference=row[5],
        at=db.from_db_time(row[6]),
        by=row[7],
        kind=row[8],
        reason=row[9],
        previous_digest=Digest.parse(row[10]) if row[10] is not None else None,
    )


def check_promotion(new: NewPromotion) -> None:
    """UsageError if `new` is not a promotion the ledger can store."""
    if new.kind not in PROMOTION_KINDS:
        raise UsageError(f"invalid promotion kind {new.kind!r}: expected promote, rollback or force")
    for what, value in (
        ("app", new.app),
        ("env", new.env),
        ("commit", new.commit),
        ("reference", new.reference),
        ("by", new.by),
        ("reason", new.reason),
    ):
        check_text(value, what)


def _closing(news: Sequence[NewPromotion], intents: Sequence[Intent | int]) -> list[Intent | int | None]:
    """For each promotion, the intent its event closes: the one of the same app (and env)."""
    if not intents:
        return [None] * len(news)
    if len(news) == 1 and len(intents) == 1:
        return [intents[0]]
    out: list[Intent | int | None] = [None] * len(news)
    for intent in intents:
        if not isinstance(intent, Intent):
            raise UsageError("a release closes intents given as Intent records (their app says which)")
        matches = [i for i, n in enumerate(news) if n.app == intent.app and intent.env in (None, n.env)]
        if len(matches) != 1 or out[matches[0]] is not None:
            raise UsageError(f"intent {intent.id} ({intent.app}) matches no single promotion of this release")
        out[matches[0]] = intent
    return out


class PromotionQueries(Queries):
    def record_promotion(self, new: NewPromotion, *, intent: Intent | int | None = None) -> Promotion:
        """Append a promotion; Conflict unless (app, env) is still at `new.expected_previous`.

        With `intent`, that open intent is closed in the same transaction.
        """
        return self.record_promotions([new], intents=() if intent is None else [intent])[0]

    def record_promotions(
        self, news: Sequence[NewPromotion], *, intents: Sequence[Intent | int] = ()
    ) -> list[Promotion]:
        """Record several promotions (a release) in one transaction: all, or none if any one's
        compare-and-set fails. Each intent is closed by the promotion of its app (and env)."""
        for new in news:
            check_promotion(new)
        pairs = [(n.app, n.env) for n in news]
        if len(set(pairs)) != len(pairs):
            raise UsageError("a release records one promotion per app and environment")
        closing = _closing(news, intents)
        with self._tx.write() as db:
            for app, env in sorted(pairs):  # one order: two releases never deadlock
                db.lock_in_transaction(f"boda:promotion:{app}\0{env}")
            now = self._tx.now()
            recorded = []
            for new, intent in zip(news, closing, strict=True):
                head = db.execute(f"{_HEADS} WHERE h.app = ? AND h.env = ?", (new.app, new.env))
                previous = decode_promotion(db, head[0]).digest if head else None
                if previous != new.expected_previous:
                    raise Conflict(
                        f"{new.app} in {new.env} is now {previous or 'empty'}, not the expected "
                        f"{new.expected_previous or 'empty'}",
                        hint="another promotion happened meanwhile; check `boda status` and retry",
                    )
                recorded.append(_insert(db, now, new, previous, intent))
            return recorded

    def promotions(self, app: str, env: str | None = None, limit: int | None = None) -> list[Promotion]:
        params: list[object] = [app]
        sql = f"SELECT {PROMOTION_COLUMNS} FROM promotions WHERE app = ?"
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        sql = limited(sql + " ORDER BY id DESC", params, limit)
        return [decode_promotion(self._tx.db, r) for r in self._tx.read(sql, params)]

    def iter_promotions(
        self, app: str, env: str | None = None, *, before: int | None = None, page_size: int = PAGE_SIZE
    ) -> Iterator[Promotion]:
        """Every promotion of `app` (in `env`), newest first, read in pages of `page_size` by id:
        memory stays bounded however long the history. `before` starts below that promotion id."""
        conditions, params = " AND app = ?", [app]
        if env is not None:
            conditions, params = " AND app = ? AND env = ?", [app, env]
        for row in newest_first(
            self._tx,
            f"SELECT {PROMOTION_COLUMNS} FROM promotions",
            conditions,
            params,
            before=before,
            page_size=page_size,
        ):
            yield decode_promotion(self._tx.db, row)

    def current(self, app: str, env: str) -> Promotion | None:
        rows = self._tx.read(f"{_HEADS} WHERE h.app = ? AND h.env = ?", (app, env))
        return decode_promotion(self._tx.db, rows[0]) if rows else None

    def current_all(self, app: str) -> dict[str, Promotion]:
        """The current promotion of every environment the app was ever promoted to."""
        rows = self._tx.read(f"{_HEADS} WHERE h.app = ? ORDER BY h.env", (app,))
        return {p.env: p for p in (decode_promotion(self._tx.db, r) for r in rows)}

    def previous_digests(self, app: str, env: str, depth: int) -> list[Digest]:
        """Up to `depth` distinct digests current in (app, env) before the current one, newest first.

        The current digest itself is never in the list (a rollback to it would change nothing).
        """
        return [p.digest for p in self.previous_promotions(app, env, depth)]

    def previous_promotions(self, app: str, env: str, depth: int) -> list[Promotion]:
        """For each of `previous_digests(app, env, depth)`, the last promotion that made it current.

        Walks the history backwards in pages and stops as soon as `depth` digests are found.
        """
        head = self.current(app, env)
        if head is None or depth <= 0:
            return []
        seen = {str(head.digest)}
        found: list[Promotion] = []
        for row in newest_first(
            self._tx,
            f"SELECT {PROMOTION_COLUMNS} FROM promotions",
            " AND app = ? AND env = ?",
            [app, env],
            before=head.id,
            page_size=max(32, depth * 4),
        ):
            if row[3] not in seen:
                seen.add(row[3])
                found.append(decode_promotion(self._tx.db, row))
                if len(found) == depth:
                    break
        return found

    def environments_with(self, digest: Digest, app: str | None = None) -> list[Promotion]:
        """The current promotions whose digest is `digest`: where it runs now."""
        params: list[object] = [str(digest)]
        sql = f"{_HEADS} WHERE h.digest = ?"
        if app is not None:
            sql += " AND h.app = ?"
            params.append(app)
        return [
            decode_promotion(self._tx.db, r) for r in self._tx.read(sql + " ORDER BY h.app, h.env", params)
        ]

    def promotions_of(
        self, digest: Digest, app: str | None = None, env: str | None = None
    ) -> list[Promotion]:
        """Every promotion of `digest` (of `app`, in `env`), newest first: where it ran."""
        params: list[object] = [str(digest)]
        sql = f"SELECT {PROMOTION_COLUMNS} FROM promotions WHERE digest = ?"
        if app is not None:
            sql += " AND app = ?"
            params.append(app)
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        return [decode_promotion(self._tx.db, r) for r in self._tx.read(sql + " ORDER BY id DESC", params)]


def _insert(
    db: Dialect, now: datetime, new: NewPromotion, previous: Digest | None, intent: Intent | int | None
) -> Promotion:
    """Append the promotion, move the head, remember the app, append the event (closing `intent`)."""
    rows = db.execute(
        "INSERT INTO promotions (app, env, digest, commit_sha, reference, recorded_at,"
        " recorded_by, kind, reason, previous_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        f" RETURNING {PROMOTION_COLUMNS}",
        (
            new.app,
            new.env,
            str(new.digest),
            new.commit,
            new.reference,
            db.to_db_time(now),
            new.by,
            new.kind,
            new.reason,
            str(previous) if previous is not None else None,
        ),
    )
    promotion = decode_promotion(db, rows[0])
    db.execute(
        "INSERT INTO heads (app, env, promotion_id, digest) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (app, env) DO UPDATE"
        " SET promotion_id = excluded.promotion_id, digest = excluded.digest",
        (new.app, new.env, promotion.id, str(new.digest)),
    )
    touch_app(db, new.app)
    append_event(
        db,
        now,
        NewEvent(
            new.kind,
            new.app,
            new.by,
            new.env,
            new.digest,
            new.reason,
            {
                "promotion_id": promotion.id,
                "previous_digest": str(previous) if previous is not None else None,
                "commit": new.commit,
                "reference": new.reference,
            },
        ),
        closes=intent,
    )
    return promotion


class EnvironmentView:
    """One (app, env) while `Ledger.promotion_locks` holds its app's lock: reads, and records each
    in a short transaction of its own (committed at once; an exception later undoes nothing, since
    the registry write it records has happened). Valid only inside its `with` block."""

    def __init__(self, ledger: Ledger, app: str, env: str) -> None:
        self.app = app
        self.env = env
        self._ledger = ledger
        self.open = True

    def _check(self) -> Ledger:
        if not self.open:
            raise RuntimeError("promotion lock view used after its `with` block ended")
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
        intent: Intent | int | None = None,
    ) -> Promotion:
        """`Ledger.record_promotion` of a NewPromotion for the locked (app, env)."""
        new = NewPromotion(self.app, self.env, digest, commit, reference, by, kind, reason, expected_previous)
        return self._check().record_promotion(new, intent=intent)

    def record_event(
        self,
        action: str,
        *,
        by: str,
        digest: Digest | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
        intent: Intent | int | None = None,
    ) -> Event:
        """`Ledger.record_event` about the locked (app, env)."""
        return self._check().record_event(
            action,
            app=self.app,
            env=self.env,
            by=by,
            digest=digest,
            reason=reason,
            detail=detail,
            intent=intent,
        )
