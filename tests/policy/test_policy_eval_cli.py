"""`boda policy eval` on hostile and extreme input: one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DIGEST = "sha256:" + "a" * 64
KEEP_ONE = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    ]
}
IMAGES = {"imageDetails": [{"imageDigest": DIGEST, "imageTags": ["v1"], "imagePushedAt": 1700000000}]}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "policy.json").write_text(json.dumps(KEEP_ONE))
    (tmp_path / "images.json").write_text(json.dumps(IMAGES))
    return tmp_path / "policy.json", tmp_path / "images.json"


def eval_args(files: tuple[Path, Path], *extra: str) -> list[str]:
    return ["policy", "eval", "--policy", str(files[0]), "--images", str(files[1]), "--json", *extra]


def assert_bad_input(run: Any, needle: str) -> None:
    assert run.code == 2, run.err
    assert run.out == ""
    assert len(run.err.strip().splitlines()) == 1 and needle in run.err, run.err


def test_deeply_nested_policy(files: tuple[Path, Path], boda: Any) -> None:
    files[0].write_text('{"rules": ' + "[" * 10_000 + "]" * 10_000 + "}")
    assert_bad_input(boda(*eval_args(files)), "nested too deeply")


def test_deeply_nested_images(files: tuple[Path, Path], boda: Any) -> None:
    files[1].write_text('{"imageDetails": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert_bad_input(boda(*eval_args(files)), "images.json: images: not valid JSON")


@pytest.mark.parametrize(
    "now", ["0001-01-01", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00", "9999-06-01"]
)
def test_now_out_of_range(files: tuple[Path, Path], boda: Any, now: str) -> None:
    assert_bad_input(boda(*eval_args(files, "--now", now)), "out of range")


@pytest.mark.parametrize("count", [999_999_999, 10**30])
def test_a_count_number_past_any_age_expires_nothing(files: tuple[Path, Path], boda: Any, count: int) -> None:
    policy = json.loads(json.dumps(KEEP_ONE))
    policy["rules"][0]["selection"] = {
        "tagStatus": "any",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": count,
    }
    files[0].write_text(json.dumps(policy))
    run = boda(*eval_args(files, "--now", "2025-01-01"))
    assert run.code == 0, run.err
    assert run.json["previewResults"] == [] and run.json["summary"]["expiringImageTotalCount"] == 0


def test_tags_of_300_characters(files: tuple[Path, Path], boda: Any) -> None:
    older = {"imageDigest": "sha256:" + "b" * 64, "imageTags": ["x" * 300], "imagePushedAt": 1600000000}
    files[1].write_text(json.dumps({"imageDetails": [*IMAGES["imageDetails"], older]}))
    run = boda(*eval_args(files, "--now", "2025-01-01"))
    assert run.code == 0, run.err
    assert [r["imageTags"] for r in run.json["previewResults"]] == [["x" * 300]]


def test_a_restored_image_counts_from_its_restore_time(files: tuple[Path, Path], boda: Any) -> None:
    """describe-images' lastActivatedAt: an old image restored from archive is the newest one."""
    restored = {
        "imageDigest": "sha256:" + "c" * 64,
        "imagePushedAt": "2020-01-01T00:00:00+00:00",
        "lastActivatedAt": "2024-12-31T00:00:00+00:00",
    }
    files[1].write_text(json.dumps({"imageDetails": [*IMAGES["imageDetails"], restored]}))
    run = boda(*eval_args(files, "--now", "2025-01-01"))
    assert run.code == 0, run.err
    assert [r["imageDigest"] for r in run.json["previewResults"]] == [DIGEST]
