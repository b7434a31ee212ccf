"""ECS and Lambda for the runtime tests: real boto3 clients on moto (server mode), and botocore's
Stubber for exactly the calls moto lacks or answers wrongly, each named where it is used.

moto 5.2's gaps met here (checked against moto's source and by calling it):
- MOTO-ECS-REVISIONS: no ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions
  (moto answers 500).
- MOTO-ECS-TASKS: DescribeTasks moves a task one state further on every call (RUNNING, DEACTIVATING,
  STOPPING, ...), reports a container only for the first container definition, and never reports
  `imageDigest`.
- MOTO-ECS-DEPLOYMENTS: a service has one PRIMARY deployment forever; updating it never makes an
  ACTIVE one (a rollout in progress), so such a service is answered by a stub.
- MOTO-ECS-PAGES: ListServices and ListTasks return everything in one page, and ListTasks ignores
  `serviceName`; paging and page failures are therefore stubbed.
- MOTO-LAMBDA-CODE: GetFunction of a published version answers the function's latest image, and its
  ResolvedImageUri is a hash of the URI string, not the image's digest.
- MOTO-LAMBDA-PC: no ListProvisionedConcurrencyConfigs (moto answers 404).
- MOTO-LAMBDA-PAGES: ListFunctions answers everything in one page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import boto3
from botocore.config import Config
from botocore.stub import Stubber

from fixtures.moto import REGION


def real_client(service: str, region: str = REGION) -> Any:
    """A boto3 client on the moto server of the test (AWS_ENDPOINT_URL), failing fast."""
    return boto3.client(service, region_name=region, config=Config(retries={"max_attempts": 1}))


class GapClient:
    """A boto3 client whose `gaps` operations go to a Stubber-activated client of the same service
    and every other operation to the real client on moto. `calls` records (operation, params) of
    both, in order, for assertions on batching and paging."""

    def __init__(self, real: Any, gaps: Iterable[str]) -> None:
        self.real = real
        self.gaps = set(gaps)
        service = real.meta.service_model.service_name
        self.stub_client = boto3.client(
            service,
            region_name=real.meta.region_name,
            endpoint_url="http://stubbed.invalid",
            aws_access_key_id="stub",
            aws_secret_access_key="stub",
        )
        self.stubber = Stubber(self.stub_client)
        self.stubber.activate()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for client in (real, self.stub_client):
            client.meta.events.register(f"provide-client-params.{service}", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def ops(self, name: str) -> list[dict[str, Any]]:
        """The params of every call of operation `name` (e.g. "DescribeTasks")."""
        return [params for op, params in self.calls if op == name]

    def add(self, method: str, response: dict[str, Any], expected: dict[str, Any] | None = None) -> None:
        """Queue a stubbed answer for `method` (one of the gaps)."""
        assert method in self.gaps, f"{method} is not stubbed here"
        self.stubber.add_response(method, response, expected)

    def add_error(self, method: str, code: str, message: str = "", status: int = 400) -> None:
        """Queue a stubbed failure for `method`."""
        assert method in self.gaps, f"{method} is not stubbed here"
        self.stubber.add_client_error(method, code, message or code, http_status_code=status)

    def done(self) -> None:
        """Every queued stub was used."""
        self.stubber.assert_no_pending_responses()

    @property
    def meta(self) -> Any:
        return self.real.meta

    def can_paginate(self, method: str) -> bool:
        return bool(self.real.can_paginate(method))

    def get_paginator(self, method: str) -> Any:
        return (self.stub_client if method in self.gaps else self.real).get_paginator(method)

    def close(self) -> None:
        self.real.close()
        self.stub_client.close()

    def __getattr__(self, name: str) -> Any:
        if name in self.gaps:
            return getattr(self.stub_client, name)
        return getattr(self.real, name)


def task_answer(
    tasks: list[dict[str, Any]], digests: dict[str, str], definitions: dict[str, Any]
) -> dict[str, Any]:
    """A DescribeTasks answer for tasks as moto's RunTask returned them (MOTO-ECS-TASKS): every
    container of the task definition, each with the `imageDigest` ECS would report."""
    out = []
    for task in tasks:
        definition = definitions[task["taskDefinitionArn"]]
        out.append(
            {
                "taskArn": task["taskArn"],
                "clusterArn": task["clusterArn"],
                "taskDefinitionArn": task["taskDefinitionArn"],
                "group": task.get("group", ""),
                "startedBy": task.get("startedBy", ""),
                "lastStatus": "RUNNING",
                "desiredStatus": "RUNNING",
                "containers": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        **({"imageDigest": digests[c["name"]]} if c["name"] in digests else {}),
                        "lastStatus": "RUNNING",
                    }
                    for c in definition["containerDefinitions"]
                ],
            }
        )
    return {"tasks": out, "failures": []}
