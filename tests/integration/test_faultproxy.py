"""The fault proxy itself: each fault does what the fault tests rely on, against the real registry."""

from __future__ import annotations

import threading

import httpx
import pytest

from fixtures.faultproxy import FaultProxy

pytestmark = pytest.mark.registry

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
INDEX = "application/vnd.oci.image.index.v1+json"


def put(url: str, repo: str, tag: str) -> httpx.Response:
    return httpx.put(
        f"{url}/v2/{repo}/manifests/{tag}", content=MANIFEST, headers={"Content-Type": INDEX}, timeout=10
    )


def test_passes_requests_through_and_records_them(fault_proxy: FaultProxy) -> None:
    assert httpx.get(f"{fault_proxy.url}/v2/", timeout=10).status_code == 200
    assert put(fault_proxy.url, "proxy/pass", "v1").status_code == 201
    assert [(s.method, s.path) for s in fault_proxy.seen] == [
        ("GET", "/v2/"),
        ("PUT", "/v2/proxy/pass/manifests/v1"),
    ]


def test_drop_answer_lets_the_registry_act_but_the_client_never_hears(fault_proxy: FaultProxy) -> None:
    fault_proxy.add("drop-answer", "PUT", "/manifests/v1")
    with pytest.raises(httpx.TransportError):
        put(fault_proxy.url, "proxy/drop", "v1")
    head = httpx.head(f"{fault_proxy.url}/v2/proxy/drop/manifests/v1", headers={"Accept": INDEX}, timeout=10)
    assert head.status_code == 200  # the write happened


def test_reset_stops_the_request_before_the_registry(fault_proxy: FaultProxy) -> None:
    fault_proxy.add("reset", "PUT", "/manifests/v1")
    with pytest.raises(httpx.TransportError):
        put(fault_proxy.url, "proxy/reset", "v1")
    head = httpx.head(f"{fault_proxy.url}/v2/proxy/reset/manifests/v1", headers={"Accept": INDEX}, timeout=10)
    assert head.status_code == 404


def test_hold_waits_for_the_test(fault_proxy: FaultProxy) -> None:
    rule = fault_proxy.add("hold", "PUT", "/manifests/")
    answers: list[int] = []
    worker = threading.Thread(
        target=lambda: answers.append(put(fault_proxy.url, "proxy/hold", "v1").status_code)
    )
    worker.start()
    assert rule.arrived.wait(10)
    assert answers == [] and not rule.done.is_set()
    rule.release.set()
    worker.join(10)
    assert answers == [201] and rule.done.is_set()


def test_rewrite_lies(fault_proxy: FaultProxy) -> None:
    assert put(fault_proxy.url, "proxy/lie", "v1").status_code == 201
    fake = "sha256:" + "0" * 64
    fault_proxy.add(
        "rewrite",
        "HEAD",
        "/manifests/v1",
        rewrite=lambda s, h, b: (s, {**h, "Docker-Content-Digest": fake}, b),
    )
    head = httpx.head(f"{fault_proxy.url}/v2/proxy/lie/manifests/v1", headers={"Accept": INDEX}, timeout=10)
    assert head.headers["docker-content-digest"] == fake


def test_trickle_sends_the_body_slowly(fault_proxy: FaultProxy) -> None:
    assert put(fault_proxy.url, "proxy/slow", "v1").status_code == 201
    fault_proxy.add("trickle", "GET", "/manifests/v1", seconds=0.01)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(
            f"{fault_proxy.url}/v2/proxy/slow/manifests/v1",
            headers={"Accept": INDEX},
            timeout=httpx.Timeout(10, read=0.001),
        )
