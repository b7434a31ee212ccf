"""Intents: announced and committed before the registry write, closed atomically with the fact
that write produces, left open (and visible) when the writer dies or the ledger fails midway."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from ledger_helpers import Spawn, fail_event_inserts, kill9, raw

from boda.errors import EXIT_CONFLICT, EXIT_NOT_FOUND, Conflict, LedgerError, NotFound, UsageError
from boda.ledger import Intent, Ledger, NewPromotion, open_ledger
from boda.types import Digest

APP, OTHER = "shop/web", "shop/api"


def dg(n: int) -> Digest:
    return Digest.of(f"image {n}".encode())


def new_promotion(digest: Digest, expected: Digest | None, app: str = APP, env: str = "prd") -> NewPromotion:
    return NewPromotion(app, env, digest, None, f"r@{digest}", "ci", "promote", None, expected)


def begin(ledger: Ledger, app: str = APP, env: str = "prd", n: int = 1) -> Intent:
    return ledger.begin_intent(
        "promote", app, env=env, digest=dg(n), by="ci", detail={"tag": env, "from": None}
    )


def test_an_intent_is_committed_before_the_write_and_closed_with_its_fact(
    ledger: Ledger, ledger_url: str
) -> None:
    intent = begin(ledger)
    assert intent.open and (intent.action, intent.app, intent.env, intent.digest) == (
        "promote",
        APP,
        "prd",
        dg(1),
    )
    assert intent.detail == {"tag": "prd", "from": None} and intent.by == "ci"
    with open_ledger(ledger_url) as other:  # another process sees it before anything else happens
        assert other.open_intents() == [intent]
        assert other.open_intents(OTHER) == []
    with ledger.promotion_lock(APP, "prd") as tx:
        promotion = tx.record_promotion(
            digest=dg(1),
            commit=None,
            reference="r",
            by="ci",
            kind="promote",
            reason=None,
            expected_previous=None,
            intent=intent,
        )
    assert ledger.open_intents() == []
    closed = ledger.get_intent(intent.id)
    assert closed is not None and not closed.open
    assert (closed.resolution, closed.closed_by, closed.action) == ("done", "ci", "promote")
    assert closed.closed_at is not None and closed.closed_at >= intent.at
    assert raw(ledger_url, f"SELECT event_id FROM intents WHERE id = {intent.id}") == [
        (ledger.events()[0].id,)
    ]
    assert ledger.current(APP, "prd") == promotion


def test_a_refused_fact_leaves_the_intent_open(ledger: Ledger) -> None:
    ledger.record_promotion(new_promotion(dg(1), None))
    intent = begin(ledger, n=2)
    with pytest.raises(Conflict, match="not the expected"):
        ledger.record_promotion(new_promotion(dg(2), dg(7)), intent=intent)
    assert ledger.open_intents(APP) == [intent]
    assert [p.digest for p in ledger.promotions(APP)] == [dg(1)]


def test_a_ledger_failing_midway_records_nothing_and_leaves_the_intent_open(
    ledger: Ledger, ledger_url: str
) -> None:
    intent = begin(ledger)
    fail_event_inserts(ledger_url)  # the promotion row goes in; its event cannot
    with pytest.raises(LedgerError, match="disk on fire") as caught:
        ledger.record_promotion(new_promotion(dg(1), None), intent=intent)
    assert caught.value.__cause__ is not None  # the driver's error, for BODA_DEBUG
    assert "\n" not in caught.value.message
    assert ledger.promotions(APP) == [] and ledger.current(APP, "prd") is None
    assert ledger.open_intents() == [intent]


def test_an_event_closes_an_intent_once_and_only_of_its_own_app(ledger: Ledger) -> None:
    intent = ledger.begin_intent("expire", APP, digest=dg(1), by="gc", detail={"repository": APP})
    with pytest.raises(UsageError, match=f"about {APP}, not {OTHER}"):
        ledger.record_event("expire", app=OTHER, by="gc", digest=dg(1), intent=intent)
    with pytest.raises(NotFound, match="no intent 999999"):
        ledger.record_event("expire", app=APP, by="gc", digest=dg(1), intent=999999)
    event = ledger.record_event("expire", app=APP, by="gc", digest=dg(1), intent=intent.id)
    with pytest.raises(Conflict, match="already closed") as caught:
        ledger.record_event("expire", app=APP, by="gc", digest=dg(1), intent=intent)
    assert caught.value.exit_code == EXIT_CONFLICT
    assert ledger.events() == [event]  # the refused ones left nothing behind
    assert ledger.open_intents() == []


def test_resolving_an_intent_appends_the_event_that_says_how(ledger: Ledger) -> None:
    intent = begin(ledger)
    with pytest.raises(UsageError, match="resolution"):
        ledger.resolve_intent(intent, resolution="fixed", by="ops")
    event = ledger.resolve_intent(
        intent, resolution="undone", by="ops", reason="put the prd tag back", detail={"tag": "prd"}
    )
    assert (event.action, event.app, event.env, event.digest, event.reason, event.by) == (
        "resolve",
        APP,
        "prd",
        dg(1),
        "put the prd tag back",
        "ops",
    )
    assert event.detail == {
        "tag": "prd",
        "intent_id": intent.id,
        "intent_action": "promote",
        "resolution": "undone",
        "intent_detail": {"tag": "prd", "from": None},
    }
    closed = ledger.get_intent(intent.id)
    assert closed is not None and (closed.resolution, closed.reason, closed.closed_by) == (
        "undone",
        "put the prd tag back",
        "ops",
    )
    with pytest.raises(Conflict, match="already closed"):
        ledger.resolve_intent(intent.id, resolution="abandoned", by="ops")
    with pytest.raises(NotFound) as missing:
        ledger.resolve_intent(123456, resolution="abandoned", by="ops")
    assert missing.value.exit_code == EXIT_NOT_FOUND
    assert ledger.events() == [event]


def test_a_release_closes_each_intent_with_its_apps_promotion_or_none_of_them(ledger: Ledger) -> None:
    ledger.record_promotion(new_promotion(dg(1), None, app=OTHER))
    intents = [begin(ledger, APP, n=2), begin(ledger, OTHER, n=2)]
    stale = [new_promotion(dg(2), None), new_promotion(dg(2), dg(9), app=OTHER)]
    with pytest.raises(Conflict):
        ledger.record_promotions(stale, intents=intents)
    assert {i.id for i in ledger.open_intents()} == {i.id for i in intents}
    assert ledger.current(APP, "prd") is None

    good = [new_promotion(dg(2), None), new_promotion(dg(2), dg(1), app=OTHER)]
    ledger.record_promotions(good, intents=list(reversed(intents)))
    assert ledger.open_intents() == []
    closing = {e.app: e.detail["promotion_id"] for e in ledger.events(limit=2)}
    assert closing == {p.app: p.id for p in (ledger.current(APP, "prd"), ledger.current(OTHER, "prd")) if p}


def test_an_intent_of_no_app_in_the_release_is_refused(ledger: Ledger) -> None:
    stray = begin(ledger, "shop/other")
    with pytest.raises(UsageError, match="matches no single promotion"):
        ledger.record_promotions(
            [new_promotion(dg(1), None), new_promotion(dg(1), None, app=OTHER)], intents=[stray]
        )
    assert ledger.promotions(APP) == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE intents SET action = 'expire'",
        "DELETE FROM intents",
        "UPDATE intents SET closed_by = 'someone else' WHERE closed_at IS NOT NULL",
    ],
)
def test_intents_are_closed_once_and_never_rewritten(ledger: Ledger, ledger_url: str, statement: str) -> None:
    ledger.record_event("expire", app=APP, by="gc", intent=begin(ledger))
    begin(ledger, n=2)
    with pytest.raises((sqlite3.Error, psycopg.Error), match="intents are"):
        raw(ledger_url, statement)


def test_a_writer_killed_between_intent_and_fact_leaves_exactly_one_open_intent(
    ledger: Ledger, ledger_url: str, spawn: Spawn
) -> None:
    writer = spawn(
        """
from boda.types import Digest
with ledger.promotion_lock("shop/web", "prd") as tx:
    intent = ledger.begin_intent(
        "promote", "shop/web", env="prd", digest=Digest.of(b"image 1"), by="runner-7", detail={"tag": "prd"}
    )
    ready()
    time.sleep(600)  # the registry write, cut short by SIGKILL
    tx.record_promotion(digest=Digest.of(b"image 1"), commit=None, reference="r", by="runner-7",
                        kind="promote", reason=None, expected_previous=None, intent=intent)
""",
        ledger_url,
    )
    kill9(writer)
    [intent] = ledger.open_intents()
    assert (intent.action, intent.app, intent.env, intent.digest, intent.by, intent.detail) == (
        "promote",
        APP,
        "prd",
        dg(1),
        "runner-7",
        {"tag": "prd"},
    )
    assert ledger.promotions(APP) == [] and ledger.events() == [] and ledger.apps() == []
    with ledger.lock_apps([APP], timeout=5):  # the dead writer's lock went with it
        ledger.resolve_intent(intent, resolution="abandoned", by="repair", reason="tag never moved")
    assert ledger.open_intents() == []


def test_a_writer_that_finishes_leaves_no_open_intent(ledger: Ledger, ledger_url: str, spawn: Spawn) -> None:
    writer = spawn(
        """
from boda.types import Digest
with ledger.promotion_lock("shop/web", "prd") as tx:
    intent = ledger.begin_intent("promote", "shop/web", env="prd", digest=Digest.of(b"image 1"), by="r")
    tx.record_promotion(digest=Digest.of(b"image 1"), commit=None, reference="r", by="r",
                        kind="promote", reason=None, expected_previous=None, intent=intent)
ready()
""",
        ledger_url,
    )
    writer.wait(timeout=30)
    assert writer.returncode == 0
    assert ledger.open_intents() == []
    assert [p.digest for p in ledger.promotions(APP)] == [dg(1)]
