"""The expiry plan: a protection always beats a rule, over random graphs, histories and policies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boda.policy import EcrImage, evaluate, parse_policy
from boda.policy.plan import EXPIRE, KEEP, Facts, plan_repository

NOW = datetime(2026, 11, 29, tzinfo=UTC)
ENVS = ("dev", "stg", "prd")


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[EcrImage], Facts, str]:
    """Images (some indexes with children, some referrers), a promotion history, pins and a policy."""
    count = draw(st.integers(min_value=1, max_value=25))
    images: list[EcrImage] = []
    taken: set[int] = set()
    for n in range(count):
        tags = tuple(
            draw(
                st.lists(
                    st.sampled_from(["v1", "v2", "prod", "pr-1", "pr-2", f"c{n}"]), max_size=2, unique=True
                )
            )
        )
        pushed = NOW - timedelta(days=draw(st.integers(min_value=0, max_value=60)), minutes=n)
        images.append(EcrImage(digest=digest(n), tags=tags, pushed_at=pushed))
        taken.add(n)
    # Some images become indexes over later images, some become referrers of earlier ones.
    for n in range(count):
        kind = draw(st.sampled_from(["plain", "plain", "index", "referrer"]))
        if kind == "index" and n + 1 < count:
            kids = draw(st.lists(st.integers(min_value=n + 1, max_value=count - 1), max_size=3, unique=True))
            images[n] = msgspec.structs.replace(images[n], children=tuple(digest(k) for k in kids))
        elif kind == "referrer" and n > 0:
            images[n] = msgspec.structs.replace(
                images[n], subject=digest(draw(st.integers(min_value=0, max_value=n - 1))), tags=()
            )
    # A promotion history per environment; current and rollback targets derive from it.
    current: dict[str, str] = {}
    rollback: dict[str, list[str]] = {}
    depth = draw(st.integers(min_value=0, max_value=3))
    for env in ENVS:
        history = draw(st.lists(st.integers(min_value=0, max_value=count - 1), max_size=6))
        if not history:
            continue
        current[env] = digest(history[-1])
        earlier: list[str] = []
        for n in reversed(history[:-1]):
            if digest(n) != current[env] and digest(n) not in earlier:
                earlier.append(digest(n))
        rollback[env] = earlier[:depth]
    pins = {digest(n): "pinned" for n in draw(st.lists(st.integers(0, count - 1), max_size=2))}
    min_age = timedelta(days=draw(st.sampled_from([0, 1, 7])))
    patterns = draw(st.permutations(["v*", "pr-*", "prod", "c*", "*"]))
    rules: list[dict[str, object]] = []
    untagged_used = False
    for priority in range(1, draw(st.integers(min_value=1, max_value=3)) + 1):
        untagged = not untagged_used and draw(st.booleans())  # AWS allows one untagged rule
        untagged_used |= untagged
        selection: dict[str, object] = {"tagStatus": "untagged" if untagged else "tagged"}
        if not untagged:
            selection["tagPatternList"] = [patterns[priority - 1]]
        if draw(st.booleans()):
            selection.update(countType="imageCountMoreThan", countNumber=draw(st.integers(1, 3)))
        else:
            selection.update(
                countType="sinceImagePushed", countUnit="days", countNumber=draw(st.integers(1, 30))
            )
        rules.append({"rulePriority": priority, "selection": selection, "action": {"type": "expire"}})
    rules.append(
        {
            "rulePriority": 99,
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    )
    policy = json.dumps({"rules": rules})
    return images, Facts(current, rollback, pins, min_age), policy


def protected_digests(images: list[EcrImage], facts: Facts) -> set[str]:
    """Everything that must stay, closed over children and referrers of what stays directly."""
    direct = set(facts.current.values()) | set(facts.pins)
    for digests in facts.rollback.values():
        direct |= set(digests)
    direct |= {i.digest for i in images if i.subject is None and NOW - i.pushed_at < facts.min_age}
    by_digest = {i.digest: i for i in images}
    closed, pending = set(direct), list(direct)
    while pending:
        d = pending.pop()
        linked = list(by_digest[d].children) if d in by_digest else []
        linked += [i.digest for i in images if i.subject == d]
        for other in linked:
            if other not in closed:
                closed.add(other)
                pending.append(other)
    return closed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_no_protected_digest_is_ever_expired(scenario: tuple[list[EcrImage], Facts, str]) -> None:
    images, facts, policy_text = scenario
    policy = parse_policy(policy_text)
    decisions = evaluate(policy, images, NOW)
    entries = plan_repository("repo", images, decisions, facts, NOW)
    assert {e.digest for e in entries} == {i.digest for i in images}
    expired = {e.digest for e in entries if e.action == EXPIRE}
    assert not expired & protected_digests(images, facts)
    # Every kept image that a rule wanted to expire says which protection kept it.
    wanted = {d.digest for d in decisions if d.action == "expire"}
    for entry in entries:
        if entry.action == KEEP and entry.digest in wanted:
            assert any(r["type"] == "protection" for r in entry.reasons), entry
        if entry.action == EXPIRE:
            assert entry.digest in wanted
    # A referrer of an expired image expires with it; a kept index keeps its children.
    by_digest = {e.digest: e for e in entries}
    for image in images:
        if image.subject in by_digest and by_digest[image.digest].action == KEEP:
            continue
        if by_digest[image.digest].action == KEEP:
            for child in image.children:
                assert by_digest[child].action == KEEP
    # Deterministic: the same input gives the same plan.
    again = plan_repository(
        "repo", list(reversed(images)), evaluate(policy, list(reversed(images)), NOW), facts, NOW
    )
    assert [(e.digest, e.action) for e in again] == [(e.digest, e.action) for e in entries]
