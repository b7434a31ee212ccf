"""An Amazon ECR lifecycle policy document: its types, and parsing with ECR's validation rules.

Pure: no I/O. Errors are PolicyError naming the rule (`rule 2 (rulePriority 5)`) and the field.
What a policy does to images is in `reference.py` (the plain statement of ECR's rules) and
`columnar.py` (the same rules, fast).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal, cast

from boda.errors import PolicyError

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


def parse_policy(text: str) -> LifecyclePolicy:
    """Parse and validate ECR lifecycle policy text; PolicyError names the rule and field."""
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyError(f"policy: {len(text)} characters, more than ECR's limit of {MAX_POLICY_CHARS}")
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except ValueError as exc:
        raise PolicyError(f"policy: not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PolicyError("policy: not valid JSON: arrays and objects nested too deeply") from exc
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
