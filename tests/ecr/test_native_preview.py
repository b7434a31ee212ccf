"""ECR's own lifecycle preview in `policy check`: StartLifecyclePolicyPreview, GetLifecyclePolicyPreview
polled to COMPLETE and read page by page, compared with boda's evaluation (ECR is the judge).

moto does not implement the preview (it answers HTTP 500, research/registry.md §3.4): the preview
calls go to botocore's Stubber, injected as the registry's preview client; everything else (images,
tags, the stored policy) is moto in server mode. The stubbed answers have the shape of ECR's API
reference (LifecyclePolicyPreviewResult, LifecyclePolicyPreviewSummary).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber

from boda.config import load_config
from boda.registry.ecr import EcrRegistry
from boda.registry.ecr.previews import Previews
from boda.services.context import Context
from boda.services.expiry.policy_check import policy_check
from fixtures.moto import HOST, REGION
from fixtures.native import APP, SEED_POLICY, Native, make_project

pytestmark = pytest.mark.ecr
ACCOUNT = "123456789012"
PUSHED = datetime(2025, 1, 1, tzinfo=UTC)
TEXT = json.dumps(SEED_POLICY)  # ECR takes 100 to 30,720 characters


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client(
        "ecr",
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )
    return client, Stubber(client)


def result(digest: str, priority: int, action: str = "EXPIRE") -> dict[str, Any]:
    return {
        "imageDigest": digest,
        "imageTags": [],
        "imagePushedAt": PUSHED,
        "action": {"type": action},
        "appliedRulePriority": priority,
        "storageClass": "STANDARD",
    }


def get_params(token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"registryId": ACCOUNT, "repositoryName": APP, "maxResults": 100}
    if token:
        params["nextToken"] = token
    return params


def start(stub: Stubber) -> None:
    stub.add_response(
        "start_lifecycle_policy_preview",
        {"registryId": ACCOUNT, "repositoryName": APP, "lifecyclePolicyText": TEXT, "status": "IN_PROGRESS"},
        {"registryId": ACCOUNT, "repositoryName": APP, "lifecyclePolicyText": ANY},
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_preview_polls_until_complete_and_reads_every_page() -> None:
    client, stub = stubbed()
    start(stub)
    stub.add_response("get_lifecycle_policy_preview", {"status": "IN_PROGRESS"}, get_params())
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    stub.add_response(
        "get_lifecycle_policy_preview",
        {"status": "COMPLETE", "previewResults": [result(d1, 2)], "nextToken": "page-2"},
        get_params(),
    )
    stub.add_response(
        "get_lifecycle_policy_preview",
        {"status": "COMPLETE", "previewResults": [result(d2, 3, "TRANSITION")]},
        get_params("page-2"),
    )
    clock = Clock()
    with stub:
        answer = Previews(lambda: client, ACCOUNT, sleep=clock.sleep, clock=clock).run(APP, TEXT, timeout=60)
    assert answer.available and clock.sleeps == [2.0]
    rows = [(r.digest, r.action, r.rule_priority) for r in answer.rows]
    assert rows == [(d1, "expire", 2), (d2, "transition", 3)]
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "why"),
    [
        ("LifecyclePolicyPreviewInProgressException", 400, "another lifecycle policy preview"),
        ("AccessDeniedException", 400, "ECR refused the preview: AccessDeniedException"),
        ("InternalFailure", 500, "does not give lifecycle policy previews"),
        ("UnknownOperationException", 400, "does not give lifecycle policy previews"),
    ],
)
def test_a_preview_ecr_cannot_give_is_an_answer(code: str, status: int, why: str) -> None:
    """A stand-in without the operation, denied access, a preview already running: reported, never
    raised (policy check still decides with boda's own evaluation)."""
    client, stub = stubbed()
    stub.add_client_error("start_lifecycle_policy_preview", code, "no", http_status_code=status)
    with stub:
        answer = Previews(lambda: client, ACCOUNT).run(APP, TEXT, timeout=60)
    assert not answer.available and why in answer.reason


def test_failed_and_slow_previews_are_unavailable() -> None:
    client, stub = stubbed()
    start(stub)
    stub.add_response("get_lifecycle_policy_preview", {"status": "FAILED"}, get_params())
    with stub:
        answer = Previews(lambda: client, ACCOUNT).run(APP, TEXT, timeout=60)
    assert answer.reason == "ECR's preview ended FAILED"
    client, stub = stubbed()
    start(stub)
    for _ in range(3):
        stub.add_response("get_lifecycle_policy_preview", {"status": "IN_PROGRESS"}, get_params())
    clock = Clock()
    with stub:
        answer = Previews(lambda: client, ACCOUNT, sleep=clock.sleep, clock=clock).run(APP, TEXT, timeout=4)
    assert answer.reason == "ECR's preview did not complete within 4 s" and clock.sleeps == [2.0, 2.0]


@pytest.fixture
def project(tmp_path: Path, boda: Any, ecr_client: Any) -> Native:
    return make_project(tmp_path, boda, ecr_client)


@pytest.fixture
def preview_stub() -> Iterator[tuple[Any, Stubber]]:
    client, stub = stubbed()
    with stub:
        yield client, stub


def test_policy_check_reports_where_ecr_differs_and_ecr_is_the_judge(
    project: Native, tmp_path: Path, preview_stub: tuple[Any, Stubber]
) -> None:
    d1, d2, d3 = (project.build(n) for n in range(1, 4))
    project.promote(1, "dev")
    project.promote(2, "dev")
    user = tmp_path / "seed.json"
    user.write_text(json.dumps(SEED_POLICY))
    project.ok("ecr", "policy", "put", APP, "--render", "--policy", str(user))
    # boda: the seed's rule expires nothing (fewer than 11 untagged images). ECR's preview (stubbed)
    # says it expires d3 (unprotected) by rule 5 and d1 (dev's rollback target) by rule 5.
    client, stub = preview_stub
    start(stub)
    stub.add_response(
        "get_lifecycle_policy_preview",
        {"status": "COMPLETE", "previewResults": [result(d3, 5), result(d1, 5)]},
        get_params(),
    )
    registry = EcrRegistry(HOST, preview_client=client)
    with Context(load_config(project.root / "boda.toml"), _registry=registry) as ctx:
        data = policy_check(ctx, APP, preview_timeout=5).to_json()
    stub.assert_no_pending_responses()
    preview = data["ecr_preview"][0]
    assert preview["available"] is True
    assert [d["digest"] for d in preview["differences"]] == sorted([d1, d3])
    ecr_says = {"action": "expire", "appliedRulePriority": 5}
    assert all(d["boda"] is None and d["ecr"] == ecr_says for d in preview["differences"])
    assert [(v["digest"], v["source"]) for v in data["violations"]] == [(d1, "ecr-preview")]
    assert d2 not in {v["digest"] for v in data["violations"]}


def test_policy_check_without_preview_asks_nothing(project: Native, tmp_path: Path) -> None:
    project.build(1)
    project.promote(1, "dev")
    project.ok("ecr", "policy", "put", APP, "--render")
    checked = project.ok("policy", "check", APP, "--no-ecr-preview")
    assert checked["ecr_preview"] == [] and checked["violations"] == []


def test_a_call_botocore_refuses_is_an_answer_too() -> None:
    client, stub = stubbed()
    with stub:
        answer = Previews(lambda: client, ACCOUNT).run(APP, "{}", timeout=60)  # shorter than ECR takes
    assert not answer.available and "could not be asked" in answer.reason
