"""The whole lifecycle through the CLI, in-process, on ECR (moto in server mode) with a SQLite ledger.

Images are seeded the way CI pushes them (put_image with a `ci-N` tag). Workarounds for moto's
gaps are named as in tests/fixtures/moto.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import CliProject
from fixtures.config import DEV_STG_PRD, boda_toml
from fixtures.moto import HOST, make_manifest, seed_image

pytestmark = pytest.mark.ecr

APP = "shop/api"
# Keeps one image; everything else is expired. Longer than ECR's 100-character minimum.
KEEP_ONE = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep only the newest image of the repository",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    ]
}


def _commit(n: int) -> str:
    return f"{n:02d}" + "ab" * 19


@dataclass
class EcrProject(CliProject):
    client: Any

    def tags(self) -> dict[str, str]:
        """tag -> digest in the app's repository, straight from ECR."""
        pages = self.client.list_images(repositoryName=APP, filter={"tagStatus": "TAGGED"})["imageIds"]
        return {i["imageTag"]: i["imageDigest"] for i in pages}

    def digests(self) -> set[str]:
        return {i["imageDigest"] for i in self.client.list_images(repositoryName=APP)["imageIds"]}


@pytest.fixture
def project(tmp_path: Path, ecr_client: Any, boda: Any) -> EcrProject:
    root = tmp_path / "project"
    root.mkdir()
    (root / "boda.toml").write_text(
        boda_toml(
            registry=f"ecr://{HOST}",
            ledger=f"sqlite:///{root / 'ledger.db'}",
            environments=DEV_STG_PRD[:2],
            retention={"rollback_depth": 1, "min_age": "0s"},
        )
    )
    # The team creates the app's repository; environment tags move, so its tags are MUTABLE.
    ecr_client.create_repository(repositoryName=APP, imageTagMutability="MUTABLE")
    return EcrProject(root, boda, ecr_client)


def _build(project: EcrProject, n: int) -> str:
    manifest = seed_image(project.client, APP, make_manifest(f"build {n}"), f"ci-{n}")  # MOTO-DIGEST
    data = project.ok("build", APP, "--commit", _commit(n), "--image", f":ci-{n}")
    assert data["digest"] == str(manifest.digest)
    assert data["reference"] == f"{HOST}/{APP}@{manifest.digest}"
    return str(manifest.digest)


def test_build_promote_rollback_status_verify(project: EcrProject) -> None:
    d1, d2 = _build(project, 1), _build(project, 2)
    tags = project.tags()
    assert tags[_commit(1)[:8]] == d1 and tags[_commit(2)[:8]] == d2  # commit tags written once

    project.ok("promote", APP, "--to", "dev", "--commit", _commit(1))
    refused = project.boda("promote", APP, "--to", "stg", "--commit", _commit(1))
    assert refused.code == 3 and "tests" in refused.err  # the gate: no evidence yet
    project.ok("evidence", APP, "--env", "dev", "--commit", _commit(1), "--kind", "tests", "--result", "pass")
    promoted = project.ok("promote", APP, "--to", "stg", "--commit", _commit(1))
    assert promoted["promotions"][0]["reference"] == f"{HOST}/{APP}@{d1}"
    # MOTO-TAG-MOVE: d1 keeps its commit tag, so moving "dev" to d2 deletes nothing in moto either.
    project.ok("promote", APP, "--to", "dev", "--commit", _commit(2))
    assert project.tags()["dev"] == d2 and project.tags()["stg"] == d1

    back = project.ok("rollback", APP, "--env", "dev")
    assert back["digest"] == d1 and project.tags()["dev"] == d1

    status = project.ok("status", APP)
    envs = {e["name"]: e for e in status["environments"]}
    assert envs["dev"]["current"]["digest"] == d1
    assert [p["digest"] for p in envs["dev"]["previous"]] == [d2]
    assert envs["stg"]["current"]["digest"] == d1

    verified = project.ok("verify", APP)
    assert verified["ok"] is True and verified["checked"] >= 4

    # Drift made outside boda is reported: someone moved "stg" by hand.
    project.client.put_image(
        repositoryName=APP,
        imageManifest=project.client.batch_get_image(repositoryName=APP, imageIds=[{"imageDigest": d2}])[
            "images"
        ][0]["imageManifest"],
        imageTag="stg",
        imageDigest=d2,
    )
    drift = project.boda("verify", APP, "--json")
    assert drift.json["ok"] is False
    assert any(d["where"].endswith(":stg") and d["found"] == d2 for d in drift.json["drifts"])


def test_commit_tag_never_moves(project: EcrProject) -> None:
    _build(project, 1)
    other = seed_image(project.client, APP, make_manifest("rebuilt"), "ci-9")
    result = project.boda("build", APP, "--commit", _commit(1), "--digest", str(other.digest))
    assert result.code == 5
    assert project.tags()[_commit(1)[:8]] != str(other.digest)


def test_immutable_repository_refuses_environment_tag_moves(project: EcrProject) -> None:
    d1, d2 = _build(project, 1), _build(project, 2)
    project.ok("promote", APP, "--to", "dev", "--commit", _commit(1))
    project.client.put_image_tag_mutability(repositoryName=APP, imageTagMutability="IMMUTABLE")

    result = project.boda("promote", APP, "--to", "dev", "--commit", _commit(2))

    # MOTO-IMMUTABLE: moto raises ImageAlreadyExistsException; boda reads the tag back either way.
    assert result.code == 5, result.err
    assert "immutable" in result.err and "exclusion" in result.err
    assert project.tags()["dev"] == d1
    assert project.ok("status", APP)["environments"][0]["current"]["digest"] == d1
    assert d2 in project.digests()


def test_ecr_policy_put_get_and_policy_check(project: EcrProject, tmp_path: Path) -> None:
    d1, d2, d3 = _build(project, 1), _build(project, 2), _build(project, 3)
    project.ok("promote", APP, "--to", "dev", "--commit", _commit(1))

    missing = project.boda("ecr", "policy", "get", APP)
    assert missing.code == 4 and "no lifecycle policy" in missing.err

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged"}}]}))
    refused = project.boda("ecr", "policy", "put", APP, "--policy", str(bad))
    assert refused.code == 2 and refused.out == ""
    assert project.boda("ecr", "policy", "get", APP).code == 4  # nothing was written

    good = tmp_path / "lifecycle.json"
    good.write_text(json.dumps(KEEP_ONE, indent=2))
    put = project.ok("ecr", "policy", "put", APP, "--policy", str(good))
    assert put["repository"] == APP and len(put["rules"]) == 1
    got = project.ok("ecr", "policy", "get", APP)
    assert got["policy"] == KEEP_ONE
    text = project.boda("ecr", "policy", "get", APP)
    assert text.code == 0 and json.loads(text.out[text.out.index("{") :]) == KEEP_ONE

    # No --policy and no retention.policy: `policy check` reads the repository's own policy. Keeping
    # one image, it would expire at least one of d1 (current in dev) and the others; boda flags d1
    # unless d1 happens to be the one ECR keeps.
    check = project.boda("policy", "check", APP, "--json")
    assert check.code in (0, 3), check.err
    at_risk = {v["digest"] for v in check.json["violations"]}
    assert at_risk <= {d1}
    assert (check.code == 3) == (d1 in at_risk)
    assert {d1, d2, d3} == project.digests()  # checking changes nothing


def test_gc_plan_and_apply_never_delete_protected_images(project: EcrProject, tmp_path: Path) -> None:
    d1, d2, d3, d4 = (_build(project, n) for n in range(1, 5))
    project.ok("promote", APP, "--to", "dev", "--commit", _commit(1))
    project.ok("promote", APP, "--to", "dev", "--commit", _commit(2))  # d1 is the rollback target
    policy = tmp_path / "lifecycle.json"
    policy.write_text(json.dumps(KEEP_ONE, indent=2))

    plan = project.ok("gc", "plan", APP, "--policy", str(policy))
    expiring = {i["digest"] for i in plan["images"] if i["action"] == "expire"}
    # KEEP_ONE keeps the newest image (moto's push times have one-second resolution, so which one is
    # not fixed); d1 and d2 are protected whatever the policy says.
    assert expiring and expiring <= {d3, d4}
    assert project.digests() == {d1, d2, d3, d4}  # a plan deletes nothing

    applied = project.ok("gc", "apply", APP, "--policy", str(policy), "--yes")
    assert {d["digest"] for d in applied["deleted"]} == expiring
    assert project.digests() == {d1, d2, d3, d4} - expiring
    assert project.tags()["dev"] == d2
    assert project.ok("verify", APP)["ok"] is True


def test_gc_apply_deletes_in_batches_of_a_hundred(project: EcrProject, tmp_path: Path) -> None:
    """150 builds, a policy keeping one: 149 expiries in 2 BatchDeleteImage calls, not 149."""
    from boda.config import load_config
    from boda.services.build import record_build
    from boda.services.context import Context

    policy = tmp_path / "keep-one.json"
    policy.write_text(json.dumps(KEEP_ONE))
    with Context(load_config(project.root / "boda.toml"), create_ledger=True) as ctx:
        for n in range(150):
            manifest = seed_image(project.client, APP, make_manifest(f"bulk {n}"), f"ci-{n}")
            record_build(ctx, APP, commit=f"{n:04d}" + "cd" * 18, digest=str(manifest.digest))
    result = project.ok("gc", "apply", APP, "--yes", "--policy", str(policy))
    assert len(result["deleted"]) == 149
    assert result["delete_calls"] == 2
    assert len(project.digests()) == 1
