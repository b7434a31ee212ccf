"""Events: the append-only audit log every change writes to, and how an event closes an intent."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any

from boda.errors import Conflict, NotFound, UsageError
from boda.ledger.dialect import Dialect, Row
from boda.ledger.queries import PAGE_SIZE, Queries, limited, newest_first
from boda.ledger.records import Event, Intent, NewEvent
from boda.ledger.text import check_detail, check_text
from boda.types import Digest

EVENT_COLUMNS = "id, recorded_at, recorded_by, action, app, env, digest, reason, detail"


def decode_event(db: Dialect, row: Row) -> Event:
    return Event(
        id=int(row[0]),
        at=db.from_db_time(row[1]),
        by=row[2],
        action=row[3],
        app=row[4],
        env=row[5],
        digest=Digest.parse(row[6]) if row[6] is not None else None,
        reason=row[7],
        detail=db.from_db_json(row[8]),
    )


def check_event(new: NewEvent) -> None:
    """UsageError if the ledger could not store `new`."""
    for what, value in (("action", new.action), ("app", new.app), ("by", new.by), ("env", new.env)):
        check_text(value, what)
    check_text(new.reason, "reason")
    check_detail(dict(new.detail))


def intent_id(intent: Intent | int) -> int:
    return intent.id if isinstance(intent, Intent) else int(intent)


def append_event(
    db: Dialect,
    at: datetime,
    new: NewEvent,
    *,
    closes: Intent | int | None = None,
    resolution: str = "done",
    reason: str | None = None,
) -> Event:
    """Append `new` inside the open transaction; with `closes`, close that open intent of the same
    app by this event (Conflict if it is closed already, so the fact is not recorded twice)."""
    rows = db.execute(
        "INSERT INTO events (recorded_at, recorded_by, action, app, env, digest, reason, detail)"
        f" VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {EVENT_COLUMNS}",
        (
            db.to_db_time(at),
            new.by,
            new.action,
            new.app,
            new.env,
            str(new.digest) if new.digest is not None else None,
            new.reason,
            json.dumps(dict(new.detail), sort_keys=True, default=str),
        ),
    )
    event = decode_event(db, rows[0])
    if closes is not None:
        _close_intent(
            db,
            intent_id(closes),
            app=new.app,
            by=new.by,
            at=at,
            event=event.id,
            resolution=resolution,
            reason=reason,
        )
    return event


def _close_intent(
    db: Dialect,
    number: int,
    *,
    app: str,
    by: str,
    at: datetime,
    event: int,
    resolution: str,
    reason: str | None,
) -> None:
    closed = db.execute(
        "UPDATE intents SET closed_at = ?, closed_by = ?, resolution = ?, reason = ?, event_id = ?"
        " WHERE id = ? AND app = ? AND closed_at IS NULL RETURNING id",
        (db.to_db_time(at), by, resolution, reason, event, number, app),
    )
    if closed:
        return
    found = db.execute("SELECT app, resolution, closed_by FROM intents WHERE id = ?", (number,))
    if not found:
        raise NotFound(f"no intent {number} in the ledger")
    owner, done_as, done_by = found[0]
    if owner != app:
        raise UsageError(f"intent {number} is about {owner}, not {app}")
    raise Conflict(
        f"intent {number} was already closed ({done_as}, by {done_by}); nothing recorded twice",
        hint="another command (boda repair?) resolved it meanwhile; check `boda events`",
    )


class EventQueries(Queries):
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
        intent: Intent | int | None = None,
    ) -> Event:
        """Append an event; with `intent`, close that open intent in the same transaction."""
        new = NewEvent(action, app, by, env, digest, reason, dict(detail or {}))
        check_event(new)
        with self._tx.write() as db:
            return append_event(db, self._tx.now(), new, closes=intent)

    def events(
        self, app: str | None = None, limit: int | None = None, *, actions: Collection[str] = ()
    ) -> list[Event]:
        conditions, params = _filters(app, actions)
        where = f" WHERE {conditions.removeprefix(' AND ')}" if conditions else ""
        sql = f"SELECT {EVENT_COLUMNS} FROM events{where}"
        sql = limited(sql + " ORDER BY id DESC", params, limit)
        return [decode_event(self._tx.db, r) for r in self._tx.read(sql, params)]

    def iter_events(
        self,
        app: str | None = None,
        *,
        actions: Collection[str] = (),
        before: int | None = None,
        page_size: int = PAGE_SIZE,
    ) -> Iterator[Event]:
        """Every event (of `app`; of those `actions`), newest first, read in pages of `page_size`
        by id: memory stays bounded however long the log. `before` starts below that event id (to
        resume a listing)."""
        conditions, params = _filters(app, actions)
        for row in newest_first(
            self._tx,
            f"SELECT {EVENT_COLUMNS} FROM events",
            conditions,
            params,
            before=before,
            page_size=page_size,
        ):
            yield decode_event(self._tx.db, row)


def _filters(app: str | None, actions: Collection[str]) -> tuple[str, list[object]]:
    """SQL conditions (` AND …`, or "") and their parameters for an app and a set of actions."""
    conditions = ""
    params: list[object] = []
    if app is not None:
        conditions += " AND app = ?"
        params.append(app)
    if actions:
        wanted = sorted(set(actions))
        conditions += f" AND action IN ({', '.join('?' * len(wanted))})"
        params += wanted
    return conditions, params
