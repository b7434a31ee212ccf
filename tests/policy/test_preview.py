"""The preview in ECR's GetLifecyclePolicyPreview shape: fields, JSON names, order and summary."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec

from boda.policy import EcrImage, evaluate, parse_policy, preview

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def img(name: str, tags: list[str], days: float, **kw: Any) -> EcrImage:
    return EcrImage(digest=dg(name), tags=tuple(tags), pushed_at=NOW - timedelta(days=days), **kw)


def as_json(value: object) -> Any:
    return json.loads(msgspec.json.encode(value))


def policy_of(*rules: dict[str, Any]) -> Any:
    return parse_policy(json.dumps({"rules": list(rules)}))


KEEP_ONE = {
    "rulePriority": 1,
    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
    "action": {"type": "expire"},
}
COMBINED = [
    {
        "rulePriority": 1,
        "selection": {
            "tagStatus": "any",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 30,
        },
        "action": {"type": "transition", "targetStorageClass": "archive"},
    },
    {
        "rulePriority": 2,
        "selection": {
            "tagStatus": "any",
            "storageClass": "archive",
            "countType": "sinceImageTransitioned",
            "countUnit": "days",
            "countNumber": 365,
        },
        "action": {"type": "expire"},
    },
]


def test_preview_has_ecr_shape() -> None:
    images = [
        img("a", ["v1"], 40),
        img("b", [], 10),
        img("c", ["v0"], 800, status="ARCHIVED", last_archived_at=NOW - timedelta(days=400)),
        img("d", [], 800, status="ARCHIVED", last_archived_at=NOW - timedelta(days=100)),
    ]
    assert as_json(preview(policy_of(*COMBINED), images, NOW)) == {
        "previewResults": [
            {
                "imageDigest": dg("a"),
                "imageTags": ["v1"],
                "imagePushedAt": "2025-04-22T12:00:00Z",
                "action": {"type": "TRANSITION", "targetStorageClass": "ARCHIVE"},
                "appliedRulePriority": 1,
                "storageClass": "STANDARD",
            },
            {
                "imageDigest": dg("c"),
                "imageTags": ["v0"],
                "imagePushedAt": "2023-03-24T12:00:00Z",
                "action": {"type": "EXPIRE"},
                "appliedRulePriority": 2,
                "storageClass": "ARCHIVE",
            },
        ],
        "summary": {
            "expiringImageTotalCount": 1,
            "transitioningImageTotalCounts": [{"targetStorageClass": "ARCHIVE", "imageTotalCount": 1}],
        },
    }


def test_preview_without_transitions_has_no_transition_summary() -> None:
    images = [img("a", [], 3), img("b", [], 2), img("c", [], 1)]
    result = preview(policy_of(KEEP_ONE), images, NOW)
    assert as_json(result.summary) == {"expiringImageTotalCount": 2}
    assert [r.image_digest for r in result.preview_results] == [dg("a"), dg("b")]  # oldest first


def test_results_are_ordered_by_rule_then_as_the_images_were_given() -> None:
    rules = [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["pr-"],
                "countType": "imageCountMoreThan",
                "countNumber": 1,
            },
            "action": {"type": "expire"},
        },
        KEEP_ONE | {"rulePriority": 2},
    ]
    images = [img(f"pr{i}", [f"pr-{i}"], i % 4 + 1) for i in range(12)]
    images += [img(f"x{i}", [], i % 3 + 1) for i in range(9)]
    images.append(img("newest", [], 0))
    for seed in range(5):
        random.Random(seed).shuffle(images)
        rows = preview(policy_of(*rules), images, NOW).preview_results
        given = [image.digest for image in images]
        assert [r.applied_rule_priority for r in rows] == [1] * 11 + [2] * 9
        for priority in (1, 2):
            digests = [r.image_digest for r in rows if r.applied_rule_priority == priority]
            assert digests == sorted(digests, key=given.index)


def test_push_times_are_given_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    images = [
        EcrImage(digest=dg("a"), pushed_at=datetime(2025, 1, 1, 14, 0, tzinfo=plus_two)),
        img("b", [], 0),
    ]
    [row] = preview(policy_of(KEEP_ONE), images, NOW).preview_results
    assert (
        row.image_pushed_at == datetime(2025, 1, 1, 12, 0, tzinfo=UTC) and row.image_pushed_at.tzinfo is UTC
    )
    assert msgspec.json.encode(row.image_pushed_at) == b'"2025-01-01T12:00:00Z"'


def test_kept_by_the_graph_is_not_in_the_preview() -> None:
    child = img("child", [], 30)
    index = img("index", ["v1"], 30, children=(child.digest,))
    untagged = {
        "rulePriority": 1,
        "selection": {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 1,
        },
        "action": {"type": "expire"},
    }
    result = preview(policy_of(untagged), [index, child], NOW)
    assert [d.action for d in evaluate(policy_of(untagged), [index, child], NOW)] == [None]
    assert result.preview_results == [] and result.summary.expiring_image_total_count == 0
