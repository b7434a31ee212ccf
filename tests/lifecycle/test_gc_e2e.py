"""Expiry on a real registry with a ruthless policy: what is in use still pulls, the rest is gone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from boda.ledger import open_ledger
from boda.services.imagegen import make_image, make_referrer, push
from boda.types import Digest
from conftest import Project, make_project
from fixtures.registry import RegistryProcess, skopeo_copy

RUTHLESS = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep only the newest image",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    ]
}
pytestmark = pytest.mark.registry

RETENTION = '\n[retention]\nrollback_depth = 2\nmin_age = "0s"\npolicy = "lifecycle.json"\n'


def pull_whole(p: Project, tmp_path: Path, repo: str, digest: str) -> None:
    """skopeo copies the image, every blob of it, into a fresh OCI layout (fails if any is missing)."""
    target = tmp_path / "pulled" / repo.replace("/", "_") / digest.replace(":", "-")
    target.parent.mkdir(parents=True, exist_ok=True)
    host = p.registry_url.split("://", 1)[1]
    skopeo_copy(f"{host}/{repo}@{digest}", f"oci:{target}:x", extra=["--all"])


def gone(p: Project, repo: str, digest: str) -> bool:
    registry = p.registry()
    try:
        return registry.manifest_head(repo, digest) is None
    finally:
        registry.close()


@pytest.mark.parametrize("strategy", ["tags", "repos"])
def test_ruthless_policy_keeps_everything_in_use(
    tmp_path: Path, own_registry: RegistryProcess, sqlite_url: str, boda: Any, strategy: str
) -> None:
    p = make_project(tmp_path / "project", own_registry.url, sqlite_url, strategy, boda, extra=RETENTION)
    (p.root / "lifecycle.json").write_text(json.dumps(RUTHLESS))
    app = p.app("shop")
    builds = []
    registry = p.registry()
    try:
        for n in range(30):
            builds.append(p.build(app, n, index=(n % 5 == 0)))
        # Signatures of two images: an OCI referrer (fallback tag on registry 2.8) and a cosign tag.
        signed = [builds[27][1], builds[3][1]]
        for digest in signed:
            subject = registry.manifest_get(app, digest)
            push(registry, app, make_referrer(subject))
        cosign = make_image(f"{p.prefix}-cosign", layers=1)
        push(registry, app, cosign, tag=Digest.parse(builds[28][1]).tag_form + ".sig")
    finally:
        registry.close()
    for n, (commit, _digest) in enumerate(builds):
        assert p.boda("promote", app, "--to", "dev", "--commit", commit).code == 0
        p.boda("evidence", app, "--env", "dev", "--commit", commit, "--kind", "tests", "--result", "pass")
        if n in (20, 25, 26, 27, 28):
            assert p.boda("promote", app, "--to", "stg", "--commit", commit).code == 0
            for kind in ("tests", "signoff"):
                p.boda(
                    "evidence", app, "--env", "stg", "--commit", commit, "--kind", kind, "--result", "pass"
                )
        if n in (20, 25, 27):
            assert p.boda("promote", app, "--to", "prd", "--commit", commit).code == 0
    assert p.boda("pin", app, builds[3][1], "--reason", "audit hold").code == 0

    plan = p.boda("gc", "plan", app, "--json")
    assert plan.code == 0, plan.err
    # Without --yes, apply only prints the plan.
    dry = p.boda("gc", "apply", app, "--json")
    assert dry.code == 0 and dry.json["applied"] is False and dry.json["deleted"] == []
    result = p.boda("gc", "apply", app, "--yes", "--json")
    assert result.code == 0, result.err
    deleted = {(d["repository"], d["digest"]) for d in result.json["deleted"]}
    assert deleted

    # What must stay: current everywhere, rollback depth 2 per environment, the pin, and with them
    # every child of a kept index and every signature of a kept image.
    d = {n: digest for n, (_c, digest) in enumerate(builds)}
    protected = {d[29], d[28], d[27], d[26], d[28], d[27], d[25], d[20], d[3]}
    own_registry.garbage_collect(delete_untagged=False)
    repos = [app] + ([f"{app}-{e}" for e in ("dev", "stg", "prd")] if strategy == "repos" else [])
    for entry in plan.json["images"]:
        repo, digest = entry["repository"], entry["digest"]
        if entry["action"] == "keep":
            assert (repo, digest) not in deleted
            if entry["subject"] is None and not gone(p, repo, digest):
                pull_whole(p, tmp_path, repo, digest)
        else:
            assert digest not in protected
            assert gone(p, repo, digest), f"{repo}@{digest} should have been deleted"
    for repo in repos:
        for digest in protected:
            if repo == app or not gone(p, repo, digest):
                pull_whole(p, tmp_path, repo, digest)
    # Nothing unprotected survives the ruthless policy in the build repository.
    assert {digest for digest in d.values() if not gone(p, app, digest)} == protected
    # The signatures of kept images survive; the index children of kept indexes pull (--all above).
    registry = p.registry()
    try:
        assert registry.referrers(app, Digest.parse(d[3]))  # pinned and signed
        assert not gone(
            p, app, registry.manifest_head(app, Digest.parse(d[28]).tag_form + ".sig").digest.__str__()
        )
    finally:
        registry.close()
    assert p.boda("verify", app).code == 0
    ledger = open_ledger(p.ledger_url, base_dir=p.root)
    try:
        expired = [e for e in ledger.events(app) if e.action == "expire"]
    finally:
        ledger.close()
    assert {(e.detail["repository"], str(e.digest)) for e in expired} == deleted
