"""Ledger test helpers."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import psycopg


def raw(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement on the ledger database behind boda's back."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)) as conn:
            return conn.execute(statement).fetchall()
    with psycopg.connect(url, autocommit=True) as pg:
        cursor = pg.execute(statement.encode())
        return cursor.fetchall() if cursor.description else []
