"""`boda history` as a stream: promotions newest first, read from the ledger a page at a time, so
a history of any length starts printing at once and stays within bounded memory.

Everything that can be refused (an unknown app or environment) is checked before the first entry;
a ledger that fails midway raises from the iteration (the output so far is then incomplete, and
the command's exit status says so).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from boda.services.context import Context

if TYPE_CHECKING:
    from boda.ledger.base import Promotion

#: Promotions read per ledger query.
PAGE_SIZE = 1000


def entry_json(p: Promotion) -> dict[str, Any]:
    """One history entry as JSON (the shape of `boda history --json` entries)."""
    return {
        "env": p.env,
        "digest": str(p.digest),
        "commit": p.commit,
        "at": p.at.isoformat(),
        "by": p.by,
        "kind": p.kind,
        "reason": p.reason,
    }


@dataclass(frozen=True)
class HistoryStream:
    """The history of one app: `entries` is read lazily, once."""

    app: str
    env: str | None
    entries: Iterator[Promotion]


def stream_history(
    ctx: Context, app: str, env: str | None = None, *, limit: int | None = None, page_size: int = PAGE_SIZE
) -> HistoryStream:
    """Every promotion and rollback of `app` (in `env`), newest first; all of them unless `limit`.
    The app and environment are checked now; the entries are read as they are consumed."""
    ctx.require_app(app)
    if env is not None:
        ctx.config.environment(env)
    size = min(page_size, limit) if limit is not None else page_size
    entries = ctx.ledger.iter_promotions(app, env, page_size=size)
    return HistoryStream(app, env, islice(entries, limit) if limit is not None else entries)
