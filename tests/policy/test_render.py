"""The rendered lifecycle policy of native retention and its proof (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from boda.errors import PolicyError
from boda.policy import EcrImage, evaluate, parse_policy
from boda.policy.plan import Protection
from boda.policy.render import SHIELD_COUNT, prove, render_policy, shields_for, user_rules

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def rule(priority: int, **selection: Any) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "expire"}
    if selection.pop("transition", False):
        action = {"type": "transition", "targetStorageClass": "archive"}
    return {"rulePriority": priority, "selection": selection, "action": action}


UNTAGGED_10 = rule(7, tagStatus="untagged", countType="imageCountMoreThan", countNumber=10)
ANY_30_DAYS = rule(9, tagStatus="any", countType="sinceImagePushed", countUnit="days", countNumber=30)


def text(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


def test_shields_first_then_the_users_rules_renumbered() -> None:
    rendered = render_policy(text(ANY_30_DAYS, UNTAGGED_10), shields_for("keep-*", env_tags=["dev", "prd"]))
    rules = rendered.document["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2, 3, 4, 5]
    assert rules[0]["selection"] == {
        "tagStatus": "tagged",
        "tagPatternList": ["keep-*"],
        "countType": "imageCountMoreThan",
        "countNumber": SHIELD_COUNT,
    }
    assert [r["selection"]["tagPatternList"] for r in rules[1:3]] == [["dev"], ["prd"]]
    assert rules[3]["selection"] == UNTAGGED_10["selection"]  # the user's order kept (7 before 9)
    assert rules[4]["selection"] == ANY_30_DAYS["selection"]
    assert rendered.shields == 3
    assert parse_policy(rendered.text).rules == rendered.policy.rules


def test_rendering_a_rendered_policy_gives_it_back() -> None:
    shields = shields_for("keep-*", every_tag=True, archive=True)
    archive = rule(3, tagStatus="any", storageClass="archive", countType="sinceImageTransitioned")
    archive["selection"] |= {"countUnit": "days", "countNumber": 90}
    first = render_policy(text(UNTAGGED_10, archive), shields)
    shielded = [
        (r["selection"]["tagPatternList"], r["selection"].get("storageClass", "standard"))
        for r in first.document["rules"][:4]
    ]
    standard, archived = (
        [(["keep-*"], "standard"), (["*"], "standard")],
        [(["keep-*"], "archive"), (["*"], "archive")],
    )
    assert shielded == standard + archived
    assert user_rules(first.text) == [{**archive, "rulePriority": 5}, {**UNTAGGED_10, "rulePriority": 6}]
    assert render_policy(first.text, shields).text == first.text


def test_a_user_rule_that_selects_what_a_shield_selects_is_left_out() -> None:
    same = rule(1, tagStatus="tagged", tagPatternList=["keep-*"], countType="imageCountMoreThan")
    same["selection"]["countNumber"] = 1
    rendered = render_policy(text(same, UNTAGGED_10), shields_for("keep-*"))
    assert len(rendered.document["rules"]) == 2
    assert any("left out" in n for n in rendered.notes)


def test_only_shields_is_valid_and_says_so() -> None:
    rendered = render_policy(None, shields_for("keep-*"))
    assert len(rendered.policy.rules) == 1 and "expires nothing" in rendered.notes[0]


def test_limits() -> None:
    many = [
        rule(i, tagStatus="tagged", tagPatternList=[f"v{i}*"], countType="imageCountMoreThan", countNumber=1)
        for i in range(1, 49)
    ]
    with pytest.raises(PolicyError, match="51 rules"):
        render_policy(text(*many), shields_for("keep-*", env_tags=["dev", "prd"]))
    with pytest.raises(PolicyError, match="rule 1"):
        render_policy(text({"rulePriority": 1}), shields_for("keep-*"))
    # Long rules: indented, the policy would pass ECR's 30,720 characters; compact, it does not.
    wordy = [
        {
            **r,
            "description": "x" * 288,
            "selection": {**r["selection"], "tagPatternList": [f"v{i}-{j}-{'p' * 20}*" for j in range(3)]},
        }
        for i, r in enumerate(many[:49])
    ]
    rendered = render_policy(text(*wordy), shields_for("keep-*"))
    assert "\n" not in rendered.text and len(rendered.text) <= 30720


def test_proof_names_every_protected_image_a_policy_would_expire_or_archive() -> None:
    old = NOW - timedelta(days=100)
    images = [
        EcrImage(digest=f"sha256:{'a' * 64}", tags=("keep-prd-aaaaaaaaaaaa",), pushed_at=old),
        EcrImage(digest=f"sha256:{'b' * 64}", tags=("c-b",), pushed_at=old),  # protected, tag lost
        EcrImage(digest=f"sha256:{'c' * 64}", tags=("c-c",), pushed_at=old),
    ]
    archive = rule(1, tagStatus="any", countType="sinceImagePushed", countUnit="days", transition=True)
    archive["selection"]["countNumber"] = 30
    rendered = render_policy(text(archive), shields_for("keep-*"))
    protected = {
        images[0].digest: [Protection("current", "current in prd")],
        images[1].digest: [Protection("rollback", "rollback target 1 in prd")],
    }
    violations = prove(rendered.policy, images, protected, NOW)
    found = [(v.digest, v.action, v.rule_priority) for v in violations]
    assert found == [(images[1].digest, "transition", 2)]
    assert "would be archived by rulePriority 2 but is rollback target 1 in prd" in violations[0].text
    assert {d.digest for d in evaluate(rendered.policy, images, NOW) if d.action} == {
        images[1].digest,
        images[2].digest,
    }
