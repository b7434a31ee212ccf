"""Streaming reads: promotions and events newest first, in pages by id, in bounded memory."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest
from ledger_helpers import raw

from boda.ledger import Ledger, NewPromotion
from boda.types import Digest

APP = "shop/web"
ROWS = 100_000


def dg(n: int) -> Digest:
    return Digest.of(f"image {n}".encode())


def test_streams_match_the_lists_across_page_boundaries(ledger: Ledger) -> None:
    previous: dict[tuple[str, str], Digest | None] = {}
    for n, (app, env) in enumerate(
        itertools.islice(itertools.cycle([(APP, "dev"), (APP, "prd"), ("x", "dev")]), 11)
    ):
        ledger.record_promotion(
            NewPromotion(app, env, dg(n), None, "r", "ci", "promote", None, previous.get((app, env)))
        )
        previous[(app, env)] = dg(n)
        ledger.record_event("note", app=app, by="ci", detail={"n": n})

    for page_size in (1, 3, 4, 1000):
        assert list(ledger.iter_promotions(APP, page_size=page_size)) == ledger.promotions(APP)
        assert list(ledger.iter_promotions(APP, "prd", page_size=page_size)) == ledger.promotions(APP, "prd")
        assert list(ledger.iter_events(page_size=page_size)) == ledger.events()
        assert list(ledger.iter_events("x", page_size=page_size)) == ledger.events("x")
    newest = ledger.promotions(APP)
    assert list(ledger.iter_promotions(APP, before=newest[2].id, page_size=2)) == newest[3:]
    assert list(ledger.iter_promotions("nobody")) == []
    events = ledger.events()
    assert list(ledger.iter_events(before=events[-1].id)) == []
    assert list(ledger.iter_events(before=events[0].id, page_size=5)) == events[1:]


def _fill(url: str) -> None:
    """ROWS promotions and events of APP, written in bulk behind the ledger's back."""
    digest = str(dg(0))
    if url.startswith("sqlite"):
        series = f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {ROWS})"
        at = "'2025-01-01T00:00:00.000000+00:00'"
        detail = "'{\"n\": 1}'"
    else:
        series = f"WITH s(n) AS (SELECT generate_series(1, {ROWS}))"
        at = "TIMESTAMPTZ '2025-01-01 00:00:00+00'"
        detail = "'{\"n\": 1}'::jsonb"
    raw(
        url,
        f"{series} INSERT INTO promotions (app, env, digest, commit_sha, reference, recorded_at, recorded_by,"
        f" kind, reason, previous_digest) SELECT '{APP}', 'prd', '{digest}', NULL, 'registry.example/"
        f"{APP}@{digest}', {at}, 'ci', 'promote', 'a reason of some length', NULL FROM s",
    )
    raw(
        url,
        f"{series} INSERT INTO events (recorded_at, recorded_by, action, app, env, digest, reason, detail)"
        f" SELECT {at}, 'ci', 'note', '{APP}', 'prd', '{digest}', 'a reason of some length', {detail} FROM s",
    )


@pytest.mark.parametrize("kind", ["promotions", "events"])
def test_a_stream_of_100000_rows_starts_at_once_and_stays_small(
    ledger: Ledger, ledger_url: str, kind: str
) -> None:
    _fill(ledger_url)
    stream = ledger.iter_promotions(APP) if kind == "promotions" else ledger.iter_events(APP)
    tracemalloc.start()
    try:
        first = next(stream)
        after_first, _ = tracemalloc.get_traced_memory()
        count, last_id = 1, first.id
        for item in stream:
            assert item.id < last_id
            count, last_id = count + 1, item.id
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == ROWS
    # One page (1,000 rows) at a time: a few MB at most, where the whole list takes ~100 MB.
    assert after_first < 8_000_000, after_first
    assert peak < 8_000_000, peak
