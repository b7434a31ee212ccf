"""Shared machinery of the benchmarks: registry processes, request counting, timed processes, stats.

Nothing here imports boda: the benchmarks drive boda as a user does (a process), and only the
in-process helpers (policy_inproc.py, ledger_inproc.py, inventory_boda.py) import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / "data"
OUT = BENCH / "out"
VENV_BIN = Path(sys.executable).parent
BODA = str(VENV_BIN / "boda")
PYTHON = sys.executable
SKOPEO = shutil.which("skopeo") or "skopeo"
REGISTRY_BIN = shutil.which("docker-registry") or "docker-registry"
SKOPEO_CACHE_DIR = Path("/var/lib/containers/cache")
TIME_BIN = shutil.which("time", path="/usr/bin:/bin")


def prepare_environment() -> None:
    """Child processes run as a user's do: bytecode caches on (kept in bench/data/pycache, so
    nothing is written under src/), unbuffered output off."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.pop("PYTHONUNBUFFERED", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(DATA / "pycache")


def log(msg: str) -> None:
    """Progress on stderr, flushed, with a wall-clock stamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- timed processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    """One finished process: wall seconds, CPU seconds (user + sys), peak RSS (MiB), exit code, output."""

    cmd: list[str]
    wall: float
    cpu: float
    rss_mib: float
    rc: int
    stdout: str
    stderr: str

    def check(self) -> Proc:
        """Raise with the command's stderr when it failed."""
        if self.rc != 0:
            tail = " | ".join(self.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"{' '.join(self.cmd[:4])}... exited {self.rc}: {tail}")
        return self


def run(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout_path: Path | None = None,
    timeout: float = 600.0,
) -> Proc:
    """Run `cmd` to completion; wall time from just before fork to reaping, peak RSS via wait4."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    out_file = stdout_path.open("wb") if stdout_path else subprocess.PIPE
    err_path = OUT / f".stderr-{os.getpid()}-{threading.get_ident()}"
    rss_path = OUT / f".rss-{os.getpid()}-{threading.get_ident()}"
    # Peak RSS comes from /usr/bin/time: wait4's ru_maxrss of a child spawned from this process
    # includes this process's own memory (vfork shares the address space until exec).
    timed_cmd = [TIME_BIN, "-f", "%M", "-o", str(rss_path), *cmd] if TIME_BIN else list(cmd)
    err_path.parent.mkdir(parents=True, exist_ok=True)
    with err_path.open("wb") as err_file:
        started = time.perf_counter()
        proc = subprocess.Popen(
            timed_cmd, cwd=cwd, env=full_env, stdout=out_file, stderr=err_file, stdin=subprocess.DEVNULL
        )
        stdout = b""
        if out_file is subprocess.PIPE:
            assert proc.stdout is not None
            stdout = proc.stdout.read()  # drain before reaping, or a large output blocks the child
        killer = threading.Timer(timeout, os.kill, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if stdout_path:
        assert not isinstance(out_file, int)
        out_file.close()
    stderr = err_path.read_text(errors="replace")
    err_path.unlink(missing_ok=True)
    rss_kib = float(usage.ru_maxrss)
    if TIME_BIN:
        with contextlib.suppress(OSError, ValueError, IndexError):
            rss_kib = float(rss_path.read_text().split()[-1])
        rss_path.unlink(missing_ok=True)
        if proc.returncode != 0 and stderr.startswith("Command exited with non-zero status"):
            stderr = stderr.split("\n", 1)[1] if "\n" in stderr else ""
    return Proc(
        list(cmd),
        wall,
        usage.ru_utime + usage.ru_stime,
        rss_kib / 1024,
        proc.returncode,
        stdout.decode(errors="replace"),
        stderr,
    )


# -- statistics -----------------------------------------------------------------------------------


@dataclass
class Series:
    """Repeated measurements of one thing."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def lo(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def hi(self) -> float:
        return max(self.values) if self.values else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": self.lo,
            "max": self.hi,
            "n": len(self.values),
            "values": self.values,
        }


def fmt_s(seconds: float) -> str:
    """Seconds with a sensible unit."""
    if seconds != seconds:  # NaN
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_series(s: Series, unit: str = "s") -> str:
    """`median (min–max)` of a series."""
    if not s.values:
        return "n/a"
    if unit == "s":
        return f"{fmt_s(s.median)} ({fmt_s(s.lo)}–{fmt_s(s.hi)})"
    return f"{s.median:.1f} ({s.lo:.1f}–{s.hi:.1f}) {unit}"


def fmt_bytes(n: float) -> str:
    """Bytes as B / KiB / MiB."""
    if n < 10 * 1024:
        return f"{n:.0f} B"
    if n < 10 * 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


# -- registry processes ---------------------------------------------------------------------------

_ACCESS = re.compile(
    r'^\S+ - \S+ \[[^\]]+\] "(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[\d.]+" (?P<status>\d{3}) '
)


def request_kind(method: str, uri: str) -> str:
    """`GET manifest`, `HEAD blob`, `PATCH upload`, ... for an access-log line."""
    path = uri.split("?", 1)[0]
    if path in ("/v2/", "/v2"):
        kind = "ping"
    elif "/blobs/uploads/" in path:
        kind = "upload"
        if method == "POST" and "mount=" in uri:
            kind = "mount"
    elif "/blobs/" in path:
        kind = "blob"
    elif "/manifests/" in path:
        kind = "manifest"
    elif path.endswith("/tags/list"):
        kind = "tags"
    elif "/referrers/" in path:
        kind = "referrers"
    else:
        kind = "other"
    return f"{method} {kind}"


class Registry:
    """One `docker-registry serve` process on 127.0.0.1:<free port>; requests counted from its log."""

    def __init__(self, root: Path, name: str = "registry") -> None:
        self.root = root
        self.name = name
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "registry.log"
        self._log_offset = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self.port = free_port()
            config = self.root / "config.yml"
            config.write_text(
                "\n".join(
                    [
                        "version: 0.1",
                        "log: {level: warn, fields: {service: registry}}",
                        "storage:",
                        f"  filesystem: {{rootdirectory: {data}}}",
                        "  delete: {enabled: true}",
                        "  cache: {blobdescriptor: inmemory}",
                        "http:",
                        f"  addr: 127.0.0.1:{self.port}",
                    ]
                )
                + "\n"
            )
            with self.log_path.open("ab") as out:
                self.proc = subprocess.Popen(
                    [REGISTRY_BIN, "serve", str(config)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.proc.poll() is None:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                    time.sleep(0.1)
                    if self.proc.poll() is None:
                        self.mark()
                        return self
                time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"docker-registry did not start; see {self.log_path}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def _lines(self) -> list[str]:
        with self.log_path.open("rb") as f:
            f.seek(self._log_offset)
            data = f.read()
        return data.decode(errors="replace").splitlines()

    def mark(self) -> None:
        """Start counting requests from now."""
        time.sleep(0.02)
        self._log_offset = self.log_path.stat().st_size

    def requests(self) -> Counter[str]:
        """Requests since the last `mark()`, by kind (`GET manifest`, ...); waits for the log to settle."""
        previous = -1
        lines: list[str] = []
        for _ in range(20):
            lines = self._lines()
            if len(lines) == previous:
                break
            previous = len(lines)
            time.sleep(0.03)
        counts: Counter[str] = Counter()
        for line in lines:
            m = _ACCESS.match(line)
            if m:
                counts[request_kind(m.group("method"), m.group("uri"))] += 1
        return counts


# -- counting TCP proxy ---------------------------------------------------------------------------


class CountingProxy:
    """A TCP relay in a background thread that counts bytes each way (and connections).

    Used only for the untimed counting passes: it measures bytes a client uploads (request
    bodies plus HTTP headers) without touching the timed runs.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.up = 0
        self.down = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def reset(self) -> None:
        self.up = self.down = self.connections = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, upward: bool) -> None:
            try:
                while True:
                    data = await src.read(1 << 16)
                    if not data:
                        break
                    if upward:
                        self.up += len(data)
                    else:
                        self.down += len(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))


# -- first-request listener -----------------------------------------------------------------------


class FirstRequest:
    """A listener that timestamps (perf_counter) its first accepted connection and answers 404."""

    BODY = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.first: float | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.first = None

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            with contextlib.suppress(OSError):
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                    if not data.startswith((b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE")):
                        return  # a TLS ClientHello: drop it, the client falls back to plain HTTP
                body = b"" if data.startswith(b"HEAD") else self.BODY
                conn.sendall(
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                    b"Docker-Distribution-Api-Version: registry/2.0\r\n"
                    + f"Content-Length: {len(self.BODY)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self._stop = True
        self.sock.close()


# -- misc -----------------------------------------------------------------------------------------


def clear_skopeo_cache() -> bool:
    """Delete skopeo's blob-info cache (boltdb in 1.9, sqlite later); False when not permitted."""
    ok = True
    for path in SKOPEO_CACHE_DIR.glob("blob-info-cache-v1*"):
        try:
            path.unlink()
        except OSError:
            ok = False
    return ok


def skopeo_copy_cmd(src: str, dst: str, *extra: str) -> list[str]:
    """`skopeo copy` as fairly as it goes: digests preserved, plain HTTP both sides, no policy file."""
    return [
        SKOPEO,
        "--insecure-policy",
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        *extra,
        src,
        dst,
    ]


def machine() -> dict[str, Any]:
    """CPU count, model, memory and load of this machine."""
    info: dict[str, Any] = {"cpus": os.cpu_count()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    info["loadavg"] = os.getloadavg()
    return info


def versions() -> dict[str, str]:
    """Versions of the peers and of boda."""
    out: dict[str, str] = {"python": sys.version.split()[0]}

    def first_line(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        except OSError as exc:
            return f"missing ({exc.strerror})"
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"

    out["skopeo"] = first_line([SKOPEO, "--version"])
    out["docker-registry"] = first_line([REGISTRY_BIN, "--version"])
    out["boda"] = first_line([BODA, "--version"])
    out["postgresql"] = first_line(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"]
    )
    try:
        import orjson

        out["orjson"] = orjson.__version__
    except ImportError:
        out["orjson"] = "not installed"
    return out


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """`with timer() as t: ...; t[0]` is the elapsed seconds."""
    box = [0.0]
    started = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - started
