"""The Kubernetes observer against an API stand-in that answers in the real API's documented shape
(rt_kube.FakeKube over HTTPS), with credentials from real kubeconfig files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rt_kube import FakeKube, Pki, b64, kubeconfig, meta, serve, template

from boda.errors import EXIT_UNAVAILABLE
from boda.locations import RuntimeLocation
from boda.runtime.base import RunningImage, RuntimeUnavailable
from boda.runtime.k8s import RESOURCES, RETRIES, KubernetesObserver
from boda.types import Digest

REG = "registry.example.com"
D = {n: Digest.of(f"image {n}".encode()) for n in range(10)}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def shop() -> FakeKube:
    """A namespace `shop` with a Deployment (a current and an old ReplicaSet), a StatefulSet with an
    older ControllerRevision, a DaemonSet, a CronJob and the Job it started, and their pods; and a
    namespace `other` the observer of `shop` must not see."""
    kube = FakeKube()
    web = f"{REG}/shop/web"
    kube.add(
        "deployments",
        {
            "metadata": meta("web"),
            "spec": {"replicas": 2, "template": template(("web", f"{web}:prd"))},
            "status": {"replicas": 2},
        },
    )
    kube.add(
        "replicasets",
        {
            "metadata": meta(
                "web-new", owner=("Deployment", "web"), annotations={"deployment.kubernetes.io/revision": "7"}
            ),
            "spec": {"replicas": 2, "template": template(("web", f"{web}:prd"))},
            "status": {"replicas": 2},
        },
    )
    kube.add(
        "replicasets",
        {
            "metadata": meta(
                "web-old", owner=("Deployment", "web"), annotations={"deployment.kubernetes.io/revision": "6"}
            ),
            "spec": {"replicas": 0, "template": template(("web", f"{web}@{D[6]}"))},
            "status": {"replicas": 0},
        },
    )
    for n, image_id in ((1, f"docker-pullable://{web}@{D[1]}"), (2, f"{web}@{D[1]}")):
        kube.add(
            "pods",
            {
                "metadata": meta(f"web-new-{n}", owner=("ReplicaSet", "web-new")),
                "spec": {
                    "initContainers": [{"name": "migrate", "image": f"{REG}/shop/migrate:v3"}],
                    "containers": [{"name": "web", "image": f"{web}:prd"}],
                    "ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}],
                },
                "status": {
                    "phase": "Running",
                    "initContainerStatuses": [
                        {
                            "name": "migrate",
                            "image": f"{REG}/shop/migrate:v3",
                            "imageID": f"{REG}/shop/migrate@{D[3]}",
                        }
                    ],
                    "containerStatuses": [{"name": "web", "image": f"{web}:prd", "imageID": image_id}],
                    "ephemeralContainerStatuses": [
                        {
                            "name": "debug",
                            "image": "busybox:1.36",
                            "imageID": f"docker.io/library/busybox@{D[9]}",
                        }
                    ],
                },
            },
        )
    kube.add(
        "pods",
        {
            "metadata": meta("web-pending", owner=("ReplicaSet", "web-new")),
            "spec": {"containers": [{"name": "web", "image": f"{web}:prd"}]},
            "status": {"phase": "Pending"},
        },
    )
    kube.add(
        "pods",
        {
            "metadata": meta("done", owner=("Job", "nightly-1")),
            "spec": {"containers": [{"name": "job", "image": f"{REG}/shop/batch:old"}]},
            "status": {
                "phase": "Succeeded",
                "containerStatuses": [{"name": "job", "imageID": f"{REG}/shop/batch@{D[8]}"}],
            },
        },
    )
    kube.add(
        "pods",
        {
            "metadata": meta("local"),
            "spec": {"containers": [{"name": "c", "image": "built-here:dev"}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": "c", "imageID": f"docker://{D[5]}"}],
            },
        },
    )
    kube.add(
        "statefulsets",
        {
            "metadata": meta("db"),
            "spec": {"template": template(("db", f"{REG}/shop/db:15"))},
            "status": {"replicas": 1},
        },
    )
    kube.add(
        "controllerrevisions",
        {
            "metadata": meta("db-1", owner=("StatefulSet", "db")),
            "revision": 1,
            "data": {"spec": {"template": template(("db", f"{REG}/shop/db:14"))}},
        },
    )
    kube.add(
        "controllerrevisions",
        {
            "metadata": meta("db-2", owner=("StatefulSet", "db")),
            "revision": 2,
            "data": {"spec": {"template": template(("db", f"{REG}/shop/db:15"))}},
        },
    )
    kube.add(
        "daemonsets",
        {
            "metadata": meta("agent"),
            "spec": {"template": template(("agent", f"{REG}/shop/agent:1"))},
            "status": {"currentNumberScheduled": 3},
        },
    )
    kube.add(
        "cronjobs",
        {
            "metadata": meta("nightly"),
            "spec": {
                "schedule": "0 3 * * *",
                "jobTemplate": {"spec": {"template": template(("job", f"{REG}/shop/batch:v2"))}},
            },
        },
    )
    kube.add(
        "jobs",
        {
            "metadata": meta("nightly-1", owner=("CronJob", "nightly")),
            "spec": {"template": template(("job", f"{REG}/shop/batch:old"))},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]},
        },
    )
    kube.add(
        "jobs",
        {
            "metadata": meta("backfill"),
            "spec": {"template": template(("job", f"{REG}/shop/batch:v2"))},
            "status": {"active": 1},
        },
    )
    kube.add(
        "deployments",
        {
            "metadata": meta("elsewhere", namespace="other"),
            "spec": {"template": template(("x", f"{REG}/other/x:1"))},
        },
    )
    kube.add(
        "pods",
        {
            "metadata": meta("elsewhere-1", namespace="other"),
            "spec": {"containers": [{"name": "x", "image": f"{REG}/other/x:1"}]},
            "status": {"phase": "Running"},
        },
    )
    return kube


def token_config(tmp_path: Path, url: str, pki: Pki, token: str = "s3cret", context: str = "prod") -> Path:
    return kubeconfig(
        tmp_path / "kubeconfig",
        clusters=[{"name": "c", "cluster": {"server": url, "certificate-authority-data": b64(pki.ca.cert)}}],
        users=[{"name": "u", "user": {"token": token}}],
        contexts=[{"name": context, "context": {"cluster": "c", "user": "u", "namespace": "shop"}}],
        current=context,
    )


def observer(path: Path, runtime: str = "k8s:prod/shop", page_size: int = 2) -> KubernetesObserver:
    return KubernetesObserver(
        RuntimeLocation.parse(runtime),
        environ={"KUBECONFIG": str(path)},
        page_size=page_size,
        sleep=lambda s: None,
    )


def rows(images: tuple[RunningImage, ...]) -> set[tuple[Any, ...]]:
    return {
        (i.place, i.role, i.source, i.container, i.image, str(i.digest) if i.digest else None, i.tasks)
        for i in images
    }


@pytest.fixture
def served(pki: Pki) -> Iterator[tuple[FakeKube, str]]:
    kube = shop()
    kube.tokens = {"s3cret"}
    with serve(kube, pki) as url:
        yield kube, url


def test_a_namespace_is_read_whole_through_every_page(
    served: tuple[FakeKube, str], pki: Pki, tmp_path: Path
) -> None:
    kube, url = served
    obs = observer(token_config(tmp_path, url, pki))
    try:
        seen = obs.observe()
    finally:
        obs.close()
    p = "k8s:prod/shop"
    web = f"{REG}/shop/web"
    assert rows(seen.images) == {
        # pods, by imageID (docker-pullable:// and containerd forms), init and ephemeral too
        (f"{p}/deployment/web", "running", "pod", "web", f"{web}:prd", str(D[1]), 2),
        (f"{p}/deployment/web", "running", "pod", "migrate", f"{REG}/shop/migrate:v3", str(D[3]), 2),
        (f"{p}/deployment/web", "running", "pod", "debug", "busybox:1.36", str(D[9]), 2),
        # a pending pod has no imageID yet: its tag is returned for the caller to resolve
        (f"{p}/deployment/web", "running", "pod", "web", f"{web}:prd", None, 1),
        # a local image ID (docker://sha256:…) is not a manifest digest
        (f"{p}/pod/local", "running", "pod", "c", "built-here:dev", None, 1),
        # templates: the tag as written
        (f"{p}/deployment/web", "deployed", "template", "web", f"{web}:prd", None, 2),
        (f"{p}/statefulset/db", "deployed", "template", "db", f"{REG}/shop/db:15", None, 1),
        (f"{p}/daemonset/agent", "deployed", "template", "agent", f"{REG}/shop/agent:1", None, 3),
        (f"{p}/cronjob/nightly", "deployed", "template", "job", f"{REG}/shop/batch:v2", None, None),
        (f"{p}/job/backfill", "deployed", "template", "job", f"{REG}/shop/batch:v2", None, 1),
        # the ReplicaSet kept for `rollout undo`, and the StatefulSet's older revision
        (f"{p}/deployment/web", "deployed", "template", "web", f"{web}:prd", None, 2),
        (f"{p}/deployment/web", "rollback", "template", "web", f"{web}@{D[6]}", str(D[6]), 0),
        (f"{p}/statefulset/db", "rollback", "template", "db", f"{REG}/shop/db:14", None, None),
    }
    # Nothing of namespace `other`, of the finished Job or of the Succeeded pod.
    assert not any("other/" in i.image or ":old" in i.image for i in seen.images)
    # Every list was paged with limit and continue, and every request carried the token.
    paths = [r["path"] for r in kube.requests]
    for resource, prefix in RESOURCES:
        assert f"{prefix}/namespaces/shop/{resource}" in paths
    continued = [r for r in kube.requests if "continue" in r["query"]]
    assert continued and all(r["query"]["limit"] == "2" for r in kube.requests)
    assert {r["authorization"] for r in kube.requests} == {"Bearer s3cret"}
    assert seen.requests == len(kube.requests)


def test_every_namespace(served: tuple[FakeKube, str], pki: Pki, tmp_path: Path) -> None:
    kube, url = served
    obs = observer(token_config(tmp_path, url, pki), "k8s:prod/*", page_size=500)
    try:
        seen = obs.observe()
    finally:
        obs.close()
    assert "/api/v1/pods" in [r["path"] for r in kube.requests]
    assert any(i.place == "k8s:prod/other/deployment/elsewhere" for i in seen.images)
    assert len(kube.requests) == len(RESOURCES)


@pytest.mark.parametrize("page", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("status", [403, 500])
def test_a_failing_page_fails_the_whole_read(
    served: tuple[FakeKube, str], pki: Pki, tmp_path: Path, page: int, status: int
) -> None:
    kube, url = served
    assert len([p for p in kube.objects["pods"] if p["metadata"]["namespace"] == "shop"]) == 5  # 3 pages of 2
    kube.fail[("pods", page)] = status
    obs = observer(token_config(tmp_path, url, pki))
    with pytest.raises(RuntimeUnavailable) as caught:
        obs.observe()
    obs.close()
    assert caught.value.exit_code == EXIT_UNAVAILABLE
    assert "/namespaces/shop/pods" in caught.value.message and str(status) in caught.value.message
    assert "s3cret" not in caught.value.diagnostics()
    if status == 403:
        assert "list on pods" in (caught.value.hint or "")
    pages = [r for r in kube.requests if r["path"].endswith("/pods")]
    assert len(pages) == page + 1 + (RETRIES if status == 500 else 0)  # 5xx answers are retried first


@pytest.mark.parametrize("resource", [r for r, _ in RESOURCES])
def test_every_list_fails_closed(
    served: tuple[FakeKube, str], pki: Pki, tmp_path: Path, resource: str
) -> None:
    kube, url = served
    kube.fail[(resource, 0)] = 403
    obs = observer(token_config(tmp_path, url, pki))
    with pytest.raises(RuntimeUnavailable, match=f"/{resource}: 403 Forbidden"):
        obs.observe()
    obs.close()


def test_an_expired_continue_token_restarts_the_list(
    served: tuple[FakeKube, str], pki: Pki, tmp_path: Path
) -> None:
    kube, url = served
    kube.expire.add(("pods", 1))
    obs = observer(token_config(tmp_path, url, pki))
    try:
        seen = obs.observe()
    finally:
        obs.close()
    pod_requests = [r for r in kube.requests if r["path"].endswith("/pods")]
    starts = [r for r in pod_requests if "continue" not in r["query"]]
    assert len(starts) == 2  # read again from the start after the 410
    assert sum(i.tasks or 0 for i in seen.images if i.source == "pod" and i.container == "web") == 3


def test_a_list_that_keeps_expiring_fails(served: tuple[FakeKube, str], pki: Pki, tmp_path: Path) -> None:
    kube, url = served

    class Always(set[tuple[str, int]]):
        def discard(self, item: tuple[str, int]) -> None:
            pass

    kube.expire = Always({("pods", 1)})
    obs = observer(token_config(tmp_path, url, pki))
    with pytest.raises(RuntimeUnavailable, match="kept expiring"):
        obs.observe()
    obs.close()


def test_busy_answers_are_retried_then_given_up(
    served: tuple[FakeKube, str], pki: Pki, tmp_path: Path
) -> None:
    kube, url = served
    kube.flaky[("deployments", 0)] = 2
    obs = observer(token_config(tmp_path, url, pki))
    obs.observe()
    obs.close()
    kube.flaky[("deployments", 0)] = 99
    obs = observer(token_config(tmp_path, url, pki))
    with pytest.raises(RuntimeUnavailable, match="503"):
        obs.observe()
    obs.close()


def test_a_wrong_token_is_refused_without_showing_it(
    served: tuple[FakeKube, str], pki: Pki, tmp_path: Path
) -> None:
    _, url = served
    obs = observer(token_config(tmp_path, url, pki, token="wrong-token"))
    with pytest.raises(RuntimeUnavailable, match="401") as caught:
        obs.observe()
    obs.close()
    assert "wrong-token" not in caught.value.diagnostics()


def test_an_unreachable_server_fails(pki: Pki, tmp_path: Path) -> None:
    from fixtures.processes import free_port

    obs = observer(token_config(tmp_path, f"https://127.0.0.1:{free_port()}", pki))
    with pytest.raises(RuntimeUnavailable, match="unreachable"):
        obs.observe()
    obs.close()


def test_a_server_certificate_of_another_ca_is_refused(
    served: tuple[FakeKube, str], pki: Pki, tmp_path: Path
) -> None:
    _, url = served
    path = kubeconfig(
        tmp_path / "kubeconfig",
        clusters=[
            {"name": "c", "cluster": {"server": url, "certificate-authority": str(pki.other_ca.cert_path)}}
        ],
        users=[{"name": "u", "user": {"token": "s3cret"}}],
        contexts=[{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
    )
    obs = observer(path)
    with pytest.raises(RuntimeUnavailable, match="unreachable"):
        obs.observe()
    obs.close()
