"""Section 6: inventory of an app with many tags (tags and their digests): boda vs skopeo."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from _common import BENCH, BODA, DATA, PYTHON, SKOPEO, Registry, Series, log, run

REPO = "inv/app"
GC_REPO = "gc/app"
KEEP_NEWEST = 100
#: main just before issue 15.2 (inventory from the ledger and a manifest cache): the code path
#: `gc plan` took before, run side by side from a copy of its source.
BEFORE_REF = "942c18b"


def _before_source() -> Path | None:
    """The src/ folder of BEFORE_REF (extracted once), or None outside a git checkout."""
    import subprocess

    target = DATA / f"before-{BEFORE_REF}"
    if (target / "src" / "boda").is_dir():
        return target / "src"
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(BENCH.parent), "archive", BEFORE_REF, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"


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
    result["gc_plan"] = _gc_plan(tags, runs)
    return result


def _gc_config(folder: Path, host: str, ledger: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lifecycle.json").write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "description": f"keep the newest {KEEP_NEWEST}",
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": KEEP_NEWEST,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        )
    )
    config = folder / "boda.toml"
    config.write_text(
        f'registry = "http://{host}"\nledger = "sqlite:///{ledger}"\n'
        '[promotion]\nstrategy = "tags"\n'
        '[[environments]]\nname = "dev"\n[[environments]]\nname = "stg"\nafter = "dev"\n'
        '[[environments]]\nname = "prd"\nafter = "stg"\n'
        '[retention]\nrollback_depth = 3\nmin_age = "1d"\npolicy = "lifecycle.json"\n'
    )
    return config


def _gc_plan(images: int, runs: int) -> dict[str, Any]:
    """`boda gc plan` of an app boda built `images` times (a commit tag each, all recorded, three
    environment tags): cold (empty manifest cache) and warm; cold on a ledger whose builds were
    recorded before schema 4 (no media type); and main before issue 15.2."""
    root = DATA / f"registry-gc-{images}"
    marker = root / "populated-v2"  # v2: builds.json, and the ledger records each build's media type
    ledger = root / "ledger.db"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
    reg = Registry(root, "gc").start()
    out: dict[str, Any] = {"images": images, "keep": KEEP_NEWEST, "tools": {}}
    try:
        if not marker.exists():
            log(f"  pushing {images} commit-tagged images and recording their builds (cached in {root.name})")
            run(
                [PYTHON, str(BENCH / "populate_gc.py"), reg.host, GC_REPO, str(images), str(ledger)],
                cwd=BENCH,
                timeout=3600,
            ).check()
            marker.write_text("ok")
        config = _gc_config(DATA / "projects" / "gc-plan", reg.host, ledger)
        cache = DATA / "gc-manifest-cache"
        plan_cmd = [BODA, "--config", str(config), "gc", "plan", GC_REPO, "--json"]
        cases: dict[str, tuple[list[str], bool, dict[str, str]]] = {
            "boda gc plan, cold (empty manifest cache)": (plan_cmd, True, {}),
            "boda gc plan, warm": (plan_cmd, False, {}),
        }
        before = _before_source()
        if before is not None:
            # The same builds as main before issue 15.2 recorded them (ledger schema 3: no media
            # type), once for that code path and once, migrated by this boda, for a cold plan.
            old = root / f"ledger-{BEFORE_REF}.db"
            if not old.exists():
                run(
                    [
                        PYTHON,
                        str(BENCH / "populate_gc.py"),
                        "--ledger-only",
                        str(root / "builds.json"),
                        str(old),
                    ],
                    cwd=BENCH,
                    env={"PYTHONPATH": str(before)},
                    timeout=600,
                ).check()
            migrated = root / "ledger-before-schema-4.db"
            shutil.copyfile(old, migrated)
            old_config = _gc_config(DATA / "projects" / "gc-plan-old", reg.host, old)
            migrated_config = _gc_config(DATA / "projects" / "gc-plan-migrated", reg.host, migrated)
            cases["boda gc plan, cold, builds recorded before ledger schema 4 (no media type: each read)"] = (
                [BODA, "--config", str(migrated_config), *plan_cmd[3:]],
                True,
                {},
            )
            cases[f"boda gc plan before 15.2 ({BEFORE_REF}: a HEAD per tag, a GET per digest)"] = (
                [PYTHON, "-m", "boda", "--config", str(old_config), *plan_cmd[3:]],
                False,
                {"PYTHONPATH": str(before)},
            )
        log("  gc plan: cold, warm, cold before schema 4, and a HEAD per tag")
        series: dict[str, dict[str, Series]] = {
            name: {"wall": Series(), "cpu": Series(), "rss": Series(), "requests": Series()} for name in cases
        }
        reported: dict[str, Any] = {}
        for _ in range(runs):
            for name, (cmd, cold, env) in cases.items():
                if cold:
                    shutil.rmtree(cache, ignore_errors=True)
                reg.mark()
                proc = run(cmd, env={"BODA_CACHE_DIR": str(cache), **env}, timeout=1800).check()
                entry = series[name]
                entry["wall"].add(proc.wall)
                entry["cpu"].add(proc.cpu)
                entry["rss"].add(proc.rss_mib)
                counted = reg.requests()
                entry["requests"].add(sum(counted.values()))
                data = json.loads(proc.stdout)
                reported[name] = {
                    "requests_reported": data.get("requests"),
                    "kinds": dict(counted),
                    "summary": data.get("summary"),
                    "tags": data.get("tags"),
                }
        for name, entry in series.items():
            out["tools"][name] = {k: v.to_json() for k, v in entry.items()} | reported.get(name, {})
    finally:
        reg.stop()
    return out
