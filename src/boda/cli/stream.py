"""Output written as it is produced: a JSON document whose one array streams, JSON Lines, and a
text table whose column widths come from its first rows (paged on a terminal).

Nothing here holds more than one batch of rows: `boda history` of a busy app starts printing at
once and its memory stays bounded however long the history is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import click

from boda.cli.render import printable

#: Rows written per write (and the rows the text table measures its columns on).
BATCH = 1000


def _compact() -> Callable[[Any], str]:
    try:
        import orjson
    except ImportError:
        return lambda data: json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return lambda data: orjson.dumps(data).decode()


def _batches(items: Iterable[Any]) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def json_document(head: dict[str, Any], key: str, items: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The text of `{**head, key: [items...]}` as one valid JSON document, an item per line."""
    compact = _compact()
    opening = json.dumps(head, indent=2, ensure_ascii=False)[:-2] if head else "{"
    yield f"{opening}{',' if head else ''}\n  {json.dumps(key)}: ["
    first = True
    for batch in _batches(items):
        lines = ",\n    ".join(compact(item) for item in batch)
        yield ("\n    " if first else ",\n    ") + lines
        first = False
    yield "\n  ]\n}\n" if not first else "]\n}\n"


def json_lines(items: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per line."""
    compact = _compact()
    for batch in _batches(items):
        yield "".join(compact(item) + "\n" for item in batch)


def text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """An aligned table, streamed: widths are measured on the first BATCH rows; a later, longer
    cell widens its own line only."""
    batches = _batches(rows)
    first = next(batches, [])
    cells = [[printable("" if c is None else str(c)) for c in row] for row in first]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"

    yield line(list(headers)) + "  ".join("-" * w for w in widths) + "\n" + "".join(line(r) for r in cells)
    for batch in batches:
        yield "".join(line([printable("" if c is None else str(c)) for c in row]) for row in batch)


def write(chunks: Iterable[str], *, pager: bool | None = None) -> None:
    """Write `chunks` to stdout as they come; through $PAGER (click's pager) when `pager` is True,
    or when it is None and stdout is a terminal. Never pages when stdout is not a terminal."""
    if pager is None:
        pager = sys.stdout.isatty()
    if pager:
        click.echo_via_pager(chunks)
        return
    for chunk in chunks:
        click.echo(chunk, nl=False)
