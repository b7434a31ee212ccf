"""A bounded load loop against one `boda serve` endpoint on 127.0.0.1: N concurrent clients, each
sending its next request as soon as the last answer arrived, for a fixed time.

    python bench/serve_load.py URL --clients 50 --seconds 10

wrk when installed (C, so the load generator takes little of the CPU the server needs); otherwise a
small asyncio client of its own with keep-alive connections. Prints JSON: requests, errors, per
second, and latency percentiles in seconds (p50, p95, p99, max).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %d, \\"seconds\\": %f, \\"errors\\": %d, \\"non2xx\\": %d,"
    .. " \\"p50\\": %f, \\"p95\\": %f, \\"p99\\": %f, \\"max\\": %f, \\"mean\\": %f}\\n",
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1e6, latency:percentile(95) / 1e6, latency:percentile(99) / 1e6,
    latency.max / 1e6, latency.mean / 1e6))
end
"""


def with_wrk(url: str, clients: int, seconds: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    done = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(clients),
            "-d",
            f"{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    result["tool"] = "wrk"
    result["per_second"] = result["requests"] / result["seconds"]
    return result


async def _client(
    host: str, port: int, path: str, until: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0].decode())
    finally:
        writer.close()


async def _run(url: str, clients: int, seconds: float) -> dict[str, Any]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(
        *(
            _client(parts.hostname or "127.0.0.1", parts.port or 80, path, until, latencies, errors)
            for _ in range(clients)
        )
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")

    return {
        "tool": "asyncio",
        "requests": len(latencies),
        "seconds": elapsed,
        "errors": 0,
        "non2xx": len(errors),
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": ordered[-1] if ordered else float("nan"),
        "mean": statistics.fmean(ordered) if ordered else float("nan"),
        "per_second": len(latencies) / elapsed,
    }


def load(url: str, clients: int, seconds: float, tool: str = "auto") -> dict[str, Any]:
    """One load run (see the module docstring)."""
    if tool == "wrk" or (tool == "auto" and shutil.which("wrk")):
        return with_wrk(url, clients, seconds)
    return asyncio.run(_run(url, clients, seconds))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tool", choices=["auto", "wrk", "asyncio"], default="auto")
    args = parser.parse_args()
    print(json.dumps(load(args.url, args.clients, args.seconds, args.tool)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
