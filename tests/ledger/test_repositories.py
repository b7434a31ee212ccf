"""Repository owners: one app (and environment) per registry repository, recorded once."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier

import pytest

from boda.errors import EXIT_USAGE, UsageError
from boda.ledger import Ledger, RepositoryClaimed, open_ledger

PROCESSES = 6


def test_a_repository_has_one_owner(ledger: Ledger) -> None:
    owner, created = ledger.claim_repository("shop/web", app="shop/web", by="ci")
    assert created and (owner.repository, owner.app, owner.env, owner.by) == (
        "shop/web",
        "shop/web",
        None,
        "ci",
    )
    again, created = ledger.claim_repository("shop/web", app="shop/web", by="someone else")
    assert not created and again == owner
    ledger.claim_repository("shop/web-dev", app="shop/web", env="dev", by="ci")

    with pytest.raises(RepositoryClaimed) as caught:  # `{app}-{env}` of web/dev is web-dev's build repo
        ledger.claim_repository("shop/web-dev", app="shop/web-dev", by="ci")
    error = caught.value
    assert isinstance(error, UsageError) and error.exit_code == EXIT_USAGE
    assert error.message == (
        "repository shop/web-dev belongs to app shop/web in dev, not app shop/web-dev (build repository)"
    )
    assert error.owner.app == "shop/web"
    with pytest.raises(RepositoryClaimed, match="belongs to app shop/web in dev, not app shop/web in stg"):
        ledger.claim_repository("shop/web-dev", app="shop/web", env="stg", by="ci")
    with pytest.raises(UsageError):
        ledger.claim_repository("Not A Repository", app="shop/web", by="ci")

    assert ledger.repository_owner("shop/web-dev") is not None
    assert ledger.repository_owner("nobody/home") is None
    assert [(o.repository, o.env) for o in ledger.repositories_of("shop/web")] == [
        ("shop/web", None),
        ("shop/web-dev", "dev"),
    ]
    assert ledger.repositories_of("shop/web-dev") == []
    events = ledger.events()
    assert [(e.action, e.app, e.env, e.detail) for e in events] == [
        ("claim", "shop/web", "dev", {"repository": "shop/web-dev"}),
        ("claim", "shop/web", None, {"repository": "shop/web"}),
    ]
    assert ledger.apps() == []  # a claim alone makes no app known (gc needs its builds)


def _claimer(url: str, worker: int, barrier: Barrier, wins: multiprocessing.Queue[int]) -> None:
    barrier.wait(timeout=60)
    with open_ledger(url) as ledger:
        try:
            ledger.claim_repository("shared", app=f"app-{worker}", by=f"runner-{worker}")
        except RepositoryClaimed:
            return
        wins.put(worker)


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_racing_claims_leave_exactly_one_owner(database: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue(f"{database}_url"))
    open_ledger(url, create=True).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    wins: multiprocessing.Queue[int] = ctx.Queue()
    processes = [ctx.Process(target=_claimer, args=(url, w, barrier, wins)) for w in range(PROCESSES)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    winners = [wins.get(timeout=10)]
    assert wins.empty()
    with open_ledger(url) as ledger:
        owner = ledger.repository_owner("shared")
        assert owner is not None and owner.app == f"app-{winners[0]}"
        assert len(ledger.events()) == 1
