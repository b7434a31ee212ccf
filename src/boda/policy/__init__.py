"""Pure retention logic: ECR lifecycle policy semantics over plain image records."""

from __future__ import annotations

from boda.policy.ecr import Decision, LifecyclePolicy, Rule, evaluate, parse_policy, preview
from boda.policy.images import EcrImage, parse_images

__all__ = [
    "Decision",
    "EcrImage",
    "LifecyclePolicy",
    "Rule",
    "evaluate",
    "parse_images",
    "parse_policy",
    "preview",
]
