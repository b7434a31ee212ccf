"""Property tests: the columnar evaluator decides exactly what the reference evaluator decides, image by
image (action, rule priority and reason), plus the invariants the rules promise (shielding, the image
graph, independence from input order)."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from boda.policy import EcrImage, LifecyclePolicy, evaluate, evaluate_reference, parse_policy
from boda.policy.columnar import glob_matcher
from boda.policy.reference import glob_matches, identifies

NOW = datetime(2025, 6, 1, tzinfo=UTC)
TAG_POOL = [
    "prod",
    "prod-1",
    "prod-10",
    "beta-1",
    "beta-10",
    "v1",
    "v1.2",
    "release-x",
    "a-sha-1",
    "aaa",
    "a-a-a",
]
PATTERNS = ["prod*", "*-1", "v1*", "*sha*", "beta-1", "*", "p*d*", "a*a*a", "*a*-*", "**1"]
PREFIXES = ["prod", "v", "beta", "release", "a-"]


def _day(draw: st.DrawFn, low: int, high: int) -> datetime:
    # Whole days and a few distinct values, so that ties between images are common.
    return NOW - timedelta(days=draw(st.sampled_from([d for d in DAYS if low <= d <= high])))


DAYS = [0, 1, 2, 3, 5, 8, 13, 21, 34, 89, 90, 91, 144, 233, 377]


@st.composite
def images(draw: st.DrawFn, graph: bool, days: list[int] | None = None) -> list[EcrImage]:
    n = draw(st.integers(0, 14))
    out: list[EcrImage] = []
    for i in range(n):
        digest = f"sha256:{i:064x}"
        tags = tuple(draw(st.sets(st.sampled_from(TAG_POOL), max_size=3)))
        if days is not None:
            pushed = NOW - timedelta(days=draw(st.sampled_from(days)))
        else:
            pushed = _day(draw, 0, 8) if draw(st.integers(0, 3)) else _day(draw, 0, 377)
        pulled = _day(draw, 0, 40) if draw(st.booleans()) else None
        status = draw(st.sampled_from(["ACTIVE", "ACTIVE", "ARCHIVED", "ACTIVATING"]))
        archived = _day(draw, 80, 400) if status == "ARCHIVED" and draw(st.integers(0, 5)) else None
        activated = _day(draw, 0, 40) if draw(st.integers(0, 3)) == 0 else None
        children: tuple[str, ...] = ()
        subject = None
        if graph and i:
            others = [f"sha256:{j:064x}" for j in range(n + 1) if j != i]  # j == n: not in the list
            children = tuple(draw(st.lists(st.sampled_from(others), max_size=2, unique=True)))
            if draw(st.integers(0, 3)) == 0:
                subject = draw(st.sampled_from(others))
        out.append(
            EcrImage(
                digest=digest,
                tags=tags,
                pushed_at=pushed,
                last_pulled_at=pulled,
                status=status,  # type: ignore[arg-type]
                last_archived_at=archived,
                last_activated_at=activated,
                children=children,
                subject=subject,
            )
        )
    return draw(st.permutations(out))


@st.composite
def policies(draw: st.DrawFn) -> LifecyclePolicy:
    rules: list[dict[str, Any]] = []
    used_sets: set[tuple[str, frozenset[str]]] = set()
    untagged_used = False
    priorities = draw(st.lists(st.integers(1, 99), min_size=1, max_size=5, unique=True))
    for priority in sorted(priorities):
        last = priority == max(priorities)
        status = draw(
            st.sampled_from(["tagged", "untagged", "any", "any"] if last else ["tagged", "untagged"])
        )
        sel: dict[str, Any] = {"tagStatus": status}
        if status == "untagged":
            if untagged_used:
                status = sel["tagStatus"] = "tagged"
            untagged_used = True
        if status == "tagged":
            kind = draw(st.sampled_from(["tagPatternList", "tagPrefixList"]))
            choice = draw(
                st.sets(
                    st.sampled_from(PATTERNS if kind == "tagPatternList" else PREFIXES),
                    min_size=1,
                    max_size=2,
                )
            )
            if (kind, frozenset(choice)) in used_sets:
                continue
            used_sets.add((kind, frozenset(choice)))
            sel[kind] = sorted(choice)
        count_type = draw(st.sampled_from(["imageCountMoreThan", "sinceImagePushed", "sinceImagePulled"]))
        sel["countType"] = count_type
        huge = st.sampled_from([999_999_999, 10**12])
        sel["countNumber"] = draw(st.integers(1, 8 if count_type == "imageCountMoreThan" else 30) | huge)
        action: dict[str, Any] = {"type": draw(st.sampled_from(["expire", "transition"]))}
        if count_type != "imageCountMoreThan":
            sel["countUnit"] = "days"
        if count_type == "sinceImagePulled":
            action["type"] = "transition"
        if action["type"] == "transition":
            action["targetStorageClass"] = "archive"
        rules.append({"rulePriority": priority, "selection": sel, "action": action})
    if draw(st.booleans()):
        rules.append(
            {
                "rulePriority": 100,
                "selection": {
                    "tagStatus": "any",
                    "storageClass": "archive",
                    "countType": "sinceImageTransitioned",
                    "countUnit": "days",
                    "countNumber": draw(st.integers(90, 300)),
                },
                "action": {"type": "expire"},
            }
        )
    return parse_policy(json.dumps({"rules": rules}))


@settings(max_examples=400, deadline=None)
@given(policies(), images(graph=False))
def test_the_evaluators_agree(policy: LifecyclePolicy, imgs: list[EcrImage]) -> None:
    assert evaluate(policy, imgs, NOW) == evaluate_reference(policy, imgs, NOW)


@settings(max_examples=300, deadline=None)
@given(
    images(graph=False, days=[0, 1, 2]),
    st.integers(1, 8),
    st.sampled_from(["any", "untagged", "tagged"]),
)
def test_the_evaluators_agree_on_the_newest_n_among_ties(
    imgs: list[EcrImage], count: int, status: str
) -> None:
    """One imageCountMoreThan rule over images pushed on few distinct days: the tie rule decides."""
    selection: dict[str, Any] = {"tagStatus": status, "countType": "imageCountMoreThan", "countNumber": count}
    if status == "tagged":
        selection["tagPatternList"] = ["*"]
    rule = {"rulePriority": 1, "selection": selection, "action": {"type": "expire"}}
    policy = parse_policy(json.dumps({"rules": [rule]}))
    assert evaluate(policy, imgs, NOW) == evaluate_reference(policy, imgs, NOW)


@settings(max_examples=400, deadline=None)
@given(policies(), images(graph=True))
def test_the_evaluators_agree_on_the_image_graph(policy: LifecyclePolicy, imgs: list[EcrImage]) -> None:
    assert evaluate(policy, imgs, NOW) == evaluate_reference(policy, imgs, NOW)


@settings(max_examples=300, deadline=None)
@given(policies(), images(graph=True), st.randoms(use_true_random=False))
def test_graph_invariants_and_determinism(
    policy: LifecyclePolicy, imgs: list[EcrImage], rnd: random.Random
) -> None:
    decisions = evaluate(policy, imgs, NOW)
    shuffled = list(imgs)
    rnd.shuffle(shuffled)
    assert sorted(evaluate(policy, shuffled, NOW)) == sorted(decisions)
    assert evaluate(policy, imgs, NOW) == decisions

    digests = [d.digest for d in decisions]
    assert len(digests) == len(set(digests)), "an image is decided by at most one rule"
    by_digest = {i.digest: i for i in imgs}
    action = {d.digest: d.action for d in decisions}
    rules = {r.priority: r for r in policy.rules}
    for d in decisions:
        image = by_digest[d.digest]
        if d.action is not None and image.subject is None:
            assert d.rule_priority is not None
            acting = rules[d.rule_priority]
            assert identifies(acting, image)
            for higher in policy.rules:
                if higher.priority < acting.priority:
                    assert not identifies(higher, image), "a shielded image was acted on by a lower rule"
    for index in imgs:
        if action.get(index.digest) != "expire":
            for child in index.children:
                assert action.get(child) != "expire", "a child of a kept index was expired"
    for image in imgs:
        if image.subject is not None and action.get(image.subject) != "expire":
            assert action.get(image.digest) != "expire", "a referrer expired while its subject is kept"


# --------------------------------------------------------------------------- tag patterns

pattern_text = st.text("ab*-", max_size=8)
tag_text = st.text("ab-", max_size=10)


@settings(max_examples=1000)
@given(pattern_text, tag_text)
def test_both_glob_matchers_agree_with_a_regular_expression(pattern: str, tag: str) -> None:
    expected = re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), tag, re.DOTALL) is not None
    assert glob_matches(pattern, tag) is expected
    assert glob_matcher(pattern)(tag) is expected
