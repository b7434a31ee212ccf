"""The reference evaluator: ECR's lifecycle rules as AWS's documentation states them, written to be read.

It is the statement of what boda means by each rule; `columnar.py` is the fast evaluator boda runs,
and property tests check that the two decide every image the same way. Sources: the "Lifecycle policy
evaluation rules", "Lifecycle policy properties" and "Examples of lifecycle policies" pages of the
Amazon ECR user guide.

1. Rules apply in rulePriority order, lowest first. A rule sees the images of its storage class:
   `standard` sees ACTIVE images, `archive` ARCHIVED ones; an ACTIVATING image (being restored) is
   in neither.
2. A rule *identifies* the images that meet its tagging requirements: `untagged` those without a
   tag, `any` all, `tagged` those where every pattern of tagPatternList (a whole-tag match where
   `*` stands for any run of characters) or every prefix of tagPrefixList matches some tag.
3. The count criterion picks, among the identified images, those the rule acts on:
   - imageCountMoreThan N: all but the newest N;
   - sinceImagePushed N: pushed more than N days before now;
   - sinceImagePulled N: last pulled more than N days ago (never pulled: the push time; restored
     from archive and not pulled since: the restore time, lastActivatedAt);
   - sinceImageTransitioned N: archived more than N days ago (no archive time known: never).
   "More than N days" is strict. An image archived and later restored is ordered and aged by its
   restore time (lastActivatedAt) in place of its push time. Equal times: an untagged image counts
   as newer than a tagged one (AWS's all-images Example B needs this: its untagged Image E, pushed
   the same day as Image D, is the one rule 3 keeps), then the lower digest counts as newer.
   A countNumber so large that the cutoff falls before the year 1 picks nothing: no image is that old.
4. Shielding: an image a rule identifies is never acted on by a rule of lower priority, though it
   still counts in their imageCountMoreThan windows. So every image is acted on by at most one rule.
5. The image graph (boda's reading of "an image referenced by a manifest list cannot be expired or
   archived without the manifest list being deleted or archived first", and of referrers being
   removed with their subject):
   - a referrer (`subject` set) is not an image of its own: no rule identifies or counts it; it is
     expired when its subject is expired, archived when its subject is archived (if it is ACTIVE
     itself), and kept when its subject is not in the image list;
   - an image listed by an index is acted on only if every index listing it is expired, or, to be
     archived, every such index is expired, archived by the policy, or already archived;
   - these hold transitively; images on a cycle of such links are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from boda.policy.decision import (
    Decision,
    kept_by_index,
    referrer_follows,
    referrer_without_subject,
)
from boda.policy.document import LifecyclePolicy, Rule
from boda.policy.image import EcrImage


def evaluate(policy: LifecyclePolicy, images: Sequence[EcrImage], now: datetime) -> list[Decision]:
    """Apply `policy` to `images` at time `now` (aware).

    Returns, in input order, a Decision for every image acted on and for every image a rule would act
    on but the image graph keeps (action None). Images without a Decision are kept.
    """
    if now.tzinfo is None:
        raise ValueError("evaluate: now must be timezone-aware")
    wanted: dict[str, Decision] = {}
    shielded: set[str] = set()
    for rule in policy.rules:
        identified = [image for image in images if identifies(rule, image)]
        for image in picked(rule, identified, now):
            if image.digest not in shielded:
                wanted[image.digest] = Decision(image.digest, rule.action, rule.priority, rule.reason)
        shielded.update(image.digest for image in identified)
    return _apply_graph(images, wanted)


# --------------------------------------------------------------------------- identification


def identifies(rule: Rule, image: EcrImage) -> bool:
    """Whether the image meets the rule's storage class and tagging requirements."""
    if image.subject is not None:
        return False
    if storage_class(image) != rule.storage_class:
        return False
    if rule.tag_status == "untagged":
        return not image.tags
    if rule.tag_status == "any":
        return True
    if rule.tag_pattern_list:
        return all(any(glob_matches(p, tag) for tag in image.tags) for p in rule.tag_pattern_list)
    return all(any(tag.startswith(p) for tag in image.tags) for p in rule.tag_prefix_list)


def storage_class(image: EcrImage) -> str | None:
    """The storage class a rule must name to see the image."""
    return {"ACTIVE": "standard", "ARCHIVED": "archive"}.get(image.status)


def glob_matches(pattern: str, tag: str) -> bool:
    """Whether `tag` as a whole matches `pattern`, where `*` stands for any run of characters.

    Walks the tag once, keeping the set of pattern positions reachable so far (the states of the
    pattern's automaton): time O(len(tag) * len(pattern)), never exponential.
    """
    states = _closure({0}, pattern)
    for char in tag:
        states = _closure(
            {s + 1 for s in states if s < len(pattern) and pattern[s] == char}
            | {s for s in states if s < len(pattern) and pattern[s] == "*"},
            pattern,
        )
        if not states:
            return False
    return len(pattern) in states


def _closure(states: set[int], pattern: str) -> set[int]:
    """Add the positions reachable by letting each `*` match nothing."""
    out = set(states)
    for s in sorted(states):
        while s < len(pattern) and pattern[s] == "*":
            s += 1
            out.add(s)
    return out


# --------------------------------------------------------------------------- count criteria


def picked(rule: Rule, identified: list[EcrImage], now: datetime) -> list[EcrImage]:
    """The identified images the rule's count criterion picks (shielding not yet applied)."""
    if rule.count_type == "imageCountMoreThan":
        return newest_first(identified)[rule.count_number :]
    cutoff = days_before(now, rule.count_number)
    if cutoff is None:
        return []
    if rule.count_type == "sinceImagePushed":
        return [image for image in identified if age_time(image) < cutoff]
    if rule.count_type == "sinceImagePulled":
        return [image for image in identified if last_used(image) < cutoff]
    return [
        image
        for image in identified
        if image.last_archived_at is not None and image.last_archived_at < cutoff
    ]


def newest_first(images: list[EcrImage]) -> list[EcrImage]:
    """Newest age time first; equal times: untagged before tagged, then by digest."""
    by_tie_rule = sorted(images, key=lambda image: (bool(image.tags), image.digest))
    return sorted(by_tie_rule, key=age_time, reverse=True)  # stable: ties keep the tie rule's order


def age_time(image: EcrImage) -> datetime:
    """The time images are ordered and aged by: the restore time of a restored image, else the push."""
    return image.last_activated_at or image.pushed_at


def last_used(image: EcrImage) -> datetime:
    """What sinceImagePulled measures from: the later of last pull and restore, else the push."""
    pulled, activated = image.last_pulled_at, image.last_activated_at
    if activated is not None and (pulled is None or activated > pulled):
        return activated
    return pulled or image.pushed_at


def days_before(now: datetime, days: int) -> datetime | None:
    """`now` minus `days` days; None when that is before the earliest time a datetime holds."""
    try:
        return now - timedelta(days=days)
    except OverflowError:
        return None


# --------------------------------------------------------------------------- the image graph


def _apply_graph(images: Sequence[EcrImage], wanted: dict[str, Decision]) -> list[Decision]:
    """Referrers follow their subjects, index children wait for their indexes (module docstring, 5)."""
    by_digest = {image.digest: image for image in images}
    listed_by: dict[str, list[str]] = {}
    for image in images:
        for child in image.children:
            if child in by_digest and child != image.digest:
                listed_by.setdefault(child, []).append(image.digest)
    for indexes in listed_by.values():
        indexes.sort()

    def proposal(image: EcrImage, acting: dict[str, Decision]) -> Decision | None:
        """What the image would do if nothing but the images in `acting` acted."""
        if image.subject is None:
            return wanted.get(image.digest)
        subject = acting.get(image.subject)
        if subject is None or subject.action is None:
            return None
        if subject.action == "transition" and image.status != "ACTIVE":
            return None
        reason = referrer_follows(image.subject, subject.action, subject.rule_priority)
        return Decision(image.digest, subject.action, subject.rule_priority, reason)

    def blocking_index(decision: Decision, acting: dict[str, Decision]) -> str | None:
        """The first index (by digest) listing the image that keeps it from acting, if any."""
        for index in listed_by.get(decision.digest, ()):
            parent = acting.get(index)
            if parent is not None and parent.action == "expire":
                continue
            if decision.action == "transition" and (
                (parent is not None and parent.action == "transition") or by_digest[index].status != "ACTIVE"
            ):
                continue
            return index
        return None

    # The least set of acting images closed under the rules above: an image joins once everything it
    # depends on has joined, so an image that depends (through a cycle) on itself never does.
    acting: dict[str, Decision] = {}
    grew = True
    while grew:
        grew = False
        for image in images:
            if image.digest in acting:
                continue
            decision = proposal(image, acting)
            if decision is not None and blocking_index(decision, acting) is None:
                acting[image.digest] = decision
                grew = True

    decisions = []
    for image in images:
        if image.digest in acting:
            decisions.append(acting[image.digest])
        elif image.subject is not None and image.subject not in by_digest:
            decisions.append(Decision(image.digest, None, None, referrer_without_subject(image.subject)))
        else:
            decision = proposal(image, acting)
            if decision is not None and decision.action is not None:
                index = blocking_index(decision, acting)
                assert index is not None
                reason = kept_by_index(index, decision.action, decision.reason)
                decisions.append(Decision(image.digest, None, decision.rule_priority, reason))
    return decisions
