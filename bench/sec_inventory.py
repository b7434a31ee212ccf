"""Section 6: inventory of an app with many tags (tags and their digests): boda vs skopeo."""

from __future__ import annotations

import hashlib
import json
import shutil
from typing import Any

from _common import BENCH, BODA, DATA, PYTHON, SKOPEO, Registry, Series, log, run

REPO = "inv/app"


def section_inventory(tags: int, runs: int, inspect_cap: int) -> dict[str, Any]:
    images = tags // 2
    root = DATA / f"registry-inventory-{tags}"
    marker = root / "populated"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
    reg = Registry(root, "inventory").start()
    result: dict[str, Any] = {"tags": tags, "images": images, "tools": {}}
    try:
        if not marker.exists():
            log(f"  pushing {images} images with {tags} tags (cached in {root.name})")
            run(
                [PYTHON, str(BENCH / "populate_inventory.py"), reg.host, REPO, str(images)], timeout=3600
            ).check()
            marker.write_text("ok")
        log("  boda tags / image_list")
        cases = {
            "boda tags (process)": [BODA, "tags", f"{reg.host}/{REPO}", "--json"],
            "boda image_list (process, Python API)": [
                PYTHON,
                str(BENCH / "inventory_boda.py"),
                reg.host,
                REPO,
            ],
            "skopeo list-tags (process)": [
                SKOPEO,
                "list-tags",
                "--tls-verify=false",
                f"docker://{reg.host}/{REPO}",
            ],
        }
        listed: list[str] = []
        for name, cmd in cases.items():
            wall, cpu, rss, reqs = Series(), Series(), Series(), Series()
            extra: dict[str, Any] = {}
            for _ in range(runs):
                reg.mark()
                proc = run(cmd).check()
                reqs.add(sum(reg.requests().values()))
                wall.add(proc.wall)
                cpu.add(proc.cpu)
                rss.add(proc.rss_mib)
                if name.startswith("boda image_list"):
                    extra = json.loads(proc.stdout)
                if name.startswith("skopeo list-tags"):
                    listed = json.loads(proc.stdout).get("Tags") or []
            result["tools"][name] = {
                "wall": wall.to_json(),
                "cpu": cpu.to_json(),
                "rss_mib": rss.to_json(),
                "requests": reqs.to_json(),
                **extra,
            }
        log(f"  skopeo inspect loop ({inspect_cap} of {tags} tags)")
        per = Series()
        cpu_per = Series()
        digests: dict[str, str] = {}
        reg.mark()
        for tag in sorted(listed)[:inspect_cap]:
            proc = run(
                [SKOPEO, "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/{REPO}:{tag}"]
            ).check()
            per.add(proc.wall)
            cpu_per.add(proc.cpu)
            digests[tag] = "sha256:" + hashlib.sha256(proc.stdout.encode()).hexdigest()
        loop_reqs = sum(reg.requests().values())
        list_tags = result["tools"]["skopeo list-tags (process)"]["wall"]["median"]
        mean = sum(per.values) / len(per.values) if per.values else float("nan")
        result["skopeo_loop"] = {
            "inspected": len(per.values),
            "per_inspect": per.to_json(),
            "cpu_per_inspect": cpu_per.to_json(),
            "requests_per_inspect": loop_reqs / max(1, len(per.values)),
            "measured_seconds": sum(per.values),
            "extrapolated_seconds": list_tags + mean * len(listed),
            "listed_tags": len(listed),
        }
    finally:
        reg.stop()
    return result
