"""App locks: held across registry I/O without any database lock, one app never blocks another,
taken in one order, released when the holder dies."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import psycopg
import pytest
from ledger_helpers import Spawn, kill9

from boda.errors import EXIT_CONFLICT, Conflict, LedgerError
from boda.ledger import Ledger, LockTimeout, NewPromotion, open_ledger
from boda.types import Digest

A, B = "shop/a", "shop/b"

# The child promotes app A inside the lock, then stalls there like a registry that never answers.
HOLD_A_WHILE_THE_REGISTRY_STALLS = """
with ledger.promotion_lock("shop/a", "prd", purpose="promote shop/a to prd") as tx:
    tx.current()
    ready()
    time.sleep(600)
"""


def dg(n: int) -> Digest:
    return Digest.of(f"image {n}".encode())


def promote(ledger: Ledger, app: str, env: str, digest: Digest, *, timeout: float = 5.0) -> None:
    with ledger.promotion_lock(app, env, timeout=timeout) as tx:
        current = tx.current()
        tx.record_promotion(
            digest=digest,
            commit=None,
            reference=f"r/{app}@{digest}",
            by="ci",
            kind="promote",
            reason=None,
            expected_previous=current.digest if current else None,
        )


def test_a_stalled_holder_of_one_app_delays_no_other_work(
    ledger: Ledger, ledger_url: str, spawn: Spawn
) -> None:
    """Before, on SQLite, the holder's write transaction made all of this wait 60 s and fail."""
    holder = spawn(HOLD_A_WHILE_THE_REGISTRY_STALLS, ledger_url)
    started = time.monotonic()
    promote(ledger, B, "prd", dg(1))
    ledger.record_evidence(B, env="prd", digest=dg(1), kind="tests", result="pass", by="ci")
    ledger.record_evidence(A, env="prd", digest=dg(1), kind="tests", result="pass", by="ci")
    ledger.record_build(A, commit="a" * 40, digest=dg(1), reference="r", by="ci")
    ledger.pin(A, dg(1), reason="keep", by="ci")
    ledger.record_event("note", app=A, by="ci")
    assert time.monotonic() - started < 5
    assert ledger.current(B, "prd") is not None

    with pytest.raises(LockTimeout) as caught:
        promote(ledger, A, "prd", dg(2), timeout=0.3)
    error = caught.value
    assert error.exit_code == EXIT_CONFLICT
    assert error.message.startswith(f"app {A} is locked by pid {holder.pid} on {socket.gethostname()} since ")
    assert error.message.endswith("(promote shop/a to prd); gave up waiting after 0.3 s")
    assert "\n" not in error.diagnostics()
    assert ledger.current(A, "prd") is None


def test_sigkill_of_the_holder_frees_the_lock(ledger: Ledger, ledger_url: str, spawn: Spawn) -> None:
    holder = spawn(HOLD_A_WHILE_THE_REGISTRY_STALLS, ledger_url)
    with pytest.raises(LockTimeout):
        promote(ledger, A, "prd", dg(1), timeout=0.2)
    kill9(holder)
    started = time.monotonic()
    promote(ledger, A, "prd", dg(1), timeout=10)
    assert time.monotonic() - started < 5
    assert ledger.current(A, "prd") is not None


def test_two_processes_take_turns(ledger: Ledger, ledger_url: str, spawn: Spawn) -> None:
    """The child holds A for a moment and then lets go: a waiter with enough patience gets it."""
    spawn(
        """
with ledger.lock_apps(["shop/a"]):
    ready()
    time.sleep(0.5)
""",
        ledger_url,
    )
    started = time.monotonic()
    with ledger.lock_apps([A], timeout=20):
        waited = time.monotonic() - started
    assert 0.2 < waited < 15


def test_the_lock_is_not_a_database_transaction(ledger: Ledger, ledger_url: str) -> None:
    """While a lock is held, another connection writes at once (SQLite: no BEGIN IMMEDIATE held;
    PostgreSQL: every session of this ledger is idle, none idle in a transaction)."""
    with ledger.lock_apps([A, B]), open_ledger(ledger_url) as other:
        started = time.monotonic()
        other.record_evidence(A, env="dev", digest=dg(1), kind="tests", result="pass", by="ci")
        assert time.monotonic() - started < 2
        if ledger_url.startswith("postgres"):
            with psycopg.connect(ledger_url) as admin:
                states = admin.execute(
                    "SELECT state FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name LIKE 'boda%' AND pid <> pg_backend_pid()"
                ).fetchall()
            assert states and {s for (s,) in states} == {"idle"}


def test_locks_are_taken_in_one_order_so_crossed_releases_never_deadlock(
    ledger: Ledger, ledger_url: str
) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def release(apps: list[str]) -> None:
        try:
            with open_ledger(ledger_url) as mine:
                barrier.wait(timeout=30)
                for _ in range(30):
                    with mine.lock_apps(apps, timeout=10):
                        time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=release, args=(apps,)) for apps in ([A, B], [B, A])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []


def test_a_thread_may_retake_what_it_holds_and_other_threads_wait(ledger: Ledger) -> None:
    with ledger.lock_apps([A], purpose="gc apply"):
        with ledger.promotion_lock(A, "dev", timeout=0):  # the same thread: counted, not blocked
            pass
        caught: list[LockTimeout] = []

        def other_thread() -> None:
            try:
                with ledger.lock_apps([A], timeout=0.2):
                    pass
            except LockTimeout as exc:
                caught.append(exc)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join(timeout=30)
        assert len(caught) == 1
        assert f"pid {os.getpid()}" in caught[0].message and "(gc apply)" in caught[0].message
    with ledger.lock_apps([A], timeout=0):  # released after the outer block, not the inner one
        pass


def test_an_in_memory_ledger_locks_among_its_threads() -> None:
    with open_ledger("sqlite:///:memory:") as ledger, ledger.lock_apps([A]):
        outcome: list[str] = []

        def other_thread() -> None:
            try:
                with ledger.lock_apps([B], timeout=1):
                    outcome.append("b")
                with ledger.lock_apps([A], timeout=0.1):
                    outcome.append("a")
            except LockTimeout:
                outcome.append("timeout")

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join(timeout=30)
        assert outcome == ["b", "timeout"]


def test_sqlite_lock_files_sit_beside_the_ledger_and_name_their_holder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db/ledger.db"
    with open_ledger(url, create=True) as ledger:
        with ledger.lock_apps([A], purpose="promote"):
            files = list((tmp_path / "db" / "ledger.db.locks").iterdir())
            assert len(files) == 1 and files[0].name.startswith("app_shop_a-")
            assert f'"pid": {os.getpid()}' in files[0].read_text()
        assert files[0].read_text() == ""  # released: no stale holder is ever named


def test_an_unwritable_lock_folder_is_a_one_line_ledger_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    open_ledger(url, create=True).close()
    (tmp_path / "ledger.db.locks").write_text("a file where the lock folder should be")
    with open_ledger(url) as ledger, pytest.raises(LedgerError) as caught:
        ledger.lock_apps([A]).__enter__()
    assert "cannot open the lock file" in str(caught.value)
    assert caught.value.__cause__ is not None


def test_a_release_records_all_or_nothing(ledger: Ledger) -> None:
    promote(ledger, A, "prd", dg(1))
    news = [
        NewPromotion(B, "prd", dg(2), None, "r", "ci", "promote", None, None),
        NewPromotion(A, "prd", dg(2), None, "r", "ci", "promote", None, dg(9)),  # stale
    ]
    with ledger.lock_apps([A, B]), pytest.raises(Conflict, match="not the expected"):
        ledger.record_promotions(news)
    assert ledger.current(B, "prd") is None
    assert [e.action for e in ledger.events()] == ["promote"]
    fixed = [news[0], NewPromotion(A, "prd", dg(2), None, "r", "ci", "promote", None, dg(1))]
    recorded = ledger.record_promotions(fixed)
    assert [(p.app, p.previous_digest) for p in recorded] == [(B, None), (A, dg(1))]
