"""Intents: a registry write announced (and committed) before it is made, closed by the fact it
produces in that fact's own transaction, or resolved by `boda repair`.

    intent = ledger.begin_intent("promote", app, env="prd", digest=d, by=actor, detail={...})
    ...  # the registry write
    ledger.record_promotion(new, intent=intent)   # the promotion and the intent's closing: one commit

A process killed between the two leaves the intent open: the ledger knows what may have happened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from boda.errors import NotFound, UsageError
from boda.ledger.dialect import Dialect, Row
from boda.ledger.queries import Queries
from boda.ledger.queries.events import append_event, check_event, intent_id
from boda.ledger.records import INTENT_RESOLUTIONS, Event, Intent, NewEvent
from boda.ledger.text import check_detail, check_text
from boda.types import Digest

INTENT_COLUMNS = (
    "id, action, app, env, digest, opened_by, opened_at, detail, closed_at, closed_by, resolution, reason"
)


def decode_intent(db: Dialect, row: Row) -> Intent:
    return Intent(
        id=int(row[0]),
        action=row[1],
        app=row[2],
        env=row[3],
        digest=Digest.parse(row[4]) if row[4] is not None else None,
        by=row[5],
        at=db.from_db_time(row[6]),
        detail=db.from_db_json(row[7]),
        closed_at=db.from_db_time(row[8]) if row[8] is not None else None,
        closed_by=row[9],
        resolution=row[10],
        reason=row[11],
    )


class IntentQueries(Queries):
    def begin_intent(
        self,
        action: str,
        app: str,
        *,
        by: str,
        env: str | None = None,
        digest: Digest | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Intent:
        """Record, and commit at once, that a registry write of `action` is about to happen.

        Call it holding the app's lock, right before the write: it also proves the ledger can
        write now (a ledger that cannot raises LedgerError before the registry changes).
        """
        for what, value in (("action", action), ("app", app), ("by", by), ("env", env)):
            check_text(value, what)
        check_detail(dict(detail or {}))
        with self._tx.write() as db:
            rows = db.execute(
                "INSERT INTO intents (action, app, env, digest, opened_by, opened_at, detail)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {INTENT_COLUMNS}",
                (
                    action,
                    app,
                    env,
                    str(digest) if digest is not None else None,
                    by,
                    db.to_db_time(self._tx.now()),
                    json.dumps(dict(detail or {}), sort_keys=True, default=str),
                ),
            )
            return decode_intent(db, rows[0])

    def get_intent(self, number: int) -> Intent | None:
        rows = self._tx.read(f"SELECT {INTENT_COLUMNS} FROM intents WHERE id = ?", (number,))
        return decode_intent(self._tx.db, rows[0]) if rows else None

    def open_intents(self, app: str | None = None) -> list[Intent]:
        """Intents neither completed nor resolved (of `app`), newest first."""
        params: list[object] = []
        sql = f"SELECT {INTENT_COLUMNS} FROM intents WHERE closed_at IS NULL"
        if app is not None:
            sql += " AND app = ?"
            params.append(app)
        return [decode_intent(self._tx.db, r) for r in self._tx.read(sql + " ORDER BY id DESC", params)]

    def resolve_intent(
        self,
        intent: Intent | int,
        *,
        resolution: str,
        by: str,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Event:
        """Close an open intent as `resolution` (done, undone or abandoned) and append the event
        `resolve` that says so. NotFound for no such intent; Conflict if it is closed already."""
        if resolution not in INTENT_RESOLUTIONS:
            raise UsageError(f"invalid intent resolution {resolution!r}: expected done, undone or abandoned")
        number = intent_id(intent)
        found = self.get_intent(number)
        if found is None:
            raise NotFound(f"no intent {number} in the ledger")
        new = NewEvent(
            "resolve",
            found.app,
            by,
            found.env,
            found.digest,
            reason,
            {
                **dict(detail or {}),
                "intent_id": number,
                "intent_action": found.action,
                "resolution": resolution,
                "intent_detail": dict(found.detail),
            },
        )
        check_event(new)
        with self._tx.write() as db:
            return append_event(db, self._tx.now(), new, closes=number, resolution=resolution, reason=reason)
