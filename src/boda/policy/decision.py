"""What evaluating a lifecycle policy says about one image, and the words both evaluators use."""

from __future__ import annotations

import msgspec

from boda.policy.document import ActionType


class Decision(msgspec.Struct, frozen=True, gc=False, order=True):
    """What the policy does to one image.

    `action` None means a rule would act but a graph constraint keeps the image (see `reason`).
    `rule_priority` is the acting rule's priority (for a referrer: its subject's rule).
    Not tracked by the cyclic garbage collector (it holds only strings and numbers): an evaluation
    of a million images builds a million of these without triggering a collection.
    """

    digest: str
    action: ActionType | None
    rule_priority: int | None
    reason: str


def verb(action: ActionType) -> str:
    """`expired` or `archived`."""
    return "expired" if action == "expire" else "archived"


def referrer_without_subject(subject: str) -> str:
    """Why a referrer whose subject is not in the image list is kept."""
    return f"referrer of {subject}, which is not in the image list"


def referrer_follows(subject: str, action: ActionType, priority: int | None) -> str:
    """Why a referrer is acted on: its subject is."""
    return f"referrer of {subject}, {verb(action)} with it by rulePriority {priority}"


def kept_by_index(index: str, action: ActionType, reason: str) -> str:
    """Why an image listed by an index that stays is not acted on."""
    return f"listed by index {index}, which stays: not {verb(action)} on its own ({reason})"
