"""Native retention as a whole, on a simulated repository (pure): random histories of promotions,
rollbacks, pins and runtimes, each followed by the sync boda runs (the same planning functions), then
a random user policy rendered with boda's shields and evaluated by boda's evaluator on the resulting
tags: no protected digest is ever expired or archived, with and without `untag_replaced`.

Then the seed's scenario: builds promoted through dev, stg and prd with replacement, the seed's rule
("expire untagged, imageCountMoreThan 10") rendered and evaluated after every promotion: only digests
outside every window expire, and the previous prd digest is always still there for a rollback.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from boda.errors import PolicyError
from boda.policy import EcrImage, evaluate, parse_policy
from boda.policy.protection_tags import (
    TagScheme,
    apply_plan,
    close_over_graph,
    plan_sync,
    retirees,
    seed_labels,
)
from boda.policy.render import render_policy, shields_for

NOW = datetime(2025, 6, 1, tzinfo=UTC)
ENVS = ("dev", "stg", "prd")
KEEP = TagScheme("keep-")


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Repository:
    """A simulated app repository (strategy `tags`) and the ledger's view of it."""

    depth: int
    untag: bool
    images: list[EcrImage]
    builds: list[str]
    history: dict[str, list[str]] = field(default_factory=lambda: {e: [] for e in ENVS})
    pins: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)
    drift: dict[str, str] = field(default_factory=dict)  # env tag moved by hand: env -> digest

    def window(self, env: str) -> list[str]:
        """Current, then up to `depth` distinct earlier digests (the ledger's previous_digests)."""
        seen: list[str] = []
        for digest in reversed(self.history[env]):
            if digest not in seen:
                seen.append(digest)
        return seen[: self.depth + 1]

    def seeds(self) -> dict[str, set[str]]:
        """Labels before the graph, as the sync computes them (protection_tags.seed_labels)."""
        env_tags = {env: [i.digest for i in self.images if env in i.tags] for env in ENVS}
        windows = {env: self.window(env) for env in ENVS}
        return seed_labels(windows, pins=self.pins, running=self.running, env_tags=env_tags)

    def env_tagged(self) -> set[str]:
        return {image.digest for image in self.images if set(image.tags) & set(ENVS)}

    def protected(self) -> dict[str, frozenset[str]]:
        """What must stay, closed over the graph: windows, pins, runtimes, environment tags."""
        seeds: dict[str, set[str]] = {}
        for env in ENVS:
            for digest in self.window(env):
                seeds.setdefault(digest, set()).add(f"window of {env}")
        for digest in self.pins:
            seeds.setdefault(digest, set()).add("pinned")
        for digest in self.running:
            seeds.setdefault(digest, set()).add("running")
        for digest in self.env_tagged():
            seeds.setdefault(digest, set()).add("env-tag")
        return close_over_graph(self.images, seeds)

    def move_env_tag(self, env: str, digest: str) -> None:
        """A promotion moves the environment tag (a PutImage: the previous holder keeps its others)."""
        self.images = [
            msgspec.structs.replace(
                i, tags=tuple(sorted((set(i.tags) - {env}) | ({env} if i.digest == digest else set())))
            )
            for i in self.images
        ]

    def sync(self) -> None:
        """What `native_retention.sync` does, with the same planning functions."""
        labels = close_over_graph(self.images, self.seeds())
        keep = frozenset(e for e in ENVS if not self.history[e])
        promoted = {d for env in ENVS for d in self.history[env]}
        retire = (
            retirees(KEEP, self.images, labels, promoted=promoted, held=self.env_tagged(), keep_labels=keep)
            if self.untag
            else frozenset()
        )
        plan = plan_sync(KEEP, "app", self.images, labels, retire=retire, keep_labels=keep)
        before = {i.digest for i in self.images}
        self.images = apply_plan(self.images, plan)
        assert {i.digest for i in self.images} == before  # a sync never deletes an image
        tags = {i.digest: set(i.tags) for i in self.images}
        for digest, found in labels.items():  # every protected image holds its protection tags
            assert {KEEP.tag(label, digest) for label in found} <= tags[digest]
        for digest, _ in plan.untag:
            assert tags[digest] == set()


@st.composite
def repositories(draw: st.DrawFn) -> Repository:
    n = draw(st.integers(1, 9))
    images: list[EcrImage] = []
    builds: list[str] = []
    for i in range(n):
        digest = sha(f"build {i}")
        builds.append(digest)
        pushed = NOW - timedelta(days=draw(st.sampled_from([n - i, n - i, 40, 0])))
        children: tuple[str, ...] = ()
        if draw(st.integers(0, 3)) == 0:  # a multi-arch index: untagged children
            children = (sha(f"amd64 {i}"), sha(f"arm64 {i}"))
            images += [EcrImage(digest=c, pushed_at=pushed) for c in children]
        archived = draw(st.integers(0, 7)) == 0
        images.append(
            EcrImage(
                digest=digest,
                tags=(f"c{i:07x}", f"ci-{i}"),
                pushed_at=pushed,
                children=children,
                status="ARCHIVED" if archived else "ACTIVE",
                last_archived_at=NOW - timedelta(days=120) if archived else None,
            )
        )
        signature = draw(st.integers(0, 4))
        if signature == 0:  # an OCI referrer
            images.append(EcrImage(digest=sha(f"sbom {i}"), pushed_at=pushed, subject=digest))
        elif signature == 1:  # a tag-based signature, an ordinary image to ECR
            tag = "sha256-" + digest[7:] + ".sig"
            images.append(EcrImage(digest=sha(f"sig {i}"), tags=(tag,), pushed_at=pushed, subject=digest))
    return Repository(draw(st.integers(0, 3)), draw(st.booleans()), images, builds)


KINDS = ["promote", "promote", "promote", "pin", "unpin", "run", "drift"]
STEP = st.tuples(st.sampled_from(KINDS), st.integers())


def play(repo: Repository, steps: Sequence[tuple[str, int]]) -> None:
    for kind, k in steps:
        digest = repo.builds[k % len(repo.builds)]
        if kind == "promote":
            env = ENVS[k % len(ENVS)]
            repo.history[env].append(digest)
            repo.move_env_tag(env, digest)
        elif kind == "pin":
            repo.pins.add(digest)
        elif kind == "unpin":
            repo.pins.discard(digest)
        elif kind == "run":
            repo.running = {digest} if k % 2 else set()
        else:  # someone moves an environment tag by hand
            repo.move_env_tag(ENVS[k % len(ENVS)], digest)
        repo.sync()


PATTERNS = ["*", "c*", "ci-*", "keep*", "k*", "*-*", "prd", "dev*", "sha256-*", "*.sig", "keep-prd-*", "*1*"]
PREFIXES = ["c", "ci-", "keep", "sha256-", "d"]
COUNTS = ["imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "archive"]


@st.composite
def user_policies(draw: st.DrawFn) -> str:
    rules: list[dict[str, Any]] = []
    for priority in sorted(draw(st.lists(st.integers(1, 60), min_size=1, max_size=5, unique=True))):
        status = draw(st.sampled_from(["tagged", "tagged", "untagged", "any"]))
        selection: dict[str, Any] = {"tagStatus": status}
        if status == "tagged":
            key, pool = draw(st.sampled_from([("tagPatternList", PATTERNS), ("tagPrefixList", PREFIXES)]))
            selection[key] = sorted(draw(st.sets(st.sampled_from(pool), min_size=1, max_size=2)))
        count = draw(st.sampled_from(COUNTS))
        action: dict[str, Any] = {"type": draw(st.sampled_from(["expire", "transition"]))}
        if count == "imageCountMoreThan":
            selection |= {"countType": count, "countNumber": draw(st.integers(1, 4))}
        elif count == "archive":
            selection |= {"storageClass": "archive", "countType": "sinceImageTransitioned"}
            selection |= {"countUnit": "days", "countNumber": draw(st.sampled_from([90, 100]))}
            action = {"type": "expire"}
        else:
            selection |= {"countType": count, "countUnit": "days", "countNumber": draw(st.integers(1, 30))}
            if count == "sinceImagePulled":
                action = {"type": "transition"}
        if action["type"] == "transition":
            action["targetStorageClass"] = "archive"
        rules.append({"rulePriority": priority, "selection": selection, "action": action})
    text = json.dumps({"rules": rules})
    try:
        parse_policy(text)
    except PolicyError:
        assume(False)
    return text


def render(repo: Repository, user: str) -> Any:
    archive = any(r["selection"].get("storageClass") == "archive" for r in json.loads(user)["rules"])
    return render_policy(user, shields_for(KEEP.pattern, env_tags=list(ENVS), archive=archive)).policy


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(repositories(), st.lists(STEP, min_size=1, max_size=14), user_policies())
def test_the_rendered_policy_never_expires_a_protected_digest(
    repo: Repository, steps: list[tuple[str, int]], user: str
) -> None:
    play(repo, steps)
    policy = render(repo, user)
    protected = repo.protected()
    acted = {d.digest: d for d in evaluate(policy, repo.images, NOW) if d.action is not None}
    assert not set(acted) & set(protected), {d: (acted[d], protected[d]) for d in set(acted) & set(protected)}
    if repo.untag:  # what untag_replaced untagged left every window and is neither pinned nor running
        for image in repo.images:
            if image.digest in repo.builds and not image.tags and image.digest in protected:
                raise AssertionError(f"{image.digest} is protected but was untagged")


SEED = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "the seed: expire untagged images once there are more than 10",
                "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 10},
                "action": {"type": "expire"},
            }
        ]
    }
)


def seed_scenario(builds: int) -> tuple[Repository, list[set[str]]]:
    """`builds` builds a day apart; each goes to dev, every 2nd also to stg, every 3rd to prd (each
    promotion replaces the one before); rollback depth 3; untag_replaced. After every promotion to
    prd the seed's rule is rendered and evaluated: returns what it would expire each time."""
    images = [
        EcrImage(digest=sha(f"seed {i}"), tags=(f"c{i:07x}",), pushed_at=NOW - timedelta(days=builds - i))
        for i in range(builds)
    ]
    repo = Repository(3, True, images, [i.digest for i in images])
    expired: list[set[str]] = []
    for i, digest in enumerate(repo.builds, start=1):
        for env, every in (("dev", 1), ("stg", 2), ("prd", 3)):
            if i % every:
                continue
            repo.history[env].append(digest)
            repo.move_env_tag(env, digest)
            repo.sync()
            if env != "prd":
                continue
            policy = render(repo, SEED)
            gone = {d.digest for d in evaluate(policy, repo.images, NOW) if d.action == "expire"}
            windows = {d for e in ENVS for d in repo.window(e)}
            assert not gone & windows  # only digests outside every window expire
            prd = repo.window("prd")
            assert len(prd) < 2 or prd[1] not in gone  # the previous prd digest stays for a rollback
            expired.append(gone)
            # ECR runs the policy: what it expires is gone from then on.
            repo.images = [image for image in repo.images if image.digest not in gone]
    return repo, expired


def test_the_seed_scenario_twelve_builds() -> None:
    repo, expired = seed_scenario(12)
    assert len(expired) == 4 and all(not gone for gone in expired)  # 5 untagged: fewer than 11
    untagged = {i.digest for i in repo.images if not i.tags}
    windows = {d for e in ENVS for d in repo.window(e)}
    assert untagged == set(repo.builds) - windows  # untagged: exactly the digests outside every window
    assert len(untagged) == 5


def test_the_seed_scenario_runs_long_enough_to_expire() -> None:
    repo, expired = seed_scenario(39)  # the last build reaches prd: the last evaluation is the end
    gone = set().union(*expired)
    assert gone  # the seed's rule now expires: the oldest untagged, beyond the newest 10
    assert gone == set(repo.builds[: len(gone)])  # oldest first
    assert len([i for i in repo.images if not i.tags]) == 10
