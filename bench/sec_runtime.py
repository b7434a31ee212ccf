"""Section 7: `boda runtime scan` of an ECS cluster (services, their tasks) and a region's Lambda
functions on moto, beside the naive one-call-per-object scan: requests by operation, and time.

The account: moto in server mode behind bench/aws_front.py (which pages the list calls as AWS does,
answers the calls moto lacks from a model written here, and counts every request by operation).
Each service runs one task definition of two containers and has two service revisions (the
current and the one before); each function has two published versions and an alias `live` (every
third one weighted across both versions; every tenth with provisioned concurrency on it).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from _common import BENCH, BODA, OUT, PYTHON, Series, free_port, log, run

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER = "bench"
REG = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
SIDECAR = "public.ecr.aws/aws-observability/aws-otel-collector:v0.40.0"


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _start(cmd: list[str], log_path: Path, probe: str) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited at start; see {log_path}")
        try:
            httpx.get(probe, timeout=1.0)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd[0]} did not start; see {log_path}")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _populate(moto: str, services: int, tasks_per_service: int, functions: int) -> dict[str, Any]:
    """Create the account on moto directly (not counted); returns the model the front answers from."""
    kwargs: dict[str, Any] = {"region_name": REGION, "endpoint_url": moto}
    ecs = boto3.client("ecs", **kwargs)
    ecs.create_cluster(clusterName=CLUSTER)
    model: dict[str, Any] = {"services": {}, "deployments": {}, "revisions": {}, "provisioned": {}}
    for n in range(services):
        family = f"svc-{n:03}"
        image = f"{REG}/team/{family}:prd"
        arns = []
        for _ in range(2):
            answer = ecs.register_task_definition(
                family=family,
                containerDefinitions=[
                    {"name": "app", "image": image, "memory": 256},
                    {"name": "otel", "image": SIDECAR, "memory": 64},
                ],
            )
            arns.append(answer["taskDefinition"]["taskDefinitionArn"])
        service = ecs.create_service(
            cluster=CLUSTER,
            serviceName=family,
            taskDefinition=arns[1],
            desiredCount=tasks_per_service,
            launchType="FARGATE",
        )["service"]
        ecs.run_task(
            cluster=CLUSTER,
            taskDefinition=arns[1],
            count=tasks_per_service,
            launchType="FARGATE",
            startedBy=service["deployments"][0]["id"],
            group=f"service:{family}",
        )
        arn = service["serviceArn"]
        deployment_prefix = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{CLUSTER}/{family}"
        revision_prefix = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{CLUSTER}/{family}"
        model["deployments"][deployment_prefix] = arn
        model["revisions"][revision_prefix] = arn
        model["services"][arn] = {
            "deployment_prefix": deployment_prefix,
            "revision_prefix": revision_prefix,
            "revisions": [
                {
                    "taskDefinition": td,
                    "containerImages": [
                        {"containerName": "app", "image": image, "imageDigest": _digest(f"{family} {r}")},
                        {"containerName": "otel", "image": SIDECAR, "imageDigest": _digest(SIDECAR)},
                    ],
                }
                for r, td in enumerate(arns, 1)
            ],
        }
    lam = boto3.client("lambda", **kwargs)
    role = boto3.client("iam", **kwargs).create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    for n in range(functions):
        name = f"fn-{n:03}"
        uri = f"{REG}/fn/{name}"
        lam.create_function(FunctionName=name, Role=role, Code={"ImageUri": f"{uri}:v1"}, PackageType="Image")
        lam.publish_version(FunctionName=name)
        lam.update_function_code(FunctionName=name, ImageUri=f"{uri}:v2")
        lam.publish_version(FunctionName=name)
        routing = {"RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}}} if n % 3 == 0 else {}
        lam.create_alias(
            FunctionName=name, Name="live", FunctionVersion="1" if n % 3 == 0 else "2", **routing
        )
        if n % 10 == 0:
            model["provisioned"][name] = [
                {
                    "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:live",
                    "RequestedProvisionedConcurrentExecutions": 5,
                    "Status": "READY",
                }
            ]
    return model


def section_runtime(services: int, tasks: int, functions: int, runs: int) -> dict[str, Any]:
    root = OUT / "runtime"
    root.mkdir(parents=True, exist_ok=True)
    moto_port, front_port = free_port(), free_port()
    moto_url, front_url = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{front_port}"
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(root / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    os.environ.update(env)
    moto = front = None
    result: dict[str, Any] = {"services": services, "tasks": tasks, "functions": functions, "tools": {}}
    try:
        moto = _start(
            [str(Path(PYTHON).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(moto_port)],
            root / "moto.log",
            f"{moto_url}/moto-api/",
        )
        log(f"  populating moto: {services} services, {tasks} tasks, {functions} functions")
        started = time.perf_counter()
        model = _populate(moto_url, services, tasks // services, functions)
        result["setup_seconds"] = time.perf_counter() - started
        (root / "model.json").write_text(json.dumps(model))
        front = _start(
            [PYTHON, str(BENCH / "aws_front.py"), moto_url, str(front_port), str(root / "model.json")],
            root / "front.log",
            f"{front_url}/__counts",
        )
        child_env = {**env, "AWS_ENDPOINT_URL": front_url}
        project = root / "project"
        project.mkdir(exist_ok=True)
        (project / "boda.toml").write_text(
            'registry = "oci-layout:registry"\nledger = "sqlite:///ledger.db"\n\n'
            f'[[environments]]\nname = "prd"\nruntimes = ["ecs:{CLUSTER}", "lambda:{REGION}/*"]\n'
        )
        cases = {
            "boda observers (Python API)": ([PYTHON, str(BENCH / "runtime_boda.py"), CLUSTER, REGION], runs),
            "boda runtime scan --json (process)": (
                [BODA, "--config", str(project / "boda.toml"), "runtime", "scan", "--json"],
                runs,
            ),
            "naive: one call per object": ([PYTHON, str(BENCH / "naive_runtime.py"), CLUSTER, REGION], 1),
        }
        for name, (cmd, n) in cases.items():
            log(f"  {name}")
            wall, cpu, reqs = Series(), Series(), Series()
            kinds: dict[str, int] = {}
            detail: Any = None
            for _ in range(n):
                httpx.post(f"{front_url}/__reset")
                proc = run(cmd, env=child_env, timeout=3600).check()
                kinds = httpx.get(f"{front_url}/__counts").json()
                wall.add(proc.wall)
                cpu.add(proc.cpu)
                reqs.add(sum(kinds.values()))
                detail = json.loads(proc.stdout)
            if name.startswith("boda runtime scan"):
                detail = detail["summary"]
            result["tools"][name] = {
                "wall": wall.to_json(),
                "cpu": cpu.to_json(),
                "requests": reqs.to_json(),
                "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
                "found": detail,
            }
    finally:
        _stop(front)
        _stop(moto)
    return result
