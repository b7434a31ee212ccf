"""`boda runtime scan` end to end on an AWS account played by moto (server mode): an ECR registry
whose `prd` tag has moved on, an ECS service still running the digest ECS resolved at deploy time,
a task started by hand, and a Lambda function. boda's own clients are used (AWS default chain);
Stubber answers only the calls moto lacks (rt_aws: MOTO-ECS-REVISIONS, MOTO-ECS-TASKS,
MOTO-LAMBDA-CODE, MOTO-LAMBDA-PC)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rt_aws import GapClient, real_client, task_answer

from boda.errors import EXIT_UNAVAILABLE
from fixtures.moto import ACCOUNT, HOST, REGION, make_manifest, seed_image

pytestmark = pytest.mark.ecr

WEB = f"{HOST}/shop/web"


def sha(n: str) -> str:
    return hashlib.sha1(n.encode()).hexdigest()


@pytest.fixture
def account(
    ecr_env: str, ecr_client: Any, tmp_path: Path, boda: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    ecr_client.create_repository(repositoryName="shop/web")
    a = seed_image(ecr_client, "shop/web", make_manifest("a"), "ci-a")
    b = seed_image(ecr_client, "shop/web", make_manifest("b"), "ci-b")
    seed_image(ecr_client, "shop/web", b, "prd")  # today `prd` means b; ECS resolved it to a at deploy time
    root = tmp_path / "project"
    root.mkdir()
    (root / "boda.toml").write_text(
        f"""registry = "ecr://{HOST}"
ledger = "sqlite:///ledger.db"

[[environments]]
name = "dev"

[[environments]]
name = "prd"
after = "dev"
runtimes = ["ecs:prod", "lambda:{REGION}/*"]
"""
    )

    def run(*args: str) -> Any:
        return boda("--config", str(root / "boda.toml"), *args)

    for name, manifest in (("a", a), ("b", b)):
        done = run("build", "shop/web", "--commit", sha(name), "--digest", str(manifest.digest))
        assert done.code == 0, done.err

    ecs = real_client("ecs")
    ecs.create_cluster(clusterName="prod")
    definition = ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": f"{WEB}:prd", "memory": 128}]
    )["taskDefinition"]
    by_hand = ecs.register_task_definition(
        family="fix", containerDefinitions=[{"name": "fix", "image": f"{WEB}@{a.digest}", "memory": 128}]
    )["taskDefinition"]
    definitions = {d["taskDefinitionArn"]: d for d in (definition, by_hand)}
    service = ecs.create_service(
        cluster="prod", serviceName="web", taskDefinition="web", desiredCount=2, launchType="FARGATE"
    )["service"]
    tasks = ecs.run_task(
        cluster="prod",
        taskDefinition="web",
        count=2,
        launchType="FARGATE",
        startedBy=service["deployments"][0]["id"],
        group="service:web",
    )["tasks"]
    tasks += ecs.run_task(cluster="prod", taskDefinition="fix", count=1, launchType="FARGATE")["tasks"]
    lam = real_client("lambda")
    role = real_client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam.create_function(FunctionName="fn", Role=role, Code={"ImageUri": f"{WEB}:prd"}, PackageType="Image")

    ecs_gaps = GapClient(
        real_client("ecs"),
        (
            "describe_tasks",
            "list_service_deployments",
            "describe_service_deployments",
            "describe_service_revisions",
        ),
    )
    ecs_gaps.add(
        "describe_tasks", task_answer(tasks, {"web": str(a.digest), "fix": str(a.digest)}, definitions)
    )
    deployment = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/prod/web/1"
    revision = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/prod/web/1"
    ecs_gaps.add(
        "list_service_deployments",
        {
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": deployment,
                    "status": "SUCCESSFUL",
                    "createdAt": datetime(2025, 1, 1, tzinfo=UTC),
                }
            ]
        },
    )
    ecs_gaps.add(
        "describe_service_deployments",
        {
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": deployment,
                    "serviceArn": service["serviceArn"],
                    "targetServiceRevision": {"arn": revision},
                }
            ],
            "failures": [],
        },
    )
    ecs_gaps.add(
        "describe_service_revisions",
        {
            "serviceRevisions": [
                {
                    "serviceRevisionArn": revision,
                    "serviceArn": service["serviceArn"],
                    "taskDefinition": definition["taskDefinitionArn"],
                    "containerImages": [
                        {"containerName": "web", "image": f"{WEB}:prd", "imageDigest": str(a.digest)}
                    ],
                }
            ],
            "failures": [],
        },
    )
    lambda_gaps = GapClient(real_client("lambda"), ("get_function", "list_provisioned_concurrency_configs"))
    lambda_gaps.add("list_provisioned_concurrency_configs", {"ProvisionedConcurrencyConfigs": []})
    lambda_gaps.add(
        "get_function",
        {
            "Configuration": {"FunctionName": "fn"},
            "Code": {"ImageUri": f"{WEB}:prd", "ResolvedImageUri": f"{WEB}@{a.digest}"},
        },
    )
    clients = {"ecs": ecs_gaps, "lambda": lambda_gaps}
    made: list[tuple[str, str]] = []

    def make_client(service_name: str, region: str) -> Any:
        made.append((service_name, region))
        return clients[service_name]

    monkeypatch.setattr("boda.runtime._aws.make_client", make_client)
    return {"run": run, "a": str(a.digest), "b": str(b.digest), "clients": clients, "made": made}


def test_the_scan_agrees_with_the_runtimes_not_with_todays_tags(account: dict[str, Any]) -> None:
    done = account["run"]("runtime", "scan", "--json")
    assert done.code == 0, done.err
    for client in account["clients"].values():
        client.done()
    assert sorted(account["made"]) == [("ecs", ""), ("lambda", REGION)]  # ECS: the default chain's region
    prd = next(e for e in done.json["environments"] if e["name"] == "prd")
    images = [i for r in prd["runtimes"] for i in r["images"]]
    seen = {(i["place"], i["role"], i["digest"], i["commit"], i["tasks"]) for i in images}
    a, commit = account["a"], sha("a")
    assert seen == {
        ("ecs:prod/web", "deployed", a, commit, 0),
        ("ecs:prod/web", "running", a, commit, 2),
        ("ecs:prod/family:fix", "running", a, commit, 1),
        (f"lambda:{REGION}/fn:$LATEST", "running", a, commit, None),
    }
    assert all(i["app"] == "shop/web" and i["resolved_by"] == "runtime" for i in images)
    assert account["b"] not in done.out  # today's `prd` is never taken for what runs
    assert done.json["summary"]["requests"] > 0


def test_a_runtime_that_fails_midway_fails_the_scan(account: dict[str, Any]) -> None:
    lambda_gaps = account["clients"]["lambda"]
    lambda_gaps.stubber.deactivate()
    lambda_gaps.stubber = type(lambda_gaps.stubber)(lambda_gaps.stub_client)
    lambda_gaps.stubber.activate()
    lambda_gaps.add_error("list_provisioned_concurrency_configs", "AccessDeniedException", "not allowed", 403)
    done = account["run"]("runtime", "scan", "--json")
    assert done.code == EXIT_UNAVAILABLE
    assert done.json["error"]["code"] == "unavailable"
    assert (
        f"runtime lambda:{REGION}/*: Lambda ListProvisionedConcurrencyConfigs: AccessDeniedException"
        in done.err
    )
    assert done.err.count("\n") == 1
