"""Credentials stay with their origin: a real htpasswd registry behind the fault proxy, which sends
the client to another host (a tag page `Link`, an upload `Location`); that host records every
header it receives."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from boda.services.imagegen import make_image, write_oci_layout
from fixtures.faultproxy import FaultProxy
from fixtures.registry import RegistryProcess

pytestmark = pytest.mark.registry


@contextmanager
def elsewhere(
    upstream: str, authorization: str
) -> Iterator[tuple[str, list[tuple[str, str, dict[str, str]]]]]:
    """Another host: it serves a tag page itself and takes uploads for `upstream`, adding the
    registry's credentials on its own side, the way a signed upload URL would. Yields its URL and
    the (method, path, headers) of every request it received."""
    seen: list[tuple[str, str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.append((self.command, self.path, dict(self.headers.items())))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if "/tags/list" in self.path:
                status, answer = 200, b'{"tags":["from-elsewhere"]}'
            else:
                forwarded = {"Authorization": authorization, "Content-Type": "application/octet-stream"}
                response = httpx.request(self.command, upstream + self.path, headers=forwarded, content=body)
                status, answer = response.status_code, response.content
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_cross_origin_link_and_upload_location_get_no_credentials(
    auth_registry: RegistryProcess, boda: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = f"origin-{uuid.uuid4().hex[:8]}/app"
    secret = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    front = FaultProxy(auth_registry.host).start()
    try:
        with elsewhere(auth_registry.url, f"Basic {secret}") as (other, seen):

            def add_link(
                status: int, headers: dict[str, str], body: bytes
            ) -> tuple[int, dict[str, str], bytes]:
                headers["Link"] = f'<{other}/v2/{repo}/tags/list?n=100&last=zzz>; rel="next"'
                return status, headers, body

            def move_upload(
                status: int, headers: dict[str, str], body: bytes
            ) -> tuple[int, dict[str, str], bytes]:
                location = urlsplit(headers.pop("Location", ""))
                headers["Location"] = f"{other}{location.path}?{location.query}"
                return status, headers, body

            front.add("rewrite", "GET", r"/tags/list$", times=None, rewrite=add_link)
            front.add("rewrite", "POST", r"/blobs/uploads/$", times=None, rewrite=move_upload)
            config = tmp_path / "docker" / "config.json"
            auth_registry.docker_config(config)
            config.write_text(config.read_text().replace(auth_registry.host, front.host))
            monkeypatch.setenv("DOCKER_CONFIG", str(config.parent))
            image = make_image("origin", layers=2)
            write_oci_layout(tmp_path / "layout" / "src", image, "v1")

            copied = boda(
                "copy", f"oci-layout:{tmp_path / 'layout'}:src:v1", f"{front.host}/{repo}:v1", "--json"
            )
            listed = boda("tags", f"{front.host}/{repo}", "--json")
    finally:
        front.stop()

    assert copied.code == 0, copied.err
    assert copied.json["blobs_uploaded"] == len(image.blobs) and copied.json["digest"] == str(image.digest)
    assert listed.code == 0, listed.err
    assert listed.json["tags"] == ["from-elsewhere", "v1"]
    # The registry's own origin got the credentials ...
    assert any(s.headers.get("Authorization") == f"Basic {secret}" for s in front.seen)
    # ... the other host got the uploads and the tag page, and never an Authorization header.
    uploads = [path for method, path, _ in seen if method == "PUT" and "/blobs/uploads/" in path]
    pages = [path for _, path, _ in seen if "/tags/list" in path]
    assert len(uploads) == len(image.blobs) and len(pages) == 1
    assert all("authorization" not in {k.lower() for k in headers} for _, _, headers in seen)
    assert secret not in copied.err + listed.err
