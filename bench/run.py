"""`make bench`: every benchmark of issue 6, side by side with skopeo, into bench/RESULTS.md.

    .venv/bin/python bench/run.py [--quick] [--runs N] [--layers 8] [--layer-mib 16]
                                  [--only 1,startup,2,2b,3,4,5,6,7]

Environment overrides: BENCH_RUNS, BENCH_LAYERS, BENCH_LAYER_MIB. Generated data goes to
bench/data/ (gitignored; images, documents and the SQLite ledger are cached there between runs),
raw numbers to bench/out/results.json. Registry processes are started here on free ports and
stopped by pid; the PostgreSQL database `boda_bench` is created and dropped here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from _common import BENCH, DATA, OUT, Registry, log, machine, prepare_environment, run, versions
from report import render
from sec_inventory import section_inventory
from sec_ledger import PG_DB, drop_pg, section_ledger
from sec_policy import section_policy
from sec_registry import (
    Settings,
    push_image,
    section_cross,
    section_promotion,
    section_release,
    section_startup,
    section_tag_move,
)
from sec_runtime import section_runtime

ALL = ["1", "startup", "2", "2b", "3", "4", "5", "6", "7"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and 3 runs, for development")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "0")) or None)
    parser.add_argument("--layers", type=int, default=int(os.environ.get("BENCH_LAYERS", "8")))
    parser.add_argument("--layer-mib", type=float, default=float(os.environ.get("BENCH_LAYER_MIB", "16")))
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated sections")
    parser.add_argument("--results", default=str(BENCH / "RESULTS.md"), help="where to write the report")
    args = parser.parse_args()
    quick = args.quick
    runs = args.runs or (3 if quick else 5)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(ALL)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {ALL}")

    prepare_environment()
    DATA.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        runs=runs,
        layers=args.layers if not quick or "BENCH_LAYERS" in os.environ else 2,
        layer_mib=args.layer_mib if not quick or "BENCH_LAYER_MIB" in os.environ else 4,
        startup_runs=max(runs, 10),
    )
    started = time.perf_counter()
    results: dict[str, Any] = {
        "quick": quick,
        "runs": runs,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "versions": versions(),
        "settings": {"layers": settings.layers, "layer_mib": settings.layer_mib},
        "sections": {},
        "errors": {},
    }
    # Warm bytecode caches (as an installed tool has them) before anything is timed.
    run([sys.executable, "-m", "compileall", "-q", str(BENCH.parent / "src" / "boda")])
    run([sys.executable, "-c", "import boda.cli, boda.registry.oci, boda.ledger.sqlite, boda.policy"])

    regs: list[Registry] = []
    needs_registry = any(s in only for s in ("1", "startup", "2", "2b", "3"))
    reg_a = reg_b = None
    image: dict[str, Any] = {}
    try:
        if needs_registry:
            for name in ("registry-a", "registry-b", "projects"):
                shutil.rmtree(DATA / name, ignore_errors=True)
            reg_a = Registry(DATA / "registry-a", "a").start()
            regs.append(reg_a)
            log(f"registry a on {reg_a.host} (pid {reg_a.proc.pid if reg_a.proc else '?'})")
            log(f"generating and pushing the image ({settings.layers} x {settings.layer_mib:g} MiB)")
            image = push_image(reg_a, settings)

        def section(key: str, title: str, fn: Callable[[], Any]) -> None:
            if key not in only:
                return
            log(f"section {key}: {title}")
            t0 = time.perf_counter()
            try:
                results["sections"][key] = fn()
            except Exception as exc:
                traceback.print_exc()
                results["errors"][key] = f"{type(exc).__name__}: {exc}"
            log(f"section {key} done in {time.perf_counter() - t0:.0f} s")

        assert reg_a is not None or not needs_registry
        if reg_a is not None:
            ra = reg_a
            section("1", "promotion between repositories", lambda: section_promotion(ra, settings, image))
            ledger0 = DATA / "projects" / "promote-r0" / "ledger.db"
            section("startup", "CLI start-up", lambda: section_startup(settings, ledger0))
            section("2", "tag move", lambda: section_tag_move(ra, settings))
            section("2b", "release of 20 apps", lambda: section_release(ra, settings))
            if "3" in only:
                reg_b = Registry(DATA / "registry-b", "b").start()
                regs.append(reg_b)
                rb = reg_b
                section("3", "copy across registries", lambda: section_cross(ra, rb, settings))
        for reg in regs:
            reg.stop()
        regs.clear()
        sizes = [10_000, 100_000, 300_000] if quick else [10_000, 100_000, 300_000, 1_000_000]
        section("4", "policy evaluation scaling", lambda: section_policy(sizes, runs, 2 if quick else 3))
        section(
            "5",
            "ledger",
            lambda: section_ledger(
                runs,
                100_000 if quick else 1_000_000,
                10_000 if quick else 100_000,
                50 if quick else 200,
                serve_seconds=5.0 if quick else 10.0,
            ),
        )
        section(
            "6",
            "inventory",
            lambda: section_inventory(2_000 if quick else 10_000, runs, 50 if quick else 500),
        )
        section(
            "7",
            "runtime scan",
            lambda: section_runtime(*((50, 500, 60) if quick else (200, 2_000, 300)), runs),
        )
    finally:
        for reg in regs:
            reg.stop()
        if "5" in only:
            try:
                drop_pg(PG_DB)
            except Exception as exc:
                log(f"could not drop database {PG_DB}: {exc}")
    results["seconds"] = time.perf_counter() - started
    results["machine"]["loadavg_end"] = os.getloadavg()
    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))
    report = render(results)
    with open(args.results, "w") as f:
        f.write(report)
    log(f"wrote {args.results} and {OUT / 'results.json'} in {results['seconds']:.0f} s")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
