"""Property tests: the fast engine against a direct transcription of the reference algorithm, plus
the graph invariants (children of kept indexes, referrers of kept subjects)."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from boda.policy import EcrImage, LifecyclePolicy, Rule, evaluate, parse_policy

NOW = datetime(2025, 6, 1, tzinfo=UTC)
TAG_POOL = ["prod", "prod-1", "prod-2", "beta-1", "v1", "v1.2", "release-x", "a-sha-1"]
PATTERNS = ["prod*", "*-1", "v1*", "*sha*", "beta-1", "*", "p*d*"]
PREFIXES = ["prod", "v", "beta", "release", "a-"]


@st.composite
def images(draw: st.DrawFn, graph: bool) -> list[EcrImage]:
    n = draw(st.integers(0, 14))
    out: list[EcrImage] = []
    for i in range(n):
        digest = f"sha256:{i:064x}"
        tags = tuple(draw(st.sets(st.sampled_from(TAG_POOL), max_size=3)))
        pushed = NOW - timedelta(days=draw(st.integers(0, 40)))  # few distinct values: many ties
        pulled = draw(st.none() | st.integers(0, 40).map(lambda d: NOW - timedelta(days=d)))
        status = draw(st.sampled_from(["ACTIVE", "ACTIVE", "ARCHIVED", "ACTIVATING"]))
        archived = NOW - timedelta(days=draw(st.integers(80, 400))) if status == "ARCHIVED" else None
        children: tuple[str, ...] = ()
        subject = None
        if graph and i:
            others = [f"sha256:{j:064x}" for j in range(n) if j != i]
            children = tuple(draw(st.lists(st.sampled_from(others), max_size=2, unique=True)))
            if draw(st.integers(0, 3)) == 0:
                subject = draw(st.sampled_from(others))
        out.append(EcrImage(digest, tags, pushed, pulled, status, archived, None, None, children, subject))  # type: ignore[arg-type]
    return draw(st.permutations(out))


@st.composite
def policies(draw: st.DrawFn) -> LifecyclePolicy:
    rules: list[dict[str, Any]] = []
    used_sets: set[tuple[str, frozenset[str]]] = set()
    untagged_used = False
    priorities = draw(st.lists(st.integers(1, 99), min_size=1, max_size=5, unique=True))
    for priority in sorted(priorities):
        last = priority == max(priorities)
        status = draw(st.sampled_from(["tagged", "untagged", "any"] if last else ["tagged", "untagged"]))
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
        sel["countNumber"] = draw(st.integers(1, 8 if count_type == "imageCountMoreThan" else 30))
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


def _glob(pattern: str, tag: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), tag, re.DOTALL) is not None


def _selects(rule: Rule, image: EcrImage) -> bool:
    wanted = "ACTIVE" if rule.storage_class == "standard" else "ARCHIVED"
    if image.status != wanted or image.subject is not None:
        return False
    if rule.tag_status == "untagged":
        return not image.tags
    if rule.tag_status == "any":
        return True
    if rule.tag_pattern_list:
        return all(any(_glob(p, t) for t in image.tags) for p in rule.tag_pattern_list)
    return all(any(t.startswith(p) for t in image.tags) for p in rule.tag_prefix_list)


def reference(policy: LifecyclePolicy, imgs: list[EcrImage]) -> dict[str, tuple[str, int]]:
    """The reference algorithm of research/retention.md §2.3, without the image graph."""
    marked: dict[str, tuple[str, int]] = {}
    shielded: set[str] = set()
    for rule in policy.rules:
        sel = [i for i in imgs if _selects(rule, i)]
        cutoff = NOW - timedelta(days=rule.count_number)
        if rule.count_type == "imageCountMoreThan":
            cand = sorted(sorted(sel, key=lambda i: i.digest), key=lambda i: i.pushed_at, reverse=True)
            cand = cand[rule.count_number :]
        elif rule.count_type == "sinceImagePushed":
            cand = [i for i in sel if i.pushed_at < cutoff]
        elif rule.count_type == "sinceImagePulled":
            cand = [i for i in sel if (i.last_pulled_at or i.pushed_at) < cutoff]
        else:
            cand = [i for i in sel if i.last_archived_at is not None and i.last_archived_at < cutoff]
        for i in cand:
            if i.digest not in marked and i.digest not in shielded:
                marked[i.digest] = (rule.action, rule.priority)
        shielded |= {i.digest for i in sel}
    return marked


@settings(max_examples=300, deadline=None)
@given(policies(), images(graph=False))
def test_engine_matches_the_reference_algorithm(policy: LifecyclePolicy, imgs: list[EcrImage]) -> None:
    decisions = evaluate(policy, imgs, NOW)
    got = {d.digest: (d.action, d.rule_priority) for d in decisions}
    assert got == reference(policy, imgs)


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
            assert _selects(acting, image)
            for higher in policy.rules:
                if higher.priority < acting.priority:
                    assert not _selects(higher, image), "a shielded image was acted on by a lower rule"
    for index in imgs:
        if action.get(index.digest) != "expire":
            for child in index.children:
                assert action.get(child) != "expire", "a child of a kept index was expired"
    for image in imgs:
        if image.subject is not None and action.get(image.subject) != "expire":
            assert action.get(image.digest) != "expire", "a referrer expired while its subject is kept"
