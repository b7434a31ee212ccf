"""Render bench/RESULTS.md from the results dict that run.py collects (also in bench/out/results.json).

python bench/report.py [bench/out/results.json]   # re-render without re-running
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from _common import BENCH, OUT, fmt_bytes, fmt_s

STARTUP_BUDGET_S = 0.100
STATUS_BUDGET_S = 0.050
POLICY_BUDGET_S = 3.0  # evaluate() on 1M images, in-process
POLICY_PROCESS_BUDGET_S = 10.0  # the whole `boda policy eval` process on 1M images
POLICY_VS_JSON_LOAD = 4.0  # the whole process on 300k images, against json.load of the file
POLICY_RSS_PER_FILE = 6.0  # peak memory on 300k images, against the file's size
GC_COLD_BUDGET_S = 2.0
GC_WARM_BUDGET_S = 0.5
SERVE_P95_BUDGET_S = 0.050
LAMBDA_OPS = frozenset(
    {
        "ListFunctions",
        "GetFunction",
        "ListAliases",
        "ListVersionsByFunction",
        "ListProvisionedConcurrencyConfigs",
    }
)


def _med(series: dict[str, Any] | None) -> float:
    if not series or not series.get("n"):
        return float("nan")
    return float(series["median"])


def _range(series: dict[str, Any] | None, unit: str = "s") -> str:
    if not series or not series.get("n"):
        return "n/a"
    if unit == "s":
        return f"{fmt_s(series['median'])} ({fmt_s(series['min'])}–{fmt_s(series['max'])})"
    if unit == "MiB":
        return f"{series['median']:.0f} MiB ({series['min']:.0f}–{series['max']:.0f})"
    return f"{series['median']:g} ({series['min']:g}–{series['max']:g})"


def _ratio(a: float, b: float) -> str:
    if a != a or b != b or b == 0:
        return "n/a"
    return f"{a / b:.2f}×"


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in kinds.items()) or "-"


def _gc_plan_table(gc: dict[str, Any]) -> list[str]:
    """Section 6's `gc plan` lines: cold, warm, cold before ledger schema 4 and the code path before
    issue 15.2."""
    out = [
        f"### `boda gc plan` of an app boda built {gc['images']:,} times",
        "",
        f"{gc['images']:,} images in one repository, each under the commit tag boda wrote, every build"
        " recorded in the ledger with its manifest's media type and size (ledger schema 4), three"
        f" environment tags (dev, stg, prd); policy: keep the newest {gc['keep']}. Cold = the manifest"
        " cache emptied before each run. The same builds as a boda before ledger schema 4 recorded them"
        " (no media type), migrated by this boda, show what a cold plan reads for those; the last line"
        " is main before issue 15.2, run from a copy of its source on the same registry (its ledger at"
        " schema 3). Requests are counted by the registry; `--json` reports its own count (`requests`).",
        "",
        "| run | wall median (range) | CPU | requests (registry) | reported | by kind | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, t in gc["tools"].items():
        out.append(
            f"| {name} | {_range(t['wall'])} | {fmt_s(_med(t['cpu']))} | {_range(t['requests'], '')} |"
            f" {t.get('requests_reported', '–')} | {_kinds(t.get('kinds') or {})} |"
            f" {_range(t['rss'], 'MiB')} |"
        )
    return [*out, ""]


def _history_stream_table(streams: dict[str, Any]) -> list[str]:
    """Section 5's history lines: time to the first byte, to the end, and peak memory."""
    if not streams:
        return []
    out = [
        "`boda history team/big` (100,000 entries) as a process: first byte of output, last byte, peak RSS.",
        "",
        "| backend | run | first byte | whole | peak RSS | output |",
        "|---|---|---|---|---|---|",
    ]
    for backend, runs in streams.items():
        for name, r in runs.items():
            out.append(
                f"| {backend} | {name} | {_range(r['first_byte'])} | {_range(r['wall'])} |"
                f" {_range(r['rss_mib'], 'MiB')} | {fmt_bytes(r['bytes'])} |"
            )
    return [*out, ""]


def _serve_peers(servers: dict[str, Any]) -> str:
    peers = [
        f"{name}: p95 {fmt_s(r['p95'])}, {r['per_second']:.0f}/s"
        for name, r in servers.items()
        if name != "boda serve" and "p95" in r
    ]
    return f" (same run — {'; '.join(peers)})" if peers else ""


def _serve_table(serve: dict[str, Any]) -> list[str]:
    """Section 5's load lines: 50 concurrent clients on one app's status."""
    if not serve:
        return []
    tool = next((r.get("tool") for servers in serve.values() for r in servers.values() if r.get("tool")), "?")
    out = [
        f"`boda serve` under load: 50 concurrent clients ({tool}, keep-alive) each asking"
        " `/api/apps/team/svc00/status` again as soon as answered, for a fixed time, on 127.0.0.1; the"
        " load generator shares the machine's CPUs with the server.",
        "",
        "| backend | server | requests/s | p50 | p95 | p99 | max | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, servers in serve.items():
        for name, r in servers.items():
            if "p95" not in r:
                out.append(f"| {backend} | {name} | {r.get('error', 'failed')} | | | | | |")
                continue
            out.append(
                f"| {backend} | {name} | {r['per_second']:.0f} | {fmt_s(r['p50'])} | {fmt_s(r['p95'])} |"
                f" {fmt_s(r['p99'])} | {fmt_s(r['max'])} | {r['errors'] + r['non2xx']} |"
            )
    return [*out, ""]


def _goal(met: bool | None, text: str, why: str) -> str:
    mark = "**met**" if met else ("**not met**" if met is not None else "**not measured**")
    return f"- {mark} — {text}: {why}"


def _tools_table(tools: list[dict[str, Any]], baseline: str | None, extra_bytes: bool = True) -> list[str]:
    base = next((t for t in tools if t["name"] == baseline), None)
    head = "| tool | wall median (range) | CPU median | vs " + (baseline or "-") + " | requests | by kind |"
    sep = "|---|---|---|---|---|---|"
    if extra_bytes:
        head += " bytes sent (proxy) | peak RSS |"
        sep += "---|---|"
    lines = [head, sep]
    for t in tools:
        if t.get("errors") and not t["wall"].get("n"):
            lines.append(
                f"| {t['name']} | failed: {t['errors'][0][:160]} | | | | |" + (" | |" if extra_bytes else "")
            )
            continue
        ratio = _ratio(_med(t["wall"]), _med(base["wall"])) if base else "n/a"
        reqs = _range(t["requests"], unit="")
        row = (
            f"| {t['name']} | {_range(t['wall'])} | {fmt_s(_med(t.get('cpu')))} | {ratio} | {reqs} |"
            f" {_kinds(t['kinds'])} |"
        )
        if extra_bytes:
            sent = fmt_bytes(t["bytes_up"]) if t.get("bytes_up") is not None else "n/a"
            row += f" {sent} | {_range(t['rss_mib'], 'MiB')} |"
        lines.append(row)
    return lines


def _tool(tools: list[dict[str, Any]], prefix: str) -> dict[str, Any] | None:
    return next((t for t in tools if t["name"].startswith(prefix)), None)


def _policy_section(s: dict[str, Any], r: dict[str, Any], goals: list[str]) -> list[str]:
    """Section 4: the process beside json.load, the in-process phases, and the goals of issue 15."""
    m = r["machine"]
    out = [
        "## 4. Policy evaluation scaling",
        "",
        "Synthetic `describe-images` documents in the AWS CLI's own format (`bench/gen_policy_images.py`:"
        ' `"imagePushedAt": "2026-05-17T21:24:00.123456+00:00"`, commit tags, pr-*, feat-*, prd-*'
        " releases, env tags, ~25% untagged, pushes spread over a year) and a 5-rule policy (keep 100"
        " prd-*, archive feat-* unpulled for 30 d, expire pr-* after 14 d, untagged after 7 d, keep the"
        " newest 5000 of the rest). Each run starts `boda policy eval --json` (compact JSON, the"
        " default when stdout is not a terminal) and, right after it, `python -c json.load` of the same"
        " file: the floor issue 15 measures against. Section run started"
        f" {r['started']}; load average {', '.join(f'{x:.1f}' for x in m.get('loadavg', []))} at start,"
        f" {', '.join(f'{x:.1f}' for x in m.get('loadavg_end', []))} at end.",
        "",
        "| images | file | boda process wall | boda CPU | boda peak RSS | × file | json.load wall |"
        " json.load CPU | json.load RSS | boda / json.load (wall) | (CPU) | output |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios: dict[int, tuple[float, float]] = {}
    walls: dict[int, float] = {}
    rss_ratio: dict[int, float] = {}
    for size, e in s["sizes"].items():
        n = int(size)
        boda = e["processes"]["boda policy eval --json"]
        base = e["processes"]["python json.load"]
        if not boda["wall"].get("n"):
            out.append(f"| {n:,} | {fmt_bytes(e['file_bytes'])} | failed: {boda['errors'][:1]} |" + " |" * 9)
            continue
        file_mib = e["file_bytes"] / 2**20
        walls[n] = _med(boda["wall"])
        rss_ratio[n] = _med(boda["rss_mib"]) / file_mib
        ratios[n] = (
            _med(boda["wall"]) / _med(base["wall"]),
            _med(boda["cpu"]) / _med(base["cpu"]),
        )
        out.append(
            f"| {n:,} | {fmt_bytes(e['file_bytes'])} | {_range(boda['wall'])} | {fmt_s(_med(boda['cpu']))} |"
            f" {_med(boda['rss_mib']):.0f} MiB | {rss_ratio[n]:.1f}× | {_range(base['wall'])} |"
            f" {fmt_s(_med(base['cpu']))} | {_med(base['rss_mib']):.0f} MiB | {ratios[n][0]:.2f}× |"
            f" {ratios[n][1]:.2f}× | {fmt_bytes(e['output_bytes']) if e.get('output_bytes') else 'n/a'} |"
        )
        pretty = e["processes"].get("boda policy eval --json --pretty")
        if pretty and pretty["wall"].get("n"):
            out.append(
                f"| {n:,} `--pretty` | | {_range(pretty['wall'])} | {fmt_s(_med(pretty['cpu']))} |"
                f" {_med(pretty['rss_mib']):.0f} MiB | {_med(pretty['rss_mib']) / file_mib:.1f}× | | | |"
                f" {_med(pretty['wall']) / _med(base['wall']):.2f}× |"
                f" {_med(pretty['cpu']) / _med(base['cpu']):.2f}× | |"
            )
    out += [
        "",
        "In-process phases (`bench/policy_inproc.py`, median of the repeats; one pass at 1M). boda's path:"
        " read, `parse_images` (msgspec decodes typed `EcrImage` structs and checks digests, tags and"
        " times), `evaluate` (the columnar evaluator), `preview` (evaluation plus result rows), encode"
        " (compact JSON) and pretty (indenting it). Beside it, once: the untyped decoders (dicts,"
        " nothing checked), the reference evaluator (to 100k images) and `json.dumps(indent=2)` of the"
        " preview as plain dicts, the rendering boda used before (to 300k).",
        "",
        "| images | read | parse_images | stdlib json.loads | orjson.loads | evaluate | reference evaluate |"
        " preview | encode | pretty | json.dumps(indent=2) | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    evals: dict[int, float] = {}
    for size, e in s["sizes"].items():
        ip = e.get("inproc")
        if not ip:
            out.append(f"| {int(size):,} | failed: {e.get('inproc_error', '?')[:160]} |" + " |" * 10)
            continue
        evals[int(size)] = _med(ip.get("evaluate"))
        cells = ["read", "parse", "stdlib_json", "orjson", "evaluate", "reference", "preview", "encode"]
        cells += ["pretty", "dumps"]
        row = " | ".join(fmt_s(_med(ip.get(k))) if ip.get(k) else "–" for k in cells)
        out.append(f"| {int(size):,} | {row} | {ip.get('peak_rss_mib', 0):.0f} MiB |")
    out.append("")

    if 300_000 in ratios:
        wall_ratio, cpu_ratio = ratios[300_000]
        goals.append(
            _goal(
                wall_ratio <= POLICY_VS_JSON_LOAD,
                f"4: `boda policy eval` on 300k images within {POLICY_VS_JSON_LOAD:g}× `json.load` of"
                " the file (whole processes, same run)",
                f"{wall_ratio:.2f}× by wall time, {cpu_ratio:.2f}× by CPU time",
            )
        )
        goals.append(
            _goal(
                rss_ratio[300_000] <= POLICY_RSS_PER_FILE,
                f"4: peak memory on 300k images within {POLICY_RSS_PER_FILE:g}× the file size",
                f"{rss_ratio[300_000]:.1f}× the file",
            )
        )
    else:
        goals.append(_goal(None, "4: 300k images within 4× json.load, peak memory within 6× the file", "-"))
    if 1_000_000 in walls:
        big = s["sizes"]["1000000"]["processes"]["boda policy eval --json"]
        goals.append(
            _goal(
                walls[1_000_000] <= POLICY_PROCESS_BUDGET_S,
                f"4: `boda policy eval` on 1M images within {POLICY_PROCESS_BUDGET_S:g} s (whole process)",
                f"{fmt_s(walls[1_000_000])} wall, {fmt_s(_med(big['cpu']))} CPU",
            )
        )
    if 100_000 in evals and 1_000_000 in evals:
        growth = evals[1_000_000] / evals[100_000]
        goals.append(
            _goal(
                evals[1_000_000] < POLICY_BUDGET_S,
                "4: 1M images in under 3 s of evaluation",
                f"evaluate() takes {fmt_s(evals[1_000_000])} on 1M images",
            )
        )
        goals.append(
            _goal(
                growth < 13, "4: linear growth", f"100k → 1M grows evaluation {growth:.1f}× (10× is linear)"
            )
        )
    return out


def render(r: dict[str, Any]) -> str:
    m, v, sec = r["machine"], r["versions"], r["sections"]
    out: list[str] = ["# boda benchmarks", ""]
    out += [
        f"Generated by `make bench` (`bench/run.py{' --quick' if r.get('quick') else ''}`) on {r['started']},"
        f" {r['runs']} runs per measurement (median, with min–max in parentheses), total"
        f" {r.get('seconds', 0):.0f} s. Raw numbers: `bench/out/results.json`.",
        "",
        "## Machine and versions",
        "",
        f"- CPUs: {m.get('cpus')} ({m.get('cpu_model', '?')}); memory: {m.get('mem_gib')} GiB",
        f"- load average at start / end: {', '.join(f'{x:.1f}' for x in m.get('loadavg', []))} /"
        f" {', '.join(f'{x:.1f}' for x in m.get('loadavg_end', []))} (other work shares this machine; wall"
        " times are noisy, CPU times much less so)",
        *[f"- {k}: {val}" for k, val in v.items()],
        "- every command runs as a whole process (`/usr/bin/env`-free `Popen`, peak RSS and CPU from"
        " `wait4`); Python bytecode caches are warm, as for an installed tool.",
        "- requests are counted on the registry side (its access log); bytes sent are counted by a TCP"
        " proxy (`_common.CountingProxy`) in one separate, untimed pass per tool (body + HTTP headers).",
        "",
    ]
    if r.get("errors"):
        out += ["## Sections that failed", ""]
        out += [f"- section {k}: {e}" for k, e in r["errors"].items()]
        out += [""]
    goals: list[str] = []

    # -- 1
    if "1" in sec:
        s = sec["1"]
        img = s["image"]
        tools = s["tools"]
        out += [
            "## 1. Promotion between repositories of one registry (strategy `repos`)",
            "",
            f"Image: {r['settings']['layers']} layers × {r['settings']['layer_mib']:g} MiB"
            f" ({fmt_bytes(img['bytes'])} of blobs, {img['blobs']} blobs, config {img['config_bytes']} B),"
            " `bench/app:v1` on a local `docker-registry`; every run copies to a fresh repository."
            " `boda promote` is `promote APP --to stg --commit SHA` after `build` and a passing"
            " `tests` in dev"
            " (gate checked, ledger written, digest read back), with its own boda.toml + SQLite ledger.",
            "",
            *_tools_table(tools, "skopeo copy (warm cache)"),
            "",
        ]
        for t in tools:
            if t.get("reported"):
                rep = t["reported"]
                out.append(
                    f"- {t['name']} reports: {rep.get('requests')} requests, {rep.get('blobs_mounted')} blobs"
                    f" mounted, {rep.get('blobs_uploaded')} uploaded, {rep.get('bytes_uploaded')}"
                    " bytes uploaded."
                )
        out.append("")
        bc, bp = _tool(tools, "boda copy"), _tool(tools, "boda promote")
        sw, sc = _tool(tools, "skopeo copy (warm"), _tool(tools, "skopeo copy (cold")
        if bc and bp and sw:
            zero = all(
                (t.get("reported") or {}).get("bytes_uploaded") == 0 and "PATCH upload" not in t["kinds"]
                for t in (bc, bp)
            )
            goals.append(
                _goal(
                    zero,
                    "1: zero blob bytes",
                    f"boda copy uploads {bc['reported'].get('bytes_uploaded')} B of blobs and boda promote"
                    f" {bp['reported'].get('bytes_uploaded')} B (all blobs mounted); skopeo (warm"
                    " cache) sends"
                    f" {fmt_bytes(sw.get('bytes_up') or 0)} (it re-uploads the config blob:"
                    f" {sw['kinds'].get('PUT upload', 0)} blob PUT)"
                    + (f", skopeo with a cold cache {fmt_bytes(sc.get('bytes_up') or 0)}" if sc else ""),
                )
            )
            for t in (bc, bp):
                ratio = _med(t["wall"]) / _med(sw["wall"])
                goals.append(
                    _goal(
                        ratio <= 1.0,
                        f"1: {t['name']} no slower than skopeo copy (warm cache) as a whole process",
                        f"{fmt_s(_med(t['wall']))} vs {fmt_s(_med(sw['wall']))} ({ratio:.2f}×; CPU"
                        f" {fmt_s(_med(t['cpu']))} vs {fmt_s(_med(sw['cpu']))})"
                        + (f"; vs cold-cache skopeo {_med(t['wall']) / _med(sc['wall']):.2f}×" if sc else ""),
                    )
                )

    # -- start-up
    if "startup" in sec:
        s = sec["startup"]
        fr = s["first_request"]
        out += [
            "## 1b. CLI start-up: process start to first HTTP request",
            "",
            "A listener on 127.0.0.1 timestamps its first accepted connection; the clock starts just before"
            " `Popen`. The listener answers 404, so each command then fails fast (wall = whole process).",
            "",
            "| command | to first request | whole process |",
            "|---|---|---|",
        ]
        for name, series in fr.items():
            out.append(f"| {name} | {_range(series)} | {_range(s['wall'][name])} |")
        out += [
            f"| `python -c pass` (interpreter floor) | – | {_range(s['python_floor'])} |",
            f"| `boda --help` | – | {_range(s['boda_help'])} |",
            "",
        ]
        for err_name, err in s.get("errors", {}).items():
            out.append(f"- {err_name}: {err}")
        pair = s.get("httpx_cli_pair") or {}
        if pair:
            out += [
                "Before/after, same run: httpx imports its own command-line client (`httpx._main`: click,"
                " pygments, rich) whenever those are installed (here they are, as dev tools); boda now keeps"
                " it from doing so (`boda/registry/_httpx.py`). Both rows run the same boda through"
                " `python -c`; *before* imports httpx first, the way it loads itself.",
                "",
                "| command | to first request |",
                "|---|---|",
                *[f"| {name} | {_range(series)} |" for name, series in pair.items()],
                "",
            ]
        if s.get("imports"):
            out += [
                "What the pieces cost, each `python -c 'import …'` as a whole process (the interpreter floor"
                " included):",
                "",
                "| import | whole process |",
                "|---|---|",
                f"| nothing (`python -c pass`) | {_range(s['python_floor'])} |",
                *[f"| {name} | {_range(series)} |" for name, series in s["imports"].items()],
                "| **`boda status shop/web` on the demo ledger** (whole command) |"
                f" {_range(s.get('status_demo'))} (CPU {fmt_s(_med(s.get('status_demo_cpu')))}) |",
                "",
            ]
        keys = [("importtime_help", "`-m boda --help`"), ("importtime_copy", "`-m boda copy …`")]
        if s.get("importtime_status"):
            keys.append(("importtime_status", "`-m boda status …`"))
        for key, title in keys:
            it = s[key]
            out += [
                "",
                f"`python -X importtime {it['cmd'][:60]}`: {it['modules']} modules,"
                f" {it['total_ms']:.0f} ms of"
                f" import time in total ({title}). Top offenders (cumulative ms, top-level imports):",
                "",
                "| module | cumulative | self |",
                "|---|---|---|",
                *[
                    f"| {row['module']} | {row['cumulative_ms']:.1f} | {row['self_ms']:.1f} |"
                    for row in it["top"]
                ],
            ]
        out.append("")
        if s.get("status_demo"):
            status_wall = _med(s["status_demo"])
            goals.append(
                _goal(
                    status_wall <= STARTUP_BUDGET_S,
                    "15.6: `boda status` on the demo ledger within 100 ms, whole process",
                    f"{fmt_s(status_wall)} median, CPU {fmt_s(_med(s.get('status_demo_cpu')))}"
                    f" (interpreter floor {fmt_s(_med(s['python_floor']))});"
                    " it imports no HTTP client (tests/unit/test_startup_offline_commands.py)",
                )
            )
        copy_first = _med(fr.get("boda copy"))
        goals.append(
            _goal(
                copy_first < STARTUP_BUDGET_S,
                "1: CLI start-up (`boda copy` process start → first HTTP request) under 100 ms",
                f"{fmt_s(copy_first)} median (`boda digest` {fmt_s(_med(fr.get('boda digest')))},"
                f" `boda promote` {fmt_s(_med(fr.get('boda promote (repos)')))},"
                f" skopeo {fmt_s(_med(fr.get('skopeo inspect --raw')))};"
                f" interpreter floor {fmt_s(_med(s['python_floor']))})",
            )
        )

    # -- 2
    if "2" in sec:
        tools = sec["2"]["tools"]
        out += [
            "## 2. Tag move in one repository (strategy `tags`)",
            "",
            "`boda promote` moves the `stg` tag of a fresh app (after build + dev + tests in untimed setup);"
            " `boda copy` and `skopeo copy` write a new tag in `bench/app`.",
            "",
            *_tools_table(tools, "skopeo copy (same repo)", extra_bytes=False),
            "",
        ]
        sk = _tool(tools, "skopeo")
        for t in tools:
            if not t["name"].startswith("boda") or not t["kinds"]:
                continue
            puts = t["kinds"].get("PUT manifest", 0)
            reads = sum(n for k, n in t["kinds"].items() if k.split()[0] in ("GET", "HEAD"))
            others = sum(t["kinds"].values()) - puts - reads
            ok = puts == 1 and reads <= 1 and others == 0
            goals.append(
                _goal(
                    ok,
                    f"2: {t['name']}: one manifest PUT plus at most one read",
                    f"{_kinds(t['kinds'])}",
                )
            )
            if sk:
                ratio = _med(t["wall"]) / _med(sk["wall"])
                goals.append(
                    _goal(
                        ratio <= 1.0,
                        f"2: {t['name']} no slower than skopeo as a whole process",
                        f"{fmt_s(_med(t['wall']))} vs {fmt_s(_med(sk['wall']))} ({ratio:.2f}×)",
                    )
                )

    # -- 2b
    if "2b" in sec:
        s = sec["2b"]
        tools = s["tools"]
        n = s["apps"]
        out += [
            f"## 2b. A release of {n} apps",
            "",
            f"One `boda promote APP1..APP{n} --to stg --commit SHA` vs {n} `skopeo copy` processes"
            " run one after"
            " another (the same tag move per app).",
            "",
            *_tools_table(tools, tools[-1]["name"], extra_bytes=False),
            "",
        ]
        bt, sk = tools[0], tools[-1]
        if bt["wall"].get("n") and sk["wall"].get("n"):
            per_image = _med(bt["requests"]) / n
            ratio = _med(bt["wall"]) / _med(sk["wall"])
            goals.append(
                _goal(
                    ratio <= 0.2,
                    f"2b: a release of {n} apps in at most 1/5 of skopeo's total time",
                    f"{fmt_s(_med(bt['wall']))} vs {fmt_s(_med(sk['wall']))} ({ratio:.2f}×);"
                    f" {per_image:.1f} requests per image (skopeo {_med(sk['requests']) / n:.1f})",
                )
            )

    # -- 3
    if "3" in sec:
        tools = sec["3"]["tools"]
        out += [
            "## 3. Copy across two registry processes",
            "",
            "Every run copies into a fresh repository of the second registry (its blobs are absent there);"
            " skopeo's blob-info cache is deleted before each of its runs. Requests are summed over both"
            " registries.",
            "",
            *_tools_table(tools, "skopeo copy"),
            "",
        ]
        sk = _tool(tools, "skopeo")
        b4 = tools[0]
        if sk and b4["wall"].get("n"):
            ratio = _med(b4["wall"]) / _med(sk["wall"])
            goals.append(
                _goal(
                    ratio < 1.0,
                    "3: boda faster than skopeo across registries",
                    f"{fmt_s(_med(b4['wall']))} vs {fmt_s(_med(sk['wall']))} ({ratio:.2f}×); peak RSS"
                    f" {_med(b4['rss_mib']):.0f} MiB (-j 8: {_med(tools[1]['rss_mib']):.0f} MiB) vs skopeo"
                    f" {_med(sk['rss_mib']):.0f} MiB",
                )
            )

    # -- 4
    if "4" in sec:
        out += _policy_section(sec["4"], r, goals)

    # -- 5
    if "5" in sec:
        s = sec["5"]
        out += [
            "## 5. Ledger",
            "",
            f"{s['promotions']:,} promotions and {s['builds']:,} builds over 100 apps and 3 environments"
            " (`bench/gen_ledger.py`: schema by `open_ledger`, rows by bulk SQL); `team/svc00` is a typical"
            " app (~1% of the history), `team/big` a busy one (10%). Process = `boda status|history APP"
            " --json`; in-process = the service call with the ledger already open"
            " (`bench/ledger_inproc.py`).",
            "",
            "| backend | app | status (process) | history (process) | history output | status (in-process) |"
            " history (in-process) | current_all | previous_digests ×3 envs |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        worst_status = 0.0
        for backend, per_app in s["backends"].items():
            for app, d in per_app.items():
                ip = d["inproc"]
                worst_status = max(worst_status, _med(ip["status"]))
                out.append(
                    f"| {backend} | {app} | {_range(d['boda status (process)']['wall'])} |"
                    f" {_range(d['boda history (process)']['wall'])} |"
                    f" {ip.get('history_entries', '?'):,} entries,"
                    f" {fmt_bytes(d['boda history (process)']['bytes'])} |"
                    f" {_range(ip['status'])} | {_range(ip['history'])} |"
                    f" {fmt_s(_med(ip['ledger.current_all']))} |"
                    f" {fmt_s(_med(ip['ledger.previous_digests x envs (depth 3)']))} |"
                )
        out.append("")
        out += _history_stream_table(s.get("history_stream") or {})
        out += _serve_table(s.get("serve") or {})
        for backend, servers in (s.get("serve") or {}).items():
            served = servers.get("boda serve") or {}
            if "p95" in served:
                goals.append(
                    _goal(
                        served["p95"] <= SERVE_P95_BUDGET_S,
                        f"15.4: `/api/apps/APP/status` p95 within 50 ms at 50 concurrent clients ({backend})",
                        f"p95 {fmt_s(served['p95'])}, p50 {fmt_s(served['p50'])},"
                        f" {served['per_second']:.0f} requests/s" + _serve_peers(servers),
                    )
                )
        if "postgres_error" in s:
            out.append(f"PostgreSQL not measured: {s['postgres_error']}")
        if "writers" in s:
            out += ["Concurrent writers on PostgreSQL (8 processes, `promotion_lock` + compare-and-set):", ""]
            out += ["| writers | promotions | seconds | promotions/s | conflicts |", "|---|---|---|---|---|"]
            for mode, w in s["writers"].items():
                if "per_second" in w:
                    out.append(
                        f"| {mode} | {w['promotions']} | {w['seconds']:.2f} | {w['per_second']:.0f}"
                        f" | {w['conflicts']} |"
                    )
                else:
                    out.append(f"| {mode} | failed: {w.get('errors')} | | | |")
            out.append("")
        typical = [
            _med(d["inproc"]["status"])
            for per_app in s["backends"].values()
            for a, d in per_app.items()
            if a == "team/svc00"
        ]
        goals.append(
            _goal(
                worst_status < STATUS_BUDGET_S,
                "5: status under 50 ms at 1M promotions (service call; worst app, both backends)",
                f"worst {fmt_s(worst_status)} (team/big); typical app {', '.join(fmt_s(x) for x in typical)};"
                " the process adds interpreter + CLI start-up",
            )
        )

    # -- 6
    if "6" in sec:
        s = sec["6"]
        tools = s["tools"]
        loop = s.get("skopeo_loop", {})
        out += [
            f"## 6. Inventory: one app with {s['tags']:,} tags ({s['images']:,} digests)",
            "",
            "| tool | wall median (range) | CPU | requests | peak RSS |",
            "|---|---|---|---|---|",
        ]
        for name, t in tools.items():
            out.append(
                f"| {name} | {_range(t['wall'])} | {fmt_s(_med(t['cpu']))} | {_range(t['requests'], '')} |"
                f" {_range(t['rss_mib'], 'MiB')} |"
            )
        if loop:
            out.append(
                "| skopeo list-tags + `inspect --raw` per tag (**extrapolated** from"
                f" {loop['inspected']} inspects)"
                f" | {fmt_s(loop['extrapolated_seconds'])} | – |"
                f" ~{loop['requests_per_inspect']:.1f} per tag | – |"
            )
        out += [
            "",
            f"The skopeo loop was capped at {loop.get('inspected')} `inspect` processes"
            f" ({fmt_s(loop.get('measured_seconds', 0))} measured, {_range(loop.get('per_inspect'))} each);"
            f" the total for {loop.get('listed_tags')} tags is list-tags + tags × mean per inspect.",
            "",
        ]
        bl = tools.get("boda image_list (process, Python API)")
        if bl and loop:
            ratio = _med(bl["wall"]) / loop["extrapolated_seconds"]
            goals.append(
                _goal(
                    ratio < 1,
                    f"6: inventory of {s['tags']:,} tags with digests faster than skopeo",
                    f"boda {fmt_s(_med(bl['wall']))} vs skopeo loop ~{fmt_s(loop['extrapolated_seconds'])}"
                    f" ({ratio:.3f}×)",
                )
            )
        gc = s.get("gc_plan")
        if gc:
            out += _gc_plan_table(gc)
            cold = gc["tools"].get("boda gc plan, cold (empty manifest cache)")
            warm = gc["tools"].get("boda gc plan, warm")
            if cold and warm:
                goals.append(
                    _goal(
                        _med(cold["wall"]) <= GC_COLD_BUDGET_S,
                        f"15.2: `gc plan` of a {gc['images']:,}-tag repository within 2 s cold",
                        f"{fmt_s(_med(cold['wall']))} (CPU {fmt_s(_med(cold['cpu']))};"
                        f" {_med(cold['requests']):.0f} requests: {_kinds(cold.get('kinds') or {})})",
                    )
                )
                goals.append(
                    _goal(
                        _med(warm["wall"]) <= GC_WARM_BUDGET_S,
                        f"15.2: `gc plan` of a {gc['images']:,}-tag repository within 0.5 s warm",
                        f"{fmt_s(_med(warm['wall']))} (CPU {fmt_s(_med(warm['cpu']))};"
                        f" {_med(warm['requests']):.0f} requests)",
                    )
                )

    # -- 7
    if "7" in sec:
        s = sec["7"]
        tools = s["tools"]
        out += [
            f"## 7. Runtime scan: {s['services']} ECS services / {s['tasks']:,} tasks,"
            f" {s['functions']} Lambda functions (moto)",
            "",
            "| tool | wall median (range) | CPU | requests | by operation |",
            "|---|---|---|---|---|",
        ]
        for name, t in tools.items():
            ops = ", ".join(f"{v} {k}" for k, v in t["kinds"].items())
            requests = _range(t["requests"], "")
            out.append(f"| {name} | {_range(t['wall'])} | {fmt_s(_med(t['cpu']))} | {requests} | {ops} |")
        out += [
            "",
            "The account is moto behind bench/aws_front.py, which pages ListServices, ListTasks and"
            " ListFunctions as AWS does (moto answers them in one page) and answers the calls moto lacks"
            " (ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions,"
            " ListProvisionedConcurrencyConfigs) from the set-up's model, counting every request. Times"
            " are moto's on this machine, not AWS's: the request counts are what carry over.",
            "",
        ]
        boda = tools.get("boda observers (Python API)")
        naive = tools.get("naive: one call per object")
        if boda and naive:
            found = boda["found"]
            ecs = next(v for k, v in found.items() if k.startswith("ecs:"))
            lam = next(v for k, v in found.items() if k.startswith("lambda:"))
            naive_found = naive["found"]
            out += [
                f"boda's reads, in-process: ECS {fmt_s(ecs['seconds'])} ({ecs['requests']} requests,"
                f" {ecs['tasks']:,} tasks counted, {ecs['digests']} digests), Lambda {fmt_s(lam['seconds'])}"
                f" ({lam['requests']} requests, {lam['digests']} digests); naive: ECS"
                f" {fmt_s(naive_found['ecs']['seconds'])}, Lambda {fmt_s(naive_found['lambda']['seconds'])}.",
                "",
            ]
            naive_ecs = sum(v for k, v in naive["kinds"].items() if k not in LAMBDA_OPS)
            ratio = ecs["requests"] / max(1, naive_ecs)
            goals.append(
                _goal(
                    ratio < 0.1,
                    "7: the ECS scan batches (under a tenth of the naive scan's ECS requests)",
                    f"boda {ecs['requests']} requests, naive {naive_ecs} ({ratio:.2f}×)",
                )
            )
            kinds = boda["kinds"]
            per_function = (
                kinds.get("ListAliases", 0)
                == kinds.get("ListProvisionedConcurrencyConfigs", 0)
                == s["functions"]
                and "ListVersionsByFunction" not in kinds
            )
            goals.append(
                _goal(
                    per_function and kinds.get("GetFunction", 0) < naive["kinds"].get("GetFunction", 0),
                    "7: Lambda costs per function one ListAliases, one ListProvisionedConcurrencyConfigs and"
                    " one GetFunction per version in use (Lambda has no batch read of code)",
                    f"{kinds.get('ListAliases', 0)} ListAliases,"
                    f" {kinds.get('ListProvisionedConcurrencyConfigs', 0)} ListProvisionedConcurrencyConfigs,"
                    f" {kinds.get('GetFunction', 0)} GetFunction for"
                    f" {s['functions']} functions; naive {naive['kinds'].get('GetFunction', 0)} GetFunction",
                )
            )

    out += ["## Goals", "", *goals, ""]
    notes = Path(BENCH / "ANALYSIS.md")
    if notes.exists():
        out += [notes.read_text().strip(), ""]
    return "\n".join(out)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT / "results.json"
    results = json.loads(path.read_text())
    (BENCH / "RESULTS.md").write_text(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
