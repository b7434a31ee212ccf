"""Output: data on stdout (JSON with --json), everything else on stderr."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from boda.types import CONTROL_CHARACTERS


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    """Print `data` as JSON, or as text made by `text` (JSON when there is no text form)."""
    if as_json or text is None:
        click.echo(dumps(data))
    else:
        out = text(data)
        if out:
            click.echo(printable_lines(out))


def dumps(data: Any) -> str:
    """Indented JSON; orjson when installed (the `fast` extra): 15x faster on a million-image preview."""
    try:
        import orjson
    except ImportError:
        return json.dumps(data, indent=2)
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def printable(text: str) -> str:
    """`text` with control characters (newlines, ESC, bidi overrides) shown as escapes, so that what
    a user typed can neither forge a row of a table nor rewrite the terminal."""
    return CONTROL_CHARACTERS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def printable_lines(text: str) -> str:
    """`text` made printable line by line, its line breaks kept: the last guard of every text
    output. A field that may hold a line break of its own (a reason, a name, a registry's answer)
    is made printable where it is put into a line, so that it cannot start a line of its own."""
    return "\n".join(printable(line) for line in text.split("\n"))


def note(message: str) -> None:
    """A message for the person at the terminal (stderr), made printable."""
    click.echo(printable_lines(message), err=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else printable(str(c)) for c in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def plural(count: int, noun: str) -> str:
    """`1 check`, `2 checks`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def short(digest: str | None) -> str:
    """`sha256:abcdef123456` for people."""
    if not digest:
        return "-"
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}"


def when(iso: str | None) -> str:
    """An ISO timestamp shortened to the minute, UTC."""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:16] + "Z"
