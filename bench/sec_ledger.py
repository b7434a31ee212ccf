"""Section 5: ledger latency at size (SQLite and PostgreSQL) and concurrent writers on PostgreSQL."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from _common import BENCH, BODA, DATA, PYTHON, Series, free_port, log, run
from sec_inventory import BEFORE_REF, _before_source
from serve_load import load

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "boda_bench"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"


def _config(folder: Path, ledger: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "boda.toml"
    config.write_text(
        f'registry = "oci-layout:{folder / "registry"}"\n'
        f'ledger = "{ledger}"\n'
        '[[environments]]\nname = "dev"\n'
        '[[environments]]\nname = "stg"\nafter = "dev"\nrequires = ["tests"]\n'
        '[[environments]]\nname = "prd"\nafter = "stg"\nrequires = ["tests"]\n'
    )
    return config


def _postgres_ok() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


def _recreate_pg(name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_pg(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _fill(url: str, promotions: int, builds: int) -> dict[str, Any]:
    proc = run(
        [PYTHON, str(BENCH / "gen_ledger.py"), url, "--promotions", str(promotions), "--builds", str(builds)],
        timeout=3600,
    ).check()
    return dict(json.loads(proc.stdout))


def _measure(config: Path, apps: list[str], runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for app in apps:
        per: dict[str, Any] = {}
        for cmd in ("status", "history"):
            wall, rss = Series(), Series()
            size = 0
            for _ in range(runs):
                proc = run([BODA, "--config", str(config), cmd, app, "--json"]).check()
                wall.add(proc.wall)
                rss.add(proc.rss_mib)
                size = len(proc.stdout)
            per[f"boda {cmd} (process)"] = {"wall": wall.to_json(), "rss_mib": rss.to_json(), "bytes": size}
        inproc = json.loads(
            run([PYTHON, str(BENCH / "ledger_inproc.py"), str(config), app, str(runs)]).check().stdout
        )
        per["inproc"] = {k: Series(v).to_json() if isinstance(v, list) else v for k, v in inproc.items()}
        out[app] = per
    return out


def _first_byte(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(seconds to the first byte of stdout, seconds to the end, bytes) of one process."""
    import os
    import subprocess

    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    at_first = time.perf_counter() - started
    size = len(first) + len(proc.stdout.read())
    proc.wait()
    return at_first, time.perf_counter() - started, size


# Ledger schema 4 (what each build got) came after the code the "before" rows run (BEFORE_REF knows
# schema 3 and rightly refuses a newer ledger): those rows get a copy of the same ledger, taken back.
_TO_SCHEMA_3 = (
    "DROP INDEX builds_app_tag",
    "ALTER TABLE builds DROP COLUMN size",
    "ALTER TABLE builds DROP COLUMN media_type",
    "ALTER TABLE builds DROP COLUMN tag",
    "DELETE FROM schema_version WHERE version >= 4",
)


def _schema3_sqlite(db: Path) -> Path:
    """A copy of the SQLite ledger `db` in schema 3 (made once, kept beside it)."""
    import sqlite3

    copy = db.with_name(db.stem + "-schema3.db")
    if not copy.exists():
        shutil.copyfile(db, copy)
        with sqlite3.connect(copy) as conn:
            for statement in _TO_SCHEMA_3:
                conn.execute(statement)
    return copy


def _schema3_postgres(db: str) -> str:
    """A copy of the PostgreSQL bench database `db` in schema 3; its URL."""
    import psycopg
    from psycopg import sql

    name = f"{db}_schema3"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(db))
        )
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _TO_SCHEMA_3:
            conn.execute(statement)
    return url


def _history_stream(config: Path, app: str, runs: int, before_config: Path | None = None) -> dict[str, Any]:
    """`boda history APP --json` streamed, beside the code before issue 15.5 (built whole, then printed)."""
    cases: dict[str, tuple[list[str], dict[str, str]]] = {
        "boda history --json (streamed)": ([BODA, "--config", str(config), "history", app, "--json"], {}),
        "boda history --jsonl": ([BODA, "--config", str(config), "history", app, "--jsonl"], {}),
    }
    before = _before_source()
    if before is not None:
        cases[f"boda history --json before 15.5 ({BEFORE_REF}: built whole)"] = (
            [PYTHON, "-m", "boda", "--config", str(before_config or config), "history", app, "--json"],
            {"PYTHONPATH": str(before)},
        )
    out: dict[str, Any] = {}
    for name, (cmd, env) in cases.items():
        first, total, rss = Series(), Series(), Series()
        size = 0
        for _ in range(runs):
            at_first, at_end, size = _first_byte(cmd, env)
            first.add(at_first)
            total.add(at_end)
            rss.add(run(cmd, env=env).check().rss_mib)
        out[name] = {
            "first_byte": first.to_json(),
            "wall": total.to_json(),
            "rss_mib": rss.to_json(),
            "bytes": size,
        }
    return out


def _serving(config: Path, app: str, seconds: float, before_config: Path | None = None) -> dict[str, Any]:
    """50 concurrent clients on /api/apps/APP/status of `boda serve` (answers reused, and not), and of
    the server before issue 15.4 (a context per request), each started on a free port."""
    import subprocess

    import httpx

    servers: dict[str, tuple[list[str], dict[str, str]]] = {
        "boda serve": ([BODA, "--config", str(config), "serve", "--port", "{port}"], {}),
        "boda serve, no answer reused": (
            [PYTHON, str(BENCH / "serve_uncached.py"), str(config), "{port}"],
            {},
        ),
    }
    before = _before_source()
    if before is not None:
        servers[f"boda serve before 15.4 ({BEFORE_REF}: a context per request)"] = (
            [PYTHON, "-m", "boda", "--config", str(before_config or config), "serve", "--port", "{port}"],
            {"PYTHONPATH": str(before)},
        )
    out: dict[str, Any] = {}
    for name, (template, env) in servers.items():
        port = free_port()
        cmd = [part.replace("{port}", str(port)) for part in template]
        import os

        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
        )
        url = f"http://127.0.0.1:{port}/api/apps/{app}/status"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url, timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                out[name] = {"error": "the server did not answer within 30 s"}
                continue
            load(url, 50, 2.0)  # warm-up: connections, pools, caches
            out[name] = load(url, 50, seconds)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return out


def _writers(url: str, n: int, count: int, same_pair: bool) -> dict[str, Any]:
    import subprocess

    start_at = time.time() + 3.0  # time for every writer to import boda and connect
    procs = []
    for k in range(n):
        app = "bench/contended" if same_pair else f"bench/writer{k}"
        procs.append(
            subprocess.Popen(
                [PYTHON, str(BENCH / "ledger_writer.py"), url, app, "prd", str(count), str(start_at)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    errors = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode == 0:
            results.append(json.loads(out))
        else:
            errors.append(err.strip().splitlines()[-1] if err.strip() else f"exit {p.returncode}")
    if not results:
        return {"errors": errors}
    t0 = min(r["start"] for r in results)
    t1 = max(r["end"] for r in results)
    total = sum(r["count"] for r in results)
    late = max(r["start"] for r in results) - t0
    return {
        "writers": n,
        "promotions": total,
        "seconds": t1 - t0,
        "per_second": total / (t1 - t0),
        "conflicts": sum(r["conflicts"] for r in results),
        "start_skew": late,
        "errors": errors,
    }


def section_ledger(
    runs: int, promotions: int, builds: int, writer_count: int, serve_seconds: float = 10.0
) -> dict[str, Any]:
    result: dict[str, Any] = {"promotions": promotions, "builds": builds, "backends": {}}
    apps = ["team/svc00", "team/big"]
    # SQLite: cached between bench runs (same sizes → same file)
    folder = DATA / "ledger"
    db = folder / f"ledger-{promotions}-{builds}.db"
    if not db.exists():
        log(f"  filling SQLite ledger ({promotions} promotions, {builds} builds)")
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("ledger-*.db*"):
            old.unlink()
        tmp = folder / "filling.db"
        for stale in folder.glob("filling.db*"):
            stale.unlink()
        fill = _fill(f"sqlite:///{tmp}", promotions, builds)
        tmp.replace(db)
        result["sqlite_fill"] = fill
    log("  SQLite: status / history")
    sqlite_cfg = _config(DATA / "projects" / "ledger-sqlite", f"sqlite:///{db}")
    result["backends"]["SQLite"] = _measure(sqlite_cfg, apps, runs)
    result["sqlite_bytes"] = db.stat().st_size
    log("  SQLite: history streamed, and served under load")
    sqlite_before = _config(DATA / "projects" / "ledger-sqlite-schema3", f"sqlite:///{_schema3_sqlite(db)}")
    result["history_stream"] = {"SQLite": _history_stream(sqlite_cfg, "team/big", runs, sqlite_before)}
    result["serve"] = {"SQLite": _serving(sqlite_cfg, "team/svc00", serve_seconds, sqlite_before)}

    why_not = _postgres_ok()
    if why_not is not None:
        result["postgres_error"] = why_not
        return result
    log(f"  filling PostgreSQL ledger database {PG_DB}")
    url = _recreate_pg(PG_DB)
    result["postgres_fill"] = _fill(url, promotions, builds)
    pg_cfg = _config(DATA / "projects" / "ledger-pg", url)
    log("  PostgreSQL: status / history")
    result["backends"]["PostgreSQL"] = _measure(pg_cfg, apps, runs)
    log("  PostgreSQL: served under load")
    pg_before = _config(DATA / "projects" / "ledger-pg-schema3", _schema3_postgres(PG_DB))
    result["serve"]["PostgreSQL"] = _serving(pg_cfg, "team/svc00", serve_seconds, pg_before)
    log(f"  PostgreSQL: 8 writer processes x {writer_count} promotions")
    result["writers"] = {
        "distinct (app, env) per writer": _writers(url, 8, writer_count, same_pair=False),
        "all on one (app, env)": _writers(url, 8, writer_count, same_pair=True),
    }
    shutil.rmtree(DATA / "projects" / "ledger-pg", ignore_errors=True)
    return result
