"""Events: the append-only audit log every change writes to."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from boda.ledger.dialect import Dialect, Row
from boda.ledger.queries import Queries, limited
from boda.ledger.records import Event, NewEvent
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


def append_event(
    db: Dialect,
    at: datetime,
    new: NewEvent,
) -> Event:
    """Append `new` inside the open transaction."""
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
    return decode_event(db, rows[0])


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
    ) -> Event:
        """Append an event."""
        new = NewEvent(action, app, by, env, digest, reason, dict(detail or {}))
        with self._tx.write() as db:
            return append_event(db, self._tx.now(), new)

    def events(self, app: str | None = None, limit: int | None = None) -> list[Event]:
        params: list[object] = []
        sql = f"SELECT {EVENT_COLUMNS} FROM events"
        if app is not None:
            sql += " WHERE app = ?"
            params.append(app)
        sql = limited(sql + " ORDER BY id DESC", params, limit)
        return [decode_event(self._tx.db, r) for r in self._tx.read(sql, params)]
