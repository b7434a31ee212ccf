"""An AWS account for section 7: moto in server mode behind a front that counts every request by
operation and fills in what moto lacks, so that boda and the naive scan make the calls they would
make against AWS.

    python bench/aws_front.py MOTO_URL PORT MODEL.json

What the front does beyond forwarding to moto:
- pages ListServices, ListTasks (ECS: maxResults, default 10 and 100, at most 100, `nextToken`) and
  ListFunctions (Lambda: MaxItems, at most 50, `Marker`): moto answers them in one page;
- answers ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions (ECS) and
  ListProvisionedConcurrencyConfigs (Lambda) from MODEL.json, which the set-up wrote: moto lacks them;
- `GET /__counts` answers the requests seen per operation, `POST /__reset` zeroes them.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

ECS_PREFIX = "AmazonEC2ContainerServiceV20141113."
LAMBDA_ROUTES = [
    ("GET", re.compile(r"^/2015-03-31/functions/?$"), "ListFunctions"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/aliases/?$"), "ListAliases"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/versions/?$"), "ListVersionsByFunction"),
    (
        "GET",
        re.compile(r"^/2019-09-30/functions/[^/]+/provisioned-concurrency/?$"),
        "ListProvisionedConcurrencyConfigs",
    ),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/?$"), "GetFunction"),
]
PAGED_ECS = {"ListServices": ("serviceArns", 10), "ListTasks": ("taskArns", 100)}


class Front:
    def __init__(self, moto: str, model: dict[str, Any]) -> None:
        self.moto = httpx.Client(base_url=moto, timeout=600)
        self.model = model
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.cache: dict[str, list[Any]] = {}

    def count(self, op: str) -> None:
        with self.lock:
            self.counts[op] = self.counts.get(op, 0) + 1

    # -- ECS (JSON 1.1) ------------------------------------------------------------------------------

    def ecs(self, op: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
        if op == "ListServiceDeployments":
            return 200, _dump(self.list_deployments(body))
        if op == "DescribeServiceDeployments":
            return 200, _dump(self.describe_deployments(body))
        if op == "DescribeServiceRevisions":
            return 200, _dump(self.describe_revisions(body))
        if op in PAGED_ECS:
            key, default = PAGED_ECS[op]
            size = min(int(body.get("maxResults") or default), 100)
            start = int(body.get("nextToken") or 0)
            query = {k: v for k, v in body.items() if k not in ("maxResults", "nextToken")}
            cache_key = op + json.dumps(query, sort_keys=True)
            if start == 0 or cache_key not in self.cache:
                status, raw = self.forward_ecs(op, query, headers)
                if status != 200:
                    return status, raw
                self.cache[cache_key] = json.loads(raw).get(key, [])
            items = self.cache[cache_key]
            page: dict[str, Any] = {key: items[start : start + size]}
            if start + size < len(items):
                page["nextToken"] = str(start + size)
            return 200, _dump(page)
        return self.forward_ecs(op, body, headers)

    def forward_ecs(self, op: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
        answer = self.moto.post(
            "/",
            content=json.dumps(body),
            headers={
                "X-Amz-Target": ECS_PREFIX + op,
                "Content-Type": "application/x-amz-json-1.1",
                "Authorization": headers.get("authorization", ""),
                "X-Amz-Date": headers.get("x-amz-date", ""),
            },
        )
        return answer.status_code, answer.content

    def list_deployments(self, body: dict[str, Any]) -> dict[str, Any]:
        service = self.model["services"].get(body["service"])
        if service is None:
            return {"serviceDeployments": []}
        return {
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": f"{service['deployment_prefix']}/d{n}",
                    "serviceArn": body["service"],
                    "createdAt": 1_700_000_000 + n * 3600,
                    "targetServiceRevisionArn": f"{service['revision_prefix']}/r{n}",
                    "status": "SUCCESSFUL",
                }
                for n in (2, 1)
            ]
        }

    def describe_deployments(self, body: dict[str, Any]) -> dict[str, Any]:
        found = []
        for arn in body["serviceDeploymentArns"]:
            prefix, _, tail = arn.rpartition("/d")
            service_arn = self.model["deployments"][prefix]
            revision_prefix = self.model["services"][service_arn]["revision_prefix"]
            n = int(tail)
            found.append(
                {
                    "serviceDeploymentArn": arn,
                    "serviceArn": service_arn,
                    "status": "SUCCESSFUL",
                    "targetServiceRevision": {"arn": f"{revision_prefix}/r{n}", "runningTaskCount": 10},
                    "sourceServiceRevisions": [{"arn": f"{revision_prefix}/r{n - 1}"}] if n > 1 else [],
                }
            )
        return {"serviceDeployments": found, "failures": []}

    def describe_revisions(self, body: dict[str, Any]) -> dict[str, Any]:
        found = []
        for arn in body["serviceRevisionArns"]:
            prefix, _, tail = arn.rpartition("/r")
            service_arn = self.model["revisions"][prefix]
            service = self.model["services"][service_arn]
            n = int(tail)
            revision = service["revisions"][n - 1]
            found.append(
                {
                    "serviceRevisionArn": arn,
                    "serviceArn": service_arn,
                    "taskDefinition": revision["taskDefinition"],
                    "createdAt": 1_700_000_000 + n * 3600,
                    "containerImages": revision["containerImages"],
                }
            )
        return {"serviceRevisions": found, "failures": []}

    # -- Lambda (REST JSON) ----------------------------------------------------------------------------

    def lambda_(
        self, op: str, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if op == "ListProvisionedConcurrencyConfigs":
            name = parts.path.split("/")[3]
            return 200, _dump({"ProvisionedConcurrencyConfigs": self.model["provisioned"].get(name, [])})
        if op == "ListFunctions":
            size = min(int(query.get("MaxItems") or 50), 50)
            start = int(query.get("Marker") or 0)
            if start == 0 or "ListFunctions" not in self.cache:
                status, raw = self.forward(method, parts.path, b"", headers)
                if status != 200:
                    return status, raw
                self.cache["ListFunctions"] = json.loads(raw).get("Functions", [])
            items = self.cache["ListFunctions"]
            page: dict[str, Any] = {"Functions": items[start : start + size]}
            if start + size < len(items):
                page["NextMarker"] = str(start + size)
            return 200, _dump(page)
        return self.forward(method, target, body, headers)

    def forward(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        keep = {k: v for k, v in headers.items() if k in ("authorization", "x-amz-date", "content-type")}
        answer = self.moto.request(method, target, content=body, headers=keep)
        return answer.status_code, answer.content


def _dump(data: Any) -> bytes:
    return json.dumps(data).encode()


def serve(front: Front, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            if self.path == "/__counts":
                with front.lock:
                    self._reply(200, _dump(front.counts))
                return
            self._route("GET", b"")

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/__reset":
                with front.lock:
                    front.counts.clear()
                    front.cache.clear()
                self._reply(200, b"{}")
                return
            self._route("POST", body)

        def do_PUT(self) -> None:
            self._route("PUT", self._body())

        def do_DELETE(self) -> None:
            self._route("DELETE", self._body())

        def _route(self, method: str, body: bytes) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            target = headers.get("x-amz-target", "")
            if target.startswith(ECS_PREFIX):
                op = target[len(ECS_PREFIX) :]
                front.count(op)
                status, raw = front.ecs(op, json.loads(body or b"{}"), headers)
                self._reply(status, raw, "application/x-amz-json-1.1")
                return
            path = urlsplit(self.path).path
            op = next(
                (name for m, pattern, name in LAMBDA_ROUTES if m == method and pattern.match(path)), None
            )
            if op is not None:
                front.count(op)
                status, raw = front.lambda_(op, method, self.path, body, headers)
            else:
                front.count(f"other {method}")
                status, raw = front.forward(method, self.path, body, headers)
            self._reply(status, raw)

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> int:
    moto, port, model_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(model_path) as handle:
        model = json.load(handle)
    serve(Front(moto, model), port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
