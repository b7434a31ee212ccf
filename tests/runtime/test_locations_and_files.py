"""Runtime locations (the five contract forms and their errors), the `runtimes` config key, and the
`file:` observer (reference lists and `kubectl get pods -o json`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from boda.config import parse_config
from boda.errors import EXIT_UNAVAILABLE, EXIT_USAGE, ConfigError, UsageError
from boda.locations import RuntimeLocation
from boda.runtime import observe
from boda.runtime.base import RuntimeUnavailable
from boda.types import Digest

D1 = Digest.of(b"one")
D2 = Digest.of(b"two")


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("ecs:prod-cluster", {"kind": "ecs", "cluster": "prod-cluster", "service": None, "region": ""}),
        ("ecs:prod-cluster/web", {"kind": "ecs", "cluster": "prod-cluster", "service": "web"}),
        (
            "ecs:arn:aws:ecs:eu-west-1:123456789012:cluster/prod/web",
            {"kind": "ecs", "cluster": "prod", "service": "web", "region": "eu-west-1"},
        ),
        ("lambda:eu-west-1/*", {"kind": "lambda", "region": "eu-west-1", "function": "*"}),
        ("lambda:eu-west-1/shop-web", {"kind": "lambda", "region": "eu-west-1", "function": "shop-web"}),
        ("lambda:us-gov-west-1/shop-*", {"kind": "lambda", "region": "us-gov-west-1", "function": "shop-*"}),
        ("k8s:prod-context/shop", {"kind": "k8s", "context": "prod-context", "namespace": "shop"}),
        (
            "k8s:arn:aws:eks:eu-west-1:123456789012:cluster/prod/shop",
            {
                "kind": "k8s",
                "context": "arn:aws:eks:eu-west-1:123456789012:cluster/prod",
                "namespace": "shop",
            },
        ),
        ("k8s:kind-dev/*", {"kind": "k8s", "context": "kind-dev", "namespace": "*"}),
    ],
)
def test_the_contract_forms_parse(text: str, fields: dict[str, object]) -> None:
    location = RuntimeLocation.parse(text)
    assert {k: getattr(location, k) for k in fields} == fields
    assert str(location) == text and RuntimeLocation.parse(str(location)) == location


def test_a_file_is_anchored_at_the_config_folder(tmp_path: Path) -> None:
    location = RuntimeLocation.parse("file:deployed.txt", base_dir=tmp_path)
    assert location.kind == "file" and location.path == (tmp_path / "deployed.txt").resolve()
    assert RuntimeLocation.parse("file:/abs/x.json").path == Path("/abs/x.json")


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ecs:x",
        "ecs:",
        "ecs:a/b/c",
        "ecs:bad name",
        "ecs:arn:aws:ecs:eu-west-1:12:cluster/x",
        "lambda:eu-west-1",
        "lambda:europe/fn",
        "lambda:eu-west-1/fn:alias",
        "k8s:shop",
        "k8s:/shop",
        "k8s:ctx/Shop",
        "nomad:prod",
        "file:",
        "ecs:prod\nx",
    ],
)
def test_malformed_locations_are_bad_input(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        RuntimeLocation.parse(text)
    assert caught.value.exit_code == EXIT_USAGE and "\n" not in caught.value.message


def config(tmp_path: Path, runtimes: str) -> str:
    return f"""registry = "oci-layout:reg"

[[environments]]
name = "dev"

[[environments]]
name = "prd"
after = "dev"
{runtimes}
"""


def test_runtimes_of_an_environment(tmp_path: Path) -> None:
    text = config(
        tmp_path,
        'runtimes = ["ecs:prod-cluster", "ecs:prod-cluster/web", "lambda:eu-west-1/*",'
        ' "k8s:prod-context/shop", "file:deployed.txt"]',
    )
    cfg = parse_config(text, tmp_path / "boda.toml")
    prd = cfg.environment("prd")
    assert [str(r) for r in prd.runtimes] == [
        "ecs:prod-cluster",
        "ecs:prod-cluster/web",
        "lambda:eu-west-1/*",
        "k8s:prod-context/shop",
        "file:deployed.txt",
    ]
    assert prd.runtimes[-1].path == (tmp_path / "deployed.txt").resolve()
    assert cfg.environment("dev").runtimes == ()


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('runtimes = "ecs:prod"', "must be a list of runtimes"),
        ("runtimes = [1]", "must be a list of runtimes"),
        ('runtimes = ["nomad:prod"]', "runtime 'nomad:prod'"),
        ('runtimes = ["ecs:prod", "ecs:prod"]', "listed twice"),
    ],
)
def test_bad_runtimes_name_file_key_and_line(tmp_path: Path, line: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(tmp_path, line), tmp_path / "boda.toml")
    assert f"{tmp_path / 'boda.toml'}:9: environments[1].runtimes: " in caught.value.message
    assert needle in caught.value.message


def run_file(path: Path) -> list[tuple[str, str | None, str, int | None]]:
    seen = observe(RuntimeLocation.parse(f"file:{path}"))
    return [(i.place, str(i.digest) if i.digest else None, i.image, i.tasks) for i in seen.images]


def test_a_list_of_references(tmp_path: Path) -> None:
    path = tmp_path / "deployed.txt"
    path.write_text(
        "# exported from the CMDB\n"
        "registry.example.com/shop/web:prd\n"
        "\n"
        f"registry.example.com/shop/api@{D1}   # pinned by digest\n"
        f"   registry.example.com/shop/api:v2@{D2}\n"
        "nginx:1.25\n"
    )
    place = f"file:{path}"
    assert run_file(path) == [
        (place, None, "registry.example.com/shop/web:prd", None),
        (place, str(D1), f"registry.example.com/shop/api@{D1}", None),
        (place, str(D2), f"registry.example.com/shop/api:v2@{D2}", None),
        (place, None, "nginx:1.25", None),
    ]


def test_kubectl_get_pods_json(tmp_path: Path) -> None:
    pods = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "web-5d9c-abc",
                    "namespace": "shop",
                    "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d9c", "controller": True}],
                },
                "spec": {
                    "initContainers": [{"name": "init", "image": "registry.example.com/shop/init:1"}],
                    "containers": [{"name": "web", "image": "registry.example.com/shop/web:prd"}],
                },
                "status": {
                    "phase": "Running",
                    "initContainerStatuses": [
                        {"name": "init", "imageID": f"registry.example.com/shop/init@{D2}"}
                    ],
                    "containerStatuses": [
                        {"name": "web", "imageID": f"docker-pullable://registry.example.com/shop/web@{D1}"}
                    ],
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "old", "namespace": "shop"},
                "spec": {"containers": [{"name": "x", "image": "registry.example.com/shop/x:1"}]},
                "status": {"phase": "Failed"},
            },
        ],
    }
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(pods, indent=2))
    place = f"file:{path}/shop/replicaset/web-5d9c"
    assert run_file(path) == [
        (place, str(D2), "registry.example.com/shop/init:1", 1),
        (place, str(D1), "registry.example.com/shop/web:prd", 1),
    ]


@pytest.mark.parametrize(
    ("content", "code", "needle"),
    [
        (
            "registry.example.com/shop/web:prd\nnot a reference!\n",
            EXIT_USAGE,
            "deployed.txt:2: invalid reference",
        ),
        ('{"kind": "Deployment"}', EXIT_USAGE, "not the output of `kubectl get pods -o json`"),
        ('{"items": [{"kind": "Service"}]}', EXIT_USAGE, "not pods"),
        ("{broken", EXIT_USAGE, "nor valid JSON"),
        (b"\xff\xfe", EXIT_USAGE, "not UTF-8"),
        (None, EXIT_UNAVAILABLE, "cannot read"),
    ],
)
def test_bad_files(tmp_path: Path, content: str | bytes | None, code: int, needle: str) -> None:
    path = tmp_path / "deployed.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises((UsageError, RuntimeUnavailable)) as caught:
        observe(RuntimeLocation.parse(f"file:{path}"))
    assert caught.value.exit_code == code and needle in caught.value.message
