"""Schema migrations, the append-only guard, and how opening a ledger fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from ledger_helpers import raw

from boda.errors import EXIT_UNAVAILABLE, EXIT_USAGE, Conflict, LedgerError, UsageError
from boda.ledger import migrate, open_ledger, redact_url
from boda.types import Digest


def latest(url: str) -> int:
    return migrate.migrations("sqlite" if url.startswith("sqlite") else "postgres")[-1][0]


def test_every_dialect_has_the_same_numbered_migrations() -> None:
    sqlite_steps = [(v, name) for v, name, _ in migrate.migrations("sqlite")]
    postgres_steps = [(v, name) for v, name, _ in migrate.migrations("postgres")]
    assert sqlite_steps == postgres_steps
    assert sqlite_steps[0] == (1, "init")


def test_a_fresh_database_gets_the_latest_schema_once(ledger_url: str) -> None:
    with open_ledger(ledger_url, create=True) as ledger:
        assert ledger.schema_version() == latest(ledger_url)
    rows = raw(ledger_url, "SELECT version, name, applied_at FROM schema_version ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, latest(ledger_url) + 1))

    with open_ledger(ledger_url) as ledger:
        assert ledger.schema_version() == latest(ledger_url)
    assert raw(ledger_url, "SELECT version, name, applied_at FROM schema_version ORDER BY version") == rows


def test_a_newer_schema_is_refused_with_a_clear_message(ledger_url: str) -> None:
    open_ledger(ledger_url, create=True).close()
    future = latest(ledger_url) + 1
    raw(
        ledger_url,
        "INSERT INTO schema_version (version, name, applied_at)"
        f" VALUES ({future}, 'future', CURRENT_TIMESTAMP)",
    )
    with pytest.raises(LedgerError) as caught:
        open_ledger(ledger_url)
    assert f"has schema version {future}, newer than version {future - 1}" in caught.value.message
    assert caught.value.exit_code == EXIT_UNAVAILABLE
    assert caught.value.hint is not None and "upgrade boda" in caught.value.hint


def test_a_failing_migration_changes_nothing(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialect = "sqlite" if ledger_url.startswith("sqlite") else "postgres"
    real = migrate.migrations(dialect)
    broken = tmp_path / "9999_broken.sql"
    broken.write_text("CREATE TABLE half_done (a INTEGER);\nSELEC nonsense;\n")
    monkeypatch.setattr(migrate, "migrations", lambda _dialect: [*real, (len(real) + 1, "broken", broken)])
    with pytest.raises(LedgerError, match="cannot migrate the schema to version") as caught:
        open_ledger(ledger_url, create=True)
    assert "\n" not in caught.value.message and caught.value.__cause__ is not None

    monkeypatch.undo()
    with open_ledger(ledger_url) as ledger:
        assert ledger.schema_version() == len(real)
    with pytest.raises((sqlite3.Error, psycopg.Error)):
        raw(ledger_url, "SELECT * FROM half_done")


def test_schema_4_keeps_the_builds_recorded_before_it(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger at schema 3 with builds in it: migrated, its builds read back without a tag, media
    type or size (readers fall back), new builds record them, and builds stay append-only."""
    dialect = "sqlite" if ledger_url.startswith("sqlite") else "postgres"
    steps = migrate.migrations(dialect)
    assert [(v, name) for v, name, _ in steps][3] == (4, "build_facts")
    monkeypatch.setattr(migrate, "migrations", lambda _dialect: steps[:3])
    old = Digest.of(b"old image")
    with open_ledger(ledger_url, create=True) as ledger:
        assert ledger.schema_version() == 3
    now = "2025-01-01T00:00:00.000000+00:00"
    for n in (1, 2):
        raw(
            ledger_url,
            "INSERT INTO builds (app, commit_sha, digest, reference, recorded_at, recorded_by)"
            f" VALUES ('app', '{str(n) * 40}', '{old}', 'r', '{now}', 'ci')",
        )
    monkeypatch.undo()

    with open_ledger(ledger_url) as ledger:
        assert ledger.schema_version() == 4
        before = ledger.list_builds("app")
        assert [(b.commit, b.digest, b.tag, b.media_type, b.size) for b in before] == [
            ("2" * 40, old, None, None, None),
            ("1" * 40, old, None, None, None),
        ]
        new, created = ledger.record_build(
            "app", commit="3" * 40, digest=old, reference="r", by="ci", tag="33333333", media_type="m", size=9
        )
        assert created and (new.tag, new.media_type, new.size) == ("33333333", "m", 9)
        with pytest.raises(Conflict, match="commit tag 33333333"):
            ledger.record_build("app", commit="4" * 40, digest=old, reference="r", by="ci", tag="33333333")
    with pytest.raises((sqlite3.Error, psycopg.Error), match="append-only"):
        raw(ledger_url, "UPDATE builds SET tag = 'x' WHERE tag IS NULL")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE promotions SET env = 'stg'",
        "DELETE FROM promotions",
        "UPDATE builds SET digest = 'x'",
        "DELETE FROM events",
        "UPDATE evidence SET result = 'pass'",
    ],
)
def test_history_tables_are_append_only(ledger_url: str, statement: str) -> None:
    digest = Digest.of(b"x")
    with open_ledger(ledger_url, create=True) as ledger:
        ledger.record_build("app", commit="a" * 40, digest=digest, reference="r", by="ci")
        ledger.record_evidence("app", env="dev", digest=digest, kind="tests", result="fail", by="ci")
        with ledger.promotion_lock("app", "dev") as tx:
            tx.record_promotion(
                digest=digest,
                commit=None,
                reference="r",
                by="ci",
                kind="promote",
                reason=None,
                expected_previous=None,
            )
    with pytest.raises((sqlite3.Error, psycopg.Error), match="append-only"):
        raw(ledger_url, statement)


# -- failures when opening ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mysql://boda:s3cret@db.example/boda",
        "sqlite://relative.db",
        "sqlite:///",
        "sqlite:///ledger.db?mode=ro",
        "",
        "postgresql://boda:s3cret@db.example/boda?no_such_option=1",
    ],
)
def test_a_malformed_url_is_a_usage_error_without_the_password(url: str) -> None:
    with pytest.raises(UsageError, match="invalid ledger URL") as caught:
        open_ledger(url)
    assert caught.value.exit_code == EXIT_USAGE
    assert "s3cret" not in caught.value.diagnostics()
    assert "\n" not in caught.value.message


def test_unreachable_postgres_is_a_one_line_ledger_error_without_the_password() -> None:
    with pytest.raises(LedgerError) as caught:
        open_ledger("postgresql://boda:s3cret@127.0.0.1:1/boda")
    error = caught.value
    assert error.exit_code == EXIT_UNAVAILABLE
    assert isinstance(error.__cause__, psycopg.OperationalError)  # the driver's error, for BODA_DEBUG
    assert error.message.startswith("ledger postgresql://boda:***@127.0.0.1:1/boda is unreachable: ")
    assert "\n" not in error.message
    assert "s3cret" not in error.diagnostics()


def test_an_unusable_sqlite_path_is_a_ledger_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(LedgerError, match="cannot create") as caught:
        open_ledger(f"sqlite:///{tmp_path}/file/ledger.db", create=True)
    assert caught.value.exit_code == EXIT_UNAVAILABLE
    (tmp_path / "garbage.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match=r"garbage\.db failed: file is not a database") as garbage:
        open_ledger(f"sqlite:///{tmp_path}/garbage.db")
    assert isinstance(garbage.value.__cause__, sqlite3.DatabaseError)  # the driver's error, for BODA_DEBUG


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://u:p%40ss@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db?user=u&password=secret", "postgresql://h/db?user=u&password=***"),
        ("sqlite:///.boda/ledger.db", "sqlite:///.boda/ledger.db"),
        (
            "postgres://u:pw@[::1]:5432/db?options=-csearch_path%3Dx",
            "postgres://u:***@[::1]:5432/db?options=-csearch_path%3Dx",
        ),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
