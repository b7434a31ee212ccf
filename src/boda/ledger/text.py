"""Text the ledger can store: valid Unicode without NUL, in both databases.

Arguments decoded from a non-UTF-8 command line carry lone surrogates (U+DC80..U+DCFF) that no
database encoding accepts, and PostgreSQL cannot store NUL in text or JSON. Such text is bad input
(UsageError, exit 2), found before anything is written: services check what a person gives with
`boda.types.check_free_text` (the same rule, and a length) before they touch the registry, and
every ledger write checks again with `check_text` before its first statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from boda.errors import UsageError
from boda.types import excerpt, text_problem


def check_text(value: str | None, what: str) -> str | None:
    """`value` unchanged if the ledger can store it; else UsageError naming `what` (e.g. `--reason`)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{what} must be text, not {type(value).__name__}")
    problem = text_problem(value)
    if problem is not None:
        raise UsageError(f"{what} {excerpt(value)} contains {problem}; the ledger cannot store it")
    return value


def check_detail(value: Any, what: str = "detail") -> None:
    """Check every key and string inside a JSON-like value (mappings, lists, scalars)."""
    if isinstance(value, str):
        check_text(value, what)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(str(key), f"{what} key")
            check_detail(item, f"{what}.{key}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for index, item in enumerate(value):
            check_detail(item, f"{what}[{index}]")
