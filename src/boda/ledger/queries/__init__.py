"""The ledger's queries, one module per kind of record, each a mixin of `store.SqlLedger`.

Every module writes its SQL once, with `?` placeholders, for both databases. Writes check their
text (`ledger.text`) before the first statement, run in one short transaction, and append the
event that says what changed in that same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from boda.ledger.dialect import Row
from boda.ledger.transaction import Transactions

# Streaming reads fetch this many rows per query: memory stays bounded however long the history.
PAGE_SIZE = 1000


class Queries:
    """What every group of queries works on: the ledger's connection and its transactions."""

    _tx: Transactions


def limited(sql: str, params: list[object], limit: int | None) -> str:
    """`sql` with a LIMIT when `limit` is given (its value appended to `params`)."""
    if limit is None:
        return sql
    params.append(max(limit, 0))
    return f"{sql} LIMIT ?"


# Larger than any id either database hands out (both use signed 64-bit ids).
_NO_ID_ABOVE = 2**63 - 1


def newest_first(
    tx: Transactions,
    select: str,
    conditions: str,
    params: Sequence[object],
    *,
    before: int | None,
    page_size: int,
) -> Iterator[Row]:
    """The rows of `select` (whose first column is `id`) matching `conditions` (` AND ...` or ""),
    newest first, one page of `page_size` rows per query; `before` starts below that id."""
    size = max(page_size, 1)
    below = before if before is not None else _NO_ID_ABOVE
    while True:
        rows = tx.read(f"{select} WHERE id < ?{conditions} ORDER BY id DESC LIMIT ?", [below, *params, size])
        yield from rows
        if len(rows) < size:
            return
        below = int(rows[-1][0])
