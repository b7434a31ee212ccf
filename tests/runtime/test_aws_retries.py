"""botocore's own retries run before an ECS or Lambda read gives up: against a local endpoint that
throttles every call, as AWS does past a quota (no moto needed)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from boda.locations import RuntimeLocation
from boda.runtime import observe
from boda.runtime.base import RuntimeUnavailable

REGION = "eu-west-1"


@pytest.fixture
def throttling(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """An endpoint that answers every call with ThrottlingException, as ECS does past its quota."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(self.headers.get("X-Amz-Target", ""))
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr("boda.runtime._aws.MAX_RETRIES", 2)
    yield seen
    server.shutdown()
    server.server_close()


def test_throttling_past_the_retries_fails(throttling: list[str]) -> None:
    """The client is boda's own, from the default chain: its retries run, then the read fails."""
    with pytest.raises(RuntimeUnavailable, match="ECS ListServices: ThrottlingException") as caught:
        observe(RuntimeLocation.parse("ecs:prod"))
    assert len(throttling) == 3 and all(t.endswith("ListServices") for t in throttling)
    assert "throttled through" in (caught.value.hint or "")
