"""The columnar evaluator: ECR's lifecycle rules, fast enough for a million images. Pure: no I/O.

It decides exactly what `reference.py` decides (the readable statement of the rules; property tests
compare the two decision by decision), by other means: each image attribute is read once, in input
(memory) order, into a compact column; rules then filter lists of image positions with C-level
iterators and byte masks instead of walking image objects in push-time order (a cache miss each).

Because shielding depends only on identification, an image's fate is decided by the first rule that
identifies it, independent of what happens to other images; the image graph is applied afterwards.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import compress, repeat
from operator import attrgetter, floordiv, not_, sub
from typing import NamedTuple, cast

from boda.policy.decision import (
    Decision,
    kept_by_index,
    referrer_follows,
    referrer_without_subject,
)
from boda.policy.document import ActionType, LifecyclePolicy, Rule
from boda.policy.image import EcrImage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NEVER = datetime.max.replace(tzinfo=UTC)


class Outcomes(NamedTuple):
    """An evaluation as columns: the input positions (ascending) of the images with a decision, and
    each one's action (None: kept by the image graph), acting rule priority and reason."""

    positions: list[int]
    actions: list[ActionType | None]
    priorities: list[int | None]
    reasons: list[str]


def evaluate(policy: LifecyclePolicy, images: Sequence[EcrImage], now: datetime) -> list[Decision]:
    """Apply `policy` to `images` at time `now` (aware). Decisions come in input order.

    The same answer as `boda.policy.reference.evaluate`; see there for the rules.
    """
    outcomes = evaluate_columns(policy, images, now)
    digests = map(attrgetter("digest"), map(images.__getitem__, outcomes.positions))
    return list(map(Decision, digests, outcomes.actions, outcomes.priorities, outcomes.reasons))


def evaluate_columns(policy: LifecyclePolicy, images: Sequence[EcrImage], now: datetime) -> Outcomes:
    """`evaluate` without building a Decision per image (what the preview of a million images wants)."""
    if now.tzinfo is None:
        raise ValueError("evaluate: now must be timezone-aware")
    return _Evaluation(policy, images, now).run()


# Within 2**32 seconds of the epoch (1833 to 2106) a float timestamp is finer than a microsecond,
# so distinct times stay distinct and in order; outside it, times are counted in exact microseconds.
_FLOAT_EXACT_S = 2.0**32


def _time_column(times: Sequence[datetime]) -> tuple[array[float] | array[int], bool]:
    """Aware datetimes as numbers that compare exactly as they do, and whether those are floats."""
    seconds = array("d", map(datetime.timestamp, times))
    if not seconds or (min(seconds) > -_FLOAT_EXACT_S and max(seconds) < _FLOAT_EXACT_S):
        return seconds, True
    return array("q", map(floordiv, map(sub, times, repeat(_EPOCH)), repeat(_MICROSECOND))), False


def _pull_reference(image: EcrImage) -> datetime:
    """The time sinceImagePulled measures from: last pull or restore, whichever is later, else push."""
    pulled, activated = image.last_pulled_at, image.last_activated_at
    if pulled is None:
        return activated or image.pushed_at
    return pulled if activated is None or pulled >= activated else activated


def _archive_reference(image: EcrImage) -> datetime:
    return image.last_archived_at or _NEVER


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """A test whether a whole tag matches `pattern` (`*`: any run of characters), in linear time.

    The literal parts between the stars must appear in order: the first at the start, the last at the
    end, each middle one at its leftmost place after the one before (leftmost is never worse).
    """
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern.__eq__
    head, *middle, tail = parts
    shortest = len(pattern) - len(parts) + 1

    def matches(tag: str) -> bool:
        if len(tag) < shortest or not tag.startswith(head) or not tag.endswith(tail):
            return False
        position, end = len(head), len(tag) - len(tail)
        for part in middle:
            found = tag.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True

    return matches


def _needle(pattern: str, prefix: bool) -> tuple[str | None, Callable[[str], bool] | None]:
    """What to look for in an image's newline-framed tags, and the per-tag test still needed after.

    The needle None means "any tag"; the test None means the needle alone decides.
    """
    if prefix:
        return "\n" + pattern, None
    parts = pattern.split("*")
    if len(parts) == 1:
        return f"\n{pattern}\n", None
    if set(parts) == {""}:
        return None, None
    if len(parts) == 2:
        head, tail = parts
        if not tail:
            return "\n" + head, None
        if not head:
            return tail + "\n", None
    if len(parts) == 3 and not parts[0] and not parts[2]:
        return parts[1], None
    return max(parts, key=len), glob_matcher(pattern)


class _Evaluation:
    """One evaluation. Images are addressed by input position; `order` lists them youngest first."""

    def __init__(self, policy: LifecyclePolicy, images: Sequence[EcrImage], now: datetime) -> None:
        self.policy = policy
        self.now = now
        self.images = images
        ages = list(map(attrgetter("pushed_at"), images))
        activated = list(map(attrgetter("last_activated_at"), images))
        for p in compress(range(len(images)), activated):
            ages[p] = activated[p]  # a restored image is ordered and aged by its restore time
        self.age, self._age_in_seconds = _time_column(ages)
        self.digests: list[str] = list(map(attrgetter("digest"), images))
        # Stable: equal times stay in input order; _beyond_newest applies the tie rule where it matters.
        self.order = sorted(range(len(images)), key=self.age.__getitem__, reverse=True)
        self.tags: list[tuple[str, ...]] = list(map(attrgetter("tags"), images))
        self.subjects: list[str | None] = list(map(attrgetter("subject"), images))
        self._lines: list[str] | None = None
        self._pools: dict[tuple[str, str], list[int]] = {}
        self._tag_masks: dict[tuple[str, bool], bytearray] = {}
        # Outcomes (action, priority, reason) by code; code 0 is "no decision".
        self.actions: list[ActionType | None] = [None]
        self.priorities: list[int | None] = [None]
        self.reasons: list[str] = [""]

    def run(self) -> Outcomes:
        n = len(self.images)
        free = bytearray(b"\x01") * n  # 0 once a rule has identified the image (shielded)
        code = bytearray(n)  # the acting rule's outcome (1..50, see _outcome); 0 = no decision
        last = self.policy.rules[-1]
        for rule in self.policy.rules:
            identified = self._identify(rule)
            candidates = self._candidates(rule, identified)
            acted = compress(candidates, map(free.__getitem__, candidates))
            outcome = self._outcome(rule.action, rule.priority, rule.reason)
            deque(map(code.__setitem__, acted, repeat(outcome)), 0)
            if rule is not last:
                deque(map(free.__setitem__, identified, repeat(0)), 0)
        overrides = self._apply_graph(code)
        for p, c in overrides.items():
            code[p] = c != 0
        positions = list(compress(range(n), code))
        codes = list(compress(code, code))
        for p, c in overrides.items():
            if c:
                codes[bisect_left(positions, p)] = c
        return Outcomes(
            positions,
            list(map(self.actions.__getitem__, codes)),
            list(map(self.priorities.__getitem__, codes)),
            list(map(self.reasons.__getitem__, codes)),
        )

    def _outcome(self, action: ActionType | None, priority: int | None, reason: str) -> int:
        self.actions.append(action)
        self.priorities.append(priority)
        self.reasons.append(reason)
        return len(self.actions) - 1

    def _pool(self, storage_class: str, tag_status: str) -> list[int]:
        """Positions, youngest first, that rules of this storage class and tag status consider.

        Referrers are not images of their own for the rules; ACTIVATING images are in no class.
        """
        key = (storage_class, tag_status)
        if key in self._pools:
            return self._pools[key]
        if tag_status == "any":
            status = "ACTIVE" if storage_class == "standard" else "ARCHIVED"
            pool = self.order
            statuses = list(map(attrgetter("status"), self.images))
            if statuses.count(status) != len(statuses):
                mask = bytearray(map(status.__eq__, statuses))
                pool = list(compress(pool, map(mask.__getitem__, pool)))
            if self.subjects.count(None) != len(self.subjects):
                mask = bytearray(map(not_, self.subjects))
                pool = list(compress(pool, map(mask.__getitem__, pool)))
        else:
            every = self._pool(storage_class, "any")
            mask = bytearray(map(not_, self.tags))
            pool = list(compress(every, map(mask.__getitem__, every)))
        self._pools[key] = pool
        return pool

    def _tag_mask(self, pattern: str, prefix: bool) -> bytearray:
        """1 for every image with a tag matching `pattern` (a prefix, or a whole-tag `*` glob).

        Each image's tags are joined into one string, `\\n` before and after each tag (tags hold no
        newline). Most patterns are then one substring test per image, at C speed: a prefix `p` (or
        the glob `p*`) is `\\np`, a suffix glob `*s` is `s\\n`, `*m*` is `m`, an exact tag `t` is
        `\\nt\\n`. Other globs test their longest literal part that way, then the tags one by one.
        """
        key = (pattern, prefix)
        if key not in self._tag_masks:
            if self._lines is None:
                self._lines = list(map("\n{}\n".format, map("\n".join, self.tags)))
            lines = self._lines
            needle, test = _needle(pattern, prefix)
            if needle is None:  # only `*`: any tag at all
                mask = bytearray(map(bool, self.tags))
            else:
                mask = bytearray(map(str.__contains__, lines, repeat(needle)))
            if test is not None:
                tags = self.tags
                for p in compress(range(len(mask)), mask):
                    mask[p] = any(map(test, tags[p]))
            self._tag_masks[key] = mask
        return self._tag_masks[key]

    def _identify(self, rule: Rule) -> list[int]:
        """The positions, youngest first, of the images meeting the rule's tagging requirements."""
        # A tagged rule starts from every image: only images with tags can match its patterns.
        selected = self._pool(rule.storage_class, "any" if rule.tag_status == "tagged" else rule.tag_status)
        prefix = not rule.tag_pattern_list
        for pattern in rule.tag_pattern_list or rule.tag_prefix_list:
            mask = self._tag_mask(pattern, prefix)
            selected = list(compress(selected, map(mask.__getitem__, selected)))
        return selected

    def _candidates(self, rule: Rule, identified: list[int]) -> list[int]:
        """The identified images the rule's count criterion picks (shielding not yet applied)."""
        if rule.count_type == "imageCountMoreThan":
            return self._beyond_newest(identified, rule.count_number)
        try:
            cutoff = self.now - timedelta(days=rule.count_number)
        except OverflowError:
            return []  # before the year 1: no image is that old
        if rule.count_type == "sinceImagePushed":
            # `identified` is youngest first: the images aged past the cutoff are a suffix.
            age = self.age
            limit = -(cutoff.timestamp() if self._age_in_seconds else (cutoff - _EPOCH) // _MICROSECOND)
            return identified[bisect_right(identified, limit, key=lambda i: -age[i]) :]
        reference = _pull_reference if rule.count_type == "sinceImagePulled" else _archive_reference
        older = map(cutoff.__gt__, map(reference, map(self.images.__getitem__, identified)))
        return list(compress(identified, older))

    def _beyond_newest(self, identified: list[int], count: int) -> list[int]:
        """`identified` minus its newest `count`; equal times across the cut: untagged, then lower
        digest, count as newer."""
        if count >= len(identified):
            return []
        age = self.age
        cut = age[identified[count]]
        if age[identified[count - 1]] != cut:
            return identified[count:]
        start = count - 1
        while start > 0 and age[identified[start - 1]] == cut:
            start -= 1
        end = count + 1
        while end < len(identified) and age[identified[end]] == cut:
            end += 1
        tied = sorted(identified[start:end], key=lambda p: (bool(self.tags[p]), self.digests[p]))
        return tied[count - start :] + identified[end:]

    def _apply_graph(self, code: bytearray) -> dict[int, int]:
        """Resolve referrers and index children: the outcome codes of the images in the graph.

        The least fixpoint, as in the reference evaluator: an image in the graph acts once all it
        depends on allows it (its subject acts; each index listing it is expired, or allows an
        archive), found with a worklist; an image acting wakes the images depending on it.
        """
        n = len(self.images)
        indexes = list(compress(range(n), map(attrgetter("children"), self.images)))
        referrers = list(compress(range(n), self.subjects))
        if not indexes and not referrers:
            return {}
        position = dict(zip(self.digests, range(n), strict=True))
        parents: dict[int, list[int]] = {}
        dependents: dict[int, list[int]] = {}
        for p in indexes:
            for child in self.images[p].children:
                c = position.get(child)
                if c is not None and c != p:
                    parents.setdefault(c, []).append(p)
                    dependents.setdefault(p, []).append(c)
        for listed_by in parents.values():
            listed_by.sort(key=self.digests.__getitem__)  # messages must not depend on input order
        subject_of: dict[int, int | None] = {}
        for r in referrers:
            subject_of[r] = s = position.get(cast(str, self.subjects[r]))
            if s is not None:
                dependents.setdefault(s, []).append(r)
        nodes = set(parents) | set(referrers)
        images = self.images
        acting: dict[int, int] = {}

        def current(q: int) -> int:
            return acting.get(q, 0) if q in nodes else code[q]

        def proposal(p: int) -> tuple[int, ActionType | None]:
            """The code p would act with (-1: its subject's, as a referrer) and that action."""
            if p not in subject_of:
                return code[p], self.actions[code[p]]
            s = subject_of[p]
            action = None if s is None else self.actions[current(s)]
            if action is None or (action == "transition" and images[p].status != "ACTIVE"):
                return 0, None
            return -1, action

        def blocking(p: int, action: ActionType) -> int | None:
            for q in parents.get(p, ()):
                parent = self.actions[current(q)]
                if parent == "expire" or (
                    action == "transition" and (parent == "transition" or images[q].status != "ACTIVE")
                ):
                    continue
                return q
            return None

        def referrer_outcome(p: int, action: ActionType) -> int:
            subject = cast(str, self.subjects[p])
            priority = self.priorities[current(cast(int, subject_of[p]))]
            return self._outcome(action, priority, referrer_follows(subject, action, priority))

        work = sorted(nodes, key=self.digests.__getitem__, reverse=True)
        while work:
            p = work.pop()
            if p in acting:
                continue
            c, action = proposal(p)
            if action is None or blocking(p, action) is not None:
                continue
            acting[p] = referrer_outcome(p, action) if c == -1 else c
            work.extend(d for d in dependents.get(p, ()) if d in nodes and d not in acting)

        resolved: dict[int, int] = {}
        for p in nodes:
            if p in acting:
                resolved[p] = acting[p]
                continue
            c, action = proposal(p)
            if p in subject_of and subject_of[p] is None:
                resolved[p] = self._outcome(None, None, referrer_without_subject(cast(str, self.subjects[p])))
            elif action is None:
                resolved[p] = 0
            else:
                would = referrer_outcome(p, action) if c == -1 else c
                q = cast(int, blocking(p, action))
                reason = kept_by_index(self.digests[q], action, self.reasons[would])
                resolved[p] = self._outcome(None, self.priorities[would], reason)
        return resolved
