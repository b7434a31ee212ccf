"""ECS: what a cluster (or one service of it) runs, is deploying, and would roll back to.

Read, in batches and through every page:
- services (ListServices, then DescribeServices 10 at a time): every PRIMARY and ACTIVE deployment
  (a rollout in progress has both) and every PRIMARY and ACTIVE task set (blue/green);
- service deployments and revisions (ListServiceDeployments per service, DescribeServiceDeployments
  and DescribeServiceRevisions 20 at a time): the digest ECS resolved for each deployment, and the
  revision before the current one, which a circuit-breaker rollback returns to;
- tasks (ListTasks, then DescribeTasks 100 at a time): every task ECS wants running (RUNNING and
  PENDING; service, standalone and scheduled tasks alike) with each container's `imageDigest`;
- task definitions (DescribeTaskDefinition, once each) only for deployments no revision describes.

Where a task definition names a tag, the digest is the one ECS resolved for that deployment (its
service revision's, else its tasks'), never what the tag means today; only when ECS reports none
(a deployment without revisions or tasks) is the tag returned without a digest, for the caller to
resolve.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from boda.locations import RuntimeLocation
from boda.runtime._aws import AwsApi, chunks, parallel
from boda.runtime.base import Observation, RunningImage, RuntimeUnavailable, digest_after_at, merge
from boda.types import Digest, is_digest

#: DescribeServices takes at most 10 services, DescribeTasks 100 tasks, the deployment and revision
#: describes 20 ARNs; the list calls return at most 100 per page.
SERVICES_PER_CALL = 10
TASKS_PER_CALL = 100
REVISIONS_PER_CALL = 20
PAGE_SIZE = 100
#: Deployment states of a deployment that is still going on.
LIVE_DEPLOYMENT_STATES = frozenset(
    {"PENDING", "IN_PROGRESS", "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"}
)
#: How many of the newest service deployments to read besides the live ones: the current one and
#: the one before it (whose target is the revision a rollback returns to).
RECENT_DEPLOYMENTS = 2


@dataclass(frozen=True)
class _Rollout:
    """A deployment or task set of a service: what it runs and how many tasks."""

    id: str
    kind: str  # "deployment" or "task set"
    status: str
    task_definition: str
    running: int
    pending: int
    desired: int
    rollout: str

    @property
    def detail(self) -> str:
        state = f", {self.rollout}" if self.rollout else ""
        return (
            f"{self.status} {self.kind} {self.id}: {self.running} running, {self.pending} pending of"
            f" {self.desired}{state}"
        )


@dataclass(frozen=True)
class _Revision:
    arn: str
    service_arn: str
    task_definition: str
    created: Any
    #: (container name, image as the task definition names it, digest ECS resolved or None)
    images: tuple[tuple[str, str, Digest | None], ...]


class EcsObserver:
    """Reads `ecs:CLUSTER` or `ecs:CLUSTER/SERVICE`; `client` is injectable for tests."""

    def __init__(self, location: RuntimeLocation, *, client: Any = None, workers: int | None = None) -> None:
        if location.kind != "ecs":
            raise ValueError(f"not an ECS runtime: {location}")
        self.location = location
        self._api = AwsApi(location, "ecs", location.region, client)
        self._workers = workers
        self._cluster = location.cluster

    def close(self) -> None:
        """Close the client."""
        self._api.close()

    def _fail(self, message: str) -> RuntimeUnavailable:
        return RuntimeUnavailable(self.location, message)

    def observe(self) -> Observation:
        """Everything the cluster or service runs, deploys and keeps for rollback."""
        services = self._services()
        tasks = self._tasks()
        revisions = self._revisions(services)
        images: list[RunningImage] = []
        resolved: dict[tuple[str, str], set[Digest]] = defaultdict(set)
        for task in tasks:
            for container in task.get("containers") or ():
                digest = _digest(container.get("imageDigest"))
                if digest is not None and task.get("startedBy"):
                    resolved[(task["startedBy"], container.get("name", ""))].add(digest)
        definitions = self._task_definitions(services, revisions)
        for service in services:
            images += self._service_images(service, revisions, definitions, resolved)
        for task in tasks:  # a task not pulled yet starts from its deployment's digest
            images += self._task_images(task, resolved)
        return Observation(self.location, merge(images), self._api.counter.count)

    # -- reading -----------------------------------------------------------------------------------

    def _services(self) -> list[dict[str, Any]]:
        if self.location.service is not None:
            names: Sequence[str] = [self.location.service]
        else:
            names = self._api.items(
                "list_services",
                "serviceArns",
                cluster=self._cluster,
                PaginationConfig={"PageSize": PAGE_SIZE},
            )
        services: list[dict[str, Any]] = []
        for batch in chunks(list(names), SERVICES_PER_CALL):
            answer = self._api.call("describe_services", cluster=self._cluster, services=list(batch))
            self._no_failures("DescribeServices", answer)
            services += answer.get("services") or []
            if len(answer.get("services") or []) != len(batch):
                raise self._fail(
                    f"ECS DescribeServices answered {len(answer.get('services') or [])} of {len(batch)}"
                    " services"
                )
        return services

    def _tasks(self) -> list[dict[str, Any]]:
        extra: dict[str, Any] = {}
        if self.location.service is not None:
            extra["serviceName"] = self.location.service
        arns: list[str] = self._api.items(
            "list_tasks",
            "taskArns",
            cluster=self._cluster,
            desiredStatus="RUNNING",
            PaginationConfig={"PageSize": PAGE_SIZE},
            **extra,
        )
        tasks: list[dict[str, Any]] = []
        for batch in chunks(list(dict.fromkeys(arns)), TASKS_PER_CALL):
            answer = self._api.call("describe_tasks", cluster=self._cluster, tasks=list(batch))
            self._no_failures("DescribeTasks", answer)
            got = answer.get("tasks") or []
            if len(got) != len(batch):
                raise self._fail(f"ECS DescribeTasks answered {len(got)} of {len(batch)} tasks")
            tasks += got
        if self.location.service is not None:
            # A service's tasks are in the group `service:NAME`; the filter is kept client-side too.
            group = f"service:{self.location.service}"
            tasks = [t for t in tasks if t.get("group") == group]
        return tasks

    def _revisions(self, services: list[dict[str, Any]]) -> list[_Revision]:
        """The service revisions of live deployments and of the newest two of each service."""

        def deployments_of(service: dict[str, Any]) -> list[str]:
            briefs = self._api.items(
                "list_service_deployments",
                "serviceDeployments",
                cluster=self._cluster,
                service=service["serviceArn"],
                maxResults=PAGE_SIZE,
            )
            briefs.sort(key=lambda b: b.get("createdAt") or b.get("startedAt") or 0, reverse=True)
            chosen = [b for b in briefs if b.get("status") in LIVE_DEPLOYMENT_STATES]
            chosen += briefs[:RECENT_DEPLOYMENTS]
            return list(dict.fromkeys(b["serviceDeploymentArn"] for b in chosen))

        deployment_arns = [
            arn for arns in parallel(deployments_of, services, self._workers or 8) for arn in arns
        ]
        revision_arns: list[str] = []
        for batch in chunks(deployment_arns, REVISIONS_PER_CALL):
            answer = self._api.call("describe_service_deployments", serviceDeploymentArns=list(batch))
            self._no_failures("DescribeServiceDeployments", answer)
            for deployment in answer.get("serviceDeployments") or ():
                target = (deployment.get("targetServiceRevision") or {}).get("arn")
                sources = [s.get("arn") for s in deployment.get("sourceServiceRevisions") or ()]
                back = (deployment.get("rollback") or {}).get("serviceRevisionArn")
                revision_arns += [a for a in (target, *sources, back) if a]
        revisions: list[_Revision] = []
        for batch in chunks(list(dict.fromkeys(revision_arns)), REVISIONS_PER_CALL):
            answer = self._api.call("describe_service_revisions", serviceRevisionArns=list(batch))
            self._no_failures("DescribeServiceRevisions", answer)
            for revision in answer.get("serviceRevisions") or ():
                images = tuple(
                    (c.get("containerName", ""), c.get("image", ""), _digest(c.get("imageDigest")))
                    for c in revision.get("containerImages") or ()
                )
                revisions.append(
                    _Revision(
                        revision["serviceRevisionArn"],
                        revision.get("serviceArn", ""),
                        revision.get("taskDefinition", ""),
                        revision.get("createdAt"),
                        images,
                    )
                )
        return revisions

    def _task_definitions(
        self, services: list[dict[str, Any]], revisions: list[_Revision]
    ) -> dict[str, tuple[tuple[str, str], ...]]:
        """(container, image) of every task definition a deployment runs that no revision describes."""
        described = {(r.service_arn, r.task_definition) for r in revisions}
        wanted = sorted(
            {
                rollout.task_definition
                for service in services
                for rollout in _rollouts(service)
                if (service["serviceArn"], rollout.task_definition) not in described
            }
        )

        def describe(arn: str) -> tuple[tuple[str, str], ...]:
            answer = self._api.call("describe_task_definition", taskDefinition=arn)
            definition = answer.get("taskDefinition") or {}
            return tuple(
                (c.get("name", ""), c.get("image", "")) for c in definition.get("containerDefinitions") or ()
            )

        return dict(zip(wanted, parallel(describe, wanted, self._workers or 8), strict=True))

    def _no_failures(self, operation: str, answer: Mapping[str, Any]) -> None:
        failures = answer.get("failures") or []
        if failures:
            shown = "; ".join(
                f"{f.get('arn', '?')}: {f.get('reason', '?')}"
                + (f" ({f['detail']})" if f.get("detail") else "")
                for f in failures[:3]
            )
            more = f" and {len(failures) - 3} more" if len(failures) > 3 else ""
            raise self._fail(f"ECS {operation} failed for {shown}{more}")

    # -- records -----------------------------------------------------------------------------------

    def _place(self, group: str) -> str:
        """`ecs:CLUSTER/SERVICE` for a service's tasks, `ecs:CLUSTER/GROUP` for other tasks."""
        name = group.removeprefix("service:") if group.startswith("service:") else group
        return f"ecs:{self._cluster}/{name}" if name else f"ecs:{self._cluster}"

    def _service_images(
        self,
        service: dict[str, Any],
        revisions: list[_Revision],
        definitions: Mapping[str, tuple[tuple[str, str], ...]],
        resolved: dict[tuple[str, str], set[Digest]],
    ) -> list[RunningImage]:
        """The service's deployments and rollback revisions; `resolved` ((deployment id, container)
        -> digests, from its tasks) gains the digests its revisions name."""
        place = self._place(f"service:{service.get('serviceName', '')}")
        # Newest first: a deployment's digests are those of the newest revision of its task definition.
        own = sorted(
            (r for r in revisions if r.service_arn == service["serviceArn"]),
            key=lambda r: (r.created is not None, r.created.timestamp() if r.created is not None else 0),
            reverse=True,
        )
        images: list[RunningImage] = []
        covered: set[tuple[str, str, Digest | None]] = set()
        for rollout in _rollouts(service):
            revision = next((r for r in own if r.task_definition == rollout.task_definition), None)
            if revision is not None:
                containers: Iterable[tuple[str, str, Digest | None]] = revision.images
            else:
                containers = [
                    (name, image, None) for name, image in definitions.get(rollout.task_definition, ())
                ]
            for name, image, digest in containers:
                found: set[Digest] = (
                    {digest} if digest is not None else set(resolved.get((rollout.id, name), ()))
                )
                pinned = digest_after_at(image)
                if not found and pinned is not None:
                    found = {pinned}
                resolved[(rollout.id, name)] |= found
                candidates: list[Digest | None] = [*sorted(found, key=str)] or [None]
                for each in candidates:
                    covered.add((name, image, each))
                    images.append(
                        RunningImage(
                            place,
                            image,
                            each,
                            "deployed",
                            "deployment" if rollout.kind == "deployment" else "task-set",
                            tasks=rollout.running,
                            container=name,
                            detail=rollout.detail,
                        )
                    )
        for revision in own:
            for name, image, digest in revision.images:
                if (name, image, digest) in covered:
                    continue
                covered.add((name, image, digest))
                images.append(
                    RunningImage(
                        place,
                        image,
                        digest if digest is not None else digest_after_at(image),
                        "rollback",
                        "service-revision",
                        container=name,
                        detail=f"service revision {revision.arn.rsplit('/', 1)[-1]}"
                        f" ({revision.task_definition.rsplit('/', 1)[-1]})",
                    )
                )
        return images

    def _task_images(
        self, task: dict[str, Any], resolved: Mapping[tuple[str, str], set[Digest]]
    ) -> list[RunningImage]:
        images = []
        place = self._place(task.get("group") or "")
        started_by = task.get("startedBy") or ""
        for container in task.get("containers") or ():
            name = container.get("name", "")
            image = container.get("image", "")
            digest = _digest(container.get("imageDigest")) or digest_after_at(image)
            if digest is None and len(resolved.get((started_by, name), ())) == 1:
                # Not pulled yet: the task starts from the digest ECS resolved for its deployment.
                digest = next(iter(resolved[(started_by, name)]))
            images.append(
                RunningImage(
                    place,
                    image,
                    digest,
                    "running",
                    "task",
                    tasks=1,
                    container=name,
                    detail=f"tasks {task.get('lastStatus', '?')}"
                    f"{' (' + _task_family(task) + ')' if _task_family(task) else ''}",
                )
            )
        return images


def _rollouts(service: dict[str, Any]) -> list[_Rollout]:
    """The PRIMARY and ACTIVE deployments and task sets of a service."""
    found = []
    for d in service.get("deployments") or ():
        if d.get("status") in ("PRIMARY", "ACTIVE"):
            found.append(
                _Rollout(
                    d.get("id", "?"),
                    "deployment",
                    d["status"],
                    d.get("taskDefinition", ""),
                    int(d.get("runningCount") or 0),
                    int(d.get("pendingCount") or 0),
                    int(d.get("desiredCount") or 0),
                    d.get("rolloutState") or "",
                )
            )
    for s in service.get("taskSets") or ():
        if s.get("status") in ("PRIMARY", "ACTIVE"):
            found.append(
                _Rollout(
                    s.get("id", "?"),
                    "task set",
                    s["status"],
                    s.get("taskDefinition", ""),
                    int(s.get("runningCount") or 0),
                    int(s.get("pendingCount") or 0),
                    int(s.get("computedDesiredCount") or 0),
                    s.get("stabilityStatus") or "",
                )
            )
    return found


def _task_family(task: dict[str, Any]) -> str:
    return str(task.get("taskDefinitionArn", "")).rsplit("/", 1)[-1]


def _digest(text: Any) -> Digest | None:
    return Digest.parse(text) if isinstance(text, str) and is_digest(text) else None
