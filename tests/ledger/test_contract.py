"""The `Ledger` contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boda.errors import Conflict, NotFound, UsageError
from boda.ledger import Ledger, PromotionTx, open_ledger
from boda.types import Digest

APP = "foo/bar"


def dg(n: int) -> Digest:
    return Digest.of(f"image {n}".encode())


def sha(n: int) -> str:
    return hashlib.sha1(f"commit {n}".encode()).hexdigest()


def promote(
    ledger: Ledger,
    env: str,
    digest: Digest,
    *,
    kind: str = "promote",
    app: str = APP,
    reason: str | None = None,
) -> None:
    with ledger.promotion_lock(app, env) as tx:
        current = tx.current()
        tx.record_promotion(
            digest=digest,
            commit=None,
            reference=f"reg.example/{app}@{digest}",
            by="ci",
            kind=kind,
            reason=reason,
            expected_previous=current.digest if current else None,
        )


# -- builds -------------------------------------------------------------------------------------


def test_record_build_is_idempotent_and_a_commit_keeps_its_digest(ledger: Ledger) -> None:
    build, created = ledger.record_build(APP, commit=sha(1), digest=dg(1), reference="r:1", by="alice")
    assert created
    assert (build.app, build.commit, build.digest, build.reference, build.recorded_by) == (
        APP,
        sha(1),
        dg(1),
        "r:1",
        "alice",
    )
    assert build.recorded_at.tzinfo == UTC
    assert abs(datetime.now(UTC) - build.recorded_at) < timedelta(minutes=1)

    again, created = ledger.record_build(APP, commit=sha(1), digest=dg(1), reference="other", by="bob")
    assert not created
    assert again == build
    with pytest.raises(Conflict, match="was built as"):
        ledger.record_build(APP, commit=sha(1), digest=dg(2), reference="r:2", by="bob")
    assert ledger.get_build(APP, sha(1)) == build
    assert [e.action for e in ledger.events(APP)] == ["build"]


def test_a_build_keeps_the_commit_tag_it_got_and_what_its_manifest_is(ledger: Ledger) -> None:
    media = "application/vnd.oci.image.index.v1+json"
    build, created = ledger.record_build(
        APP, commit=sha(1), digest=dg(1), reference="r", by="ci", tag=sha(1)[:12], media_type=media, size=512
    )
    assert created and (build.tag, build.media_type, build.size) == (sha(1)[:12], media, 512)
    for found in (
        ledger.get_build(APP, sha(1)),
        ledger.builds_by_digest(dg(1))[0],
        ledger.builds_by_commit_prefix(APP, sha(1)[:8])[0],
        ledger.list_builds(APP)[0],
    ):
        assert found == build
    assert ledger.events(APP)[0].detail == {"commit": sha(1), "reference": "r", "tag": sha(1)[:12]}
    # Recorded again (another tag, say): the build as first recorded.
    again, created = ledger.record_build(
        APP, commit=sha(1), digest=dg(1), reference="r", by="ci", tag=sha(1)[:8], media_type=media, size=512
    )
    assert not created and again == build
    # Without them (what an older caller records): None, and many builds may lack a tag.
    for n in (2, 3):
        bare, _ = ledger.record_build(APP, commit=sha(n), digest=dg(n), reference="r", by="ci")
        assert (bare.tag, bare.media_type, bare.size) == (None, None, None)


def test_a_commit_tag_belongs_to_one_commit_of_an_app(ledger: Ledger) -> None:
    ledger.record_build(APP, commit=sha(1), digest=dg(1), reference="r", by="ci", tag="daf46a8f")
    with pytest.raises(
        Conflict, match=f"commit tag daf46a8f of {APP} is already recorded for commit {sha(1)}"
    ):
        ledger.record_build(APP, commit=sha(2), digest=dg(2), reference="r", by="ci", tag="daf46a8f")
    assert ledger.get_build(APP, sha(2)) is None
    assert [e.action for e in ledger.events(APP)] == ["build"]
    # Another app has its own tags.
    ledger.record_build("other", commit=sha(2), digest=dg(2), reference="r", by="ci", tag="daf46a8f")


@pytest.mark.parametrize("size", [-1, True, 1.5, "1"])
def test_a_manifest_size_must_be_a_count_of_bytes(ledger: Ledger, size: object) -> None:
    with pytest.raises(UsageError, match="invalid manifest size"):
        ledger.record_build(APP, commit=sha(1), digest=dg(1), reference="r", by="ci", size=size)  # type: ignore[arg-type]
    assert ledger.apps() == []


def test_one_digest_may_come_from_several_commits_and_apps(ledger: Ledger) -> None:
    ledger.record_build(APP, commit=sha(1), digest=dg(1), reference="r", by="ci")
    ledger.record_build(APP, commit=sha(2), digest=dg(1), reference="r", by="ci")
    ledger.record_build("other", commit=sha(1), digest=dg(1), reference="r", by="ci")
    assert [b.commit for b in ledger.builds_by_digest(dg(1), APP)] == [sha(2), sha(1)]
    assert [(b.app, b.commit) for b in ledger.builds_by_digest(dg(1))] == [
        ("other", sha(1)),
        (APP, sha(2)),
        (APP, sha(1)),
    ]
    assert ledger.builds_by_digest(dg(9)) == []
    assert ledger.apps() == [APP, "other"]


def test_invalid_commits_are_usage_errors(ledger: Ledger) -> None:
    for commit in ("abc1234", sha(1).upper(), sha(1) + "0", "z" * 40):
        with pytest.raises(UsageError):
            ledger.record_build(APP, commit=commit, digest=dg(1), reference="r", by="ci")
    for prefix in ("ABCDEF0", "abcdef", "abcdefg", "a" * 65):  # upper case, too short, not hex, too long
        with pytest.raises(UsageError):
            ledger.builds_by_commit_prefix(APP, prefix)
    assert ledger.apps() == []


def test_builds_by_commit_prefix_and_listing(ledger: Ledger) -> None:
    commits = ["abcdef01" + "1" * 32, "abcdef01" + "2" * 32, "abcdef02" + "0" * 32, "f" * 40]
    for i, commit in enumerate(commits):
        ledger.record_build(APP, commit=commit, digest=dg(i), reference="r", by="ci")
    ledger.record_build("other", commit=commits[0], digest=dg(0), reference="r", by="ci")

    assert [b.commit for b in ledger.builds_by_commit_prefix(APP, "abcdef01")] == [commits[1], commits[0]]
    assert len(ledger.builds_by_commit_prefix(APP, "abcdef0")) == 3
    assert len(ledger.builds_by_commit_prefix(None, "abcdef01")) == 3
    assert len(ledger.builds_by_commit_prefix(APP, "abcdef0", limit=2)) == 2
    assert [b.commit for b in ledger.builds_by_commit_prefix(APP, "fffffff")] == [commits[3]]
    assert ledger.builds_by_commit_prefix(APP, "0000000") == []
    assert ledger.builds_by_commit_prefix(APP, commits[2])[0].digest == dg(2)

    assert [b.commit for b in ledger.list_builds(APP)] == list(reversed(commits))
    assert [b.commit for b in ledger.list_builds(APP, limit=1)] == [commits[3]]
    assert ledger.list_builds("nobody") == []
    assert ledger.get_build(APP, "0" * 40) is None


# -- evidence -----------------------------------------------------------------------------------


def test_evidence_is_kept_newest_first_and_filtered(ledger: Ledger) -> None:
    first = ledger.record_evidence(APP, env="dev", digest=dg(1), kind="tests", result="fail", by="ci")
    second = ledger.record_evidence(
        APP, env="dev", digest=dg(1), kind="tests", result="pass", by="ci", url="https://ci/2"
    )
    other_env = ledger.record_evidence(APP, env="stg", digest=dg(1), kind="signoff", result="pass", by="qa")
    other_digest = ledger.record_evidence(APP, env="dev", digest=dg(2), kind="tests", result="pass", by="ci")

    assert (second.kind, second.result, second.url, second.by) == ("tests", "pass", "https://ci/2", "ci")
    assert first.url is None and first.at.tzinfo == UTC
    assert ledger.evidence(APP, "dev", dg(1)) == [second, first]
    assert ledger.evidence(APP, "dev") == [other_digest, second, first]
    assert ledger.evidence(APP, digest=dg(1)) == [other_env, second, first]
    assert ledger.evidence(APP) == [other_digest, other_env, second, first]
    assert ledger.evidence("nobody") == []
    with pytest.raises(UsageError, match="pass or fail"):
        ledger.record_evidence(APP, env="dev", digest=dg(1), kind="tests", result="ok", by="ci")
    events = ledger.events(APP)
    assert [e.action for e in events] == ["evidence"] * 4
    assert events[0].detail == {
        "evidence_id": other_digest.id,
        "kind": "tests",
        "result": "pass",
        "url": None,
    }
    assert (events[0].env, events[0].digest) == ("dev", dg(2))


# -- promotions ---------------------------------------------------------------------------------


def test_promotions_are_compare_and_set_history(ledger: Ledger) -> None:
    assert ledger.current(APP, "dev") is None
    with ledger.promotion_lock(APP, "dev") as tx:
        assert isinstance(tx, PromotionTx)
        assert tx.current() is None
        first = tx.record_promotion(
            digest=dg(1),
            commit=sha(1),
            reference="reg/foo@1",
            by="alice",
            kind="promote",
            reason="first",
            expected_previous=None,
        )
        assert tx.current() == first
    assert (first.app, first.env, first.digest, first.commit, first.previous_digest) == (
        APP,
        "dev",
        dg(1),
        sha(1),
        None,
    )
    assert (first.reference, first.by, first.kind, first.reason) == ("reg/foo@1", "alice", "promote", "first")
    assert first.at.tzinfo == UTC

    with ledger.promotion_lock(APP, "dev") as tx, pytest.raises(Conflict, match="not the expected"):
        tx.record_promotion(
            digest=dg(2),
            commit=None,
            reference="r",
            by="bob",
            kind="promote",
            reason=None,
            expected_previous=None,
        )
    with ledger.promotion_lock(APP, "dev") as tx:
        second = tx.record_promotion(
            digest=dg(2),
            commit=None,
            reference="r",
            by="bob",
            kind="force",
            reason=None,
            expected_previous=dg(1),
        )
    assert second.previous_digest == dg(1) and second.id > first.id and second.commit is None
    assert ledger.current(APP, "dev") == second
    assert ledger.promotions(APP) == [second, first]
    events = ledger.events(APP)
    assert [e.action for e in events] == ["force", "promote"]
    assert events[0].detail == {
        "promotion_id": second.id,
        "previous_digest": str(dg(1)),
        "commit": None,
        "reference": "r",
    }


def test_what_the_lock_block_records_stays_recorded_when_the_block_fails_later(
    ledger: Ledger, ledger_url: str
) -> None:
    """The lock block is not a transaction: each record commits at once (the registry write it
    records happened), so a failure later in the block undoes nothing, and the lock is free after."""
    promote(ledger, "dev", dg(1))
    with pytest.raises(RuntimeError, match="registry write failed"), ledger.promotion_lock(APP, "dev") as tx:
        tx.record_promotion(
            digest=dg(2),
            commit=None,
            reference="r",
            by="ci",
            kind="promote",
            reason=None,
            expected_previous=dg(1),
        )
        with open_ledger(ledger_url) as other:  # another connection sees it before the block ends
            assert [p.digest for p in other.promotions(APP)] == [dg(2), dg(1)]
        tx.record_event("note", by="ci", detail={"n": 1})
        raise RuntimeError("registry write failed")
    assert [p.digest for p in ledger.promotions(APP)] == [dg(2), dg(1)]
    assert [e.action for e in ledger.events()] == ["note", "promote", "promote"]
    with pytest.raises(RuntimeError, match="after its `with` block"):
        tx.current()
    with ledger.lock_apps([APP], timeout=0):
        pass


def test_a_failing_record_in_the_lock_block_records_nothing_of_itself(ledger: Ledger) -> None:
    promote(ledger, "dev", dg(1))
    with ledger.promotion_lock(APP, "dev") as tx, pytest.raises(Conflict):
        tx.record_promotion(
            digest=dg(2),
            commit=None,
            reference="r",
            by="ci",
            kind="promote",
            reason=None,
            expected_previous=dg(3),
        )
    assert [p.digest for p in ledger.promotions(APP)] == [dg(1)]
    assert [e.action for e in ledger.events()] == ["promote"]


def test_calls_inside_the_lock_block_are_recorded(ledger: Ledger) -> None:
    with ledger.promotion_lock(APP, "stg") as tx:
        ledger.record_build(APP, commit=sha(1), digest=dg(1), reference="r", by="ci")
        tx.record_promotion(
            digest=dg(1),
            commit=sha(1),
            reference="r",
            by="ci",
            kind="promote",
            reason=None,
            expected_previous=None,
        )
        event = tx.record_event("untag", by="ci", digest=dg(1), reason="moved", detail={"tag": "stg"})
        assert ledger.current(APP, "stg") is not None
    assert (event.app, event.env, event.action, event.reason, event.detail) == (
        APP,
        "stg",
        "untag",
        "moved",
        {"tag": "stg"},
    )
    assert [e.action for e in ledger.events(APP)] == ["untag", "promote", "build"]


def test_invalid_promotion_kind_is_a_usage_error(ledger: Ledger) -> None:
    with ledger.promotion_lock(APP, "dev") as tx, pytest.raises(UsageError, match="promotion kind"):
        tx.record_promotion(
            digest=dg(1),
            commit=None,
            reference="r",
            by="ci",
            kind="move",
            reason=None,
            expected_previous=None,
        )
    assert ledger.promotions(APP) == []


def test_history_current_and_where(ledger: Ledger) -> None:
    for env, n in [("dev", 1), ("dev", 2), ("stg", 1), ("dev", 3), ("prd", 1), ("stg", 2)]:
        promote(ledger, env, dg(n))
    promote(ledger, "dev", dg(1), app="other")

    assert [(p.env, p.digest) for p in ledger.promotions(APP)] == [
        ("stg", dg(2)),
        ("prd", dg(1)),
        ("dev", dg(3)),
        ("stg", dg(1)),
        ("dev", dg(2)),
        ("dev", dg(1)),
    ]
    assert [p.digest for p in ledger.promotions(APP, "dev")] == [dg(3), dg(2), dg(1)]
    assert [p.digest for p in ledger.promotions(APP, "dev", limit=2)] == [dg(3), dg(2)]
    assert ledger.promotions(APP, "qa") == []
    current = ledger.current_all(APP)
    assert {env: p.digest for env, p in current.items()} == {"dev": dg(3), "prd": dg(1), "stg": dg(2)}
    assert list(current) == ["dev", "prd", "stg"]
    assert current["stg"].previous_digest == dg(1)
    assert ledger.current_all("nobody") == {}

    assert [(p.app, p.env) for p in ledger.environments_with(dg(1))] == [(APP, "prd"), ("other", "dev")]
    assert [p.env for p in ledger.environments_with(dg(1), APP)] == ["prd"]
    assert ledger.environments_with(dg(9)) == []
    assert [(p.app, p.env) for p in ledger.promotions_of(dg(1))] == [
        ("other", "dev"),
        (APP, "prd"),
        (APP, "stg"),
        (APP, "dev"),
    ]
    assert [p.env for p in ledger.promotions_of(dg(1), APP)] == ["prd", "stg", "dev"]
    assert [p.app for p in ledger.promotions_of(dg(1), env="dev")] == ["other", APP]
    assert [p.env for p in ledger.promotions_of(dg(1), APP, "stg")] == ["stg"]
    assert ledger.promotions_of(dg(3), APP, "stg") == []
    assert ledger.apps() == [APP, "other"]


def test_previous_digests_are_distinct_and_exclude_the_current_one(ledger: Ledger) -> None:
    assert ledger.previous_digests(APP, "dev", 3) == []
    for n in [1, 2, 1, 3, 3, 4, 2]:
        promote(ledger, "dev", dg(n))
    assert ledger.previous_digests(APP, "dev", 10) == [dg(4), dg(3), dg(1)]
    assert ledger.previous_digests(APP, "dev", 2) == [dg(4), dg(3)]
    assert ledger.previous_digests(APP, "dev", 0) == []
    promote(ledger, "dev", dg(4), kind="rollback", reason="broken")
    assert ledger.previous_digests(APP, "dev", 3) == [dg(2), dg(3), dg(1)]
    previous = ledger.previous_promotions(APP, "dev", 3)
    history = ledger.promotions(APP, "dev")
    assert previous == [history[1], history[3], history[5]]
    with ledger.promotion_lock(APP, "dev") as tx:
        assert tx.previous_digests(1) == [dg(2)]
        assert tx.previous_promotions(1) == [history[1]]
    rollback = ledger.current(APP, "dev")
    assert rollback is not None and (rollback.kind, rollback.reason) == ("rollback", "broken")


def test_previous_digests_page_through_long_histories(ledger: Ledger) -> None:
    for n in [1, 2] + [3, 4] * 40 + [5]:
        promote(ledger, "dev", dg(n), app="long")
    assert ledger.previous_digests("long", "dev", 4) == [dg(4), dg(3), dg(2), dg(1)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=25), st.integers(0, 6))
def test_previous_digests_match_a_model(history: list[int], depth: int) -> None:
    with open_ledger("sqlite:///:memory:") as ledger:
        for n in history:
            promote(ledger, "dev", dg(n))
        expected: list[Digest] = []
        for n in reversed(history[:-1]):
            if dg(n) != dg(history[-1]) and dg(n) not in expected:
                expected.append(dg(n))
        assert ledger.previous_digests(APP, "dev", depth) == expected[:depth]


# -- pins and events ----------------------------------------------------------------------------


def test_pins(ledger: Ledger) -> None:
    pin, created = ledger.pin(APP, dg(1), reason="audit", by="alice")
    assert created and (pin.app, pin.digest, pin.reason, pin.by) == (APP, dg(1), "audit", "alice")
    assert pin.at.tzinfo == UTC
    same, created = ledger.pin(APP, dg(1), reason="other reason", by="bob")
    assert not created and same == pin
    ledger.pin(APP, dg(2), reason="keep", by="bob")
    ledger.pin("other", dg(3), reason="keep", by="bob")
    assert {p.digest for p in ledger.pins(APP)} == {dg(1), dg(2)}

    assert ledger.unpin(APP, dg(1), by="carol") == pin
    assert [p.digest for p in ledger.pins(APP)] == [dg(2)]
    with pytest.raises(NotFound, match="not pinned"):
        ledger.unpin(APP, dg(1), by="carol")
    with pytest.raises(NotFound):
        ledger.unpin(APP, dg(3), by="carol")
    events = ledger.events(APP)
    assert [(e.action, e.by, e.digest) for e in events] == [
        ("unpin", "carol", dg(1)),
        ("pin", "bob", dg(2)),
        ("pin", "alice", dg(1)),
    ]
    assert events[2].reason == "audit" and events[0].detail == {"pin_reason": "audit"}


def test_events_are_an_append_only_log(ledger: Ledger) -> None:
    ledger.record_build(APP, commit=sha(1), digest=dg(1), reference="r", by="ci")
    promote(ledger, "dev", dg(1))
    expired = ledger.record_event(
        "expire",
        app=APP,
        by="gc",
        digest=dg(0),
        reason="lifecycle rule 1",
        detail={"size": 12, "tags": ["a"]},
    )
    ledger.record_event("expire", app="other", by="gc")
    assert (expired.action, expired.app, expired.env, expired.digest, expired.reason) == (
        "expire",
        APP,
        None,
        dg(0),
        "lifecycle rule 1",
    )
    assert expired.detail == {"size": 12, "tags": ["a"]} and expired.at.tzinfo == UTC
    assert [e.action for e in ledger.events(APP)] == ["expire", "promote", "build"]
    assert ledger.events(APP)[0] == expired
    assert [e.app for e in ledger.events()] == ["other", APP, APP, APP]
    assert [e.action for e in ledger.events(limit=2)] == ["expire", "expire"]
    ids = [e.id for e in ledger.events()]
    assert ids == sorted(ids, reverse=True)


# -- opening ------------------------------------------------------------------------------------


def test_facts_survive_reopening_and_use_the_given_clock(ledger_url: str) -> None:
    moment = datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=UTC)
    with open_ledger(ledger_url, clock=lambda: moment, create=True) as ledger:
        build, _ = ledger.record_build(APP, commit=sha(1), digest=dg(1), reference="r", by="ci")
        promote(ledger, "dev", dg(1))
    assert build.recorded_at == moment
    with open_ledger(ledger_url) as ledger:
        assert ledger.get_build(APP, sha(1)) == build
        current = ledger.current(APP, "dev")
        assert current is not None and current.at == moment
        assert [e.at for e in ledger.events()] == [moment, moment]


def test_sqlite_relative_urls_use_base_dir_and_create_the_folder(tmp_path: Path) -> None:
    with open_ledger("sqlite:///.boda/ledger.db", base_dir=tmp_path, create=True) as ledger:
        ledger.record_build(APP, commit=sha(1), digest=dg(1), reference="r", by="ci")
    assert (tmp_path / ".boda" / "ledger.db").is_file()
    with open_ledger(f"sqlite:///{tmp_path}/.boda/ledger.db") as ledger:
        assert ledger.apps() == [APP]
    with open_ledger("sqlite:///:memory:") as ledger:
        assert ledger.apps() == []


def test_events_can_be_read_by_action(ledger: Ledger) -> None:
    promote(ledger, "dev", dg(1))
    ledger.record_event("expire", app=APP, by="gc", digest=dg(2), detail={"repository": APP})
    ledger.record_event("note", app="other/app", by="ci")
    ledger.record_event("expire", app="other/app", by="gc", digest=dg(3))
    assert [e.action for e in ledger.events(APP, actions=("expire",))] == ["expire"]
    assert [e.digest for e in ledger.events(actions=("expire",))] == [dg(3), dg(2)]
    assert [e.action for e in ledger.events(APP, actions=("promote", "expire"))] == ["expire", "promote"]
    assert [e.digest for e in ledger.iter_events(actions=("expire",), page_size=1)] == [dg(3), dg(2)]
    assert [e.action for e in ledger.iter_events(APP, actions=("note",))] == []
    assert len(ledger.events(APP)) == len(list(ledger.iter_events(APP))) == 2
