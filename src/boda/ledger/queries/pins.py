"""Pins: digests protected from expiry by hand (the one fact that is removed, with an event)."""

from __future__ import annotations

from boda.errors import NotFound
from boda.ledger.dialect import Dialect, Row
from boda.ledger.queries import Queries
from boda.ledger.queries.apps import touch_app
from boda.ledger.queries.events import append_event
from boda.ledger.records import NewEvent, Pin
from boda.ledger.text import check_text
from boda.types import Digest

PIN_COLUMNS = "app, digest, reason, recorded_by, recorded_at"


def decode_pin(db: Dialect, row: Row) -> Pin:
    return Pin(row[0], Digest.parse(row[1]), row[2], row[3], db.from_db_time(row[4]))


class PinQueries(Queries):
    def pin(self, app: str, digest: Digest, *, reason: str, by: str) -> tuple[Pin, bool]:
        """Pin a digest; (existing pin, False) when it already is."""
        for what, value in (("app", app), ("reason", reason), ("by", by)):
            check_text(value, what)
        with self._tx.write() as db:
            now = self._tx.now()
            rows = db.execute(
                f"INSERT INTO pins ({PIN_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
                f" ON CONFLICT (app, digest) DO NOTHING RETURNING {PIN_COLUMNS}",
                (app, str(digest), reason, by, db.to_db_time(now)),
            )
            if not rows:
                existing = db.execute(
                    f"SELECT {PIN_COLUMNS} FROM pins WHERE app = ? AND digest = ?", (app, str(digest))
                )
                return decode_pin(db, existing[0]), False
            touch_app(db, app)
            append_event(db, now, NewEvent("pin", app, by, digest=digest, reason=reason))
            return decode_pin(db, rows[0]), True

    def unpin(self, app: str, digest: Digest, *, by: str) -> Pin:
        """Remove a pin and return it; NotFound when the digest is not pinned."""
        check_text(by, "by")
        with self._tx.write() as db:
            rows = db.execute(
                f"DELETE FROM pins WHERE app = ? AND digest = ? RETURNING {PIN_COLUMNS}", (app, str(digest))
            )
            if not rows:
                raise NotFound(f"{digest} is not pinned in {app}")
            pin = decode_pin(db, rows[0])
            append_event(
                db,
                self._tx.now(),
                NewEvent("unpin", app, by, digest=digest, detail={"pin_reason": pin.reason}),
            )
            return pin

    def pins(self, app: str) -> list[Pin]:
        rows = self._tx.read(
            f"SELECT {PIN_COLUMNS} FROM pins WHERE app = ? ORDER BY recorded_at DESC, digest", (app,)
        )
        return [decode_pin(self._tx.db, r) for r in rows]
