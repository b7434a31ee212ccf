"""Section 4: `boda policy eval` on 10k to 1M images as a process, beside `json.load` of the same file
in the same run, then split in-process (`policy_inproc.py`)."""

from __future__ import annotations

import json
from typing import Any

from _common import BENCH, BODA, DATA, OUT, PYTHON, Series, log, run

NOW = "2026-11-01T00:00:00Z"
JSON_LOAD = "import json, sys\nwith open(sys.argv[1], 'rb') as f:\n    json.load(f)"


def section_policy(sizes: list[int], runs: int, inproc_runs: int) -> dict[str, Any]:
    folder = DATA / "policy"
    log(f"  generating describe-images documents {sizes} (cached)")
    run([PYTHON, str(BENCH / "gen_policy_images.py"), str(folder), *map(str, sizes)], timeout=3600).check()
    policy = folder / "policy.json"
    result: dict[str, Any] = {"sizes": {}, "policy": json.loads(policy.read_text())}
    for size in sizes:
        images = folder / f"images-{size}.json"
        out_path = OUT / f"policy-eval-{size}.json"
        eval_cmd = [BODA, "policy", "eval", "--policy", str(policy), "--images", str(images), "--now", NOW]
        commands = {
            "boda policy eval --json": [*eval_cmd, "--json"],
            "python json.load": [PYTHON, "-c", JSON_LOAD, str(images)],
        }
        if size == 300_000:
            commands["boda policy eval --json --pretty"] = [*eval_cmd, "--json", "--pretty"]
        series = {
            name: {"wall": Series(), "cpu": Series(), "rss": Series(), "errors": []} for name in commands
        }
        log(f"  policy eval {size} images, beside json.load of the file")
        output_bytes = None
        for _ in range(runs):  # interleaved, so that both see the same load on the machine
            for name, cmd in commands.items():
                proc = run(cmd, stdout_path=out_path, timeout=1800)
                s = series[name]
                if proc.rc != 0:
                    s["errors"].append(f"exit {proc.rc}: {proc.stderr.strip()[-300:]}")
                    continue
                s["wall"].add(proc.wall)
                s["cpu"].add(proc.cpu)
                s["rss"].add(proc.rss_mib)
                if name == "boda policy eval --json":
                    output_bytes = out_path.stat().st_size
        out_path.unlink(missing_ok=True)
        entry: dict[str, Any] = {
            "file_bytes": images.stat().st_size,
            "output_bytes": output_bytes,
            "processes": {
                name: {
                    "wall": s["wall"].to_json(),
                    "cpu": s["cpu"].to_json(),
                    "rss_mib": s["rss"].to_json(),
                    "errors": s["errors"],
                }
                for name, s in series.items()
            },
        }
        repeats = inproc_runs if size < 1_000_000 else 1  # one pass at 1M keeps the section short
        proc = run([PYTHON, str(BENCH / "policy_inproc.py"), str(images), str(policy), NOW, str(repeats)])
        if proc.rc == 0:
            data = json.loads(proc.stdout)
            entry["inproc"] = {k: Series(v).to_json() if isinstance(v, list) else v for k, v in data.items()}
        else:
            entry["inproc_error"] = proc.stderr.strip()[-300:]
        result["sizes"][str(size)] = entry
    return result
