"""Pure retention logic: ECR lifecycle policy semantics over plain image records.

document         the policy document: types, parsing, ECR's validation rules
image            the image record a policy sees (EcrImage)
describe_images  reading `aws ecr describe-images` output into image records
reference        the reference evaluator: ECR's rules as documented, written to be read
columnar         the fast evaluator boda runs; decides exactly what the reference decides
decision         what an evaluation says about one image (Decision)
preview          an evaluation in the shape of ECR's lifecycle policy preview
plan             the expiry plan: decisions combined with what must stay
"""

from __future__ import annotations

from boda.policy.columnar import evaluate
from boda.policy.decision import Decision
from boda.policy.describe_images import parse_images
from boda.policy.document import LifecyclePolicy, Rule, parse_policy
from boda.policy.image import EcrImage
from boda.policy.preview import preview
from boda.policy.reference import evaluate as evaluate_reference

__all__ = [
    "Decision",
    "EcrImage",
    "LifecyclePolicy",
    "Rule",
    "evaluate",
    "evaluate_reference",
    "parse_images",
    "parse_policy",
    "preview",
]
