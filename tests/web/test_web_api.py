"""`boda serve`: the HTTP API and dashboard against a real project (OCI layout + SQLite)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from boda.cli import main
from boda.config import load_config
from boda.services import status as status_service
from boda.services.build import record_build
from boda.services.context import Context
from boda.services.evidence import record_evidence
from boda.services.expiry import plan as expiry_plan
from boda.services.history import entry_json
from boda.services.imagegen import make_image, push
from boda.services.promote import promote, rollback
from boda.web.app import create_app
from fixtures.config import boda_toml

WEB, API = "shop/web", "shop/api"
KEEP_NEWEST = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "keep only the newest image",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    ]
}


def sha(n: int) -> str:
    return hashlib.sha1(f"web-test-{n}".encode()).hexdigest()


@dataclass
class Demo:
    """A project whose shop/web went dev -> stg -> prd three times, with a rollback in prd."""

    root: Path
    digests: dict[int, str]  # commit number -> digest of shop/web

    @property
    def config_path(self) -> Path:
        return self.root / "boda.toml"

    def context(self) -> Context:
        return Context(load_config(self.config_path))

    def client(self) -> TestClient:
        return TestClient(create_app(load_config(self.config_path)))


def make_demo(root: Path, ledger: str | None = None) -> Demo:
    root.mkdir(parents=True)
    (root / "boda.toml").write_text(
        boda_toml(
            registry=f"oci-layout:{root}/registry",
            ledger=ledger or f"sqlite:///{root}/ledger.db",
            retention={"rollback_depth": 1, "min_age": "0s", "policy": "lifecycle.json"},
        )
    )
    (root / "lifecycle.json").write_text(json.dumps(KEEP_NEWEST))
    digests: dict[int, str] = {}
    with Context(load_config(root / "boda.toml"), create_ledger=True) as ctx:  # as `boda build` does
        for n in range(1, 5):
            push(ctx.registry, WEB, make_image(f"web-{n}", layers=1, layer_size=256), tag=f"ci-{n}")
            digests[n] = record_build(ctx, WEB, commit=sha(n), image=f":ci-{n}", by="ci").to_json()["digest"]
        push(ctx.registry, API, make_image("api-1", layers=1, layer_size=256), tag="ci-1")
        record_build(ctx, API, commit=sha(1), image=":ci-1", by="ci")
        for n in (1, 2, 3):
            promote(ctx, [WEB], to="dev", commit=sha(n), by="ci")
            record_evidence(ctx, WEB, env="dev", kind="tests", result="pass", commit=sha(n), by="ci")
            promote(ctx, [WEB], to="stg", commit=sha(n), by="ci")
            record_evidence(ctx, WEB, env="stg", kind="tests", result="pass", commit=sha(n), by="ci")
            record_evidence(
                ctx, WEB, env="stg", kind="signoff", result="pass", commit=sha(n), by="ana", url="https://t/1"
            )
            promote(ctx, [WEB], to="prd", commit=sha(n), by="ana", reason=f"release {n}")
        rollback(ctx, WEB, env="prd", by="bob", reason="bad release")
        promote(ctx, [WEB], to="dev", commit=sha(4), by="ci")
    return Demo(root, digests)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Shared by the read-only tests: nothing here changes it."""
    return make_demo(tmp_path_factory.mktemp("web") / "project")


@pytest.fixture(scope="module")
def client(demo: Demo) -> Iterator[TestClient]:
    with demo.client() as c:
        yield c


def assert_error(response: Any, status: int, exit_code: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "exit_code"}
    assert body["exit_code"] == exit_code
    assert body["error"] and "\n" not in body["error"]
    for word in words:
        assert word in body["error"]


def test_healthz_and_environments(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/api/environments").json() == {
        "environments": [
            {"name": "dev", "after": None, "requires": []},
            {"name": "stg", "after": "dev", "requires": ["tests"]},
            {"name": "prd", "after": "stg", "requires": ["tests", "signoff"]},
        ]
    }


def test_apps_lists_the_ledger(client: TestClient) -> None:
    response = client.get("/api/apps")
    assert response.status_code == 200
    assert response.json() == {"apps": [API, WEB]}


def test_status_is_the_service_answer(client: TestClient, demo: Demo) -> None:
    data = client.get(f"/api/apps/{WEB}/status").json()
    with demo.context() as ctx:
        assert data == status_service.status(ctx, WEB).to_json()
    envs = {e["name"]: e for e in data["environments"]}
    assert list(envs) == ["dev", "stg", "prd"]
    assert envs["dev"]["current"]["digest"] == demo.digests[4]
    assert envs["stg"]["current"]["digest"] == demo.digests[3]
    prd = envs["prd"]
    assert prd["current"]["digest"] == demo.digests[2]
    assert prd["current"]["commit"] == sha(2)
    assert (prd["current"]["kind"], prd["current"]["promoted_by"]) == ("rollback", "bob")
    assert [p["digest"] for p in prd["previous"]] == [demo.digests[3], demo.digests[1]]
    assert {(e["kind"], e["result"]) for e in envs["stg"]["evidence"]} == {
        ("tests", "pass"),
        ("signoff", "pass"),
    }


def test_status_previous_is_bounded(client: TestClient) -> None:
    data = client.get(f"/api/apps/{WEB}/status", params={"previous": 1}).json()
    assert [len(e["previous"]) for e in data["environments"]] == [1, 1, 1]
    assert_error(client.get(f"/api/apps/{WEB}/status", params={"previous": -1}), 400, 2, "previous")


def test_history_all_and_per_environment(client: TestClient, demo: Demo) -> None:
    data = client.get(f"/api/apps/{WEB}/history").json()
    with demo.context() as ctx:
        assert data == {"app": WEB, "entries": [entry_json(p) for p in ctx.ledger.promotions(WEB)]}
    assert len(data["entries"]) == 11
    prd = client.get(f"/api/apps/{WEB}/history", params={"env": "prd"}).json()["entries"]
    assert [(e["kind"], e["digest"], e["by"], e["reason"]) for e in prd] == [
        ("rollback", demo.digests[2], "bob", "bad release"),
        ("promote", demo.digests[3], "ana", "release 3"),
        ("promote", demo.digests[2], "ana", "release 2"),
        ("promote", demo.digests[1], "ana", "release 1"),
    ]
    assert_error(client.get(f"/api/apps/{WEB}/history", params={"env": "qa"}), 404, 4, "unknown environment")
    newest = client.get(f"/api/apps/{WEB}/history", params={"env": "prd", "limit": 2}).json()["entries"]
    assert newest == client.get(f"/api/apps/{WEB}/history", params={"env": "prd"}).json()["entries"][:2]
    assert client.get(f"/api/apps/{WEB}/history", params={"limit": 0}).status_code == 400


def test_whereis_by_commit_and_digest(client: TestClient, demo: Demo) -> None:
    by_commit = client.get("/api/whereis", params={"commit": sha(3)[:10]}).json()
    assert [(m["app"], m["digest"]) for m in by_commit["matches"]] == [(WEB, demo.digests[3])]
    match = by_commit["matches"][0]
    assert [r["env"] for r in match["running_in"]] == ["stg"]
    assert [r["env"] for r in match["ran_in"]] == ["dev", "prd"]
    by_digest = client.get("/api/whereis", params={"digest": demo.digests[2], "app": WEB}).json()
    assert [r["env"] for r in by_digest["matches"][0]["running_in"]] == ["prd"]
    both_apps = client.get("/api/whereis", params={"commit": sha(1)}).json()
    assert sorted(m["app"] for m in both_apps["matches"]) == [API, WEB]


def test_whereis_bad_input(client: TestClient) -> None:
    assert_error(client.get("/api/whereis", params={"digest": "sha256:xyz"}), 400, 2, "sha256:xyz")
    assert_error(client.get("/api/whereis", params={"commit": "nothex!"}), 400, 2, "invalid commit")
    assert_error(client.get("/api/whereis"), 400, 2, "exactly one of")
    assert_error(client.get("/api/whereis", params={"commit": "a" * 40}), 404, 4, "no build")


def test_unknown_app_is_404_with_one_line(client: TestClient) -> None:
    for path in ("status", "history", "verify"):
        assert_error(client.get(f"/api/apps/shop/nope/{path}"), 404, 4, "unknown app 'shop/nope'")


def test_invalid_app_name_is_400(client: TestClient) -> None:
    assert_error(client.get("/api/apps/Shop/Web/status"), 400, 2, "invalid app name")


def test_unknown_route_keeps_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/api/nothing"), 404, 4, "/api/nothing")


def test_verify_agrees(client: TestClient) -> None:
    response = client.get(f"/api/apps/{WEB}/verify")
    assert response.status_code == 200
    data = response.json()
    assert (data["app"], data["ok"], data["drifts"]) == (WEB, True, [])
    assert data["checked"] > 0


def test_verify_drift_is_ok_false(tmp_path: Path) -> None:
    demo = make_demo(tmp_path / "drifted")
    with demo.context() as ctx:  # someone moves the prd tag by hand
        push(ctx.registry, WEB, make_image("hand-made", layers=1, layer_size=64), tag="prd")
    with demo.client() as client:
        response = client.get(f"/api/apps/{WEB}/verify")
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] is False
    assert [(d["kind"], d["where"], d["expected"]) for d in data["drifts"]] == [
        ("environment", f"{WEB}:prd", demo.digests[2])
    ]
    assert data["drifts"][0]["found"] != demo.digests[2]


def test_gc_plan_matches_the_service(client: TestClient, demo: Demo) -> None:
    now = "2030-01-01T00:00:00+00:00"
    data = client.get(f"/api/apps/{WEB}/gc/plan", params={"now": now}).json()
    with demo.context() as ctx:
        expected = expiry_plan.plan(ctx, WEB, now=datetime(2030, 1, 1, tzinfo=UTC)).to_json()
    assert data == expected
    assert data["now"] == now
    actions = {e["digest"]: e for e in data["images"]}
    assert actions[demo.digests[1]]["action"] == "expire"
    kept = actions[demo.digests[2]]
    assert kept["action"] == "keep"
    assert {"type": "protection", "protection": "current", "detail": "current in prd"} in kept["reasons"]
    assert data["summary"] == {"images": 4, "expire": 1, "keep": 3}


def test_gc_plan_is_read_only_and_checks_input(client: TestClient, demo: Demo) -> None:
    assert client.get(f"/api/apps/{WEB}/gc/plan").status_code == 200
    assert client.post(f"/api/apps/{WEB}/gc/plan").status_code == 405
    assert client.post(f"/api/apps/{WEB}/gc/apply").status_code == 404
    with demo.context() as ctx:
        assert ctx.registry.manifest_head(WEB, demo.digests[1]) is not None
    assert_error(client.get(f"/api/apps/{WEB}/gc/plan", params={"now": "soon"}), 400, 2, "invalid time")
    assert_error(client.get("/api/apps/shop/nope/gc/plan"), 404, 4, "unknown app")


def test_dashboard_page(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "fetch(path" in page and 'api("/api/apps")' in page and 'api("/api/environments")' in page
    for endpoint in ("/status", "/history", "/gc/plan", "/verify"):
        assert endpoint in page
    assert "<script src=" not in page and "https://cdn" not in page


def test_serve_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--host" in out and "--port" in out and "127.0.0.1" in out and "8080" in out


def test_serve_runs_create_app(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[tuple[Any, str, int]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port: calls.append((app, host, port)))
    assert main(["--config", str(demo.config_path), "serve", "--port", "18123"]) == 0
    assert main(["--config", str(demo.config_path), "serve", "--host", "0.0.0.0"]) == 0
    assert [(host, port) for _, host, port in calls] == [("127.0.0.1", 18123), ("0.0.0.0", 8080)]
    app = calls[0][0]
    assert isinstance(app, FastAPI)
    with TestClient(app, base_url="http://127.0.0.1:18123") as client:
        assert client.get("/api/apps").json() == {"apps": [API, WEB]}


def test_serve_bad_input(demo: Demo, tmp_path: Path) -> None:
    assert main(["--config", str(demo.config_path), "serve", "--port", "70000"]) == 2
    assert main(["--config", str(tmp_path / "missing.toml"), "serve"]) == 2


def test_serve_without_web_extra(
    demo: Demo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    capsys.readouterr()
    assert main(["--config", str(demo.config_path), "serve"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "install boda[web]" in err


def test_cli_start_up_does_not_import_the_web_stack() -> None:
    code = "import sys, boda.cli; print(sorted({'fastapi', 'uvicorn', 'starlette'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_registry_down_is_503(demo: Demo, tmp_path: Path) -> None:
    text = demo.config_path.read_text().replace(f"oci-layout:{demo.root}/registry", "http://127.0.0.1:1")
    config = tmp_path / "boda.toml"
    config.write_text(text)
    with TestClient(create_app(load_config(config))) as client:
        assert client.get(f"/api/apps/{WEB}/status").status_code == 200  # the ledger alone answers
        assert_error(client.get(f"/api/apps/{WEB}/verify"), 503, 6, "127.0.0.1:1")
