"""`boda serve` as a server process: one registry client and a small ledger pool shared by every
request (no connection, client or migration check per request), and only the Host names it is
served as (DNS rebinding)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from test_web_api import API, WEB, Demo, make_demo

import boda.ledger
from boda.config import load_config
from boda.errors import LedgerError
from boda.services import status as status_service
from boda.web.app import create_app
from boda.web.hosts import HostPolicy
from boda.web.resources import LedgerPool
from fixtures.config import boda_toml
from fixtures.processes import free_port, log_tail, stop_process


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return make_demo(tmp_path_factory.mktemp("serve") / "project")


def counting_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ledger the web layer opens, by URL."""
    opened: list[str] = []
    real = boda.ledger.open_ledger

    def spy(location: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(location))
        return real(location, *args, **kwargs)

    monkeypatch.setattr(boda.ledger, "open_ledger", spy)
    return opened


def test_requests_share_one_registry_client_and_pooled_ledgers(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = counting_opens(monkeypatch)
    app = create_app(load_config(demo.config_path), pool_size=4)
    resources = app.state.resources
    with TestClient(app) as client:
        for _ in range(30):
            assert client.get(f"/api/apps/{WEB}/status").status_code == 200
            assert client.get(f"/api/apps/{WEB}/verify").status_code == 200
        assert len(opened) == 1  # one connection (and one migration check) for 60 requests in a row
        assert resources.registry.opened == 1

        errors: list[BaseException] = []

        def hammer() -> None:
            try:
                for _ in range(10):
                    response = client.get(f"/api/apps/{WEB}/status")
                    assert response.status_code == 200, response.text
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=hammer) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert 1 <= len(opened) <= 4  # never more connections than the pool holds
        assert resources.registry.opened == 1
    # the lifespan closed everything when the server stopped
    assert resources.ledgers._idle == []


def test_a_ledger_that_failed_is_replaced_not_reused(tmp_path: Path) -> None:
    config_path = tmp_path / "boda.toml"
    config_path.write_text(
        boda_toml(registry=f"oci-layout:{tmp_path}/r", ledger=f"sqlite:///{tmp_path}/ledger.db")
    )
    boda.ledger.open_ledger(f"sqlite:///{tmp_path}/ledger.db", create=True).close()
    pool = LedgerPool(load_config(config_path), size=2)
    with pool.borrow() as first:
        pass
    with pytest.raises(LedgerError), pool.borrow() as again:
        assert again is first  # reused while healthy
        raise LedgerError("connection lost")
    with pool.borrow() as third:
        assert third is not first
        assert third.apps() == []
    assert pool.opened == 2
    pool.close()
    with pytest.raises(LedgerError, match="shutting down"), pool.borrow():
        pass


def test_a_busy_pool_answers_503_after_its_wait(tmp_path: Path) -> None:
    config_path = tmp_path / "boda.toml"
    config_path.write_text(
        boda_toml(registry=f"oci-layout:{tmp_path}/r", ledger=f"sqlite:///{tmp_path}/ledger.db")
    )
    boda.ledger.open_ledger(f"sqlite:///{tmp_path}/ledger.db", create=True).close()
    pool = LedgerPool(load_config(config_path), size=1, wait=0.2)
    with pool.borrow(), pytest.raises(LedgerError, match="busy"), pool.borrow():
        pass
    pool.close()


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8080", True),
        ("localhost:8080", True),
        ("LOCALHOST:8080", True),
        ("[::1]:8080", True),
        ("evil.example:8080", False),  # a rebound name
        ("evil.example", False),
        ("127.0.0.1:9999", False),  # another port
        ("localhost", False),  # no port means 80
        ("127.0.0.1:8080.evil.example", False),
        ("localhost:8080@evil.example", False),
        ("[::1", False),
        ("10.0.0.5:8080", False),  # bound to loopback: no other address
        ("proxy.example", True),  # --allow-host proxy.example: any port
        ("proxy.example:443", True),
        ("pinned.example:443", True),  # --allow-host pinned.example:443: that port only
        ("pinned.example:8443", False),
        ("pinned.example", False),
    ],
)
def test_host_policy_of_a_loopback_server(host: str, ok: bool) -> None:
    policy = HostPolicy("127.0.0.1", 8080, ("proxy.example", "pinned.example:443"))
    assert policy.allows(host) is ok


def test_host_policy_of_a_server_on_every_interface() -> None:
    policy = HostPolicy("0.0.0.0", 8080)
    assert policy.allows("10.1.2.3:8080")  # an address cannot be rebound
    assert policy.allows("[fe80::1]:8080")
    assert not policy.allows("10.1.2.3:80")
    assert not policy.allows("boda.internal:8080")  # a name must be allowed explicitly
    assert HostPolicy("0.0.0.0", 8080, ("boda.internal",)).allows("boda.internal:8080")
    assert HostPolicy("::1", 80).allows("[::1]") and HostPolicy("::1", 80).allows("localhost")
    assert not HostPolicy("127.0.0.1", 8080).allows(None)
    assert not HostPolicy("127.0.0.1", 8080).allows("")


def test_a_foreign_host_gets_400_with_one_line(demo: Demo) -> None:
    app = create_app(load_config(demo.config_path), hosts=HostPolicy("127.0.0.1", 8080))
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        assert client.get(f"/api/apps/{WEB}/status").status_code == 200
        for path in ("/", "/healthz", f"/api/apps/{WEB}/status"):
            refused = client.get(path, headers={"Host": "evil.example:8080"})
            assert refused.status_code == 400
            body = refused.json()
            assert body["exit_code"] == 2 and "\n" not in body["error"]
            assert "evil.example:8080" in body["error"] and "--allow-host" in body["error"]


@pytest.fixture
def served(demo: Demo, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """`boda serve` as a real process on a free port."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "boda", "--config", str(demo.config_path), "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
            assert process.poll() is None, log_tail(log)
        yield port, log
    finally:
        stop_process(process)  # type: ignore[arg-type]


def raw_get(port: int, host: str, path: str) -> tuple[int, bytes]:
    """One HTTP/1.1 request written by hand, with exactly the Host header given."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_the_server_process_refuses_a_rebound_host_and_serves_its_own(served: tuple[int, Path]) -> None:
    port, _log = served
    status, body = raw_get(port, f"evil.example:{port}", f"/api/apps/{WEB}/status")
    assert status == 400 and b"not a name this server is served as" in body and body.count(b"\n") == 0
    status, body = raw_get(port, f"127.0.0.1:{port}", f"/api/apps/{WEB}/status")
    assert status == 200 and b'"environments"' in body
    status, _ = raw_get(port, f"localhost:{port}", "/")
    assert status == 200

    results: list[int] = []

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            results.extend(c.get(f"/api/apps/{WEB}/status").status_code for _ in range(5))

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 100


@pytest.mark.postgres
def test_a_postgres_ledger_is_pooled_across_concurrent_requests(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "pg"
    demo = make_demo(root, ledger=postgres_url)
    opened = counting_opens(monkeypatch)
    app = create_app(load_config(demo.config_path), pool_size=3)
    errors: list[BaseException] = []
    with TestClient(app) as client:

        def hammer() -> None:
            try:
                for _ in range(8):
                    response = client.get(f"/api/apps/{WEB}/status")
                    assert response.status_code == 200, response.text
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=hammer) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert 1 <= len(opened) <= 3


def test_a_reused_answer_is_never_older_than_the_ledger(tmp_path: Path) -> None:
    """Status answers are reused only while no event was appended: a promotion, evidence or an
    expiry shows in the very next answer."""
    from test_web_api import sha

    from boda.services.promote import promote

    demo = make_demo(tmp_path / "p")
    app = create_app(load_config(demo.config_path))
    with TestClient(app) as client:
        first = client.get(f"/api/apps/{WEB}/status").json()
        again = client.get(f"/api/apps/{WEB}/status").json()
        assert again == first and app.state.answers.hits == 1
        with demo.context() as ctx:
            promote(ctx, [WEB], to="dev", commit=sha(1), by="ci")
        after = client.get(f"/api/apps/{WEB}/status").json()
        dev = next(e for e in after["environments"] if e["name"] == "dev")
        assert dev["current"]["digest"] == demo.digests[1]
        with demo.context() as ctx:
            assert after == status_service.status(ctx, WEB).to_json()
        assert client.get("/api/apps").json() == {"apps": [API, WEB]}


def test_answers_expire_by_version_age_and_room() -> None:
    from boda.web.answers import Answers

    class FakeLedger:
        def __init__(self) -> None:
            self.newest: list[Any] = []

        def events(self, app: str | None, limit: int | None) -> list[Any]:
            return self.newest

    class Event:
        def __init__(self, id: int) -> None:
            self.id = id

    now = [0.0]
    answers = Answers(max_age=2.0, max_entries=2, clock=lambda: now[0])
    ledger = FakeLedger()
    computed: list[str] = []

    def compute(text: str) -> Any:
        return lambda: (computed.append(text), text.encode())[1]

    assert answers.get("a", ledger, compute("a1")) == b"a1"  # type: ignore[arg-type]
    assert answers.get("a", ledger, compute("a2")) == b"a1"  # type: ignore[arg-type]
    ledger.newest = [Event(7)]  # something was recorded
    assert answers.get("a", ledger, compute("a3")) == b"a3"  # type: ignore[arg-type]
    now[0] = 2.5  # too old, even though nothing changed
    assert answers.get("a", ledger, compute("a4")) == b"a4"  # type: ignore[arg-type]
    answers.get("b", ledger, compute("b1"))  # type: ignore[arg-type]
    answers.get("c", ledger, compute("c1"))  # type: ignore[arg-type]  # "a" is the least recently used
    assert answers.get("a", ledger, compute("a5")) == b"a5"  # type: ignore[arg-type]
    assert computed == ["a1", "a3", "a4", "b1", "c1", "a5"]
    off = Answers(max_age=0)
    assert off.get("a", ledger, compute("x")) == b"x" and off.get("a", ledger, compute("y")) == b"y"  # type: ignore[arg-type]
