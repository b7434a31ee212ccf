"""`boda runtime scan` and its service, offline: an OCI layout registry, a SQLite ledger, and `file:`
runtimes (the observer boda needs no cloud for). ECS and Lambda end to end: test_scan_aws.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from boda.config import load_config
from boda.errors import EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_USAGE, UsageError
from boda.locations import RuntimeLocation
from boda.registry import open_registry
from boda.runtime.base import Observation, RunningImage
from boda.services.context import Context
from boda.services.imagegen import make_image, push
from boda.services.runtime_scan import run_state, scan
from boda.types import Digest


def sha(n: str) -> str:
    return hashlib.sha1(n.encode()).hexdigest()


class Shop:
    """A project: registry `oci-layout:reg`, builds of shop/web (two) and shop/api, an image in a
    repository boda never recorded (legacy/app), and files saying what runs where."""

    def __init__(self, root: Path, boda: Any, strategy: str = "tags") -> None:
        self.root = root
        self.run_cli = boda
        self.strategy = strategy
        root.mkdir(parents=True, exist_ok=True)
        (root / "boda.toml").write_text(
            f"""registry = "oci-layout:reg"
ledger = "sqlite:///ledger.db"

[promotion]
strategy = "{strategy}"

[[environments]]
name = "dev"
runtimes = ["file:dev.txt"]

[[environments]]
name = "stg"
after = "dev"

[[environments]]
name = "prd"
after = "stg"
runtimes = ["file:prd.txt", "file:pods.json", "file:dev.txt"]
"""
        )
        self.reg = root.resolve() / "reg"
        registry = open_registry(f"oci-layout:{self.reg}")
        try:
            self.web1 = str(
                push(registry, "shop/web", make_image("web-1", layers=1, layer_size=64), tag="ci-1")
            )
            self.web2 = str(
                push(registry, "shop/web", make_image("web-2", layers=1, layer_size=64), tag="ci-2")
            )
            self.api1 = str(
                push(registry, "shop/api", make_image("api-1", layers=1, layer_size=64), tag="ci-1")
            )
            self.legacy = str(
                push(registry, "legacy/app", make_image("legacy", layers=1, layer_size=64), tag="1.0")
            )
        finally:
            registry.close()
        for app, n in (("shop/web", "1"), ("shop/web", "2"), ("shop/api", "1")):
            done = self.boda("build", app, "--commit", sha(f"{app}{n}"), "--image", f":ci-{n}")
            assert done.code == 0, done.err

    def ref(self, repo: str, rest: str) -> str:
        return f"oci-layout:{self.reg}:{repo}{rest}"

    def boda(self, *args: str) -> Any:
        return self.run_cli("--config", str(self.root / "boda.toml"), *args)

    def write(self, name: str, text: str) -> None:
        (self.root / name).write_text(text)

    def context(self) -> Context:
        return Context(load_config(self.root / "boda.toml"))


@pytest.fixture
def shop(tmp_path: Path, boda: Any) -> Shop:
    project = Shop(tmp_path / "shop", boda)
    project.write("dev.txt", f"{project.ref('shop/web', ':ci-2')}\n")
    project.write(
        "prd.txt",
        "\n".join(
            [
                "# what the scheduler runs",
                project.ref("shop/web", ":ci-1"),
                project.ref("shop/api", f"@{project.api1}"),
                project.ref("legacy/app", ":1.0"),
                project.ref("shop/web", ":gone"),
                "docker.io/library/nginx:1.25",
            ]
        ),
    )
    pods = {
        "kind": "List",
        "items": [
            {
                "kind": "Pod",
                "metadata": {"name": "web-1", "namespace": "shop"},
                "spec": {"containers": [{"name": "web", "image": project.ref("shop/web", ":ci-2")}]},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {"name": "web", "imageID": project.ref("shop/web", f"@{project.web2}")}
                    ],
                },
            }
        ],
    }
    project.write("pods.json", json.dumps(pods))
    return project


def by_image(data: dict[str, Any], env: str, runtime: str) -> dict[str, dict[str, Any]]:
    found = next(e for e in data["environments"] if e["name"] == env)
    images = next(r for r in found["runtimes"] if r["runtime"] == runtime)["images"]
    return {i["image"]: i for i in images}


def test_what_runs_where_with_digest_and_commit(shop: Shop) -> None:
    done = shop.boda("runtime", "scan", "--json")
    assert done.code == 0, done.err
    data = done.json
    assert [e["name"] for e in data["environments"]] == ["dev", "stg", "prd"]
    assert next(e for e in data["environments"] if e["name"] == "stg")["runtimes"] == []
    prd = by_image(data, "prd", "file:prd.txt")
    web = prd[shop.ref("shop/web", ":ci-1")]
    # A tag is resolved through the registry now, and the digest leads to the commit.
    assert (web["app"], web["digest"], web["resolved_by"], web["commit"]) == (
        "shop/web",
        shop.web1,
        "registry",
        sha("shop/web1"),
    )
    assert web["runtime_digest"] is None and web["reason"].startswith("running in file:")
    api = prd[shop.ref("shop/api", f"@{shop.api1}")]
    assert (api["app"], api["digest"], api["resolved_by"], api["commit"]) == (
        "shop/api",
        shop.api1,
        "runtime",
        sha("shop/api1"),
    )
    # In boda's registry but no app boda knows: not boda's, yet its repository and digest are known.
    legacy = prd[shop.ref("legacy/app", ":1.0")]
    assert (legacy["app"], legacy["boda"], legacy["repository"], legacy["digest"]) == (
        None,
        False,
        "legacy/app",
        shop.legacy,
    )
    # A tag the registry does not have stays unresolved; another registry's image is left alone.
    gone = prd[shop.ref("shop/web", ":gone")]
    assert (gone["digest"], gone["resolved_by"], gone["app"]) == (None, None, "shop/web")
    nginx = prd["docker.io/library/nginx:1.25"]
    assert (nginx["repository"], nginx["app"], nginx["digest"]) == (None, None, None)
    pods = by_image(data, "prd", "file:pods.json")[shop.ref("shop/web", ":ci-2")]
    assert (pods["digest"], pods["resolved_by"], pods["commit"], pods["tasks"]) == (
        shop.web2,
        "runtime",
        sha("shop/web2"),
        1,
    )
    assert data["summary"] == {
        "runtimes": 4,
        "skipped": [],
        "images": 8,
        "not_boda": 2,
        "unresolved": 1,
        "requests": 0,
    }


def test_the_text_table(shop: Shop) -> None:
    done = shop.boda("runtime", "scan")
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].split() == ["ENV", "PLACE", "ROLE", "TASKS", "APP", "DIGEST", "COMMIT", "IMAGE"]
    web = next(line for line in lines if line.startswith("prd") and line.endswith(":shop/web:ci-1"))
    assert "shop/web" in web and f"sha256:{shop.web1[7:19]} (tag)" in web and sha("shop/web1")[:12] in web
    assert any("not boda's" in line and "nginx" in line for line in lines)
    assert any("? (tag not in the registry)" in line for line in lines)
    assert "stg: no runtimes configured" in lines
    assert done.err == ""


def test_one_app_one_environment(shop: Shop) -> None:
    data = shop.boda("runtime", "scan", "shop/web", "--env", "prd", "--json").json
    assert [e["name"] for e in data["environments"]] == ["prd"]
    apps = {i["app"] for r in data["environments"][0]["runtimes"] for i in r["images"]}
    assert apps == {"shop/web"}
    dev = shop.boda("runtime", "scan", "--env", "dev", "--json").json
    assert [r["runtime"] for e in dev["environments"] for r in e["runtimes"]] == ["file:dev.txt"]


def test_repos_strategy_maps_environment_repositories_to_apps(tmp_path: Path, boda: Any) -> None:
    project = Shop(tmp_path / "repos", boda, strategy="repos")
    registry = open_registry(f"oci-layout:{project.reg}")
    try:
        promoted = str(
            push(registry, "shop/web-prd", make_image("web-1", layers=1, layer_size=64), tag="prd-now")
        )
    finally:
        registry.close()
    assert promoted == project.web1
    project.write("dev.txt", "")
    project.write("pods.json", '{"kind": "List", "items": []}')
    project.write("prd.txt", project.ref("shop/web-prd", ":prd-now") + "\n")
    data = project.boda("runtime", "scan", "--env", "prd", "--json").json
    image = by_image(data, "prd", "file:prd.txt")[project.ref("shop/web-prd", ":prd-now")]
    assert (image["repository"], image["app"], image["digest"], image["commit"]) == (
        "shop/web-prd",
        "shop/web",
        project.web1,
        sha("shop/web1"),
    )


def test_skipping_a_runtime_by_name(shop: Shop) -> None:
    (shop.root / "pods.json").unlink()
    failed = shop.boda("runtime", "scan")
    assert failed.code == EXIT_UNAVAILABLE and failed.out == ""
    assert (
        failed.err.startswith("boda: error: runtime file:pods.json: cannot read")
        and failed.err.count("\n") == 1
    )
    done = shop.boda("runtime", "scan", "--skip", "file:pods.json", "--json")
    assert done.code == 0, done.err
    assert done.json["summary"]["skipped"] == ["file:pods.json"]
    text = shop.boda("runtime", "scan", "--skip", "file:pods.json")
    assert "prd: file:pods.json skipped" in text.out


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("--env", "qa"), EXIT_NOT_FOUND, "unknown environment 'qa'"),
        (("nope/app",), EXIT_NOT_FOUND, "unknown app 'nope/app'"),
        (("Bad App",), EXIT_USAGE, "invalid app name"),
        (("--skip", "ecs:nope"), EXIT_USAGE, "cannot skip 'ecs:nope'"),
    ],
)
def test_bad_input_is_one_line(shop: Shop, args: tuple[str, ...], code: int, needle: str) -> None:
    done = shop.boda("runtime", "scan", *args, "--json")
    assert done.code == code and needle in done.err and done.err.count("\n") == 1
    assert done.json["error"]["exit_code"] == code


def test_a_bad_line_in_a_file_is_bad_input(shop: Shop) -> None:
    shop.write("prd.txt", "shop/web:ok\nnot a reference\n")
    done = shop.boda("runtime", "scan")
    assert done.code == EXIT_USAGE and "prd.txt:2: invalid reference" in done.err


def test_a_runtime_shared_by_environments_is_read_once(shop: Shop) -> None:
    reads: list[str] = []

    def reader(location: RuntimeLocation) -> Observation:
        reads.append(str(location))
        from boda.runtime import observe

        return observe(location)

    with shop.context() as ctx:
        result = scan(ctx, reader=reader)
    assert sorted(reads) == ["file:dev.txt", "file:pods.json", "file:prd.txt"]
    assert [(r.env, str(r.runtime)) for r in result.runtimes] == [
        ("dev", "file:dev.txt"),
        ("prd", "file:prd.txt"),
        ("prd", "file:pods.json"),
        ("prd", "file:dev.txt"),
    ]


def test_what_expiry_and_status_read(shop: Shop) -> None:
    with shop.context() as ctx:
        result = scan(ctx)
    in_use = result.in_use("shop/web")
    assert set(in_use) == {Digest.parse(shop.web1), Digest.parse(shop.web2)}
    assert any(s.reason.startswith("running in file:") for s in in_use[Digest.parse(shop.web2)])
    assert set(result.in_use("legacy/app")) == {Digest.parse(shop.legacy)}  # protected though not boda's
    assert result.running("shop/web", "prd") == {Digest.parse(shop.web1), Digest.parse(shop.web2)}
    assert result.running("shop/web", "dev") == {Digest.parse(shop.web2)}
    assert [s.image.image for s in result.unresolved()] == [shop.ref("shop/web", ":gone")]


def test_a_failing_runtime_fails_the_scan_whatever_the_others_say(shop: Shop) -> None:
    from boda.runtime.base import RuntimeUnavailable

    def reader(location: RuntimeLocation) -> Observation:
        if str(location) == "file:pods.json":
            raise RuntimeUnavailable(location, "page 3 of pods failed")
        return Observation(location, (RunningImage("x", "nginx:1", None, "running", "file"),))

    with shop.context() as ctx, pytest.raises(RuntimeUnavailable, match="page 3"):
        scan(ctx, reader=reader)
    with shop.context() as ctx, pytest.raises(UsageError):
        scan(ctx, skip=["file:none"], reader=reader)


D = [Digest.of(f"state {n}".encode()) for n in range(4)]


@pytest.mark.parametrize(
    ("current", "before", "running", "state"),
    [
        (D[0], [], [D[0]], "deployed"),
        (D[0], [], [], "pending"),
        (D[1], [D[0]], [D[0]], "pending"),  # promoted, the runtime still runs the previous one
        (D[1], [D[0]], [D[0], D[1]], "mixed"),  # mid rollout
        (D[1], [D[0]], [D[2]], "drift"),  # never promoted there
        (D[1], [D[0]], [D[1], D[2]], "drift"),
        (None, [], [D[2]], "drift"),
        (None, [], [], None),
    ],
)
def test_run_state(
    current: Digest | None, before: list[Digest], running: list[Digest], state: str | None
) -> None:
    assert run_state(current, before, running) == state
