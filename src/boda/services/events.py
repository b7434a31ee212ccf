"""The event log: every build, promotion, evidence, pin, expiry, claim and repair, newest first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from boda.errors import UsageError
from boda.services.context import Context

if TYPE_CHECKING:
    from boda.ledger import Event


def event_json(event: Event) -> dict[str, Any]:
    """The JSON shape of one event."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "by": event.by,
        "action": event.action,
        "app": event.app,
        "env": event.env,
        "digest": str(event.digest) if event.digest else None,
        "reason": event.reason,
        "detail": dict(event.detail),
    }


@dataclass(frozen=True)
class EventLog:
    """`boda events`: read lazily, newest first, in bounded memory."""

    app: str | None
    entries: Iterator[Event]

    def to_json(self) -> dict[str, Any]:
        """JSON form (reads every entry)."""
        return {"app": self.app, "events": [event_json(e) for e in self.entries]}


def events(
    ctx: Context, app: str | None = None, *, limit: int | None = None, actions: tuple[str, ...] = ()
) -> EventLog:
    """The event log of `app` (or of every app), newest first; `actions` keeps only those kinds."""
    if app is not None:
        ctx.require_app(app)
    if limit is not None and limit < 1:
        raise UsageError("the limit must be at least 1")

    entries = ctx.ledger.iter_events(app, actions=actions)
    return EventLog(app, islice(entries, limit) if limit is not None else entries)
