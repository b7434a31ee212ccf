"""Amazon ECR lifecycle policies: parse and validate, evaluate, and preview. Pure: no I/O.

Evaluation follows ECR's documented rules (research/retention.md §2.3):
- every rule sees every image of its storage class; rules apply in rulePriority order;
- an image selected by a higher-priority rule (its "tagging requirements" match) is shielded: no
  lower rule acts on it, but it still occupies slots in a lower rule's imageCountMoreThan window;
- several patterns (or prefixes) in one list must all match some tag; `*` globs are anchored;
- imageCountMoreThan keeps the newest N by push time (ties: the lower digest counts as newer);
- the since* types act on images strictly older than N days: push time; last pull, else last
  restore (lastActivatedAt), else push time; archival time (an archived image without one is left).

Because shielding depends only on selection, an image's fate is decided by the first rule that
selects it, independent of what happens to other images. Graph constraints are applied after that:
- an image listed by an index (`children`) that stays is not acted on: it may be expired only when
  every index listing it is expired, and archived only when every such index is expired or archived;
  nested indexes resolve parents first;
- a referrer (`subject` set) is not an image of its own for the rules (not selected, not counted); it
  is expired or archived together with its subject. A referrer whose subject is absent from the
  image list is kept: boda cannot prove the subject is gone.
Decisions are returned, in input order, for images acted on and for images a rule would act on but
a graph constraint keeps (action None, with the reason). Images absent from the result are kept.
"""

from __future__ import annotations

import gc
import json
import re
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import compress, repeat
from operator import attrgetter, not_
from typing import Any, Literal, NamedTuple, cast

from boda.errors import PolicyError
from boda.policy.images import EcrImage

TagStatus = Literal["tagged", "untagged", "any"]
StorageClass = Literal["standard", "archive"]
CountType = Literal["imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned"]
ActionType = Literal["expire", "transition"]

MAX_POLICY_CHARS = 30720
# ECR's minimum policy length. The shortest valid policy has 138 characters, so parse_policy never
# needs to check it; it is exported for callers that report ECR's limits.
MIN_POLICY_CHARS = 100
MAX_RULES = 50
MAX_DESCRIPTION_CHARS = 288
MAX_WILDCARDS = 4
# "You cannot configure lifecycle policies that delete images that have been in archive for less
# than 90 days" (ECR archive documentation).
MIN_ARCHIVE_DAYS = 90

_TAG_STATUSES = ("tagged", "untagged", "any")
_STORAGE_CLASSES = ("standard", "archive")
_COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")
_ACTIONS = ("expire", "transition")
_RULE_KEYS = frozenset({"rulePriority", "description", "selection", "action"})
_SELECTION_KEYS = frozenset(
    {"tagStatus", "tagPatternList", "tagPrefixList", "storageClass", "countType", "countUnit", "countNumber"}
)
_ACTION_KEYS = frozenset({"type", "targetStorageClass"})


@dataclass(frozen=True)
class Rule:
    """One validated rule. `index` is its 1-based position in the policy's `rules` list."""

    index: int
    priority: int
    tag_status: TagStatus
    count_type: CountType
    count_number: int
    action: ActionType
    description: str | None = None
    tag_pattern_list: tuple[str, ...] = ()
    tag_prefix_list: tuple[str, ...] = ()
    storage_class: StorageClass = "standard"
    count_unit: Literal["days"] | None = None
    target_storage_class: Literal["archive"] | None = None

    @property
    def label(self) -> str:
        """How messages name the rule: `rule 2 (rulePriority 5)`."""
        return f"rule {self.index} (rulePriority {self.priority})"

    @property
    def reason(self) -> str:
        """Why this rule acts on an image, in words."""
        if self.tag_status == "untagged":
            what = "untagged images"
        elif self.tag_status == "any":
            what = "images"
        elif self.tag_pattern_list:
            what = f"images tagged {' and '.join(self.tag_pattern_list)}"
        else:
            what = f"images with tags starting {' and '.join(self.tag_prefix_list)}"
        if self.storage_class == "archive":
            what = f"archived {what}"
        verb = "expired" if self.action == "expire" else "archived"
        n = self.count_number
        criterion = {
            "imageCountMoreThan": f"not among the newest {n} {what}",
            "sinceImagePushed": f"{what} pushed more than {n} days ago",
            "sinceImagePulled": f"{what} not pulled for more than {n} days",
            "sinceImageTransitioned": f"{what} archived more than {n} days ago",
        }[self.count_type]
        return f"rulePriority {self.priority}: {criterion}; {verb}"


@dataclass(frozen=True)
class LifecyclePolicy:
    """A validated policy; `rules` are in rulePriority order. `notes` are warnings, not errors."""

    rules: tuple[Rule, ...]
    notes: tuple[str, ...] = ()


class Decision(NamedTuple):
    """What the policy does to one image.

    `action` None means a rule would act but a graph constraint keeps the image (see `reason`).
    `rule_priority` is the acting rule's priority (for a referrer: its subject's rule).
    """

    digest: str
    action: ActionType | None
    rule_priority: int | None
    reason: str


# Builds a Decision from a 4-tuple without a Python-level __new__ call per image.
_new_decision: Callable[[tuple[str, ActionType | None, int | None, str]], Decision] = partial(
    tuple.__new__, Decision
)

# --------------------------------------------------------------------------- parse and validate


def parse_policy(text: str) -> LifecyclePolicy:
    """Parse and validate ECR lifecycle policy text; PolicyError names the rule and field."""
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyError(f"policy: {len(text)} characters, more than ECR's limit of {MAX_POLICY_CHARS}")
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except ValueError as exc:
        raise PolicyError(f"policy: not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PolicyError("policy: must be a JSON object")
    _check_keys(doc, frozenset({"rules"}), "policy", "")
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise PolicyError("policy: rules must be a non-empty list")
    if len(raw_rules) > MAX_RULES:
        raise PolicyError(f"policy: {len(raw_rules)} rules, more than ECR's limit of {MAX_RULES}")
    rules = [_parse_rule(index, raw) for index, raw in enumerate(raw_rules, start=1)]
    _check_policy(rules)
    return LifecyclePolicy(tuple(sorted(rules, key=attrgetter("priority"))), _never_acting(rules))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _check_keys(obj: dict[str, Any], allowed: frozenset[str], label: str, prefix: str) -> None:
    for key in obj:
        if key not in allowed:
            raise PolicyError(f"{label}: {prefix}{key} is not a lifecycle policy field")
    for key, value in obj.items():
        if value is None:
            raise PolicyError(f"{label}: {prefix}{key} must not be null")


def _parse_rule(index: int, raw: object) -> Rule:
    label = f"rule {index}"
    if not isinstance(raw, dict):
        raise PolicyError(f"{label}: must be a JSON object")
    priority = raw.get("rulePriority")
    if not _is_positive_int(priority):
        raise PolicyError(f"{label}: rulePriority must be a positive integer")
    label = f"rule {index} (rulePriority {priority})"
    _check_keys(raw, _RULE_KEYS, label, "")
    for key in ("selection", "action"):
        if not isinstance(raw.get(key), dict):
            raise PolicyError(f"{label}: {key} must be a JSON object")
    description = raw.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise PolicyError(f"{label}: description must be a string")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise PolicyError(f"{label}: description is longer than {MAX_DESCRIPTION_CHARS} characters")
    sel: dict[str, Any] = raw["selection"]
    act: dict[str, Any] = raw["action"]
    _check_keys(sel, _SELECTION_KEYS, label, "selection.")
    _check_keys(act, _ACTION_KEYS, label, "action.")

    tag_status = _enum(sel, "tagStatus", _TAG_STATUSES, label, "selection.")
    patterns = _string_list(sel, "tagPatternList", label)
    prefixes = _string_list(sel, "tagPrefixList", label)
    if tag_status == "tagged":
        if patterns is None and prefixes is None:
            raise PolicyError(f"{label}: selection.tagPatternList or selection.tagPrefixList is required")
        if patterns is not None and prefixes is not None:
            raise PolicyError(
                f"{label}: selection.tagPatternList and selection.tagPrefixList cannot both be given"
            )
    else:
        for key, value in (("tagPatternList", patterns), ("tagPrefixList", prefixes)):
            if value is not None:
                raise PolicyError(f"{label}: selection.{key} is not allowed with tagStatus {tag_status}")
    for i, pattern in enumerate(patterns or ()):
        if pattern.count("*") > MAX_WILDCARDS:
            raise PolicyError(
                f"{label}: selection.tagPatternList[{i}] has more than {MAX_WILDCARDS} '*' wildcards"
            )

    storage_class = _enum(sel, "storageClass", _STORAGE_CLASSES, label, "selection.", required=False)
    count_type = _enum(sel, "countType", _COUNT_TYPES, label, "selection.")
    count_unit = sel.get("countUnit")
    if count_type == "imageCountMoreThan":
        if count_unit is not None:
            raise PolicyError(f"{label}: selection.countUnit is not allowed with countType {count_type}")
    elif count_unit is None:
        raise PolicyError(f"{label}: selection.countUnit is required with countType {count_type}")
    elif count_unit != "days":
        raise PolicyError(f'{label}: selection.countUnit must be "days"')
    if not _is_positive_int(sel.get("countNumber")):
        raise PolicyError(f"{label}: selection.countNumber must be a positive integer")
    count_number = cast(int, sel["countNumber"])

    action = _enum(act, "type", _ACTIONS, label, "action.")
    target = act.get("targetStorageClass")
    if action == "transition":
        if target != "archive":
            raise PolicyError(
                f'{label}: action.targetStorageClass must be "archive" with action.type transition'
            )
    elif target is not None:
        raise PolicyError(f"{label}: action.targetStorageClass is not allowed with action.type expire")

    if count_type == "sinceImagePulled" and action != "transition":
        raise PolicyError(f"{label}: action.type must be transition with countType sinceImagePulled")
    if count_type == "sinceImageTransitioned":
        if action != "expire":
            raise PolicyError(f"{label}: action.type must be expire with countType sinceImageTransitioned")
        if storage_class != "archive":
            raise PolicyError(
                f'{label}: selection.storageClass must be "archive" with countType {count_type}'
            )
        if count_number < MIN_ARCHIVE_DAYS:
            raise PolicyError(
                f"{label}: selection.countNumber must be at least {MIN_ARCHIVE_DAYS} days with countType"
                f" {count_type} (ECR's minimum archive duration)"
            )
    elif storage_class == "archive":
        raise PolicyError(
            f"{label}: selection.storageClass archive is only allowed with countType sinceImageTransitioned"
        )
    return Rule(
        index=index,
        priority=cast(int, priority),
        tag_status=cast(TagStatus, tag_status),
        count_type=cast(CountType, count_type),
        count_number=count_number,
        action=cast(ActionType, action),
        description=description,
        tag_pattern_list=tuple(patterns or ()),
        tag_prefix_list=tuple(prefixes or ()),
        storage_class=cast(StorageClass, storage_class or "standard"),
        count_unit="days" if count_unit is not None else None,
        target_storage_class="archive" if target is not None else None,
    )


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _enum(
    obj: dict[str, Any], key: str, allowed: tuple[str, ...], label: str, prefix: str, *, required: bool = True
) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise PolicyError(f"{label}: {prefix}{key} is required")
        return None
    if value not in allowed:
        raise PolicyError(f"{label}: {prefix}{key} must be one of {', '.join(allowed)}, not {value!r}")
    return cast(str, value)


def _string_list(sel: dict[str, Any], key: str, label: str) -> list[str] | None:
    value = sel.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise PolicyError(f"{label}: selection.{key} must be a non-empty list of strings")
    for i, item in enumerate(value):
        if item is None:
            raise PolicyError(f"{label}: selection.{key}[{i}] must not be null")
        if not isinstance(item, str) or not item:
            raise PolicyError(f"{label}: selection.{key}[{i}] must be a non-empty string")
    return value


def _check_policy(rules: list[Rule]) -> None:
    """Checks across rules: unique priorities, `any` last, one untagged rule, distinct tag sets.

    ECR's combined archive example has an `any` rule in each storage class, so the `any`-last,
    one-untagged and distinct-set rules hold per storage class (inferred). Identical tag sets are
    refused for tagPatternList as for the documented tagPrefixList.
    """
    by_priority: dict[int, Rule] = {}
    for rule in rules:
        other = by_priority.setdefault(rule.priority, rule)
        if other is not rule:
            raise PolicyError(
                f"{rule.label}: rulePriority {rule.priority} is already used by rule {other.index}"
            )
    for storage_class in _STORAGE_CLASSES:
        same = [r for r in rules if r.storage_class == storage_class]
        highest = max((r.priority for r in same), default=0)
        untagged: Rule | None = None
        tag_sets: dict[tuple[str, frozenset[str]], Rule] = {}
        for rule in sorted(same, key=attrgetter("priority")):
            if rule.tag_status == "any" and rule.priority != highest:
                raise PolicyError(
                    f"{rule.label}: selection.tagStatus any needs the highest rulePriority among"
                    f" storageClass {storage_class} rules ({highest} is higher)"
                )
            if rule.tag_status == "untagged":
                if untagged is not None:
                    raise PolicyError(
                        f"{rule.label}: selection.tagStatus untagged is already used by {untagged.label};"
                        f" one untagged rule per storageClass"
                    )
                untagged = rule
            key = (
                ("tagPatternList", frozenset(rule.tag_pattern_list))
                if rule.tag_pattern_list
                else ("tagPrefixList", frozenset(rule.tag_prefix_list))
            )
            if rule.tag_status == "tagged":
                other = tag_sets.setdefault(key, rule)
                if other is not rule:
                    raise PolicyError(
                        f"{rule.label}: selection.{key[0]} repeats the tag set of {other.label}"
                        f" (storageClass {storage_class})"
                    )


def _never_acting(rules: list[Rule]) -> tuple[str, ...]:
    """Notes for tagged rules that can never act: a higher rule of the same storage class and list
    kind selects every image they select (its tag set is a subset of theirs), shielding them."""
    notes = []
    ordered = sorted((r for r in rules if r.tag_status == "tagged"), key=attrgetter("priority"))
    for i, rule in enumerate(ordered):
        for higher in ordered[:i]:
            if (
                higher.storage_class == rule.storage_class
                and bool(higher.tag_pattern_list) == bool(rule.tag_pattern_list)
                and set(higher.tag_pattern_list or higher.tag_prefix_list)
                <= set(rule.tag_pattern_list or rule.tag_prefix_list)
            ):
                notes.append(
                    f"{rule.label} never acts: every image it selects is selected first by {higher.label}"
                )
                break
    return tuple(notes)


# --------------------------------------------------------------------------- evaluate


def evaluate(policy: LifecyclePolicy, images: Sequence[EcrImage], now: datetime) -> list[Decision]:
    """Apply `policy` to `images` at time `now` (aware). Decisions come in input order."""
    if now.tzinfo is None:
        raise ValueError("evaluate: now must be timezone-aware")
    with _gc_paused():
        return _Evaluation(policy, images, now).run()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: building a million acyclic tuples otherwise triggers it thousands of times."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_NEVER = datetime.max.replace(tzinfo=UTC)


def _pull_reference(image: EcrImage) -> datetime:
    """The time sinceImagePulled measures from: last pull or restore, whichever is later, else push."""
    pulled, activated = image.last_pulled_at, image.last_activated_at
    if pulled is None:
        return activated or image.pushed_at
    return pulled if activated is None or pulled >= activated else activated


def _archive_reference(image: EcrImage) -> datetime:
    return image.last_archived_at or _NEVER


def _matcher(pattern: str, *, prefix: bool) -> Callable[[str], object]:
    """A search over newline-joined tags that is truthy when some tag matches `pattern`."""
    if prefix:
        body = re.escape(pattern)
    else:
        body = r"[^\n]*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return re.compile("(?m)^" + body).search


class _Evaluation:
    """One evaluation. Images are addressed by input index; `order` lists them youngest first.

    Speed at a million images comes from reading each attribute once in input (memory) order into
    compact columns and byte masks, and filtering index lists with C-level iterators: walking the
    image objects in push-time order costs a cache miss per image.
    """

    def __init__(self, policy: LifecyclePolicy, images: Sequence[EcrImage], now: datetime) -> None:
        self.policy = policy
        self.now = now
        self.images = images
        self.pushed = array("d", map(datetime.timestamp, map(attrgetter("pushed_at"), images)))
        self.digests: list[str] = list(map(attrgetter("digest"), images))
        # Stable: equal push times stay in input order; _beyond_newest orders them where it matters.
        self.order = sorted(range(len(images)), key=self.pushed.__getitem__, reverse=True)
        self.tags: list[tuple[str, ...]] = list(map(attrgetter("tags"), images))
        self.subjects: list[str | None] = list(map(attrgetter("subject"), images))
        self._joined: list[str] | None = None
        self._pools: dict[tuple[str, str], list[int]] = {}
        self._tag_masks: dict[tuple[str, bool], bytearray] = {}
        self.actions: list[ActionType | None] = [None]
        self.priorities: list[int | None] = [None]
        self.reasons: list[str] = [""]

    def run(self) -> list[Decision]:
        n = len(self.images)
        free = bytearray(b"\x01") * n  # 0 once a rule has selected the image (shielded)
        code = bytearray(n)  # the acting rule's outcome (1..50, see _outcome); 0 = no decision
        last = self.policy.rules[-1]
        for rule in self.policy.rules:
            selected = self._select(rule)
            candidates = self._candidates(rule, selected)
            acted = compress(candidates, map(free.__getitem__, candidates))
            outcome = self._outcome(rule.action, rule.priority, rule.reason)
            deque(map(code.__setitem__, acted, repeat(outcome)), 0)
            if rule is not last:
                deque(map(free.__setitem__, selected, repeat(0)), 0)
        overrides = self._apply_graph(code)
        for p, c in overrides.items():
            code[p] = c != 0
        positions = list(compress(range(n), code))
        codes = list(compress(code, code))
        for p, c in overrides.items():
            if c:
                codes[bisect_left(positions, p)] = c
        columns = zip(
            map(self.digests.__getitem__, positions),
            map(self.actions.__getitem__, codes),
            map(self.priorities.__getitem__, codes),
            map(self.reasons.__getitem__, codes),
            strict=True,
        )
        return list(map(_new_decision, columns))

    def _outcome(self, action: ActionType | None, priority: int | None, reason: str) -> int:
        self.actions.append(action)
        self.priorities.append(priority)
        self.reasons.append(reason)
        return len(self.actions) - 1

    def _pool(self, storage_class: str, tag_status: str) -> list[int]:
        """Indices, youngest first, that rules of this storage class and tag status consider.

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
        """1 for every image with a tag matching `pattern` (a prefix, or an anchored `*` glob).

        A substring test on the pattern's longest literal part picks the few images worth a regex.
        """
        key = (pattern, prefix)
        if key not in self._tag_masks:
            if self._joined is None:
                self._joined = list(map("\n".join, self.tags))
            joined = self._joined
            literal = max(pattern.split("*"), key=len)
            # An untagged image joins to "", which a pattern of only `*` would match: skip those.
            hits = map(str.__contains__, joined, repeat(literal)) if literal else joined
            maybe = list(compress(range(len(joined)), hits))
            search = _matcher(pattern, prefix=prefix)
            mask = bytearray(len(joined))
            deque(
                map(
                    mask.__setitem__, compress(maybe, map(search, map(joined.__getitem__, maybe))), repeat(1)
                ),
                0,
            )
            self._tag_masks[key] = mask
        return self._tag_masks[key]

    def _select(self, rule: Rule) -> list[int]:
        # A tagged rule starts from every image: only images with tags can match its patterns.
        selected = self._pool(rule.storage_class, "any" if rule.tag_status == "tagged" else rule.tag_status)
        prefix = not rule.tag_pattern_list
        for pattern in rule.tag_pattern_list or rule.tag_prefix_list:
            mask = self._tag_mask(pattern, prefix)
            selected = list(compress(selected, map(mask.__getitem__, selected)))
        return selected

    def _candidates(self, rule: Rule, selected: list[int]) -> list[int]:
        """The selected images the rule's count criterion picks (shielding not yet applied)."""
        if rule.count_type == "imageCountMoreThan":
            return self._beyond_newest(selected, rule.count_number)
        cutoff = self.now - timedelta(days=rule.count_number)
        if rule.count_type == "sinceImagePushed":
            # `selected` is youngest first: the images pushed before the cutoff are a suffix.
            pushed = self.pushed
            start = bisect_right(selected, -cutoff.timestamp(), key=lambda i: -pushed[i])
            return selected[start:]
        reference = _pull_reference if rule.count_type == "sinceImagePulled" else _archive_reference
        older = bytearray(map(cutoff.__gt__, map(reference, self.images)))
        return list(compress(selected, map(older.__getitem__, selected)))

    def _beyond_newest(self, selected: list[int], count: int) -> list[int]:
        """`selected` minus its newest `count`; equal push times across the cut: lower digest is newer."""
        if count >= len(selected):
            return []
        pushed = self.pushed
        cut = pushed[selected[count]]
        if pushed[selected[count - 1]] != cut:
            return selected[count:]
        start = count - 1
        while start > 0 and pushed[selected[start - 1]] == cut:
            start -= 1
        end = count + 1
        while end < len(selected) and pushed[selected[end]] == cut:
            end += 1
        tied = sorted(selected[start:end], key=self.digests.__getitem__)
        return tied[count - start :] + selected[end:]

    def _apply_graph(self, code: bytearray) -> dict[int, int]:
        """Resolve referrers and index children, parents first: their outcome codes by index."""
        n = len(self.images)
        indexes = list(compress(range(n), map(attrgetter("children"), self.images)))
        referrers = list(compress(range(n), self.subjects))
        if not indexes and not referrers:
            return {}
        position = dict(zip(self.digests, range(n), strict=True))
        parents: dict[int, list[int]] = {}
        for p in indexes:
            for child in self.images[p].children:
                c = position.get(child)
                if c is not None and c != p:
                    parents.setdefault(c, []).append(p)
        for listed_by in parents.values():
            listed_by.sort(key=self.digests.__getitem__)  # results must not depend on input order
        nodes = set(parents) | set(referrers)
        resolved: dict[int, int] = {}
        visiting: set[int] = set()
        for start in sorted(nodes, key=self.digests.__getitem__):
            stack = [start]
            while stack:
                p = stack[-1]
                if p in resolved:
                    stack.pop()
                    continue
                if p not in visiting:
                    visiting.add(p)
                    deps = list(parents.get(p, ()))
                    subject = self.subjects[p]
                    if subject is not None and subject in position:
                        deps.append(position[subject])
                    stack.extend(d for d in deps if d in nodes and d not in resolved and d not in visiting)
                    continue
                resolved[p] = self._graph_outcome(p, code, parents.get(p, ()), position, nodes, resolved)
                stack.pop()
        return resolved

    def _graph_outcome(
        self,
        p: int,
        code: bytearray,
        parents: Sequence[int],
        position: dict[str, int],
        nodes: set[int],
        resolved: dict[int, int],
    ) -> int:
        """The outcome of a referrer or index child; an unresolved dependency (a cycle) counts as kept."""

        def fate(q: int) -> int:
            return resolved.get(q, 0) if q in nodes else code[q]

        image = self.images[p]
        outcome = code[p]
        if image.subject is not None:
            s = position.get(image.subject)
            if s is None:
                return self._outcome(
                    None, None, f"referrer of {image.subject}, which is not in the image list"
                )
            subject_code = fate(s)
            action = self.actions[subject_code]
            if action is None or (action == "transition" and image.status != "ACTIVE"):
                return 0
            verb = "expired" if action == "expire" else "archived"
            priority = self.priorities[subject_code]
            outcome = self._outcome(
                action, priority, f"referrer of {image.subject}, {verb} with it by rulePriority {priority}"
            )
        action = self.actions[outcome]
        if action is None:
            return outcome
        for q in parents:
            parent_action = self.actions[fate(q)]
            if parent_action == "expire":
                continue
            if action == "transition" and (
                parent_action == "transition" or self.images[q].status != "ACTIVE"
            ):
                continue
            verb = "expired" if action == "expire" else "archived"
            return self._outcome(
                None,
                self.priorities[outcome],
                f"listed by index {self.digests[q]}, which stays: not {verb} on its own"
                f" ({self.reasons[outcome]})",
            )
        return outcome


# --------------------------------------------------------------------------- preview


def preview(
    policy: LifecyclePolicy,
    images: Sequence[EcrImage],
    now: datetime,
    decisions: Sequence[Decision] | None = None,
) -> dict[str, Any]:
    """The result in ECR's GetLifecyclePolicyPreview shape (previewResults and summary).

    `decisions` are those of `evaluate(policy, images, now)`, computed here when not given. Results
    are ordered by appliedRulePriority, then oldest image first.
    """
    if decisions is None:
        decisions = evaluate(policy, images, now)
    acted = {d.digest: d for d in decisions if d.action is not None}
    by_digest = {image.digest: image for image in images if image.digest in acted}
    results: list[dict[str, Any]] = []
    expiring = transitioning = 0
    for decision in sorted(acted.values(), key=lambda d: d.rule_priority or 0):
        image = by_digest[decision.digest]
        action: dict[str, str] = {"type": "EXPIRE"}
        if decision.action == "transition":
            action = {"type": "TRANSITION", "targetStorageClass": "ARCHIVE"}
            transitioning += 1
        else:
            expiring += 1
        results.append(
            {
                "imageDigest": image.digest,
                "imageTags": list(image.tags),
                "imagePushedAt": iso_utc(image.pushed_at),
                "action": action,
                "appliedRulePriority": decision.rule_priority,
                "storageClass": image.storage_class,
            }
        )
    summary: dict[str, Any] = {"expiringImageTotalCount": expiring}
    if transitioning:
        summary["transitioningImageTotalCounts"] = [
            {"targetStorageClass": "ARCHIVE", "imageTotalCount": transitioning}
        ]
    return {"previewResults": results, "summary": summary}


def iso_utc(when: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
