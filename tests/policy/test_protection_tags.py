"""The protection tag scheme, the plan of a sync and the tag mutability rules (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from boda.errors import Conflict, Refused
from boda.policy.image import EcrImage
from boda.policy.protection_tags import (
    TagScheme,
    apply_plan,
    close_over_graph,
    mutability_change,
    plan_sync,
    retirees,
)
from boda.types import TAG_PATTERN

KEEP = TagScheme("keep-")
WITH = "IMMUTABLE_WITH_EXCLUSION"
T = datetime(2025, 1, 1, tzinfo=UTC)


def digest(n: int) -> str:
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


def image(n: int, *tags: str, children: tuple[int, ...] = (), subject: int | None = None) -> EcrImage:
    return EcrImage(
        digest=digest(n),
        tags=tuple(tags),
        pushed_at=T,
        children=tuple(digest(c) for c in children),
        subject=digest(subject) if subject is not None else None,
    )


def test_names_are_bound_to_the_digest_and_inside_ecr_tag_rules() -> None:
    d = "sha256:28d94d1ca5f7349e27bdcade26466ccd7e4c6d04ddc6358b924903c19cd84bae"
    assert KEEP.tag("prd", d) == "keep-prd-28d94d1ca5f7"
    assert KEEP.tag("pin", d) == "keep-pin-28d94d1ca5f7"
    assert KEEP.carrier(d) == "keep-untag-28d94d1ca5f7"
    assert KEEP.parse("keep-prd-eu-28d94d1ca5f7") == ("prd-eu", "28d94d1ca5f7")
    assert KEEP.owns("keep-prd-28d94d1ca5f7", d) and not KEEP.owns("keep-prd-28d94d1ca5f7", digest(1))
    for foreign in ("keep-forever", "keep-prd-28d94d1ca5f", "prd-28d94d1ca5f7", "keep--28d94d1ca5f7"):
        assert KEEP.parse(foreign) is None
    # The longest prefix and environment name still make a valid tag (ECR: distribution grammar).
    longest = TagScheme("k" * 31 + "-").tag("e" * 63, d)
    assert len(longest) <= 128 and TAG_PATTERN.match(longest)
    with pytest.raises(ValueError, match="cannot label"):
        KEEP.tag("Prd", d)


def test_labels_spread_over_children_referrers_and_subjects() -> None:
    images = [image(1, children=(2, 3)), image(2), image(3), image(4, subject=1)]
    images += [image(5), image(6, subject=5)]
    closed = close_over_graph(images, {digest(1): {"prd"}, digest(6): {"pin"}})
    assert closed == {
        digest(1): {"prd"},
        digest(2): {"prd"},
        digest(3): {"prd"},
        digest(4): {"prd"},
        digest(5): {"pin"},  # the subject of a protected referrer: ECR would expire the referrer with it
        digest(6): {"pin"},
    }


def test_plan_adds_first_and_never_deletes_a_last_tag() -> None:
    d1, d2, d3 = digest(1), digest(2), digest(3)
    images = [
        image(1, "c1", KEEP.tag("dev", d1)),  # stays protected
        image(2, "c2", KEEP.tag("dev", d2)),  # leaves dev: the commit tag stays, the keep tag goes
        image(3, KEEP.tag("run", d3)),  # no longer running, no other tag: stripped, not deleted
        image(4, "c4"),  # newly current
    ]
    plan = plan_sync(KEEP, "r", images, {d1: {"dev"}, digest(4): {"dev", "prd"}})
    assert plan.add == ((digest(4), KEEP.tag("dev", digest(4))), (digest(4), KEEP.tag("prd", digest(4))))
    assert plan.remove == ((d2, KEEP.tag("dev", d2)),)
    assert plan.strip == ((d3, KEEP.tag("run", d3)),)
    assert plan.parking in (d1, digest(4))  # holds protection tags of its own through the sync
    after = {i.digest: set(i.tags) for i in apply_plan(images, plan)}
    assert after == {
        d1: {"c1", KEEP.tag("dev", d1)},
        d2: {"c2"},
        d3: set(),
        digest(4): {"c4", KEEP.tag("dev", digest(4)), KEEP.tag("prd", digest(4))},
    }
    again = plan_sync(KEEP, "r", apply_plan(images, plan), {d1: {"dev"}, digest(4): {"dev", "prd"}})
    assert again.empty  # idempotent


def test_without_runtimes_only_additions_and_without_parking_nothing_last() -> None:
    images = [image(1, KEEP.tag("run", digest(1))), image(2, "c2")]
    plan = plan_sync(KEEP, "r", images, {digest(2): {"dev"}}, removals=False)
    assert plan.add and not (plan.remove or plan.strip or plan.untag) and plan.left
    lonely = plan_sync(KEEP, "r", [image(1, KEEP.tag("run", digest(1)))], {})
    assert lonely.empty and "no protected image to park it on" in lonely.left[0]


def test_environments_the_ledger_forgot_keep_their_tags() -> None:
    images = [image(1, "c1", KEEP.tag("prd", digest(1))), image(2, "c2", KEEP.tag("dev", digest(2)))]
    plan = plan_sync(KEEP, "r", images, {}, keep_labels={"prd"})
    assert plan.remove == ((digest(2), KEEP.tag("dev", digest(2))),)


def test_a_needed_tag_on_another_image_is_a_conflict() -> None:
    """Two digests of one repository with the same first 12 hex digits (or a tag moved by hand)."""
    twin = EcrImage(digest=digest(1)[:-1] + ("0" if digest(1)[-1] != "0" else "1"), tags=(), pushed_at=T)
    taken = KEEP.tag("dev", twin.digest)
    with pytest.raises(Conflict, match="two digests share"):
        plan_sync(KEEP, "r", [image(1, "c1"), image(2, taken)], {digest(1): {"dev"}})


def test_untag_plan_and_retirees() -> None:
    d = {n: digest(n) for n in range(1, 7)}
    images = [
        image(1, "c1", KEEP.tag("dev", d[1])),  # left the window: retired
        image(2, "c2", "prd"),  # environment tag in the registry: drift, never retired
        image(3, "c3"),  # never promoted: kept tagged
        image(4, "c4", KEEP.tag("dev", d[4])),  # current
        image(5, "sha256-" + d[1][7:] + ".sig", subject=1),  # its tag-based signature goes with it
        image(6, "c6", KEEP.tag("prd", d[6])),  # prd: the ledger knows nothing current there
    ]
    labels = {d[4]: {"dev"}}
    out = retirees(KEEP, images, labels, promoted={d[1], d[2], d[4], d[6]}, held={d[2]}, keep_labels={"prd"})
    assert out == {d[1], d[5]}
    plan = plan_sync(KEEP, "r", images, labels, retire=out, keep_labels={"prd"})
    assert dict(plan.untag) == {d[1]: ("c1", KEEP.tag("dev", d[1])), d[5]: (images[4].tags[0],)}
    assert plan.parking == d[4]
    after = {i.digest: set(i.tags) for i in apply_plan(images, plan)}
    assert after[d[1]] == set() and after[d[5]] == set() and after[d[3]] == {"c3"}


@pytest.mark.parametrize(
    ("mutability", "filters", "needed", "expected"),
    [
        ("MUTABLE", [], ["keep-*", "prd"], None),
        ("IMMUTABLE", [], ["keep-*", "prd"], ("IMMUTABLE_WITH_EXCLUSION", ("keep-*", "prd"))),
        ("IMMUTABLE_WITH_EXCLUSION", ["k*", "p*"], ["keep-*", "prd"], None),
        ("IMMUTABLE_WITH_EXCLUSION", ["keep-p*"], ["keep-*"], (WITH, ("keep-p*", "keep-*"))),
        ("IMMUTABLE_WITH_EXCLUSION", ["*e*"], ["keep-*"], None),  # matches "keep-" and everything after
        ("IMMUTABLE_WITH_EXCLUSION", ["keep-*-x"], ["keep-*"], (WITH, ("keep-*-x", "keep-*"))),
        ("MUTABLE_WITH_EXCLUSION", ["v*", "release-*"], ["keep-*", "prd"], None),
    ],
)
def test_mutability_change(
    mutability: str, filters: list[str], needed: list[str], expected: tuple[str, tuple[str, ...]] | None
) -> None:
    assert mutability_change("r", mutability, filters, needed) == expected


@pytest.mark.parametrize("frozen", ["keep-*", "k*", "*", "*-prd-*", "prd", "kee?"[:3] + "p-pin-*"])
def test_settings_that_freeze_a_tag_that_moves_are_refused(frozen: str) -> None:
    with pytest.raises(Refused, match="immutable"):
        mutability_change("r", "MUTABLE_WITH_EXCLUSION", [frozen], ["keep-*", "prd"])


def test_more_than_five_filters_is_refused() -> None:
    with pytest.raises(Refused, match="ECR allows 5"):
        mutability_change("r", "IMMUTABLE_WITH_EXCLUSION", ["a", "b", "c"], ["keep-*", "x", "y"])
