"""ECR lifecycle evaluation: every worked example of AWS's "Examples of lifecycle policies in Amazon
ECR" page (current and older revisions), the documented semantics, the image graph and the preview.

Every test runs against both evaluators: the columnar one boda runs and the reference one.
Run this file directly for the by-hand timing check on a million images.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from boda.policy import (
    Decision,
    EcrImage,
    LifecyclePolicy,
    evaluate,
    evaluate_reference,
    parse_policy,
    preview,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
Evaluator = Callable[[LifecyclePolicy, Sequence[EcrImage], datetime], list[Decision]]
EVALUATORS: dict[str, Evaluator] = {"columnar": evaluate, "reference": evaluate_reference}
_evaluator: list[Evaluator] = [evaluate]


@pytest.fixture(autouse=True, params=sorted(EVALUATORS))
def evaluator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run the test with each evaluator in turn (through `evaluate_with`)."""
    _evaluator[0] = EVALUATORS[request.param]
    yield
    _evaluator[0] = evaluate


def evaluate_with(policy: LifecyclePolicy, images: Sequence[EcrImage], now: datetime) -> list[Decision]:
    return _evaluator[0](policy, images, now)


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def img(name: str, tags: list[str], days: float, **kw: Any) -> EcrImage:
    return EcrImage(digest=dg(name), tags=tuple(tags), pushed_at=NOW - timedelta(days=days), **kw)


def rule(priority: int, action: str = "expire", **selection: Any) -> dict[str, Any]:
    act: dict[str, Any] = {"type": action}
    if action == "transition":
        act["targetStorageClass"] = "archive"
    if selection.get("countType", "").startswith("since"):
        selection.setdefault("countUnit", "days")
    return {
        "rulePriority": priority,
        "description": f"Rule {priority}",
        "selection": selection,
        "action": act,
    }


def run(rules: list[dict[str, Any]], images: list[EcrImage]) -> dict[str, Decision]:
    decisions = evaluate_with(parse_policy(json.dumps({"rules": rules})), images, NOW)
    return {d.digest: d for d in decisions}


def acted(rules: list[dict[str, Any]], images: list[EcrImage]) -> dict[str, tuple[str, int]]:
    """image name -> (action, appliedRulePriority) for every image acted on."""
    names = {image.digest: name for image, name in zip(images, NAMES_OF(images), strict=True)}
    return {
        names[d.digest]: (d.action, d.rule_priority)
        for d in run(rules, images).values()
        if d.action is not None and d.rule_priority is not None
    }


_names: dict[str, str] = {}


def NAMES_OF(images: list[EcrImage]) -> list[str]:  # noqa: N802 - reads like a table lookup
    return [_names[i.digest] for i in images]


def named(**images: EcrImage) -> list[EcrImage]:
    for name, image in images.items():
        _names[image.digest] = name
    return list(images.values())


# --------------------------------------------------------------------------- AWS worked examples


def test_filtering_on_image_age_tagged_prod() -> None:
    """'Filtering on image age': images with a tag starting prod older than 14 days expire."""
    images = named(
        old_prod=img("a", ["prod-1"], 20),
        new_prod=img("b", ["prod-2"], 10),
        old_dev=img("c", ["dev-1"], 30),
        old_untagged=img("d", [], 30),
    )
    rules = [
        rule(1, tagStatus="tagged", tagPatternList=["prod*"], countType="sinceImagePushed", countNumber=14)
    ]
    assert acted(rules, images) == {"old_prod": ("expire", 1)}


def test_filtering_on_image_age_untagged_older_revision() -> None:
    """The older revision of 'Filtering on image age': untagged images older than 14 days expire."""
    images = named(old=img("a", [], 15), new=img("b", [], 13), tagged=img("c", ["v1"], 40))
    rules = [rule(1, tagStatus="untagged", countType="sinceImagePushed", countNumber=14)]
    assert acted(rules, images) == {"old": ("expire", 1)}


def test_filtering_on_image_count() -> None:
    """'Filtering on image count': keep only one untagged image, expire all others."""
    images = named(u1=img("a", [], 3), u2=img("b", [], 2), u3=img("c", [], 1), tagged=img("d", ["x"], 9))
    rules = [rule(1, tagStatus="untagged", countType="imageCountMoreThan", countNumber=1)]
    assert acted(rules, images) == {"u1": ("expire", 1), "u2": ("expire", 1)}


def _multiple_rules_repo() -> list[EcrImage]:
    return named(
        A=img("A", ["beta-1", "prod-1"], 10), B=img("B", ["beta-2", "prod-2"], 9), C=img("C", ["beta-3"], 8)
    )


@pytest.mark.parametrize(
    "kind,prod,beta", [("tagPatternList", "prod*", "beta*"), ("tagPrefixList", "prod", "beta")]
)
def test_filtering_on_multiple_rules_example_a(kind: str, prod: str, beta: str) -> None:
    """'Filtering on multiple rules', Example A: only Image A is expired (B is shielded by rule 1)."""
    rules = [
        rule(1, tagStatus="tagged", **{kind: [prod]}, countType="imageCountMoreThan", countNumber=1),
        rule(2, tagStatus="tagged", **{kind: [beta]}, countType="imageCountMoreThan", countNumber=1),
    ]
    assert acted(rules, _multiple_rules_repo()) == {"A": ("expire", 1)}


@pytest.mark.parametrize(
    "kind,prod,beta", [("tagPatternList", "prod*", "beta*"), ("tagPrefixList", "prod", "beta")]
)
def test_filtering_on_multiple_rules_example_b(kind: str, prod: str, beta: str) -> None:
    """'Filtering on multiple rules', Example B: priorities swapped, Images A and B are expired."""
    rules = [
        rule(1, tagStatus="tagged", **{kind: [beta]}, countType="imageCountMoreThan", countNumber=1),
        rule(2, tagStatus="tagged", **{kind: [prod]}, countType="imageCountMoreThan", countNumber=1),
    ]
    assert acted(rules, _multiple_rules_repo()) == {"A": ("expire", 1), "B": ("expire", 1)}


@pytest.mark.parametrize(
    "kind,lst", [("tagPatternList", ["alpha*", "beta*"]), ("tagPrefixList", ["alpha", "beta"])]
)
def test_multiple_tags_in_a_single_rule_example_a(kind: str, lst: list[str]) -> None:
    """'Filtering on multiple tags in a single rule', Example A: all patterns must match; C expires."""
    images = named(
        A=img("A", ["alpha-1"], 12),
        B=img("B", ["beta-1"], 11),
        C=img("C", ["alpha-2", "beta-2"], 10),
        D=img("D", ["alpha-3"], 4),
        E=img("E", ["beta-3"], 3),
        F=img("F", ["alpha-4", "beta-4"], 2),
    )
    rules = [rule(1, tagStatus="tagged", **{kind: lst}, countType="sinceImagePushed", countNumber=5)]
    assert acted(rules, images) == {"C": ("expire", 1)}


@pytest.mark.parametrize(
    "kind,lst", [("tagPatternList", ["alpha*", "beta*"]), ("tagPrefixList", ["alpha", "beta"])]
)
def test_multiple_tags_in_a_single_rule_example_b(kind: str, lst: list[str]) -> None:
    """Example B: tags are not exclusive; all three match and A and B (the oldest) expire."""
    images = named(
        A=img("A", ["alpha-1", "beta-1", "gamma-1"], 10),
        B=img("B", ["alpha-2", "beta-2"], 9),
        C=img("C", ["alpha-3", "beta-3", "gamma-2"], 8),
    )
    rules = [rule(1, tagStatus="tagged", **{kind: lst}, countType="imageCountMoreThan", countNumber=1)]
    assert acted(rules, images) == {"A": ("expire", 1), "B": ("expire", 1)}


def test_filtering_on_all_images_example_a() -> None:
    """'Filtering on all images', Example A: keep the newest image; A, B and C expire."""
    images = named(
        A=img("A", ["alpha-1"], 4), B=img("B", ["beta-1"], 3), C=img("C", [], 2), D=img("D", ["alpha-2"], 1)
    )
    rules = [rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=1)]
    assert acted(rules, images) == {"A": ("expire", 1), "B": ("expire", 1), "C": ("expire", 1)}


@pytest.mark.parametrize("seeds", [("D", "E"), ("E", "D")], ids=["digests-one-way", "digests-other-way"])
@pytest.mark.parametrize("reverse", [False, True], ids=["listed-in-order", "listed-reversed"])
def test_filtering_on_all_images_example_b(seeds: tuple[str, str], reverse: bool) -> None:
    """Example B, all rule types combined: A (rule 1), B (rule 2) and D (rule 3) expire.

    D (tagged) and E (untagged) are both pushed "1 day ago". Rule 3 keeps the newest image and
    expires D, so E must count as the newer: boda's tie rule is that of equal push times an untagged
    image counts as newer than a tagged one, whatever the digests or the listing order. E is not
    older than one day (the comparison is strict), so rule 2 leaves it.
    """
    images = named(
        A=img("A", ["alpha-1", "beta-1"], 4),
        B=img("B", [], 3),
        C=img("C", ["alpha-2"], 2),
        D=img(seeds[0], ["git-hash"], 1),
        E=img(seeds[1], [], 1),
    )
    rules = [
        rule(1, tagStatus="tagged", tagPatternList=["alpha*"], countType="imageCountMoreThan", countNumber=1),
        rule(2, tagStatus="untagged", countType="sinceImagePushed", countNumber=1),
        rule(3, tagStatus="any", countType="imageCountMoreThan", countNumber=1),
    ]
    if reverse:
        images.reverse()
    assert acted(rules, images) == {"A": ("expire", 1), "B": ("expire", 2), "D": ("expire", 3)}


def test_filtering_on_last_pulled_time() -> None:
    """'Filtering on last pulled time' / 'Archiving images not pulled in a specified number of days'."""
    images = named(
        stale_pull=img("a", ["v1"], 300, last_pulled_at=NOW - timedelta(days=100)),
        recent_pull=img("b", ["v2"], 300, last_pulled_at=NOW - timedelta(days=10)),
        never_pulled_old=img("c", [], 100),
        never_pulled_new=img("d", [], 10),
        restored=img(
            "e",
            ["v3"],
            300,
            last_pulled_at=NOW - timedelta(days=200),
            last_activated_at=NOW - timedelta(days=5),
        ),
        archived=img("f", ["v4"], 300, status="ARCHIVED", last_archived_at=NOW - timedelta(days=100)),
    )
    rules = [rule(1, "transition", tagStatus="any", countType="sinceImagePulled", countNumber=90)]
    assert acted(rules, images) == {"stale_pull": ("transition", 1), "never_pulled_old": ("transition", 1)}


def test_filtering_on_archive_transition_time() -> None:
    """'Filtering on archive transition time': archived more than 365 days ago expires."""
    images = named(
        long_archived=img("a", ["v1"], 900, status="ARCHIVED", last_archived_at=NOW - timedelta(days=400)),
        recently_archived=img(
            "b", ["v2"], 900, status="ARCHIVED", last_archived_at=NOW - timedelta(days=100)
        ),
        no_archive_time=img("c", ["v3"], 900, status="ARCHIVED"),
        active_old=img("d", ["v4"], 1000),
    )
    rules = [
        rule(1, tagStatus="any", storageClass="archive", countType="sinceImageTransitioned", countNumber=365)
    ]
    assert acted(rules, images) == {"long_archived": ("expire", 1)}


def test_archiving_images_older_than_a_number_of_days() -> None:
    """'Archiving images older than a specified number of days': prod* older than 30 days archived."""
    images = named(
        old_prod=img("a", ["prod-1"], 31), new_prod=img("b", ["prod-2"], 29), old_dev=img("c", ["d"], 90)
    )
    rules = [
        rule(
            1,
            "transition",
            tagStatus="tagged",
            tagPatternList=["prod*"],
            countType="sinceImagePushed",
            countNumber=30,
        )
    ]
    assert acted(rules, images) == {"old_prod": ("transition", 1)}


COMBINED = [
    rule(1, "transition", tagStatus="any", countType="sinceImagePushed", countNumber=30),
    rule(2, tagStatus="any", storageClass="archive", countType="sinceImageTransitioned", countNumber=365),
]


def _combined_repo() -> list[EcrImage]:
    return named(
        old=img("a", ["v1"], 40),
        young=img("b", [], 10),
        archived_long=img("c", ["v0"], 800, status="ARCHIVED", last_archived_at=NOW - timedelta(days=400)),
        archived_short=img("d", [], 800, status="ARCHIVED", last_archived_at=NOW - timedelta(days=100)),
    )


def test_combining_archive_and_expire_rules() -> None:
    """'Combining archive and expire rules': archive after 30 days, expire after 365 in archive."""
    assert acted(COMBINED, _combined_repo()) == {"old": ("transition", 1), "archived_long": ("expire", 2)}


# --------------------------------------------------------------------------- documented semantics


def test_shield_applies_even_when_the_higher_rule_does_not_act() -> None:
    images = named(prod=img("a", ["prod-1"], 500), other=img("b", ["x"], 500), new=img("c", [], 0))
    rules = [
        rule(
            1, tagStatus="tagged", tagPatternList=["prod*"], countType="imageCountMoreThan", countNumber=9999
        ),
        rule(2, tagStatus="any", countType="imageCountMoreThan", countNumber=1),
    ]
    assert acted(rules, images) == {"other": ("expire", 2)}


@pytest.mark.parametrize(
    "pattern,tags,matches",
    [
        ("prod*", ["prod"], True),
        ("prod*", ["production-team1"], True),
        ("prod*", ["xprod"], False),
        ("*prod*", ["repo-production"], True),
        ("prod", ["prod"], True),
        ("prod", ["prod1"], False),
        ("a*b", ["a1", "2b"], False),  # a glob never spans two tags
        ("*-sha-*", ["app-sha-1234"], True),
        ("v1.*", ["v1x2"], False),  # '.' is literal
        ("*test*1*2*3", ["xtestA1B2C3"], True),
    ],
)
def test_pattern_matching(pattern: str, tags: list[str], matches: bool) -> None:
    images = named(image=img("a", tags, 10))
    rules = [
        rule(1, tagStatus="tagged", tagPatternList=[pattern], countType="sinceImagePushed", countNumber=1)
    ]
    assert bool(acted(rules, images)) is matches


def test_wildcard_patterns_match_in_linear_time() -> None:
    """`a*a*a*a*a` against tags of 299 `a`s and a `b`: a backtracking regex takes seconds per tag
    (2.6 s measured for one tag; 20 images would take about a minute). Linear matching: milliseconds."""
    images = [img(f"slow-{i}", ["a" * 299 + "b", "b" * 300], 10) for i in range(20)]
    images.append(img("match", ["a" * 300], 10))
    rules = [
        rule(1, tagStatus="tagged", tagPatternList=["a*a*a*a*a"], countType="sinceImagePushed", countNumber=1)
    ]
    started = time.perf_counter()
    decisions = run(rules, images)
    assert time.perf_counter() - started < 1.0
    assert set(decisions) == {dg("match")}


def test_prefix_matches_the_start_of_a_tag_only() -> None:
    images = named(yes=img("a", ["x", "production"], 10), no=img("b", ["preprod"], 10))
    rules = [rule(1, tagStatus="tagged", tagPrefixList=["prod"], countType="sinceImagePushed", countNumber=1)]
    assert acted(rules, images) == {"yes": ("expire", 1)}


def test_since_pushed_is_strictly_older() -> None:
    images = named(
        exact=img("a", [], 14), older=EcrImage(digest=dg("b"), pushed_at=NOW - timedelta(days=14, seconds=1))
    )
    _names[dg("b")] = "older"
    rules = [rule(1, tagStatus="untagged", countType="sinceImagePushed", countNumber=14)]
    assert acted(rules, images) == {"older": ("expire", 1)}


def test_equal_push_times_are_ordered_by_digest() -> None:
    same = NOW - timedelta(days=1)
    first, second = sorted([dg("x"), dg("y")])
    images = [EcrImage(digest=second, pushed_at=same), EcrImage(digest=first, pushed_at=same)]
    policy = parse_policy(
        json.dumps({"rules": [rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=1)]})
    )
    assert [d.digest for d in evaluate_with(policy, images, NOW)] == [second]


@pytest.mark.parametrize("year", [2025, 1800, 9000])
def test_push_times_a_microsecond_apart_are_not_equal(year: int) -> None:
    """Float timestamps cannot tell microseconds apart far from 1970: counts stay exact there too."""
    older = datetime(year, 1, 1, tzinfo=UTC)
    low, high = sorted([dg("x"), dg("y")])
    images = named(
        older=EcrImage(digest=low, pushed_at=older),
        newer=EcrImage(digest=high, pushed_at=older + timedelta(microseconds=1)),
    )
    rules = [rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=1)]
    assert acted(rules, images) == {"older": ("expire", 1)}
    since = [rule(1, tagStatus="any", countType="sinceImagePushed", countNumber=1)]
    later = older + timedelta(days=1, microseconds=1)
    policy = parse_policy(json.dumps({"rules": since}))
    assert [d.digest for d in evaluate_with(policy, images, later)] == [low]


def test_equal_push_times_untagged_counts_as_newer_than_tagged() -> None:
    """The tie rule comes before the digest: the untagged image is kept even with the higher digest."""
    low, high = sorted([dg("x"), dg("y")])
    same = NOW - timedelta(days=3)
    images = named(
        tagged=EcrImage(digest=low, tags=("v1",), pushed_at=same),
        untagged=EcrImage(digest=high, pushed_at=same),
    )
    rules = [rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=1)]
    assert acted(rules, images) == {"tagged": ("expire", 1)}


def test_a_restored_image_is_ordered_by_its_restore_time() -> None:
    """AWS: "If an image was archived and then restored at any point in the past, the image's
    last_activated_at is used instead of pushed_at_time." An old image restored yesterday is the
    newest for imageCountMoreThan, and one day old for sinceImagePushed."""
    images = named(
        restored=img("r", ["v1"], 400, last_activated_at=NOW - timedelta(days=1)),
        newer=img("n", ["v2"], 10),
        older=img("o", ["v3"], 20),
    )
    keep_one = [rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=1)]
    assert acted(keep_one, images) == {"newer": ("expire", 1), "older": ("expire", 1)}
    week = [rule(1, tagStatus="any", countType="sinceImagePushed", countNumber=7)]
    assert acted(week, images) == {"newer": ("expire", 1), "older": ("expire", 1)}
    rows = preview(parse_policy(json.dumps({"rules": keep_one})), images, NOW).preview_results
    assert {r.image_pushed_at for r in rows} == {NOW - timedelta(days=10), NOW - timedelta(days=20)}


@pytest.mark.parametrize(
    "selection",
    [
        {"tagStatus": "any", "countType": "sinceImagePushed"},
        {"tagStatus": "untagged", "countType": "sinceImagePushed"},
        {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "sinceImagePushed"},
        {"tagStatus": "any", "countType": "imageCountMoreThan"},
    ],
)
@pytest.mark.parametrize("count", [999_999_999, 1_000_000_000, 10**30])
def test_a_count_beyond_any_age_selects_nothing(selection: dict[str, Any], count: int) -> None:
    """A cutoff before the year 1 (or more images than any repository holds): nothing is that old."""
    ancient = EcrImage(digest=dg("ancient"), tags=("v1",), pushed_at=datetime(1, 1, 2, tzinfo=UTC))
    images = named(ancient=ancient, new=img("n", [], 0))
    assert acted([rule(1, **selection, countNumber=count)], images) == {}


@pytest.mark.parametrize("count_type", ["sinceImagePulled", "sinceImageTransitioned"])
def test_a_count_beyond_any_age_selects_nothing_for_pull_and_archive_times(count_type: str) -> None:
    old = datetime(1, 1, 2, tzinfo=UTC)
    images = named(
        pulled=EcrImage(digest=dg("p"), tags=("v1",), pushed_at=old, last_pulled_at=old),
        archived=EcrImage(
            digest=dg("a"), tags=("v2",), pushed_at=old, status="ARCHIVED", last_archived_at=old
        ),
    )
    selection: dict[str, Any] = {"tagStatus": "any", "countType": count_type, "countNumber": 10**12}
    action = "transition"
    if count_type == "sinceImageTransitioned":
        selection["storageClass"] = "archive"
        action = "expire"
    assert acted([rule(1, action, **selection)], images) == {}


def test_archived_and_activating_images_are_not_seen_by_standard_rules() -> None:
    images = named(
        archived=img("a", [], 1, status="ARCHIVED"),
        activating=img("b", [], 2, status="ACTIVATING"),
        newest_active=img("c", [], 3),
        older_active=img("d", [], 4),
    )
    rules = [rule(1, tagStatus="untagged", countType="imageCountMoreThan", countNumber=1)]
    assert acted(rules, images) == {"older_active": ("expire", 1)}


def test_reason_names_the_rule() -> None:
    images = named(u1=img("a", [], 3), u2=img("b", [], 2))
    decisions = run([rule(4, tagStatus="untagged", countType="imageCountMoreThan", countNumber=1)], images)
    assert decisions[dg("a")].reason == "rulePriority 4: not among the newest 1 untagged images; expired"


def test_now_must_be_aware() -> None:
    policy = parse_policy(
        json.dumps({"rules": [rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=1)]})
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_with(policy, [], datetime(2025, 1, 1))


# --------------------------------------------------------------------------- index children and referrers

UNTAGGED_AFTER_1_DAY = rule(1, tagStatus="untagged", countType="sinceImagePushed", countNumber=1)


def test_child_of_a_kept_index_is_not_expired() -> None:
    child = img("child", [], 30)
    index = img("index", ["v1"], 30, children=(child.digest,))
    decisions = run([UNTAGGED_AFTER_1_DAY], [index, child])
    assert decisions[child.digest].action is None
    assert decisions[child.digest].rule_priority == 1
    assert f"listed by index {index.digest}, which stays" in decisions[child.digest].reason
    assert index.digest not in decisions


def test_child_of_an_expired_index_is_expired_even_by_a_higher_priority_rule() -> None:
    """The index is expired by the last rule; its child's rule comes first: parents resolve first."""
    child = img("child", [], 30)
    index = img("index", ["old"], 30, children=(child.digest,))
    rules = [
        UNTAGGED_AFTER_1_DAY,
        rule(2, tagStatus="any", countType="imageCountMoreThan", countNumber=1),
    ]
    newest = img("newest", ["new"], 0)
    decisions = run(rules, [child, index, newest])
    assert decisions[index.digest].action == "expire"
    assert decisions[child.digest] == Decision(child.digest, "expire", 1, decisions[child.digest].reason)


def test_nested_indexes_keep_grandchildren() -> None:
    leaf = img("leaf", [], 30)
    inner = img("inner", [], 30, children=(leaf.digest,))
    outer = img("outer", ["keep"], 30, children=(inner.digest,))
    decisions = run([UNTAGGED_AFTER_1_DAY], [leaf, inner, outer])
    assert decisions[inner.digest].action is None
    assert decisions[leaf.digest].action is None


def test_child_may_be_archived_when_its_index_is_archived() -> None:
    child = img("child", [], 300)
    index = img("index", ["v1"], 300, status="ARCHIVED", children=(child.digest,))
    rules = [rule(1, "transition", tagStatus="any", countType="sinceImagePushed", countNumber=30)]
    decisions = run(rules, [index, child])
    assert decisions[child.digest].action == "transition"


def test_index_cycle_keeps_both() -> None:
    a_digest, b_digest = dg("a"), dg("b")
    a = EcrImage(digest=a_digest, pushed_at=NOW - timedelta(days=9), children=(b_digest,))
    b = EcrImage(digest=b_digest, pushed_at=NOW - timedelta(days=9), children=(a_digest,))
    decisions = run([UNTAGGED_AFTER_1_DAY], [a, b])
    assert {d.action for d in decisions.values()} == {None}


def test_an_index_in_archive_does_not_hold_back_an_archive_through_a_cycle() -> None:
    """Found by the agreement property test. `sub` is archived by the rule; `restoring` (an index
    being restored, so still in archive) lists it, which allows an archive; `sig` refers to `sub` and
    lists `restoring`. The links form a cycle, but nothing in it forbids the archive: `sub` and `sig`
    are archived, `restoring` (a referrer, not ACTIVE) stays where it is. (The digests order the
    images as in the case found: a depth-first walk from `sub` met `sig` before `sub` was decided.)"""
    sub, sig, restoring = (f"sha256:{i:064x}" for i in range(3))
    images = [
        EcrImage(digest=sub, pushed_at=NOW - timedelta(days=2)),
        EcrImage(digest=sig, pushed_at=NOW, subject=sub, children=(restoring,)),
        EcrImage(digest=restoring, pushed_at=NOW, status="ACTIVATING", subject=sub, children=(sub,)),
    ]
    rules = [rule(1, "transition", tagStatus="untagged", countType="sinceImagePushed", countNumber=1)]
    decisions = run(rules, images)
    assert {d: (x.action, x.rule_priority) for d, x in decisions.items()} == {
        sub: ("transition", 1),
        sig: ("transition", 1),
    }


def test_referrer_is_not_counted_and_expires_with_its_subject() -> None:
    old = img("old", ["v1"], 20)
    old_sig = img("old-sig", [], 1, subject=old.digest)
    new = img("new", ["v2"], 10)
    new_sig = img("new-sig", [], 0, subject=new.digest)
    decisions = run(
        [rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=1)],
        [old, old_sig, new, new_sig],
    )
    assert set(decisions) == {old.digest, old_sig.digest}
    assert decisions[old_sig.digest].action == "expire"
    assert decisions[old_sig.digest].rule_priority == 1
    assert decisions[old_sig.digest].reason == f"referrer of {old.digest}, expired with it by rulePriority 1"


def test_referrer_chain_follows_the_root_subject() -> None:
    subject = img("s", [], 20)
    sbom = img("sbom", [], 20, subject=subject.digest)
    sbom_sig = img("sbom-sig", [], 20, subject=sbom.digest)
    decisions = run([UNTAGGED_AFTER_1_DAY], [sbom_sig, sbom, subject])
    assert {d.action for d in decisions.values()} == {"expire"} and len(decisions) == 3


def test_referrer_is_archived_with_its_subject() -> None:
    subject = img("s", ["v1"], 100)
    sig = img("sig", [], 100, subject=subject.digest)
    rules = [rule(1, "transition", tagStatus="any", countType="sinceImagePushed", countNumber=30)]
    assert run(rules, [subject, sig])[sig.digest].action == "transition"


def test_referrer_of_a_missing_subject_is_kept() -> None:
    sig = img("sig", [], 100, subject=dg("gone"))
    decision = run([UNTAGGED_AFTER_1_DAY], [sig])[sig.digest]
    assert decision.action is None
    assert "not in the image list" in decision.reason


def test_decisions_are_in_input_order_and_deterministic() -> None:
    images = [img(str(i), [] if i % 2 else [f"v{i}"], i % 7) for i in range(50)]
    policy = parse_policy(
        json.dumps({"rules": [rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber=5)]})
    )
    first = evaluate_with(policy, images, NOW)
    assert first == evaluate_with(policy, images, NOW)
    position = {image.digest: i for i, image in enumerate(images)}
    assert [position[d.digest] for d in first] == sorted(position[d.digest] for d in first)


# --------------------------------------------------------------------------- timing check (by hand)

TIMING_POLICY = [
    rule(1, tagStatus="tagged", tagPatternList=["prod-*"], countType="imageCountMoreThan", countNumber=50),
    rule(2, tagStatus="tagged", tagPrefixList=["pr-"], countType="sinceImagePushed", countNumber=30),
    rule(3, tagStatus="untagged", countType="sinceImagePushed", countNumber=7),
    rule(4, tagStatus="any", countType="imageCountMoreThan", countNumber=10000),
]


def _timing_check(n: int = 1_000_000) -> None:
    """Evaluate a four-rule policy over `n` synthetic images and print the time it takes."""
    rnd = random.Random(1)
    images = []
    for i in range(n):
        pushed = NOW - timedelta(seconds=rnd.randrange(365 * 86400))
        r = rnd.random()
        tags = () if r < 0.3 else (f"{i:08x}", f"prod-{i}") if r < 0.35 else (f"{i:08x}", f"pr-{i % 5000}")
        images.append(EcrImage(digest=f"sha256:{rnd.getrandbits(256):064x}", tags=tags, pushed_at=pushed))
    policy = parse_policy(json.dumps({"rules": TIMING_POLICY}))
    for _ in range(3):
        start, cpu = time.perf_counter(), time.process_time()
        decisions = evaluate(policy, images, NOW)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"{n} images, {len(decisions)} decisions: {wall:.2f} s ({cpu:.2f} s CPU)")


if __name__ == "__main__":
    _timing_check()
