"""Apps: every app with a build, evidence, promotion or pin (events, intents and repository
claims alone make no app known: expiry needs an app's history)."""

from __future__ import annotations

from boda.ledger.dialect import Dialect
from boda.ledger.queries import Queries


def touch_app(db: Dialect, app: str) -> None:
    """Remember `app` (inside the transaction that records a fact about it)."""
    db.execute("INSERT INTO apps (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (app,))


class AppQueries(Queries):
    def apps(self) -> list[str]:
        """Every app with a build, evidence, promotion or pin recorded, sorted by name."""
        return [r[0] for r in self._tx.read("SELECT name FROM apps ORDER BY name")]
