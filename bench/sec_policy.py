"""Section 4: `boda policy eval` on 10k / 100k / 1M images, as a process and split in-process."""

from __future__ import annotations

import json
from typing import Any

from _common import BENCH, BODA, DATA, OUT, PYTHON, Series, log, run

NOW = "2026-11-01T00:00:00Z"


def section_policy(sizes: list[int], runs: int, inproc_runs: int) -> dict[str, Any]:
    folder = DATA / "policy"
    log(f"  generating describe-images documents {sizes} (cached)")
    run([PYTHON, str(BENCH / "gen_policy_images.py"), str(folder), *map(str, sizes)], timeout=3600).check()
    policy = folder / "policy.json"
    result: dict[str, Any] = {"sizes": {}, "policy": json.loads(policy.read_text())}
    for size in sizes:
        images = folder / f"images-{size}.json"
        log(f"  policy eval {size} images")
        wall, cpu, rss = Series(), Series(), Series()
        errors: list[str] = []
        out_path = OUT / f"policy-eval-{size}.json"
        for _ in range(runs):
            proc = run(
                [
                    BODA,
                    "policy",
                    "eval",
                    "--policy",
                    str(policy),
                    "--images",
                    str(images),
                    "--now",
                    NOW,
                    "--json",
                ],
                stdout_path=out_path,
            )
            if proc.rc != 0:
                errors.append(f"exit {proc.rc}: {proc.stderr.strip()[-300:]}")
                continue
            wall.add(proc.wall)
            cpu.add(proc.cpu)
            rss.add(proc.rss_mib)
        entry: dict[str, Any] = {
            "file_bytes": images.stat().st_size,
            "process": {
                "wall": wall.to_json(),
                "cpu": cpu.to_json(),
                "rss_mib": rss.to_json(),
                "errors": errors,
            },
        }
        if out_path.exists() and not errors:
            entry["output_bytes"] = out_path.stat().st_size
            out_path.unlink()
        repeats = inproc_runs if size < 1_000_000 else 1  # one pass at 1M keeps the whole run near 15 min
        proc = run([PYTHON, str(BENCH / "policy_inproc.py"), str(images), str(policy), NOW, str(repeats)])
        if proc.rc == 0:
            data = json.loads(proc.stdout)
            entry["inproc"] = {k: Series(v).to_json() if isinstance(v, list) else v for k, v in data.items()}
        else:
            entry["inproc_error"] = proc.stderr.strip()[-300:]
        result["sizes"][str(size)] = entry
    return result
