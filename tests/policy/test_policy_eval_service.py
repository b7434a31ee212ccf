"""The offline `policy eval` service: files in, ECR preview plus in-use violations out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from boda.errors import PolicyError, ReferenceError_, UsageError
from boda.services.policy_eval import evaluate_offline, parse_now

NOW = datetime(2025, 6, 1, tzinfo=UTC)
OLD, MID, NEW = ("sha256:" + c * 64 for c in "abc")
POLICY = {
    "rules": [
        {
            "rulePriority": 3,
            "description": "keep the newest image",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    ]
}
IMAGES = {
    "imageDetails": [
        {"imageDigest": OLD, "imageTags": ["v1"], "imagePushedAt": "2025-01-01T00:00:00Z"},
        {"imageDigest": MID, "imagePushedAt": 1738368000},  # 2025-02-01
        {"imageDigest": NEW, "imageTags": ["v3"], "imagePushedAt": "2025-03-01T00:00:00+00:00"},
    ]
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    policy, images = tmp_path / "policy.json", tmp_path / "images.json"
    policy.write_text(json.dumps(POLICY))
    images.write_text(json.dumps(IMAGES))
    return policy, images


def test_preview_and_violations(files: tuple[Path, Path], tmp_path: Path) -> None:
    in_use = tmp_path / "in-use.txt"
    in_use.write_text(f"# what runs in production\n\n{OLD}  # prd\n{NEW}\n")
    result = json.loads(msgspec.json.encode(evaluate_offline(*files, NOW, in_use)))
    assert result["previewResults"] == [
        {
            "imageDigest": OLD,
            "imageTags": ["v1"],
            "imagePushedAt": "2025-01-01T00:00:00Z",
            "action": {"type": "EXPIRE"},
            "appliedRulePriority": 3,
            "storageClass": "STANDARD",
        },
        {
            "imageDigest": MID,
            "imageTags": [],
            "imagePushedAt": "2025-02-01T00:00:00Z",
            "action": {"type": "EXPIRE"},
            "appliedRulePriority": 3,
            "storageClass": "STANDARD",
        },
    ]
    assert result["summary"] == {"expiringImageTotalCount": 2}
    assert result["violations"] == [
        {"imageDigest": OLD, "imageTags": ["v1"], "appliedRulePriority": 3, "action": {"type": "EXPIRE"}}
    ]


def test_no_in_use_file_means_no_violations(files: tuple[Path, Path]) -> None:
    assert evaluate_offline(*files, None, None).violations == []


def test_transitions_are_not_violations(tmp_path: Path) -> None:
    policy, images, in_use = tmp_path / "p.json", tmp_path / "i.json", tmp_path / "u.txt"
    rule = {
        "rulePriority": 1,
        "selection": {
            "tagStatus": "any",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 30,
        },
        "action": {"type": "transition", "targetStorageClass": "archive"},
    }
    policy.write_text(json.dumps({"rules": [rule]}))
    images.write_text(json.dumps(IMAGES))
    in_use.write_text(OLD + "\n")
    result = json.loads(msgspec.json.encode(evaluate_offline(policy, images, NOW, in_use)))
    assert result["summary"]["transitioningImageTotalCounts"] == [
        {"targetStorageClass": "ARCHIVE", "imageTotalCount": 3}
    ]
    assert result["violations"] == []


def test_missing_file_names_the_path(files: tuple[Path, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(UsageError, match=f"cannot read the policy file {missing}"):
        evaluate_offline(missing, files[1], NOW, None)
    with pytest.raises(UsageError, match=f"cannot read the images file {missing}"):
        evaluate_offline(files[0], missing, NOW, None)
    with pytest.raises(UsageError, match=f"cannot read the in-use file {missing}"):
        evaluate_offline(*files, NOW, missing)


def test_invalid_policy_names_file_rule_and_field(files: tuple[Path, Path]) -> None:
    policy, images = files
    bad = json.loads(json.dumps(POLICY))
    bad["rules"][0]["selection"]["countUnit"] = "days"
    policy.write_text(json.dumps(bad))
    with pytest.raises(PolicyError) as info:
        evaluate_offline(policy, images, NOW, None)
    assert info.value.message == (
        f"{policy}: rule 1 (rulePriority 3):"
        " selection.countUnit is not allowed with countType imageCountMoreThan"
    )
    assert info.value.exit_code == 2


def test_policy_that_is_not_utf8(files: tuple[Path, Path]) -> None:
    files[0].write_bytes(b"\xff\xfe{")
    with pytest.raises(PolicyError, match="not UTF-8"):
        evaluate_offline(*files, NOW, None)


def test_invalid_images_document_names_file_and_field(files: tuple[Path, Path]) -> None:
    files[1].write_text(json.dumps({"imageDetails": [{"imageDigest": OLD, "imagePushedAt": "soon"}]}))
    with pytest.raises(PolicyError, match=r"images.json: imageDetails\[0\].imagePushedAt: not a timestamp"):
        evaluate_offline(*files, NOW, None)


def test_bad_in_use_line_names_file_and_line(files: tuple[Path, Path], tmp_path: Path) -> None:
    in_use = tmp_path / "in-use.txt"
    in_use.write_text(f"{OLD}\n# fine\nsha256:nothex\n")
    with pytest.raises(ReferenceError_, match=f"{in_use}:3: invalid digest 'sha256:nothex'"):
        evaluate_offline(*files, NOW, in_use)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2025-01-31T12:00:00Z", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31T12:00:00", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31T14:00:00+02:00", datetime(2025, 1, 31, 12, tzinfo=UTC)),
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
    ],
)
def test_parse_now(text: str, expected: datetime) -> None:
    parsed = parse_now(text)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "", "2025-13-01"])
def test_parse_now_rejects_garbage(text: str) -> None:
    with pytest.raises(UsageError, match="expected ISO 8601"):
        parse_now(text)


@pytest.mark.parametrize("text", ["0001-01-01", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00"])
def test_parse_now_refuses_times_out_of_range(text: str) -> None:
    with pytest.raises(UsageError, match="out of range: from 1970-01-01 to before 9999-01-01") as info:
        parse_now(text)
    assert info.value.exit_code == 2


def test_parse_now_range_edges() -> None:
    assert parse_now("1970-01-01T00:00:00Z") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_now("9998-12-31T23:59:59.999999Z") == datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
