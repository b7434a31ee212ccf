"""Commands that need no registry: init, policy eval, --help, --version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from boda.config import load_config

POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep the last two prod images",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": ["prod*"],
                "countType": "imageCountMoreThan",
                "countNumber": 2,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "expire untagged after a week",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 7,
            },
            "action": {"type": "expire"},
        },
    ]
}


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


IMAGES = {
    "imageDetails": [
        {"imageDigest": digest(1), "imageTags": ["prod-1"], "imagePushedAt": "2026-01-01T00:00:00Z"},
        {"imageDigest": digest(2), "imageTags": ["prod-2"], "imagePushedAt": 1767312000},
        {"imageDigest": digest(3), "imageTags": ["prod-3"], "imagePushedAt": "2026-01-03T00:00:00+00:00"},
        {"imageDigest": digest(4), "imagePushedAt": "2026-01-04T00:00:00Z"},
        {"imageDigest": digest(5), "imagePushedAt": "2026-01-20T00:00:00Z"},
    ]
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "policy.json").write_text(json.dumps(POLICY))
    (tmp_path / "images.json").write_text(json.dumps(IMAGES))
    return tmp_path / "policy.json", tmp_path / "images.json"


def test_policy_eval_answers_like_the_ecr_preview(files: tuple[Path, Path], boda: Any) -> None:
    policy, images = files
    run = boda(
        "policy",
        "eval",
        "--policy",
        str(policy),
        "--images",
        str(images),
        "--now",
        "2026-01-21T00:00:00Z",
        "--json",
    )
    assert run.code == 0, run.err
    out = run.json
    assert out["summary"] == {"expiringImageTotalCount": 2}
    assert out["violations"] == []
    results = {r["imageDigest"]: r for r in out["previewResults"]}
    assert set(results) == {digest(1), digest(4)}
    assert results[digest(1)] == {
        "imageDigest": digest(1),
        "imageTags": ["prod-1"],
        "imagePushedAt": "2026-01-01T00:00:00Z",
        "action": {"type": "EXPIRE"},
        "appliedRulePriority": 1,
        "storageClass": "STANDARD",
    }
    assert results[digest(4)]["appliedRulePriority"] == 2
    text = boda(
        "policy", "eval", "--policy", str(policy), "--images", str(images), "--now", "2026-01-21T00:00:00Z"
    )
    assert text.code == 0 and "2 images would expire" in text.out


def test_policy_eval_in_use_violation_is_exit_3(files: tuple[Path, Path], boda: Any, tmp_path: Path) -> None:
    policy, images = files
    in_use = tmp_path / "in-use.txt"
    in_use.write_text(f"# running in production\n{digest(1)}\n\n{digest(3)}\n")
    run = boda(
        "policy",
        "eval",
        "--policy",
        str(policy),
        "--images",
        str(images),
        "--now",
        "2026-01-21T00:00:00Z",
        "--in-use",
        str(in_use),
        "--json",
    )
    assert run.code == 3
    assert [v["imageDigest"] for v in run.json["violations"]] == [digest(1)]


@pytest.mark.parametrize(
    ("policy", "images", "extra", "needle"),
    [
        ('{"rules": []}', None, [], "rules"),
        (
            json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "action": {"type": "expire"},
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": 1,
                                "countUnit": "days",
                            },
                        }
                    ]
                }
            ),
            None,
            [],
            "countUnit",
        ),
        (
            '{"rules": [{"rulePriority": 1, "selection": null, "action": {"type": "expire"}}]}',
            None,
            [],
            "null",
        ),
        (None, '{"images": []}', [], "imageDetails"),
        (None, '{"imageDetails": [{"imageDigest": "sha256:12", "imagePushedAt": 1}]}', [], "imageDigest"),
        (
            None,
            json.dumps({"imageDetails": [{"imageDigest": digest(1), "imagePushedAt": "yesterday"}]}),
            [],
            "imagePushedAt",
        ),
        (None, None, ["--now", "next tuesday"], "invalid time"),
    ],
    ids=["no-rules", "countUnit-with-count", "null", "no-imageDetails", "bad-digest", "bad-time", "bad-now"],
)
def test_policy_eval_bad_input_is_exit_2(
    files: tuple[Path, Path], boda: Any, policy: str | None, images: str | None, extra: list[str], needle: str
) -> None:
    policy_path, images_path = files
    if policy is not None:
        policy_path.write_text(policy)
    if images is not None:
        images_path.write_text(images)
    run = boda("policy", "eval", "--policy", str(policy_path), "--images", str(images_path), *extra)
    assert run.code == 2, run.err
    assert needle in run.err and len(run.err.strip().splitlines()) == 1 and run.out == ""


def test_policy_eval_missing_file(boda: Any, tmp_path: Path) -> None:
    run = boda(
        "policy", "eval", "--policy", str(tmp_path / "nope.json"), "--images", str(tmp_path / "x.json")
    )
    assert run.code == 2 and len(run.err.strip().splitlines()) == 1


def test_init_writes_a_valid_commented_config(
    boda: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BODA_CONFIG", raising=False)
    assert boda("init").code == 0
    text = (tmp_path / "boda.toml").read_text()
    assert text.count("#") > 10
    config = load_config()
    assert [e.name for e in config.environments] == ["dev", "stg", "prd"]
    assert boda("init").code == 5  # never overwrites silently
    assert boda("init", "--force").code == 0


def test_help_and_version(boda: Any) -> None:
    run = boda("--help")
    assert run.code == 0
    for command in (
        "build",
        "promote",
        "rollback",
        "status",
        "history",
        "whereis",
        "verify",
        "evidence",
        "gc",
        "policy",
        "digest",
        "copy",
        "tags",
        "untag",
        "pin",
        "unpin",
        "init",
        "demo",
        "ecr",
    ):
        assert f"  {command} " in run.out
    assert boda("--version").code == 0
    assert boda("no-such-command").code == 2


def test_missing_config_is_exit_2(boda: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BODA_CONFIG", raising=False)
    run = boda("status", "foo/bar")
    assert run.code == 2 and "boda init" in run.err
