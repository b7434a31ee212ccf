"""The lifecycle policy boda renders for ECR in native retention, and its proof. Pure: no I/O.

In ECR's rule language an image that a rule's selection identifies is never acted on by a rule of
lower priority ("an image that matches the tagging requirements of a rule cannot be expired by a rule
with a lower priority"), even when that rule does not act on it. So a rule that selects the
protection tags and whose count can never be reached shields every protected image from every rule
after it, and acts on nothing itself: `imageCountMoreThan` 999,999,999 (ECR holds at most 100,000
images per repository by default; the quota can be raised, not to a billion). The rendered policy is

    1.     tagged `keep-*`, imageCountMoreThan 999999999: the protection tags (standard storage)
    2..k   tagged <env>, one per environment tag (strategy `tags`), or `*` in an environment's
           repository (strategy `repos`, where every tagged image is an environment's): what the
           registry itself says is deployed, shielded even if the tag moved outside boda
    then   the same selections in archive storage (sinceImageTransitioned 999999999 days), only
           when the user's rules expire archived images
    then   the user's rules, in their order, renumbered after the shields.

Shield rules carry the description prefix `SHIELD_MARK`, so a rendered policy read back from ECR can
be rendered again from its user rules. `prove` evaluates the result with boda's own evaluator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from boda.errors import PolicyError
from boda.policy.columnar import evaluate
from boda.policy.document import MAX_POLICY_CHARS, MAX_RULES, LifecyclePolicy, parse_policy
from boda.policy.image import EcrImage
from boda.policy.plan import Protection

#: A count no repository reaches: the shield rules select, and never act.
SHIELD_COUNT = 999_999_999
#: Marks boda's shield rules in a rendered policy.
SHIELD_MARK = "boda shield:"


@dataclass(frozen=True)
class Shield:
    """One rule that selects images by one tag pattern and never acts on them."""

    pattern: str
    why: str
    storage_class: Literal["standard", "archive"] = "standard"

    def rule(self, priority: int) -> dict[str, Any]:
        """The rule as ECR's policy JSON spells it."""
        selection: dict[str, Any] = {"tagStatus": "tagged", "tagPatternList": [self.pattern]}
        if self.storage_class == "archive":
            selection |= {
                "storageClass": "archive",
                "countType": "sinceImageTransitioned",
                "countUnit": "days",
                "countNumber": SHIELD_COUNT,
            }
        else:
            selection |= {"countType": "imageCountMoreThan", "countNumber": SHIELD_COUNT}
        return {
            "rulePriority": priority,
            "description": f"{SHIELD_MARK} {self.why}; never expired"[:288],
            "selection": selection,
            "action": {"type": "expire"},
        }


def shields_for(
    protection_pattern: str, *, env_tags: Sequence[str] = (), every_tag: bool = False, archive: bool = False
) -> list[Shield]:
    """The shield rules of one repository: protection tags first, then what the registry's own
    environment tags name (`env_tags` in the app's repository, `every_tag` in an environment's
    repository); when the user's rules expire archived images, the same again in archive."""
    shields = [Shield(protection_pattern, "images boda protects (protection tags)")]
    if every_tag:
        shields.append(Shield("*", "every tagged image of an environment's repository"))
    shields += [Shield(tag, f"the image environment tag {tag} names") for tag in env_tags]
    if archive:
        shields += [Shield(s.pattern, f"archived: {s.why}", "archive") for s in list(shields)]
    return shields


@dataclass(frozen=True)
class Rendered:
    """A rendered policy: the text ECR takes, its validated form, and what a person should know."""

    text: str
    policy: LifecyclePolicy
    shields: int
    notes: tuple[str, ...] = ()

    @property
    def document(self) -> dict[str, Any]:
        """The policy as JSON data."""
        doc: dict[str, Any] = json.loads(self.text)
        return doc


def user_rules(text: str | None) -> list[dict[str, Any]]:
    """The user's rules of a policy text (validated by boda), boda's shield rules left out, in
    rulePriority order. None or a policy of shields only: no rules."""
    if text is None:
        return []
    parse_policy(text)  # PolicyError names the rule and field
    doc = json.loads(text)
    rules = [r for r in doc["rules"] if not str(r.get("description", "")).startswith(SHIELD_MARK)]
    return sorted(rules, key=lambda r: int(r["rulePriority"]))


def render_policy(user_text: str | None, shields: Sequence[Shield]) -> Rendered:
    """The shields, then the user's rules renumbered after them; validated as ECR would.

    A user rule whose tag patterns are exactly a shield's (same storage class) could never act and
    would make the policy invalid (ECR wants distinct tag sets): it is left out, with a note.
    """
    notes: list[str] = []
    rules = [shield.rule(i) for i, shield in enumerate(shields, start=1)]
    taken = {(s.storage_class, frozenset([s.pattern])) for s in shields}
    for rule in user_rules(user_text):
        selection = rule["selection"]
        key = (selection.get("storageClass", "standard"), frozenset(selection.get("tagPatternList") or ()))
        if selection.get("tagPatternList") and key in taken:
            notes.append(
                f"user rule rulePriority {rule['rulePriority']} left out: it selects exactly what a boda"
                " shield selects, so it could never act"
            )
            continue
        rules.append({**rule, "rulePriority": len(rules) + 1})
    if len(rules) > MAX_RULES:
        raise PolicyError(
            f"rendered policy: {len(rules)} rules ({len(shields)} boda shields and"
            f" {len(rules) - len(shields)} of yours), more than ECR's limit of {MAX_RULES}"
        )
    if len(rules) == len(shields):
        notes.append("the policy has no rule of yours: it shields and expires nothing")
    text = json.dumps({"rules": rules}, indent=2)
    if len(text) > MAX_POLICY_CHARS:
        text = json.dumps({"rules": rules}, separators=(",", ":"))
    try:
        policy = parse_policy(text)
    except PolicyError as exc:
        raise PolicyError(f"rendered policy: {exc.message}", hint=exc.hint) from exc
    return Rendered(text, policy, len(shields), tuple(notes) + policy.notes)


@dataclass(frozen=True)
class Violation:
    """A protected image the policy would expire or archive."""

    digest: str
    tags: tuple[str, ...]
    action: str
    rule_priority: int | None
    protections: tuple[Protection, ...]

    @property
    def text(self) -> str:
        """One phrase for people."""
        why = "; ".join(p.detail for p in self.protections)
        verb = "expired" if self.action == "expire" else "archived"
        return f"{self.digest} would be {verb} by rulePriority {self.rule_priority} but is {why}"

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "digest": self.digest,
            "tags": list(self.tags),
            "action": self.action,
            "appliedRulePriority": self.rule_priority,
            "protections": [p.to_json() for p in self.protections],
        }


def prove(
    policy: LifecyclePolicy,
    images: Sequence[EcrImage],
    protected: Mapping[str, Sequence[Protection]],
    now: datetime,
) -> list[Violation]:
    """Every protected image (closed over the image graph by the caller) that `policy`, run by boda's
    evaluator on `images` as ECR holds them, expires or archives: none, or the proof failed."""
    tags = {image.digest: image.tags for image in images}
    return [
        Violation(d.digest, tags.get(d.digest, ()), d.action, d.rule_priority, tuple(protected[d.digest]))
        for d in evaluate(policy, images, now)
        if d.action is not None and d.digest in protected
    ]
