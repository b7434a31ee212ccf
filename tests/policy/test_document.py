"""Lifecycle policy documents: parsing and validation by AWS's documented rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from boda.errors import PolicyError
from boda.policy import parse_policy
from boda.policy.document import MAX_POLICY_CHARS


def rule(priority: Any = 1, *, action: dict[str, Any] | None = None, **selection: Any) -> dict[str, Any]:
    sel: dict[str, Any] = {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}
    sel.update(selection)
    return {"rulePriority": priority, "selection": sel, "action": action or {"type": "expire"}}


def policy_text(*rules: dict[str, Any], **top: Any) -> str:
    return json.dumps({"rules": list(rules), **top})


def error_of(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    message = info.value.message
    assert "\n" not in message
    return message


SINCE = {"countType": "sinceImagePushed", "countUnit": "days", "countNumber": 5}
ARCHIVE_EXPIRE = {
    "tagStatus": "any",
    "storageClass": "archive",
    "countType": "sinceImageTransitioned",
    "countUnit": "days",
    "countNumber": 365,
}
TRANSITION = {"type": "transition", "targetStorageClass": "archive"}


def test_valid_policy_parses_in_priority_order() -> None:
    text = policy_text(
        rule(10, tagStatus="any"),
        rule(2, tagStatus="tagged", tagPatternList=["prod*", "*-x"]),
        rule(5, tagStatus="tagged", tagPrefixList=["v"], **SINCE),
        rule(1, **SINCE),
    )
    policy = parse_policy(text)
    assert [r.priority for r in policy.rules] == [1, 2, 5, 10]
    assert [r.index for r in policy.rules] == [4, 2, 3, 1]
    assert policy.rules[1].tag_pattern_list == ("prod*", "*-x")
    assert policy.rules[2].count_unit == "days"
    assert policy.notes == ()


def test_combined_archive_example_is_valid() -> None:
    """Both storage classes may have their own `any` rule (the AWS combined archive example)."""
    text = policy_text(
        rule(1, tagStatus="any", **{**SINCE, "countNumber": 30}, action=TRANSITION),
        rule(2, **ARCHIVE_EXPIRE),
    )
    policy = parse_policy(text)
    assert policy.rules[0].target_storage_class == "archive"
    assert policy.rules[1].storage_class == "archive"


def test_shortest_valid_policy_meets_ecrs_minimum_length() -> None:
    """ECR's 100-character minimum needs no check of its own: no valid policy is shorter."""
    shortest = json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
                    "action": {"type": "expire"},
                }
            ]
        },
        separators=(",", ":"),
    )
    parse_policy(shortest)
    assert len(shortest) >= 100
    for key in ("tagStatus", "countType", "countNumber"):
        shorter = json.loads(shortest)
        del shorter["rules"][0]["selection"][key]
        error_of(json.dumps(shorter, separators=(",", ":")))


def test_policy_at_the_length_limit() -> None:
    base = policy_text(rule(1, tagStatus="any"))
    padded = base[:-1] + " " * (MAX_POLICY_CHARS - len(base)) + "}"
    assert len(padded) == MAX_POLICY_CHARS
    parse_policy(padded)
    assert "more than ECR's limit of 30720" in error_of(padded[:-1] + " }")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("not json", "policy: not valid JSON"),
        ("[]", "policy: must be a JSON object"),
        ('{"rules": []}', "policy: rules must be a non-empty list"),
        ('{"rules": null}', "policy: rules must not be null"),
        ('{"rules": [], "version": 1}', "policy: version is not a lifecycle policy field"),
        ('{"rules": [1], "rules": [2]}', "duplicate key 'rules'"),
        ('{"rules": [{"rulePriority": NaN}]}', "NaN is not a JSON number"),
        (
            policy_text(*[rule(i, tagStatus="tagged", tagPrefixList=[f"p{i}"]) for i in range(1, 52)]),
            "51 rules",
        ),
    ],
)
def test_policy_level_errors(text: str, expected: str) -> None:
    assert expected in error_of(text)


@pytest.mark.parametrize(
    "bad_rule,expected",
    [
        ("x", "rule 1: must be a JSON object"),
        (rule(0), "rule 1: rulePriority must be a positive integer"),
        (rule(True), "rule 1: rulePriority must be a positive integer"),
        (rule(1.0), "rule 1: rulePriority must be a positive integer"),
        (rule(None), "rule 1: rulePriority must be a positive integer"),
        ({**rule(), "extra": 1}, "rule 1 (rulePriority 1): extra is not a lifecycle policy field"),
        ({**rule(), "description": None}, "rule 1 (rulePriority 1): description must not be null"),
        ({**rule(), "description": "x" * 289}, "description is longer than 288 characters"),
        ({**rule(), "description": 5}, "description must be a string"),
        ({"rulePriority": 1, "action": {"type": "expire"}}, "selection must be a JSON object"),
        (rule(foo=1), "selection.foo is not a lifecycle policy field"),
        (rule(tagStatus="all"), "selection.tagStatus must be one of tagged, untagged, any, not 'all'"),
        (rule(tagStatus="tagged"), "selection.tagPatternList or selection.tagPrefixList is required"),
        (
            rule(tagStatus="tagged", tagPatternList=["a"], tagPrefixList=["a"]),
            "selection.tagPatternList and selection.tagPrefixList cannot both be given",
        ),
        (rule(tagPrefixList=["a"]), "selection.tagPrefixList is not allowed with tagStatus untagged"),
        (
            rule(tagStatus="any", tagPatternList=["a*"]),
            "selection.tagPatternList is not allowed with tagStatus any",
        ),
        (rule(tagStatus="tagged", tagPatternList=[]), "selection.tagPatternList must be a non-empty list"),
        (
            rule(tagStatus="tagged", tagPatternList="prod*"),
            "selection.tagPatternList must be a non-empty list",
        ),
        (
            rule(tagStatus="tagged", tagPrefixList=[""]),
            "selection.tagPrefixList[0] must be a non-empty string",
        ),
        (rule(tagStatus="tagged", tagPrefixList=["a", None]), "selection.tagPrefixList[1] must not be null"),
        (
            rule(tagStatus="tagged", tagPatternList=["*test*1*2*3", "test*1*2*3*4*5*6"]),
            "selection.tagPatternList[1] has more than 4 '*' wildcards",
        ),
        (rule(countType="imageCountLessThan"), "selection.countType must be one of"),
        (rule(countType=None), "selection.countType must not be null"),
        (
            rule(countUnit="days"),
            "rule 1 (rulePriority 1): selection.countUnit is not allowed with countType imageCountMoreThan",
        ),
        (
            rule(countType="sinceImagePushed"),
            "selection.countUnit is required with countType sinceImagePushed",
        ),
        (rule(**{**SINCE, "countUnit": "hours"}), 'selection.countUnit must be "days"'),
        (rule(countNumber=0), "selection.countNumber must be a positive integer"),
        (rule(countNumber=True), "selection.countNumber must be a positive integer"),
        (rule(countNumber=2.0), "selection.countNumber must be a positive integer"),
        (rule(countNumber="3"), "selection.countNumber must be a positive integer"),
        (rule(storageClass="glacier"), "selection.storageClass must be one of standard, archive"),
        (rule(action={"type": "delete"}), "action.type must be one of expire, transition"),
        (rule(action={"type": "transition"}), 'action.targetStorageClass must be "archive"'),
        (
            rule(action={"type": "transition", "targetStorageClass": "standard"}),
            'action.targetStorageClass must be "archive"',
        ),
        (
            rule(action={"type": "expire", "targetStorageClass": "archive"}),
            "action.targetStorageClass is not allowed with action.type expire",
        ),
        (
            rule(action={"type": "expire", "targetStorageClass": None}),
            "action.targetStorageClass must not be null",
        ),
        (
            rule(countType="sinceImagePulled", countUnit="days", countNumber=90),
            "action.type must be transition with countType sinceImagePulled",
        ),
        (
            rule(**{**ARCHIVE_EXPIRE}, action=TRANSITION),
            "action.type must be expire with countType sinceImageTransitioned",
        ),
        (
            rule(**{**ARCHIVE_EXPIRE, "storageClass": "standard"}),
            'selection.storageClass must be "archive" with countType sinceImageTransitioned',
        ),
        (
            rule(**{k: v for k, v in ARCHIVE_EXPIRE.items() if k != "storageClass"}),
            'selection.storageClass must be "archive" with countType sinceImageTransitioned',
        ),
        (rule(**{**ARCHIVE_EXPIRE, "countNumber": 89}), "selection.countNumber must be at least 90 days"),
        (
            rule(storageClass="archive"),
            "selection.storageClass archive is only allowed with countType sinceImageTransitioned",
        ),
        (
            rule(storageClass="archive", countType="sinceImagePulled", countUnit="days", action=TRANSITION),
            "selection.storageClass archive is only allowed with countType sinceImageTransitioned",
        ),
    ],
)
def test_rule_errors(bad_rule: Any, expected: str) -> None:
    assert expected in error_of(policy_text(bad_rule))


@pytest.mark.parametrize(
    "rules,expected",
    [
        (
            [rule(3, tagStatus="any"), rule(3, tagStatus="tagged", tagPrefixList=["a"])],
            "rule 2 (rulePriority 3): rulePriority 3 is already used by rule 1",
        ),
        (
            [rule(1, tagStatus="any"), rule(2, tagStatus="tagged", tagPrefixList=["a"])],
            "rule 1 (rulePriority 1): selection.tagStatus any needs the highest rulePriority among"
            " storageClass standard rules (2 is higher)",
        ),
        (
            [rule(1, tagStatus="any"), rule(2, tagStatus="any")],
            "rule 1 (rulePriority 1): selection.tagStatus any needs the highest rulePriority",
        ),
        (
            [rule(1), rule(2, **SINCE)],
            "rule 2 (rulePriority 2): selection.tagStatus untagged is already used by rule 1",
        ),
        (
            [
                rule(1, tagStatus="tagged", tagPrefixList=["a", "b"]),
                rule(2, tagStatus="tagged", tagPrefixList=["b", "a"]),
            ],
            "rule 2 (rulePriority 2): selection.tagPrefixList repeats the tag set of rule 1 (rulePriority 1)",
        ),
        (
            [
                rule(1, tagStatus="tagged", tagPatternList=["a*"]),
                rule(2, tagStatus="tagged", tagPatternList=["a*"]),
            ],
            "selection.tagPatternList repeats the tag set of rule 1",
        ),
    ],
)
def test_cross_rule_errors(rules: list[dict[str, Any]], expected: str) -> None:
    assert expected in error_of(policy_text(*rules))


def test_same_tag_set_in_different_storage_classes_is_allowed() -> None:
    parse_policy(
        policy_text(
            rule(
                1,
                tagStatus="tagged",
                tagPatternList=["*-sha-*"],
                **{**SINCE, "countNumber": 30},
                action=TRANSITION,
            ),
            rule(
                2,
                **{**ARCHIVE_EXPIRE, "tagStatus": "tagged", "tagPatternList": ["*-sha-*"], "countNumber": 90},
            ),
            rule(3, **SINCE),
        )
    )


def test_tag_sets_may_overlap_when_not_identical_but_a_shadowed_rule_gets_a_note() -> None:
    policy = parse_policy(
        policy_text(
            rule(1, tagStatus="tagged", tagPrefixList=["prod"]),
            rule(2, tagStatus="tagged", tagPrefixList=["release"]),
            rule(3, tagStatus="tagged", tagPrefixList=["prod", "release"]),
            rule(4, tagStatus="tagged", tagPatternList=["prod*", "x*"]),
        )
    )
    assert policy.notes == (
        "rule 3 (rulePriority 3) never acts: every image it selects is selected first by"
        " rule 1 (rulePriority 1)",
    )


@pytest.mark.parametrize("depth", [1_000, 15_000])
def test_deeply_nested_json_is_one_line_of_error(depth: int) -> None:
    for text in ('{"rules": ' + "[" * depth + "]" * depth + "}", "[" * depth + "]" * depth):
        message = error_of(text)
        assert message.startswith("policy: ")


def test_a_huge_count_number_is_valid() -> None:
    """AWS documents countNumber as a positive integer, with no maximum: boda accepts any."""
    text = policy_text(
        rule(1, tagStatus="any", countType="sinceImagePushed", countUnit="days", countNumber=10**30)
    )
    assert parse_policy(text).rules[0].count_number == 10**30
