"""The ECS observer through real boto3 clients against moto in server mode; botocore's Stubber only
for the calls moto lacks or answers wrongly (named per test; see rt_aws for the gaps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rt_aws import GapClient, real_client, task_answer

from boda.errors import EXIT_UNAVAILABLE
from boda.locations import RuntimeLocation
from boda.runtime.base import RunningImage, RuntimeUnavailable
from boda.runtime.ecs import EcsObserver
from boda.types import Digest
from fixtures.moto import ACCOUNT, REGION

REG = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
WEB = f"{REG}/shop/web"
D = {n: str(Digest.of(f"image {n}".encode())) for n in range(20)}
REVISIONS = ("list_service_deployments", "describe_service_deployments", "describe_service_revisions")
T0 = datetime(2025, 6, 1, tzinfo=UTC)

pytestmark = pytest.mark.ecr


def rows(images: tuple[RunningImage, ...]) -> set[tuple[Any, ...]]:
    return {
        (i.place, i.role, i.source, i.container, i.image, str(i.digest) if i.digest else None, i.tasks)
        for i in images
    }


def sd_arn(service: str, n: int) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/prod/{service}/sd{n}"


def rev_arn(service: str, n: int) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/prod/{service}/rev{n}"


class World:
    """A cluster `prod` on moto, its task definitions, and what the stubs say about it."""

    def __init__(self) -> None:
        self.ecs = real_client("ecs")
        self.ecs.create_cluster(clusterName="prod")
        self.definitions: dict[str, Any] = {}

    def definition(self, family: str, *containers: tuple[str, str]) -> str:
        answer = self.ecs.register_task_definition(
            family=family,
            containerDefinitions=[{"name": n, "image": i, "memory": 128} for n, i in containers],
        )["taskDefinition"]
        self.definitions[answer["taskDefinitionArn"]] = answer
        return str(answer["taskDefinitionArn"])

    def service(self, name: str, definition: str, count: int = 2) -> dict[str, Any]:
        return dict(
            self.ecs.create_service(
                cluster="prod",
                serviceName=name,
                taskDefinition=definition,
                desiredCount=count,
                launchType="FARGATE",
            )["service"]
        )

    def run(self, definition: str, count: int, **kwargs: Any) -> list[dict[str, Any]]:
        return list(
            self.ecs.run_task(
                cluster="prod", taskDefinition=definition, count=count, launchType="FARGATE", **kwargs
            )["tasks"]
        )


@pytest.fixture
def world(ecr_env: str) -> World:
    return World()


def observer(runtime: str, client: Any) -> EcsObserver:
    return EcsObserver(RuntimeLocation.parse(runtime), client=client, workers=1)


def stub_revisions(
    client: GapClient,
    service_arn: str,
    name: str,
    revisions: list[tuple[int, str, list[tuple[str, str, str]]]],
) -> None:
    """Stub the deployment history of one service: deployment n targets revision n (newest last in
    `revisions`), each revision (n, task definition, [(container, image, digest)])."""
    briefs = [
        {
            "serviceDeploymentArn": sd_arn(name, n),
            "serviceArn": service_arn,
            "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod",
            "createdAt": T0 + timedelta(hours=n),
            "targetServiceRevisionArn": rev_arn(name, n),
            "status": "SUCCESSFUL",
        }
        for n, _, _ in revisions
    ]
    client.add("list_service_deployments", {"serviceDeployments": list(reversed(briefs))})
    newest = [n for n, _, _ in revisions][-2:][::-1]
    client.add(
        "describe_service_deployments",
        {
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": sd_arn(name, n),
                    "serviceArn": service_arn,
                    "status": "SUCCESSFUL",
                    "targetServiceRevision": {
                        "arn": rev_arn(name, n),
                        "requestedTaskCount": 2,
                        "runningTaskCount": 2,
                    },
                    "sourceServiceRevisions": [{"arn": rev_arn(name, n - 1), "runningTaskCount": 0}]
                    if any(m == n - 1 for m, _, _ in revisions)
                    else [],
                }
                for n in newest
            ],
            "failures": [],
        },
        {"serviceDeploymentArns": [sd_arn(name, n) for n in newest]},
    )
    wanted = list(
        dict.fromkeys(
            [rev_arn(name, n) for n in newest] + [rev_arn(name, n - 1) for n in newest if n - 1 >= 1]
        )
    )
    client.add(
        "describe_service_revisions",
        {
            "serviceRevisions": [
                {
                    "serviceRevisionArn": rev_arn(name, n),
                    "serviceArn": service_arn,
                    "taskDefinition": definition,
                    "createdAt": T0 + timedelta(hours=n),
                    "containerImages": [
                        {"containerName": c, "image": i, "imageDigest": d} for c, i, d in images
                    ],
                }
                for n, definition, images in revisions
                if rev_arn(name, n) in wanted
            ],
            "failures": [],
        },
        {"serviceRevisionArns": wanted},
    )


def test_a_service_its_revisions_and_standalone_tasks(world: World) -> None:
    """Gaps stubbed: MOTO-ECS-REVISIONS (the three revision calls) and MOTO-ECS-TASKS (DescribeTasks:
    imageDigest, every container). The rest is moto: cluster, task definitions, the service and its
    PRIMARY deployment, RunTask, ListServices, DescribeServices, ListTasks."""
    old = world.definition("web", ("web", f"{WEB}:prd"), ("proxy", "nginx:1.25"))
    new = world.definition("web", ("web", f"{WEB}:prd"), ("proxy", "nginx:1.25"))
    migrate = world.definition("migrate", ("migrate", f"{REG}/shop/migrate@{D[7]}"))
    nightly = world.definition("report", ("report", f"{REG}/shop/report:nightly"))
    service = world.service("web", new, count=3)
    deployment = service["deployments"][0]
    service_tasks = world.run(new, 3, startedBy=deployment["id"], group="service:web")
    by_hand = world.run(migrate, 1)
    scheduled = world.run(nightly, 2, startedBy="events-rule/nightly-report")
    client = GapClient(real_client("ecs"), (*REVISIONS, "describe_tasks"))
    tasks = service_tasks + by_hand + scheduled
    answer = task_answer(service_tasks[:2], {"web": D[1], "proxy": D[9]}, world.definitions)
    pending = task_answer(service_tasks[2:], {}, world.definitions)["tasks"]  # placed, not pulled yet
    pending[0]["lastStatus"] = "PENDING"
    answer["tasks"] += pending
    answer["tasks"] += task_answer(by_hand, {"migrate": D[7]}, world.definitions)["tasks"]
    answer["tasks"] += task_answer(scheduled, {}, world.definitions)["tasks"]  # not pulled yet
    client.add("describe_tasks", answer, {"cluster": "prod", "tasks": [t["taskArn"] for t in tasks]})
    # What ECS resolved `web:prd` to when each revision was deployed: D1 for the current one, D0 before.
    stub_revisions(
        client,
        service["serviceArn"],
        "web",
        [
            (1, old, [("web", f"{WEB}:prd", D[0]), ("proxy", "nginx:1.25", D[9])]),
            (2, new, [("web", f"{WEB}:prd", D[1]), ("proxy", "nginx:1.25", D[9])]),
        ],
    )
    seen = observer("ecs:prod", client).observe()
    client.done()
    detail = {i.source: i.detail for i in seen.images}
    assert rows(seen.images) == {
        # the PRIMARY deployment, with the digests its revision resolved (never today's `prd`)
        ("ecs:prod/web", "deployed", "deployment", "web", f"{WEB}:prd", D[1], deployment["runningCount"]),
        ("ecs:prod/web", "deployed", "deployment", "proxy", "nginx:1.25", D[9], deployment["runningCount"]),
        # the revision before it: the target of a circuit-breaker rollback
        ("ecs:prod/web", "rollback", "service-revision", "web", f"{WEB}:prd", D[0], None),
        # running tasks, counted
        ("ecs:prod/web", "running", "task", "web", f"{WEB}:prd", D[1], 2),
        ("ecs:prod/web", "running", "task", "proxy", "nginx:1.25", D[9], 2),
        # a PENDING task reports no digest yet: it starts from the one ECS resolved for its deployment
        ("ecs:prod/web", "running", "task", "web", f"{WEB}:prd", D[1], 1),
        ("ecs:prod/web", "running", "task", "proxy", "nginx:1.25", D[9], 1),
        # a task started by hand and a scheduled one (not pulled yet: its tag, for the caller)
        ("ecs:prod/family:migrate", "running", "task", "migrate", f"{REG}/shop/migrate@{D[7]}", D[7], 1),
        ("ecs:prod/family:report", "running", "task", "report", f"{REG}/shop/report:nightly", None, 2),
    }
    assert "PRIMARY deployment ecs-svc/" in detail["deployment"]
    assert detail["service-revision"] == "service revision rev1 (web:1)"
    # moto's own answers were used for everything else
    assert [op for op, _ in client.calls] == [
        "ListServices",
        "DescribeServices",
        "ListTasks",
        "DescribeTasks",
        "ListServiceDeployments",
        "DescribeServiceDeployments",
        "DescribeServiceRevisions",
    ]
    assert client.ops("ListTasks")[0]["desiredStatus"] == "RUNNING"


def test_one_service_only(world: World) -> None:
    """Gaps stubbed: MOTO-ECS-REVISIONS, MOTO-ECS-TASKS; MOTO-ECS-PAGES: ListTasks ignores
    serviceName, so the observer's own filter on the task group is what is tested here too."""
    definition = world.definition("api", ("api", f"{REG}/shop/api:prd"))
    other = world.definition("web", ("web", f"{WEB}:prd"))
    service = world.service("api", definition)
    world.service("web", other)
    api_tasks = world.run(definition, 2, startedBy=service["deployments"][0]["id"], group="service:api")
    web_tasks = world.run(other, 1, group="service:web")
    client = GapClient(real_client("ecs"), (*REVISIONS, "describe_tasks"))
    client.add(
        "describe_tasks",
        {
            "tasks": task_answer(api_tasks, {"api": D[3]}, world.definitions)["tasks"]
            + task_answer(web_tasks, {"web": D[4]}, world.definitions)["tasks"],
            "failures": [],
        },
    )
    # A service created before ECS kept revisions: no deployments to describe.
    client.add("list_service_deployments", {"serviceDeployments": []})
    seen = observer("ecs:prod/api", client).observe()
    client.done()
    assert client.ops("ListTasks")[0]["serviceName"] == "api"
    assert client.ops("DescribeServices") == [{"cluster": "prod", "services": ["api"]}]
    assert "ListServices" not in [op for op, _ in client.calls]
    # Without a revision, the deployment's digest is its tasks' (the same deployment id), and the
    # task definition was read once for its images.
    assert rows(seen.images) == {
        ("ecs:prod/api", "deployed", "deployment", "api", f"{REG}/shop/api:prd", D[3], 0),
        ("ecs:prod/api", "running", "task", "api", f"{REG}/shop/api:prd", D[3], 2),
    }
    assert len(client.ops("DescribeTaskDefinition")) == 1


def test_a_rollout_in_progress_covers_both_deployments(world: World) -> None:
    """Gaps stubbed: MOTO-ECS-DEPLOYMENTS (DescribeServices with a PRIMARY and an ACTIVE deployment),
    MOTO-ECS-REVISIONS, MOTO-ECS-TASKS. Task definitions come from moto (DescribeTaskDefinition)."""
    old = world.definition("web", ("web", f"{WEB}:v1"))
    new = world.definition("web", ("web", f"{WEB}:v2"))
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
    client = GapClient(
        real_client("ecs"), (*REVISIONS, "describe_tasks", "describe_services", "list_services")
    )
    client.add("list_services", {"serviceArns": [arn]})
    client.add(
        "describe_services",
        {
            "services": [
                {
                    "serviceArn": arn,
                    "serviceName": "web",
                    "status": "ACTIVE",
                    "deployments": [
                        {
                            "id": "ecs-svc/2",
                            "status": "PRIMARY",
                            "taskDefinition": new,
                            "desiredCount": 4,
                            "runningCount": 1,
                            "pendingCount": 2,
                            "rolloutState": "IN_PROGRESS",
                        },
                        {
                            "id": "ecs-svc/1",
                            "status": "ACTIVE",
                            "taskDefinition": old,
                            "desiredCount": 4,
                            "runningCount": 3,
                            "pendingCount": 0,
                            "rolloutState": "COMPLETED",
                        },
                        {
                            "id": "ecs-svc/0",
                            "status": "INACTIVE",
                            "taskDefinition": old,
                            "desiredCount": 0,
                            "runningCount": 0,
                            "pendingCount": 0,
                        },
                    ],
                }
            ],
            "failures": [],
        },
    )
    client.add("list_service_deployments", {"serviceDeployments": []})
    seen = observer("ecs:prod", client).observe()
    client.done()
    assert rows(seen.images) == {
        ("ecs:prod/web", "deployed", "deployment", "web", f"{WEB}:v2", None, 1),
        ("ecs:prod/web", "deployed", "deployment", "web", f"{WEB}:v1", None, 3),
    }
    assert sorted(p["taskDefinition"] for p in client.ops("DescribeTaskDefinition")) == sorted([old, new])


def test_calls_are_batched(world: World) -> None:
    """25 services and 230 tasks: DescribeServices takes 10 at a time and DescribeTasks 100.
    Gaps stubbed: MOTO-ECS-REVISIONS, MOTO-ECS-TASKS."""
    definition = world.definition("web", ("web", f"{WEB}@{D[2]}"))
    services = [world.service(f"s{n:02}", definition, count=1) for n in range(25)]
    world.run(definition, 230)
    arns = world.ecs.list_tasks(cluster="prod")["taskArns"]
    tasks = world.ecs.describe_tasks(cluster="prod", tasks=arns[:100])["tasks"]  # only for their shape
    tasks += world.ecs.describe_tasks(cluster="prod", tasks=arns[100:200])["tasks"]
    tasks += world.ecs.describe_tasks(cluster="prod", tasks=arns[200:])["tasks"]
    order = {t["taskArn"]: t for t in tasks}
    client = GapClient(real_client("ecs"), (*REVISIONS, "describe_tasks"))
    for start in range(0, 230, 100):
        batch = [order[a] for a in arns[start : start + 100]]
        client.add(
            "describe_tasks",
            task_answer(batch, {"web": D[2]}, world.definitions),
            {"cluster": "prod", "tasks": arns[start : start + 100]},
        )
    for _ in services:
        client.add("list_service_deployments", {"serviceDeployments": []})
    seen = observer("ecs:prod", client).observe()
    client.done()
    assert [len(p["services"]) for p in client.ops("DescribeServices")] == [10, 10, 5]
    assert [len(p["tasks"]) for p in client.ops("DescribeTasks")] == [100, 100, 30]
    assert len(client.ops("DescribeTaskDefinition")) == 1  # one definition, read once
    assert sum(i.tasks or 0 for i in seen.images if i.source == "task") == 230
    assert seen.requests == sum(
        1 for op, _ in client.calls if op not in ("DescribeTasks", "ListServiceDeployments")
    )


PAGES = [
    {
        "taskArns": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod/t{n}" for n in range(100)],
        "nextToken": "page-2",
    },
    {
        "taskArns": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod/t{n}" for n in range(100, 200)],
        "nextToken": "page-3",
    },
    {"taskArns": [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod/t{n}" for n in range(200, 250)]},
]


@pytest.mark.parametrize("page", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException", "ServerException"])
def test_a_failing_page_fails_the_whole_read(world: World, page: int, code: str) -> None:
    """Gap stubbed: MOTO-ECS-PAGES (ListTasks paging, and a failure on the first, a middle or the
    last page)."""
    client = GapClient(real_client("ecs"), (*REVISIONS, "list_tasks", "describe_tasks"))
    for n in range(page):
        client.add("list_tasks", PAGES[n])
    client.add_error(
        "list_tasks", code, f"{code} for tests", status=400 if code != "ServerException" else 500
    )
    with pytest.raises(RuntimeUnavailable) as caught:
        observer("ecs:prod", client).observe()
    client.done()
    assert caught.value.exit_code == EXIT_UNAVAILABLE
    assert f"ECS ListTasks: {code}" in caught.value.message
    assert [p.get("nextToken") for p in client.ops("ListTasks")] == [None, "page-2", "page-3"][: page + 1]
    assert client.ops("DescribeTasks") == []  # nothing was described from a partial list
    if code == "AccessDeniedException":
        assert "ecs:ListTasks" in (caught.value.hint or "") or "ListTasks" in (caught.value.hint or "")
    if code == "ThrottlingException":
        assert "throttled" in (caught.value.hint or "")


def test_every_page_is_read(world: World) -> None:
    """Gap stubbed: MOTO-ECS-PAGES, MOTO-ECS-TASKS."""
    client = GapClient(real_client("ecs"), (*REVISIONS, "list_tasks", "describe_tasks"))
    for page in PAGES:
        client.add("list_tasks", page)
    every = [a for p in PAGES for a in p["taskArns"]]
    for start in range(0, 250, 100):
        batch = every[start : start + 100]
        client.add(
            "describe_tasks",
            {
                "tasks": [
                    {
                        "taskArn": a,
                        "group": "family:x",
                        "lastStatus": "RUNNING",
                        "containers": [{"name": "x", "image": f"{WEB}@{D[5]}", "imageDigest": D[5]}],
                    }
                    for a in batch
                ],
                "failures": [],
            },
            {"cluster": "prod", "tasks": batch},
        )
    seen = observer("ecs:prod", client).observe()
    client.done()
    assert rows(seen.images) == {("ecs:prod/family:x", "running", "task", "x", f"{WEB}@{D[5]}", D[5], 250)}


@pytest.mark.parametrize(
    ("operation", "answer"),
    [
        ("describe_tasks", {"tasks": [], "failures": [{"arn": "arn:aws:ecs:t1", "reason": "MISSING"}]}),
        ("describe_tasks", {"tasks": [], "failures": []}),
        (
            "describe_service_revisions",
            {"serviceRevisions": [], "failures": [{"arn": "rev", "reason": "AccessDenied"}]},
        ),
    ],
)
def test_a_partial_answer_fails(world: World, operation: str, answer: dict[str, Any]) -> None:
    """A describe that leaves something out is a partial answer: it fails the read.
    Gaps stubbed: MOTO-ECS-REVISIONS, MOTO-ECS-TASKS."""
    definition = world.definition("web", ("web", f"{WEB}:prd"))
    service = world.service("web", definition)
    world.run(definition, 1, group="service:web")
    client = GapClient(real_client("ecs"), (*REVISIONS, "describe_tasks"))
    if operation == "describe_tasks":
        client.add("describe_tasks", answer)
    else:
        arns = world.ecs.list_tasks(cluster="prod")["taskArns"]
        client.add(
            "describe_tasks",
            {"tasks": [{"taskArn": arns[0], "group": "service:web", "containers": []}], "failures": []},
        )
        client.add(
            "list_service_deployments",
            {
                "serviceDeployments": [
                    {"serviceDeploymentArn": sd_arn("web", 1), "createdAt": T0, "status": "SUCCESSFUL"}
                ]
            },
        )
        client.add(
            "describe_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": sd_arn("web", 1),
                        "serviceArn": service["serviceArn"],
                        "targetServiceRevision": {"arn": "rev"},
                    }
                ],
                "failures": [],
            },
        )
        client.add(operation, answer)
    with pytest.raises(RuntimeUnavailable, match="Describe"):
        observer("ecs:prod", client).observe()


def test_a_missing_service_or_cluster_fails(world: World) -> None:
    client = GapClient(real_client("ecs"), ())
    with pytest.raises(RuntimeUnavailable, match="MISSING"):
        observer("ecs:prod/nope", client).observe()
    with pytest.raises(RuntimeUnavailable, match="ClusterNotFoundException"):
        observer("ecs:nope", client).observe()
