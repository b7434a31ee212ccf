"""Proving the ledger can write before the registry changes, and refusing text it cannot store."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from boda.errors import EXIT_UNAVAILABLE, EXIT_USAGE, LedgerError, UsageError
from boda.ledger import Ledger, NewPromotion, check_detail, check_text, open_ledger
from boda.types import Digest
from fixtures.files import immutable

APP = "shop/web"
D = Digest.of(b"image")
SURROGATE = "caf\udce9"  # `café` in Latin-1 on the command line, decoded by Python as UTF-8
NUL = "a\x00b"


def test_a_read_only_sqlite_file_is_found_unwritable_before_any_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    with open_ledger(url, create=True) as ledger:
        ledger.record_build(APP, commit="a" * 40, digest=D, reference="r", by="ci")
    with immutable(tmp_path / "ledger.db"), open_ledger(url) as ledger:
        assert ledger.apps() == [APP]  # reading works
        # The trap: SQLite starts a write transaction on a read-only file without complaint.
        with closing(sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        with pytest.raises(LedgerError) as caught:
            ledger.check_writable()
        error = caught.value
        assert error.exit_code == EXIT_UNAVAILABLE
        assert error.message == f"ledger {url} cannot be written now: attempt to write a readonly database"
        assert isinstance(error.__cause__, sqlite3.Error)
    with open_ledger(url) as ledger:
        ledger.check_writable()
        assert ledger.apps() == [APP]  # the probe left nothing behind


def test_a_writable_ledger_passes_the_probe_and_keeps_nothing_of_it(ledger: Ledger) -> None:
    ledger.check_writable()
    ledger.check_writable()
    assert ledger.apps() == [] and ledger.events() == []


@pytest.mark.postgres
def test_postgres_read_only_transactions_are_found(postgres_url: str) -> None:
    open_ledger(postgres_url).close()
    read_only = postgres_url + "%20-cdefault_transaction_read_only%3Don"
    with open_ledger(read_only) as ledger:
        assert ledger.apps() == []
        with pytest.raises(LedgerError, match="cannot be written now: cannot execute INSERT in a read-only"):
            ledger.check_writable()


@pytest.mark.postgres
def test_postgres_lost_connection_is_found(postgres_url: str) -> None:
    ledger = open_ledger(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'boda' AND pid <> pg_backend_pid()"
        ).fetchall()
    assert killed == [(True,)]
    with pytest.raises(LedgerError, match="cannot be written now") as caught:
        ledger.check_writable()
    assert "\n" not in caught.value.message and isinstance(caught.value.__cause__, psycopg.Error)
    ledger.close()


@pytest.fixture
def postgres_ledger_as_role(postgres_url: str) -> Iterator[Callable[[str], Ledger]]:
    """`as_role(grants)`: the ledger opened as a fresh login role with only those grants."""
    open_ledger(postgres_url).close()
    role = f"boda_role_{uuid.uuid4().hex[:10]}"
    schema = postgres_url.rsplit("%3D", 1)[1]
    opened: list[Ledger] = []

    def as_role(grants: str) -> Ledger:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            names = (sql.Identifier(schema), sql.Identifier(role))
            admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(*names))
            admin.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(*names))
            admin.execute(sql.SQL(grants).format(sql.Identifier(role)))
        user = postgres_url.split("://", 1)[1].split("@", 1)[0]
        ledger = open_ledger(postgres_url.replace(f"://{user}@", f"://{role}@", 1))
        opened.append(ledger)
        return ledger

    yield as_role
    for ledger in opened:
        ledger.close()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.postgres
def test_postgres_missing_privileges_are_found(postgres_ledger_as_role: Callable[[str], Ledger]) -> None:
    ledger = postgres_ledger_as_role("GRANT INSERT ON apps, events TO {}")
    assert ledger.apps() == []
    with pytest.raises(LedgerError) as caught:
        ledger.check_writable()
    message = caught.value.message
    assert message.startswith(
        f"ledger {ledger.url} cannot be written now: this user lacks INSERT on builds, "
    )
    assert "UPDATE on intents" in message and "INSERT on apps" not in message and "\n" not in message


# -- text the ledger cannot store ------------------------------------------------------------------


def _writes(bad: str) -> dict[str, Callable[[Ledger], Any]]:
    new = NewPromotion(APP, "prd", D, None, "r", "ci", "promote", bad, None)
    return {
        "build reference": lambda led: led.record_build(
            APP, commit="a" * 40, digest=D, reference=bad, by="ci"
        ),
        "evidence by": lambda led: led.record_evidence(
            APP, env="dev", digest=D, kind="tests", result="pass", by=bad
        ),
        "evidence kind": lambda led: led.record_evidence(
            APP, env="dev", digest=D, kind=bad, result="pass", by="ci"
        ),
        "evidence url": lambda led: led.record_evidence(
            APP, env="dev", digest=D, kind="t", result="pass", by="ci", url=bad
        ),
        "promotion reason": lambda led: led.record_promotion(new),
        "promotion env": lambda led: led.record_promotion(
            NewPromotion(APP, bad, D, None, "r", "ci", "promote", None, None)
        ),
        "pin reason": lambda led: led.pin(APP, D, reason=bad, by="ci"),
        "signed evidence signer": lambda led: led.record_signed_evidence(
            APP,
            env="dev",
            digest=D,
            kind="tests",
            result="pass",
            by="ci",
            url=None,
            statement=D,
            predicate_type="https://example/p",
            signer=bad,
            repository=APP,
        ),
        "event reason": lambda led: led.record_event("note", app=APP, by="ci", reason=bad),
        "event detail": lambda led: led.record_event("note", app=APP, by="ci", detail={"tags": ["ok", bad]}),
        "event detail key": lambda led: led.record_event("note", app=APP, by="ci", detail={bad: 1}),
        "intent detail": lambda led: led.begin_intent("promote", APP, by="ci", detail={"reason": bad}),
        "intent by": lambda led: led.begin_intent("promote", APP, by=bad),
        "claim env": lambda led: led.claim_repository(APP, app=APP, env=bad, by="ci"),
    }


@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["lone-surrogate", "nul"])
@pytest.mark.parametrize("write", sorted(_writes("x")))
def test_text_the_database_cannot_store_is_bad_input_and_nothing_is_written(
    ledger: Ledger, write: str, bad: str
) -> None:
    with pytest.raises(UsageError) as caught:
        _writes(bad)[write](ledger)
    error = caught.value
    assert error.exit_code == EXIT_USAGE and "\n" not in error.message
    assert "the ledger cannot store it" in error.message
    assert ledger.apps() == [] and ledger.events() == [] and ledger.open_intents() == []


def test_the_text_check_names_the_argument_and_the_character() -> None:
    assert check_text("plain ünïcödé ✓", "--reason") == "plain ünïcödé ✓"
    assert check_text(None, "--reason") is None
    with pytest.raises(UsageError) as caught:
        check_text(SURROGATE, "--reason")
    assert caught.value.message == (
        "--reason 'caf\\udce9' contains U+DCE9 at position 3, which is not text"
        " (was it written in another encoding than UTF-8?); the ledger cannot store it"
    )
    with pytest.raises(UsageError, match=r"^--by 'a\\x00b' contains a NUL character at position 1;"):
        check_text(NUL, "--by")
    with pytest.raises(UsageError, match=r"^detail\.tags\[1\] "):
        check_detail({"tags": ["ok", NUL]})
    check_detail({"n": 1, "tags": ["a", "b"], "nested": {"x": None}})
