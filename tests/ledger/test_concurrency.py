"""Many processes at once: serialised compare-and-set promotions and concurrent first migrations."""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.synchronize import Barrier

import pytest

from boda.ledger import open_ledger
from boda.ledger.migrate import migrations
from boda.types import Digest

PROCESSES = 8
PROMOTIONS_EACH = 5
APP = "foo/bar"
ENV = "prd"


def digest_of(worker: int, n: int) -> Digest:
    return Digest.of(f"worker {worker} image {n}".encode())


def _promoter(url: str, worker: int, barrier: Barrier) -> None:
    """Promote PROMOTIONS_EACH digests, each read-then-write under the lock with a slow 'registry write'."""
    barrier.wait(timeout=60)
    with open_ledger(url) as ledger:
        for n in range(PROMOTIONS_EACH):
            with ledger.promotion_lock(APP, ENV) as tx:
                current = tx.current()
                time.sleep(0.005)  # the registry write happens here, inside the lock
                tx.record_promotion(
                    digest=digest_of(worker, n),
                    commit=None,
                    reference=f"reg/{APP}@{digest_of(worker, n)}",
                    by=f"runner-{worker}",
                    kind="promote",
                    reason=None,
                    expected_previous=current.digest if current else None,
                )


def _opener(url: str, worker: int, barrier: Barrier) -> None:
    """Open a fresh ledger at the same moment as the others, then write to it."""
    barrier.wait(timeout=60)
    with open_ledger(url, create=True) as ledger:
        ledger.pin(APP, digest_of(worker, 0), reason=f"worker {worker}", by=f"runner-{worker}")


def _run_all(target: Callable[[str, int, Barrier], None], url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    processes = [ctx.Process(target=target, args=(url, w, barrier)) for w in range(PROCESSES)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=180)
    codes = [p.exitcode for p in processes]
    for p in processes:
        if p.is_alive():
            p.kill()
    assert codes == [0] * PROCESSES, f"worker exit codes: {codes}"


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_promotions_are_serialised_and_never_lost(
    database: str, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue(f"{database}_url"))
    open_ledger(url, create=True).close()  # the concurrent first migration has its own test
    _run_all(_promoter, url)

    with open_ledger(url) as ledger:
        history = list(reversed(ledger.promotions(APP, ENV)))
        assert len(history) == PROCESSES * PROMOTIONS_EACH
        assert {p.digest for p in history} == {
            digest_of(w, n) for w in range(PROCESSES) for n in range(PROMOTIONS_EACH)
        }
        ids = [p.id for p in history]
        assert ids == sorted(set(ids))
        assert history[0].previous_digest is None
        for before, after in itertools.pairwise(history):
            assert after.previous_digest == before.digest
            assert after.at >= before.at
        for w in range(PROCESSES):  # each runner's own promotions land in its order
            mine = [p.digest for p in history if p.by == f"runner-{w}"]
            assert mine == [digest_of(w, n) for n in range(PROMOTIONS_EACH)]
        assert ledger.current(APP, ENV) == history[-1]
        assert len(ledger.events(APP)) == len(history)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_first_opens_migrate_once(database: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue(f"{database}_url"))
    _run_all(_opener, url)

    with open_ledger(url) as ledger:
        assert ledger.schema_version() == migrations(database)[-1][0]
        assert len(ledger.pins(APP)) == PROCESSES
        assert len(ledger.events(APP)) == PROCESSES
