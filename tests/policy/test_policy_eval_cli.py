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
    assert len(run.err.strip().splitlines()) == 1 and needle in run.err, run.err
    if run.out:  # under --json a failure may also be one JSON object on stdout, never a result
        assert json.loads(run.out)["error"]["exit_code"] == 2


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


def test_json_is_compact_when_piped_and_indented_on_request(files: tuple[Path, Path], boda: Any) -> None:
    older = {"imageDigest": "sha256:" + "b" * 64, "imageTags": ["old"], "imagePushedAt": 1600000000}
    files[1].write_text(json.dumps({"imageDetails": [*IMAGES["imageDetails"], older]}))
    compact = boda(*eval_args(files, "--now", "2025-01-01"))
    assert compact.code == 0 and compact.out.count("\n") == 1
    pretty = boda(*eval_args(files, "--now", "2025-01-01", "--pretty"))
    assert pretty.code == 0 and pretty.out.count("\n") > 10 and '\n  "previewResults": [' in pretty.out
    assert (
        compact.json
        == pretty.json
        == {
            "previewResults": [
                {
                    "imageDigest": "sha256:" + "b" * 64,
                    "imageTags": ["old"],
                    "imagePushedAt": "2020-09-13T12:26:40Z",
                    "action": {"type": "EXPIRE"},
                    "appliedRulePriority": 1,
                    "storageClass": "STANDARD",
                }
            ],
            "summary": {"expiringImageTotalCount": 1},
            "violations": [],
        }
    )
    # --pretty alone asks for JSON too
    assert boda("policy", "eval", "--policy", str(files[0]), "--images", str(files[1]), "--pretty").json


def test_json_streams_many_rows_in_pieces(
    files: tuple[Path, Path], boda: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("boda.cli.policy._ROWS_PER_WRITE", 3)
    details = [{"imageDigest": f"sha256:{i:064x}", "imagePushedAt": 1600000000 + i} for i in range(11)]
    files[1].write_text(json.dumps({"imageDetails": details}))
    run = boda(*eval_args(files, "--now", "2025-01-01"))
    assert run.code == 0, run.err
    assert [r["imageDigest"] for r in run.json["previewResults"]] == [d["imageDigest"] for d in details[:10]]
    assert run.json["summary"] == {"expiringImageTotalCount": 10}


def test_text_output(files: tuple[Path, Path], boda: Any, tmp_path: Path) -> None:
    older = {"imageDigest": "sha256:" + "b" * 64, "imageTags": ["old"], "imagePushedAt": 1600000000}
    files[1].write_text(json.dumps({"imageDetails": [*IMAGES["imageDetails"], older]}))
    in_use = tmp_path / "in-use.txt"
    in_use.write_text(older["imageDigest"] + "\n")
    run = boda(
        "policy", "eval", "--policy", str(files[0]), "--images", str(files[1]), "--in-use", str(in_use)
    )
    assert run.code == 3
    assert run.out.splitlines()[2].split() == [
        "1",
        "EXPIRE",
        "sha256:bbbbbbbbbbbb",
        "old",
        "2020-09-13T12:26",
    ]
    assert "1 images would expire" in run.out and "VIOLATION: in-use sha256:bbbb" in run.out
