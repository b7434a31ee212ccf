"""Section 7, the naive peer: the same questions answered with one call per object, as a first
script against the ECS and Lambda APIs would (the list calls page as boda's do).

ECS: ListServices; per service DescribeServices, ListServiceDeployments, DescribeServiceDeployments
per deployment, DescribeServiceRevisions per revision, DescribeTaskDefinition per live deployment;
ListTasks; DescribeTasks per task. Lambda: ListFunctions; per function ListVersionsByFunction,
GetFunction per version (every version: it does not know which are in use), ListAliases,
ListProvisionedConcurrencyConfigs.

    python bench/naive_runtime.py CLUSTER REGION
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import boto3


def pages(client: Any, method: str, key: str, **kwargs: Any) -> list[Any]:
    found: list[Any] = []
    for page in client.get_paginator(method).paginate(**kwargs):
        found += page.get(key) or []
    return found


def ecs(cluster: str, region: str) -> dict[str, Any]:
    client = boto3.client("ecs", region_name=region)
    digests: set[str] = set()
    services = pages(
        client, "list_services", "serviceArns", cluster=cluster, PaginationConfig={"PageSize": 100}
    )
    for arn in services:
        service = client.describe_services(cluster=cluster, services=[arn])["services"][0]
        briefs = client.list_service_deployments(cluster=cluster, service=arn)["serviceDeployments"]
        for brief in briefs:
            deployment = client.describe_service_deployments(
                serviceDeploymentArns=[brief["serviceDeploymentArn"]]
            )["serviceDeployments"][0]
            arns = [deployment["targetServiceRevision"]["arn"]] + [
                s["arn"] for s in deployment.get("sourceServiceRevisions") or []
            ]
            for revision_arn in arns:
                revision = client.describe_service_revisions(serviceRevisionArns=[revision_arn])[
                    "serviceRevisions"
                ][0]
                digests |= {
                    c["imageDigest"] for c in revision.get("containerImages") or [] if c.get("imageDigest")
                }
        for deployment in service.get("deployments") or []:
            if deployment["status"] in ("PRIMARY", "ACTIVE"):
                client.describe_task_definition(taskDefinition=deployment["taskDefinition"])
    tasks = pages(
        client,
        "list_tasks",
        "taskArns",
        cluster=cluster,
        desiredStatus="RUNNING",
        PaginationConfig={"PageSize": 100},
    )
    for arn in tasks:
        task = client.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        digests |= {c["imageDigest"] for c in task.get("containers") or [] if c.get("imageDigest")}
    return {"services": len(services), "tasks": len(tasks), "digests": len(digests)}


def lambda_(region: str) -> dict[str, Any]:
    client = boto3.client("lambda", region_name=region)
    functions = [f for f in pages(client, "list_functions", "Functions") if f.get("PackageType") == "Image"]
    versions = 0
    uris: set[str] = set()
    for function in functions:
        name = function["FunctionName"]
        for version in pages(client, "list_versions_by_function", "Versions", FunctionName=name):
            code = client.get_function(FunctionName=name, Qualifier=version["Version"])["Code"]
            uris.add(code.get("ResolvedImageUri") or code.get("ImageUri", ""))
            versions += 1
        pages(client, "list_aliases", "Aliases", FunctionName=name)
        pages(
            client, "list_provisioned_concurrency_configs", "ProvisionedConcurrencyConfigs", FunctionName=name
        )
    return {"functions": len(functions), "versions": versions, "images": len(uris)}


def main() -> int:
    cluster, region = sys.argv[1], sys.argv[2]
    out = {}
    for name, read in (("ecs", lambda: ecs(cluster, region)), ("lambda", lambda: lambda_(region))):
        started = time.perf_counter()
        found = read()
        out[name] = {"seconds": time.perf_counter() - started, **found}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
