"""`boda history` streams: 100,000 entries start printing after the first page of the ledger, in
bounded memory, as a valid JSON document (`--json`) or JSON Lines (`--jsonl`); the text table
pages on a terminal only. The streamed output equals what the plain, all-in-memory service says."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest

import boda.ledger.queries.promotions as promotion_queries
from boda.cli import main
from boda.config import load_config
from boda.ledger import open_ledger
from boda.services.context import Context
from boda.services.history import PAGE_SIZE, entry_json
from fixtures.config import boda_toml

APP = "busy/app"
ENTRIES = 100_000
ENVS = ("dev", "stg", "prd")


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose app has ENTRIES promotions (bulk SQL into boda's own schema)."""
    root = tmp_path_factory.mktemp("history")
    db = root / "ledger.db"
    config = root / "boda.toml"
    config.write_text(boda_toml(registry=f"oci-layout:{root}/registry", ledger=f"sqlite:///{db}"))
    open_ledger(f"sqlite:///{db}", create=True).close()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO apps (name) VALUES (?)", (APP,))
    conn.executemany(
        "INSERT INTO promotions (id, app, env, digest, commit_sha, reference, recorded_at, recorded_by, kind,"
        " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                n + 1,
                APP,
                ENVS[n % 3],
                f"sha256:{n:064x}",
                f"{n:040x}",
                f"r.example/{APP}@sha256:{n:064x}",
                (start + timedelta(minutes=n)).isoformat(timespec="microseconds"),
                "ci",
                "rollback" if n % 97 == 0 else "promote",
                f"release {n}\x1b[2J" if n % 1000 == 0 else None,  # hostile text: escaped in tables
            )
            for n in range(ENTRIES)
        ),
    )
    conn.execute("COMMIT")
    conn.close()
    return config


class Sink(io.TextIOBase):
    """A stdout that keeps only what the test asks for: the first write and a running size."""

    def __init__(self, on_first: Any = None) -> None:
        self.size = 0
        self.first: str | None = None
        self.on_first = on_first

    def write(self, text: str) -> int:
        if self.first is None:
            self.first = text
            if self.on_first is not None:
                self.on_first()
        self.size += len(text)
        return len(text)

    def isatty(self) -> bool:
        return False


def whole(ctx: Context, app: str, env: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """The plain way: every entry read into memory at once, then one document."""
    return {"app": app, "entries": [entry_json(p) for p in ctx.ledger.promotions(app, env, limit)]}


def test_json_streams_the_same_document_the_service_builds(busy: Path, boda: Any) -> None:
    run = boda("--config", str(busy), "history", APP, "--json")
    assert run.code == 0, run.err
    streamed = json.loads(run.out)
    with Context(load_config(busy)) as ctx:
        plain = whole(ctx, APP)
    assert streamed == plain
    assert len(streamed["entries"]) == ENTRIES
    env_only = boda("--config", str(busy), "history", APP, "--json", "--env", "stg", "--limit", "1500")
    with Context(load_config(busy)) as ctx:
        assert env_only.json == whole(ctx, APP, "stg", 1500)


def test_json_lines(busy: Path, boda: Any) -> None:
    run = boda("--config", str(busy), "history", APP, "--jsonl", "--limit", "2500")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert len(lines) == 2500
    first = json.loads(lines[0])
    assert first["app"] == APP and first["digest"] == f"sha256:{ENTRIES - 1:064x}"
    assert [json.loads(x)["at"] for x in lines] == sorted((json.loads(x)["at"] for x in lines), reverse=True)


def test_an_empty_history_is_still_a_document(tmp_path: Path, boda: Any) -> None:
    config = tmp_path / "boda.toml"
    config.write_text(boda_toml(registry=f"oci-layout:{tmp_path}/r", ledger=f"sqlite:///{tmp_path}/l.db"))
    ledger = open_ledger(f"sqlite:///{tmp_path}/l.db", create=True)
    ledger.record_build("quiet/app", commit="a" * 40, digest=_digest(), reference="r", by="ci")
    ledger.close()
    run = boda("--config", str(config), "history", "quiet/app", "--json")
    assert run.code == 0 and run.json == {"app": "quiet/app", "entries": []}
    assert boda("--config", str(config), "history", "quiet/app", "--jsonl").out == ""


def _digest() -> Any:
    from boda.types import Digest

    return Digest.of(b"quiet")


def test_output_starts_after_the_first_page(busy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = [0]
    real = promotion_queries.decode_promotion

    def counting(db: Any, row: Any) -> Any:
        decoded[0] += 1
        return real(db, row)

    monkeypatch.setattr(promotion_queries, "decode_promotion", counting)
    at_first_write: list[int] = []
    for flag in ("--json", "--jsonl", "--no-pager"):
        decoded[0] = 0
        sink = Sink(on_first=lambda: at_first_write.append(decoded[0]))
        with monkeypatch.context() as m:
            m.setattr(sys, "stdout", sink)
            assert main(["--config", str(busy), "history", APP, flag]) == 0
        assert decoded[0] == ENTRIES
    assert all(n <= PAGE_SIZE for n in at_first_write), at_first_write


def peak_of(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


#: Measured: ~2-3 MiB streamed (one page of entries), ~220 MiB when the whole answer is built first.
BOUND = 16 << 20


def test_memory_stays_bounded_where_building_the_answer_does_not(
    busy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def streamed(flag: str) -> None:
        with monkeypatch.context() as m:
            m.setattr(sys, "stdout", Sink())
            assert main(["--config", str(busy), "history", APP, flag]) == 0

    for flag in ("--json", "--jsonl", "--no-pager"):
        peak = peak_of(lambda f=flag: streamed(f))
        assert peak < BOUND, flag

    def built() -> None:  # the plain way: every entry in memory, then one string
        with Context(load_config(busy)) as ctx:
            json.dumps(whole(ctx, APP), indent=2)

    plain = peak_of(built)
    assert plain > BOUND  # so the bound above can fail


def test_text_pages_on_a_terminal_only(busy: Path, monkeypatch: pytest.MonkeyPatch, boda: Any) -> None:
    paged: list[str] = []

    def fake_pager(chunks: Iterator[str]) -> None:
        paged.append("".join(chunks))

    monkeypatch.setattr(click, "echo_via_pager", fake_pager)
    run = boda("--config", str(busy), "history", APP, "--limit", "1200")
    assert run.code == 0 and paged == []  # not a terminal: straight to stdout
    lines = run.out.splitlines()
    assert lines[0].split() == ["AT", "ENV", "DIGEST", "COMMIT", "KIND", "BY", "REASON"]
    assert len(lines) == 2 + 1200
    assert "\x1b" not in run.out and "\\x1b[2J" in run.out  # hostile text is shown, not obeyed
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["--config", str(busy), "history", APP, "--limit", "5"]) == 0
    assert len(paged) == 1 and paged[0].count("\n") == 7
    assert main(["--config", str(busy), "history", APP, "--limit", "5", "--no-pager"]) == 0
    assert len(paged) == 1


def test_bad_input_prints_nothing_but_one_line(busy: Path, boda: Any) -> None:
    run = boda("--config", str(busy), "history", "busy/nope", "--json")
    assert run.code == 4 and run.err.count("\n") == 1
    assert json.loads(run.out)["error"]["exit_code"] == 4  # the --json error object, and only that
    run = boda("--config", str(busy), "history", APP, "--env", "qa")
    assert run.code == 4 and run.out == ""
    run = boda("--config", str(busy), "history", APP, "--json", "--jsonl")
    assert run.code == 2 and run.err.count("\n") == 1
