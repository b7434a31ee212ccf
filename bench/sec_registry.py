"""Sections 1, 2, 2b and 3: promotion, tag move, a release of 20 apps, copy across registries, and
CLI start-up. Every command runs as a whole process, as CI runs it; requests are counted from the
registry's access log, uploaded bytes through a counting TCP proxy in a separate, untimed pass.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    BENCH,
    BODA,
    DATA,
    PYTHON,
    SKOPEO,
    CountingProxy,
    FirstRequest,
    Proc,
    Registry,
    Series,
    clear_skopeo_cache,
    log,
    run,
    skopeo_copy_cmd,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
COMMIT_TAG = COMMIT[:8]


@dataclass
class Settings:
    runs: int
    layers: int
    layer_mib: float
    startup_runs: int
    release_apps: int = 20


@dataclass
class Tool:
    """Measurements of one tool in one scenario."""

    name: str
    wall: Series = field(default_factory=Series)
    cpu: Series = field(default_factory=Series)
    rss: Series = field(default_factory=Series)
    requests: Series = field(default_factory=Series)
    kinds: dict[str, int] = field(default_factory=dict)
    bytes_up: int | None = None
    reported: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    note: str = ""

    def record(self, proc: Proc, counts: Counter[str]) -> None:
        if proc.rc != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
            self.errors.append(f"exit {proc.rc}: {tail[:300]}")
            return
        self.wall.add(proc.wall)
        self.cpu.add(proc.cpu)
        self.rss.add(proc.rss_mib)
        self.requests.add(sum(counts.values()))
        self.kinds = dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "wall": self.wall.to_json(),
            "cpu": self.cpu.to_json(),
            "rss_mib": self.rss.to_json(),
            "requests": self.requests.to_json(),
            "kinds": self.kinds,
            "bytes_up": self.bytes_up,
            "reported": self.reported,
            "errors": self.errors,
            "note": self.note,
        }


def _json_out(proc: Proc) -> dict[str, Any]:
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _write_project(folder: Path, registry: str, strategy: str) -> Path:
    """A boda.toml with a fresh SQLite ledger: environments dev -> stg (stg requires tests)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    config = folder / "boda.toml"
    config.write_text(
        f'registry = "http://{registry}"\n'
        f'ledger = "sqlite:///{folder / "ledger.db"}"\n'
        "[promotion]\n"
        f'strategy = "{strategy}"\n'
        'commit_tag = "{commit:.8}"\n'
        'repo_template = "{app}-{env}"\n'
        "copy_referrers = false\n"
        '[[environments]]\nname = "dev"\n'
        '[[environments]]\nname = "stg"\nafter = "dev"\nrequires = ["tests"]\n'
    )
    return config


def _setup_apps(config: Path, image_ref: str, apps: list[str]) -> None:
    run(
        [
            PYTHON,
            str(BENCH / "setup_apps.py"),
            str(config),
            COMMIT,
            image_ref,
            *apps,
            "--dev",
            "dev",
            "--evidence",
            "tests",
        ]
    ).check()


def _timed(tool: Tool, reg: Registry | list[Registry], cmd: list[str], **kw: Any) -> Proc:
    regs = reg if isinstance(reg, list) else [reg]
    for r in regs:
        r.mark()
    proc = run(cmd, **kw)
    counts: Counter[str] = Counter()
    for r in regs:
        counts.update(r.requests())
    tool.record(proc, counts)
    return proc


def _promote_cmd(config: Path, apps: list[str]) -> list[str]:
    return [BODA, "--config", str(config), "promote", *apps, "--to", "stg", "--commit", COMMIT, "--json"]


# -- image ----------------------------------------------------------------------------------------


def push_image(reg: Registry, s: Settings) -> dict[str, Any]:
    """Generate (cached) the synthetic image and push it to `bench/app:v1` with skopeo."""
    layout = DATA / f"image-{s.layers}x{s.layer_mib:g}MiB"
    meta = json.loads(
        run(
            [
                PYTHON,
                str(BENCH / "gen_image.py"),
                str(layout),
                "--layers",
                str(s.layers),
                "--layer-mib",
                str(s.layer_mib),
            ],
            timeout=1800,
        )
        .check()
        .stdout
    )
    run(skopeo_copy_cmd(f"oci:{layout}:v1", f"docker://{reg.host}/bench/app:v1")).check()
    meta["layout"] = str(layout)
    return dict(meta)


# -- section 1 ------------------------------------------------------------------------------------


def section_promotion(reg: Registry, s: Settings, image: dict[str, Any]) -> dict[str, Any]:
    """Promotion between repositories of one registry (strategy repos)."""
    src = f"{reg.host}/bench/app:v1"
    tools = {
        "boda copy": Tool("boda copy"),
        "boda promote (repos)": Tool("boda promote (repos)"),
        "skopeo copy (warm cache)": Tool(
            "skopeo copy (warm cache)", note="blob-info cache knows bench/app: layers are mounted"
        ),
        "skopeo copy (cold cache)": Tool(
            "skopeo copy (cold cache)", note="cache cleared first, as on a fresh CI runner"
        ),
        "naive pull+push (httpx)": Tool("naive pull+push (httpx)", note="bench/naive_copy.py"),
    }
    for i in range(s.runs):
        log(f"  section 1 run {i + 1}/{s.runs}")
        proc = _timed(tools["boda copy"], reg, [BODA, "copy", src, f"{reg.host}/b1r{i}/app:v1", "--json"])
        tools["boda copy"].reported = _json_out(proc)

        config = _write_project(DATA / "projects" / f"promote-r{i}", reg.host, "repos")
        _setup_apps(config, src, [f"p1r{i}/app"])
        proc = _timed(tools["boda promote (repos)"], reg, _promote_cmd(config, [f"p1r{i}/app"]))
        promos = _json_out(proc).get("promotions") or [{}]
        tools["boda promote (repos)"].reported = promos[0].get("copy", {})

        _timed(
            tools["skopeo copy (warm cache)"],
            reg,
            skopeo_copy_cmd(f"docker://{src}", f"docker://{reg.host}/s1w{i}/app:v1"),
        )
        clear_skopeo_cache()
        _timed(
            tools["skopeo copy (cold cache)"],
            reg,
            skopeo_copy_cmd(f"docker://{src}", f"docker://{reg.host}/s1c{i}/app:v1"),
        )
        _timed(
            tools["naive pull+push (httpx)"],
            reg,
            [PYTHON, str(BENCH / "naive_copy.py"), f"http://{reg.host}", "bench/app:v1", f"n1r{i}/app:v1"],
        )

    log("  section 1 counting pass (bytes through a proxy)")
    with CountingProxy(reg.port) as proxy:
        p = proxy.host
        passes: list[tuple[str, list[str], Path | None]] = [
            ("boda copy", [BODA, "copy", f"{p}/bench/app:v1", f"{p}/b1cnt/app:v1", "--json"], None),
            (
                "skopeo copy (cold cache)",
                skopeo_copy_cmd(f"docker://{p}/bench/app:v1", f"docker://{p}/s1cc/app:v1"),
                None,
            ),
            (
                "naive pull+push (httpx)",
                [PYTHON, str(BENCH / "naive_copy.py"), f"http://{p}", "bench/app:v1", "n1cnt/app:v1"],
                None,
            ),
        ]
        config = _write_project(DATA / "projects" / "promote-cnt", p, "repos")
        _setup_apps(config, f"{p}/bench/app:v1", ["p1cnt/app"])
        passes.append(("boda promote (repos)", _promote_cmd(config, ["p1cnt/app"]), None))
        for name, cmd, _ in passes:
            if name.startswith("skopeo") and "cold" in name:
                clear_skopeo_cache()
            proxy.reset()
            run(cmd)
            tools[name].bytes_up = proxy.up
        # warm: prime the cache for the proxy's host:port first, then count
        run(skopeo_copy_cmd(f"docker://{p}/bench/app:v1", f"docker://{p}/s1prime/app:v1"))
        proxy.reset()
        run(skopeo_copy_cmd(f"docker://{p}/bench/app:v1", f"docker://{p}/s1wc/app:v1"))
        tools["skopeo copy (warm cache)"].bytes_up = proxy.up
    return {"image": image, "tools": [t.to_json() for t in tools.values()]}


# -- start-up -------------------------------------------------------------------------------------

_IMPORT = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def _importtime(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = run([PYTHON, "-X", "importtime", *args], env=env)
    rows = []
    for line in proc.stderr.splitlines():
        m = _IMPORT.match(line)
        if m:
            rows.append((int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2, m.group(4)))
    total_us = sum(r[0] for r in rows)
    # Top offenders: packages imported directly by boda or by the interpreter (depth <= 1), by
    # cumulative time, plus boda's own modules.
    top = sorted((r for r in rows if r[2] <= 1), key=lambda r: -r[1])[:12]
    boda_mods = sorted((r for r in rows if r[3].startswith("boda")), key=lambda r: -r[1])[:8]
    return {
        "cmd": " ".join(args),
        "total_ms": total_us / 1000,
        "modules": len(rows),
        "top": [{"module": r[3], "cumulative_ms": r[1] / 1000, "self_ms": r[0] / 1000} for r in top],
        "boda": [{"module": r[3], "cumulative_ms": r[1] / 1000, "self_ms": r[0] / 1000} for r in boda_mods],
        "wall": proc.wall,
    }


def section_startup(s: Settings, promote_ledger: Path | None) -> dict[str, Any]:
    """Time from process start to the first TCP connection, and where import time goes."""
    listener = FirstRequest()
    target = f"127.0.0.1:{listener.port}"
    cases: dict[str, list[str]] = {
        "boda copy": [BODA, "copy", f"{target}/x/app:v1", f"{target}/y/app:v1"],
        "boda digest": [BODA, "digest", f"{target}/x/app:v1"],
        "skopeo inspect --raw": [
            SKOPEO,
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{target}/x/app:v1",
        ],
    }
    folder = DATA / "projects" / "startup"
    if promote_ledger is not None and promote_ledger.exists():
        config = _write_project(folder, target, "repos")
        shutil.copy(promote_ledger, folder / "ledger.db")
        cases["boda promote (repos)"] = _promote_cmd(config, ["p1r0/app"])
    first: dict[str, Series] = {name: Series() for name in cases}
    wall: dict[str, Series] = {name: Series() for name in cases}
    errors: dict[str, str] = {}
    for _ in range(s.startup_runs):
        for name, cmd in cases.items():
            listener.reset()

            started = time.perf_counter()
            proc = run(cmd)
            wall[name].add(proc.wall)
            if listener.first is None:
                errors[name] = f"no connection (exit {proc.rc}): {proc.stderr.strip()[-200:]}"
                continue
            first[name].add(listener.first - started)
    # Before/after of one start-up fix, side by side: httpx imports its own CLI (click, pygments,
    # rich) when they are installed; boda now keeps it from doing so. "As before" imports httpx
    # first, the way it loads itself, then runs the same boda.
    as_before = "import httpx, sys; from boda.cli import main; sys.exit(main(sys.argv[1:]))"
    now = "import sys; from boda.cli import main; sys.exit(main(sys.argv[1:]))"
    pair = {
        "boda copy, httpx loading its CLI (before)": [
            PYTHON,
            "-c",
            as_before,
            "copy",
            f"{target}/x/app:v1",
            f"{target}/y/app:v1",
        ],
        "boda copy (after)": [PYTHON, "-c", now, "copy", f"{target}/x/app:v1", f"{target}/y/app:v1"],
    }
    pair_first: dict[str, Series] = {name: Series() for name in pair}
    for _ in range(s.startup_runs):
        for name, cmd in pair.items():
            listener.reset()
            started = time.perf_counter()
            run(cmd)
            if listener.first is not None:
                pair_first[name].add(listener.first - started)
    listener.close()
    floor = Series()
    for _ in range(s.startup_runs):
        floor.add(run([PYTHON, "-c", "pass"]).wall)
    help_wall = Series()
    for _ in range(s.startup_runs):
        help_wall.add(run([BODA, "--help"]).wall)
    imports = {
        "click": "import click",
        "httpx (as it loads itself)": "import httpx",
        "httpx without its CLI (as boda loads it)": (
            "import sys; sys.modules['httpx._main'] = None; import httpx"
        ),
        "boda.registry.oci (what a registry command loads)": "import boda.registry.oci",
        "boda.services.status (what boda status loads)": (
            "import boda.cli.lifecycle, boda.services.status, sqlite3"
        ),
    }
    import_wall: dict[str, Series] = {name: Series() for name in imports}
    for _ in range(s.startup_runs):
        for name, code in imports.items():
            import_wall[name].add(run([PYTHON, "-c", code]).wall)
    # `boda status` on the demo's ledger (issue 15.6: whole process under 100 ms)
    demo = DATA / "projects" / "demo"
    if not (demo / "boda.toml").exists():
        shutil.rmtree(demo, ignore_errors=True)
        demo.parent.mkdir(parents=True, exist_ok=True)
        run([BODA, "demo", "--dir", str(demo)], cwd=demo.parent).check()
    status_wall, status_cpu = Series(), Series()
    for _ in range(max(s.startup_runs, 20)):
        proc = run([BODA, "--config", str(demo / "boda.toml"), "status", "shop/web"]).check()
        status_wall.add(proc.wall)
        status_cpu.add(proc.cpu)
    return {
        "first_request": {k: v.to_json() for k, v in first.items()},
        "wall": {k: v.to_json() for k, v in wall.items()},
        "errors": errors,
        "python_floor": floor.to_json(),
        "boda_help": help_wall.to_json(),
        "httpx_cli_pair": {k: v.to_json() for k, v in pair_first.items()},
        "imports": {k: v.to_json() for k, v in import_wall.items()},
        "status_demo": status_wall.to_json(),
        "status_demo_cpu": status_cpu.to_json(),
        "importtime_status": _importtime(
            ["-m", "boda", "--config", str(demo / "boda.toml"), "status", "shop/web"]
        ),
        "importtime_help": _importtime(["-m", "boda", "--help"]),
        "importtime_copy": _importtime(["-m", "boda", "copy", f"{target}/x/app:v1", f"{target}/y/app:v1"]),
    }


# -- section 2 ------------------------------------------------------------------------------------


def section_tag_move(reg: Registry, s: Settings) -> dict[str, Any]:
    """Tag move in one repository (strategy tags)."""
    src = f"{reg.host}/bench/app:v1"
    tools = {
        "boda promote (tags)": Tool("boda promote (tags)", note="one app, dev -> stg, gate checked"),
        "boda copy (same repo)": Tool("boda copy (same repo)"),
        "skopeo copy (same repo)": Tool("skopeo copy (same repo)"),
    }
    for i in range(s.runs):
        log(f"  section 2 run {i + 1}/{s.runs}")
        config = _write_project(DATA / "projects" / f"tags-r{i}", reg.host, "tags")
        _setup_apps(config, src, [f"t2r{i}/app"])
        proc = _timed(tools["boda promote (tags)"], reg, _promote_cmd(config, [f"t2r{i}/app"]))
        promos = _json_out(proc).get("promotions") or [{}]
        tools["boda promote (tags)"].reported = promos[0].get("copy", {})
        proc = _timed(
            tools["boda copy (same repo)"], reg, [BODA, "copy", src, f"{reg.host}/bench/app:b2r{i}", "--json"]
        )
        tools["boda copy (same repo)"].reported = _json_out(proc)
        _timed(
            tools["skopeo copy (same repo)"],
            reg,
            skopeo_copy_cmd(f"docker://{src}", f"docker://{reg.host}/bench/app:s2r{i}"),
        )
    return {"tools": [t.to_json() for t in tools.values()]}


def section_release(reg: Registry, s: Settings) -> dict[str, Any]:
    """A release: N apps promoted by one `boda promote` vs N `skopeo copy` processes."""
    src = f"{reg.host}/bench/app:v1"
    n = s.release_apps
    boda = Tool(f"boda promote ×{n} apps (tags)", note="one process")
    boda_repos = Tool(f"boda promote ×{n} apps (repos)", note="one process, cross-repo mounts")
    skopeo = Tool(f"skopeo copy ×{n} processes (tags)", note="sequential, as a shell loop runs them")
    for i in range(s.runs):
        log(f"  section 2b run {i + 1}/{s.runs}")
        apps = [f"rel{i}/app{k:02d}" for k in range(n)]
        config = _write_project(DATA / "projects" / f"release-r{i}", reg.host, "tags")
        _setup_apps(config, src, apps)
        proc = _timed(boda, reg, _promote_cmd(config, apps))
        if proc.rc == 0:
            boda.reported = {"promotions": len(_json_out(proc).get("promotions") or [])}
        apps_r = [f"relr{i}/app{k:02d}" for k in range(n)]
        config_r = _write_project(DATA / "projects" / f"release-repos-r{i}", reg.host, "repos")
        _setup_apps(config_r, src, apps_r)
        _timed(boda_repos, reg, _promote_cmd(config_r, apps_r))
        # skopeo: the same tag move for each app, one process each, timed as a whole
        reg.mark()
        total = 0.0
        cpu = 0.0
        peak = 0.0
        failed = ""
        for app in apps:
            proc = run(
                skopeo_copy_cmd(
                    f"docker://{reg.host}/{app}:{COMMIT_TAG}", f"docker://{reg.host}/{app}:sk-stg"
                )
            )
            total += proc.wall
            cpu += proc.cpu
            peak = max(peak, proc.rss_mib)
            if proc.rc != 0:
                failed = proc.stderr.strip()[-200:]
        counts = reg.requests()
        if failed:
            skopeo.errors.append(failed)
        else:
            skopeo.wall.add(total)
            skopeo.cpu.add(cpu)
            skopeo.rss.add(peak)
            skopeo.requests.add(sum(counts.values()))
            skopeo.kinds = dict(sorted(counts.items()))
    return {"apps": n, "tools": [boda.to_json(), boda_repos.to_json(), skopeo.to_json()]}


# -- section 3 ------------------------------------------------------------------------------------


def section_cross(reg_a: Registry, reg_b: Registry, s: Settings) -> dict[str, Any]:
    """Copy across two registry processes into repositories lacking the blobs."""
    src = f"{reg_a.host}/bench/app:v1"
    boda = Tool("boda copy (-j 4)")
    boda8 = Tool("boda copy (-j 8)")
    skopeo = Tool("skopeo copy", note="blob-info cache cleared before each run")
    regs = [reg_a, reg_b]
    for i in range(s.runs):
        log(f"  section 3 run {i + 1}/{s.runs}")
        proc = _timed(boda, regs, [BODA, "copy", src, f"{reg_b.host}/b3r{i}/app:v1", "--json"])
        boda.reported = _json_out(proc)
        proc = _timed(boda8, regs, [BODA, "copy", "-j", "8", src, f"{reg_b.host}/b3j{i}/app:v1", "--json"])
        boda8.reported = _json_out(proc)
        clear_skopeo_cache()
        _timed(skopeo, regs, skopeo_copy_cmd(f"docker://{src}", f"docker://{reg_b.host}/s3r{i}/app:v1"))
    log("  section 3 counting pass")
    with CountingProxy(reg_b.port) as proxy:
        proxy.reset()
        run([BODA, "copy", src, f"{proxy.host}/b3cnt/app:v1"])
        boda.bytes_up = proxy.up
        proxy.reset()
        run([BODA, "copy", "-j", "8", src, f"{proxy.host}/b3cnt8/app:v1"])
        boda8.bytes_up = proxy.up
        clear_skopeo_cache()
        proxy.reset()
        run(skopeo_copy_cmd(f"docker://{src}", f"docker://{proxy.host}/s3cnt/app:v1"))
        skopeo.bytes_up = proxy.up
    return {"tools": [boda.to_json(), boda8.to_json(), skopeo.to_json()]}
