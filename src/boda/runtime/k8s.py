"""Kubernetes: what a namespace runs, is told to run, and keeps for a rollback, through the API server.

Lists, each through every page (`limit`/`continue`; an expired continue token, 410, restarts the
list from the start, at most twice): pods (what runs, by `imageID`), and the pod templates of
Deployments, StatefulSets, DaemonSets, Jobs that have not finished, CronJobs, ReplicaSets (those
scaled to zero are what `kubectl rollout undo` returns to) and ControllerRevisions (the same for
StatefulSets and DaemonSets). The client speaks plain HTTP/JSON with httpx; credentials come from
kubeconfig (boda.runtime.kubeconfig). 429 and 5xx answers are retried (honouring Retry-After);
any other failure raises RuntimeUnavailable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from boda.locations import RuntimeLocation
from boda.runtime.base import Observation, RequestCounter, RunningImage, RuntimeUnavailable, merge
from boda.runtime.kubeconfig import ClusterAccess, cluster_access, load_kubeconfig
from boda.runtime.pods import Owners, mapping, pod_images, template_images

#: (resource, API prefix) of every list read, in the order read.
RESOURCES = (
    ("replicasets", "/apis/apps/v1"),
    ("jobs", "/apis/batch/v1"),
    ("pods", "/api/v1"),
    ("deployments", "/apis/apps/v1"),
    ("statefulsets", "/apis/apps/v1"),
    ("daemonsets", "/apis/apps/v1"),
    ("cronjobs", "/apis/batch/v1"),
    ("controllerrevisions", "/apis/apps/v1"),
)
PAGE_SIZE = 500
RETRIES = 4
MAX_RESTARTS = 2
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_WAIT = 10.0
_RBAC_HINT = (
    "boda needs get and list on pods, replicasets, deployments, statefulsets, daemonsets,"
    " controllerrevisions, jobs and cronjobs in the namespace"
)


class KubernetesObserver:
    """Reads `k8s:CONTEXT/NAMESPACE`; `access`, `transport` and `sleep` are injectable for tests."""

    def __init__(
        self,
        location: RuntimeLocation,
        *,
        access: ClusterAccess | None = None,
        environ: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if location.kind != "k8s":
            raise ValueError(f"not a Kubernetes runtime: {location}")
        self.location = location
        self._access = access
        self._environ = environ
        self._transport = transport
        self._page_size = page_size
        self._sleep = sleep
        self._client: httpx.Client | None = None
        self.counter = RequestCounter()

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _fail(self, message: str, hint: str | None = None) -> RuntimeUnavailable:
        return RuntimeUnavailable(self.location, message, hint=hint)

    def _open(self) -> tuple[httpx.Client, ClusterAccess]:
        if self._access is None:
            config = load_kubeconfig(str(self.location), environ=self._environ)
            self._access = cluster_access(config, self.location.context, str(self.location))
        if self._client is None:
            self._client = httpx.Client(
                base_url=self._access.server,
                verify=self._access.ssl_context,
                proxy=self._access.proxy,
                transport=self._transport,
                timeout=httpx.Timeout(30.0, connect=10.0),
                follow_redirects=False,
                headers={"Accept": "application/json", "User-Agent": "boda"},
            )
        return self._client, self._access

    def observe(self) -> Observation:
        """Everything the namespace (or every namespace, `*`) runs and keeps."""
        found = {resource: self._list(resource, prefix) for resource, prefix in RESOURCES}
        prefix = f"k8s:{self.location.context}"
        owners = Owners(found["replicasets"], found["jobs"])
        images: list[RunningImage] = []
        for pod in found["pods"]:
            images += pod_images(pod, owners.place(prefix, pod, "Pod"))
        for kind, resource in (
            ("Deployment", "deployments"),
            ("StatefulSet", "statefulsets"),
            ("DaemonSet", "daemonsets"),
        ):
            for item in found[resource]:
                status, spec = mapping(item.get("status")), mapping(item.get("spec"))
                count = (
                    status.get("currentNumberScheduled") if kind == "DaemonSet" else status.get("replicas")
                )
                images += template_images(
                    spec.get("template"),
                    owners.place(prefix, item, kind),
                    "deployed",
                    f"{kind.lower()} template",
                    tasks=int(count or 0),
                )
        for item in found["cronjobs"]:
            spec = mapping(item.get("spec"))
            detail = f"cronjob template, schedule {spec.get('schedule', '?')}"
            images += template_images(
                mapping(mapping(spec.get("jobTemplate")).get("spec")).get("template"),
                owners.place(prefix, item, "CronJob"),
                "deployed",
                detail + (", suspended" if spec.get("suspend") else ""),
            )
        for item in found["jobs"]:
            if not _finished(item):
                images += template_images(
                    mapping(item.get("spec")).get("template"),
                    owners.place(prefix, item, "Job"),
                    "deployed",
                    "job template",
                    tasks=int(mapping(item.get("status")).get("active") or 0),
                )
        images += self._replicasets(found["replicasets"], owners, prefix)
        images += self._revisions(found["controllerrevisions"], owners, prefix)
        return Observation(self.location, merge(images), self.counter.count)

    def _replicasets(self, items: list[dict[str, Any]], owners: Owners, prefix: str) -> list[RunningImage]:
        images: list[RunningImage] = []
        for item in items:
            meta, spec = mapping(item.get("metadata")), mapping(item.get("spec"))
            raw = spec.get("replicas")
            replicas = 1 if raw is None else int(raw)  # the API's default is 1
            revision = mapping(meta.get("annotations")).get("deployment.kubernetes.io/revision")
            what = f"replicaset {meta.get('name', '?')}" + (f" (revision {revision})" if revision else "")
            kept = replicas == 0
            images += template_images(
                spec.get("template"),
                owners.place(prefix, item, "ReplicaSet"),
                "rollback" if kept else "deployed",
                f"{what}, scaled to 0" if kept else f"{what}, {replicas} replicas",
                tasks=int(mapping(item.get("status")).get("replicas") or 0),
            )
        return images

    def _revisions(self, items: list[dict[str, Any]], owners: Owners, prefix: str) -> list[RunningImage]:
        """ControllerRevisions of StatefulSets and DaemonSets but the newest of each (the current)."""
        newest: dict[str, int] = {}
        for item in items:
            place = owners.place(prefix, item, "ControllerRevision")
            newest[place] = max(newest.get(place, -1), int(item.get("revision") or 0))
        images: list[RunningImage] = []
        for item in items:
            place = owners.place(prefix, item, "ControllerRevision")
            number = int(item.get("revision") or 0)
            if number == newest[place]:
                continue
            template = mapping(mapping(item.get("data")).get("spec")).get("template")
            name = mapping(item.get("metadata")).get("name", "?")
            images += template_images(
                template,
                place,
                "rollback",
                f"controllerrevision {name} (revision {number})",
            )
        return images

    # -- the API -----------------------------------------------------------------------------------

    def _path(self, resource: str, prefix: str) -> str:
        if self.location.namespace == "*":
            return f"{prefix}/{resource}"
        return f"{prefix}/namespaces/{self.location.namespace}/{resource}"

    def _list(self, resource: str, prefix: str) -> list[dict[str, Any]]:
        """Every item of one list, through every page; nothing partial is returned."""
        path = self._path(resource, prefix)
        restarts = 0
        items: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, Any] = {"limit": self._page_size}
            if token:
                params["continue"] = token
            response = self._get(path, params)
            if response.status_code == 410 and token:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise self._fail(f"Kubernetes GET {path}: the list kept expiring ({restarts} restarts)")
                items, token, seen = [], None, set()
                continue
            if response.status_code != 200:
                raise self._status_error(path, response)
            body = _json(response)
            page = body.get("items") if isinstance(body, dict) else None
            if not isinstance(page, list) or not all(isinstance(i, dict) for i in page):
                raise self._fail(f"Kubernetes GET {path}: the answer is not a list of objects")
            items += page
            token = mapping(body.get("metadata")).get("continue") or None
            if token is None:
                return items
            if token in seen:
                raise self._fail(f"Kubernetes GET {path}: the server repeated a continue token")
            seen.add(token)

    def _get(self, path: str, params: Mapping[str, Any]) -> httpx.Response:
        client, access = self._open()
        refreshed = False
        attempt = 0
        while True:
            headers = {"Authorization": access.authorization} if access.authorization else {}
            extensions = {"sni_hostname": access.tls_server_name} if access.tls_server_name else None
            self.counter.add()
            try:
                response = client.get(path, params=params, headers=headers, extensions=extensions)
            except httpx.HTTPError as exc:
                if attempt < RETRIES:
                    attempt += 1
                    self._sleep(min(_MAX_WAIT, 0.2 * 2.0**attempt))
                    continue
                detail = " ".join(str(exc).split())[:200] or type(exc).__name__
                raise self._fail(
                    f"Kubernetes API {access.server} unreachable ({detail})",
                    hint="check the network and the kubeconfig cluster's server",
                ) from exc
            if response.status_code == 401 and not refreshed and access.refresh():
                refreshed = True
                continue
            if response.status_code in _RETRY_STATUS and attempt < RETRIES:
                attempt += 1
                self._sleep(_retry_after(response, attempt))
                continue
            return response

    def _status_error(self, path: str, response: httpx.Response) -> RuntimeUnavailable:
        body = _json(response)
        status = body if isinstance(body, dict) else {}
        reason = status.get("reason") or response.reason_phrase
        message = " ".join(str(status.get("message") or "").split())[:300]
        text = f"Kubernetes GET {path}: {response.status_code} {reason}" + (f": {message}" if message else "")
        hint = None
        if response.status_code == 401:
            hint = (
                "the kubeconfig credentials were rejected; log in again (or refresh the exec plugin's token)"
            )
        elif response.status_code == 403:
            hint = _RBAC_HINT
        elif response.status_code in _RETRY_STATUS:
            hint = f"the API server kept failing through {RETRIES} retries; retry later"
        return self._fail(text, hint)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: httpx.Response, attempt: int) -> float:
    value = str(response.headers.get("Retry-After", ""))
    if value.strip().isdigit():
        return min(_MAX_WAIT, float(value.strip()))
    return min(_MAX_WAIT, 0.2 * 2.0**attempt)


def _finished(job: Mapping[str, Any]) -> bool:
    """A Job whose Complete or Failed condition is true starts no more pods."""
    for condition in mapping(job.get("status")).get("conditions") or ():
        if (
            isinstance(condition, dict)
            and condition.get("type") in ("Complete", "Failed")
            and condition.get("status") == "True"
        ):
            return True
    return False
