"""Fill a ledger with N promotions and M builds, fast, for section 5.

    python bench/gen_ledger.py URL --promotions 1000000 --builds 100000 [--apps 100 --big-share 0.1]

The schema comes from boda itself (`open_ledger` migrates an empty database); rows then go in with
plain SQL (SQLite executemany in one transaction, PostgreSQL COPY). Apps are `team/svcNN` plus one
busy `team/big` holding `--big-share` of the promotions; environments dev, stg, prd. Every build
gets passing `tests` evidence in dev; `heads` point at each (app, env)'s last promotion. The event
log is left empty: `status` and `history` do not read it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

ENVS = ("dev", "stg", "prd")
START = datetime(2023, 11, 1, tzinfo=UTC)


def _hex(seed: str, n: int) -> str:
    return hashlib.blake2b(seed.encode(), digest_size=n // 2).hexdigest()


def plan(promotions: int, builds: int, apps: int, big_share: float) -> dict[str, tuple[int, int]]:
    """app -> (promotions, builds)."""
    names = [f"team/svc{i:02d}" for i in range(apps - 1)] + ["team/big"]
    big_p = int(promotions * big_share)
    big_b = int(builds * big_share)
    out: dict[str, tuple[int, int]] = {}
    rest_p, rest_b = promotions - big_p, builds - big_b
    for i, name in enumerate(names[:-1]):
        p = rest_p // (apps - 1) + (1 if i < rest_p % (apps - 1) else 0)
        b = rest_b // (apps - 1) + (1 if i < rest_b % (apps - 1) else 0)
        out[name] = (p, b)
    out["team/big"] = (big_p, big_b)
    return out


def rows(spec: dict[str, tuple[int, int]]) -> Iterator[tuple[str, str, tuple[object, ...]]]:
    """("build"|"promotion"|"evidence", app, row) in global time order."""
    total_p = sum(p for p, _ in spec.values())
    step = timedelta(seconds=(3 * 365 * 24 * 3600) / max(1, total_p))
    cursors = {app: 0 for app in spec}
    built = {app: 0 for app in spec}
    last: dict[tuple[str, str], str] = {}
    seq = 0
    active = [app for app, (p, _) in spec.items() if p > 0]
    while active:
        still = []
        for app in active:
            p_total, b_total = spec[app]
            j = cursors[app]
            # build index this promotion uses: builds spread evenly over the app's promotions
            b_index = min(b_total - 1, j * b_total // p_total) if b_total else 0
            when = START + step * seq
            while built[app] <= b_index and built[app] < b_total:
                k = built[app]
                commit = _hex(f"{app}/{k}/commit", 40)
                digest = "sha256:" + _hex(f"{app}/{k}", 64)
                ref = f"registry.example.com/{app}@{digest}"
                yield "build", app, (app, commit, digest, ref, when, "ci-bot")
                yield "evidence", app, (app, "dev", digest, "tests", "pass", "ci-bot", when, None)
                built[app] += 1
            env = ENVS[j % 3]
            digest = "sha256:" + _hex(f"{app}/{b_index}", 64)
            commit = _hex(f"{app}/{b_index}/commit", 40)
            previous = last.get((app, env))
            kind = "rollback" if j % 97 == 96 else "promote"
            yield (
                "promotion",
                app,
                (
                    app,
                    env,
                    digest,
                    commit,
                    f"registry.example.com/{app}@{digest}",
                    when,
                    "ci-bot",
                    kind,
                    None,
                    previous,
                ),
            )
            last[(app, env)] = digest
            seq += 1
            cursors[app] = j + 1
            if j + 1 < p_total:
                still.append(app)
        active = still


_PROMO_COLS = (
    "app, env, digest, commit_sha, reference, recorded_at, recorded_by, kind, reason, previous_digest"
)
_BUILD_COLS = "app, commit_sha, digest, reference, recorded_at, recorded_by"
_EVIDENCE_COLS = "app, env, digest, kind, result, recorded_by, recorded_at, url"


def fill_sqlite(path: str, spec: dict[str, tuple[int, int]]) -> None:
    import sqlite3

    def iso(row: tuple[object, ...], at: int) -> tuple[object, ...]:
        when = row[at]
        assert isinstance(when, datetime)
        return (*row[:at], when.isoformat(timespec="microseconds"), *row[at + 1 :])

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    builds: list[tuple[object, ...]] = []
    promos: list[tuple[object, ...]] = []
    evidence: list[tuple[object, ...]] = []
    heads: dict[tuple[str, str], tuple[int, str]] = {}
    pid = 0

    def flush() -> None:
        conn.executemany(f"INSERT INTO builds ({_BUILD_COLS}) VALUES (?, ?, ?, ?, ?, ?)", builds)
        conn.executemany(
            f"INSERT INTO promotions (id, {_PROMO_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", promos
        )
        conn.executemany(f"INSERT INTO evidence ({_EVIDENCE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", evidence)
        builds.clear()
        promos.clear()
        evidence.clear()

    for kind, app, row in rows(spec):
        if kind == "build":
            builds.append(iso(row, 4))
        elif kind == "evidence":
            evidence.append(iso(row, 6))
        else:
            pid += 1
            promos.append((pid, *iso(row, 5)))
            heads[(app, str(row[1]))] = (pid, str(row[2]))
        if len(promos) >= 50_000:
            flush()
    flush()
    conn.executemany("INSERT INTO apps (name) VALUES (?) ON CONFLICT DO NOTHING", [(a,) for a in spec])
    conn.executemany(
        "INSERT INTO heads (app, env, promotion_id, digest) VALUES (?, ?, ?, ?)",
        [(a, e, p, d) for (a, e), (p, d) in heads.items()],
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def fill_postgres(url: str, spec: dict[str, tuple[int, int]]) -> None:
    import psycopg

    heads: dict[tuple[str, str], tuple[int, str]] = {}
    pid = 0
    with psycopg.connect(url, autocommit=True) as conn:
        builds: list[tuple[object, ...]] = []
        evidence: list[tuple[object, ...]] = []
        with conn.cursor() as cur, cur.copy(f"COPY promotions ({_PROMO_COLS}) FROM STDIN") as copy:
            for kind, app, row in rows(spec):
                if kind == "build":
                    builds.append(row)
                elif kind == "evidence":
                    evidence.append(row)
                else:
                    pid += 1  # identity values follow COPY order in a fresh database
                    copy.write_row(row)
                    heads[(app, str(row[1]))] = (pid, str(row[2]))
        with conn.cursor() as cur, cur.copy(f"COPY builds ({_BUILD_COLS}) FROM STDIN") as copy:
            for row in builds:
                copy.write_row(row)
        with conn.cursor() as cur, cur.copy(f"COPY evidence ({_EVIDENCE_COLS}) FROM STDIN") as copy:
            for row in evidence:
                copy.write_row(row)
        conn.execute(
            "INSERT INTO apps (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (list(spec),)
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO heads (app, env, promotion_id, digest) VALUES (%s, %s, %s, %s)",
                [(a, e, p, d) for (a, e), (p, d) in heads.items()],
            )
        conn.execute("ANALYZE")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--promotions", type=int, default=1_000_000)
    parser.add_argument("--builds", type=int, default=100_000)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--big-share", type=float, default=0.1)
    args = parser.parse_args()
    started = time.perf_counter()

    from boda.ledger import open_ledger

    open_ledger(args.url, create=True).close()  # creates and migrates the schema
    spec = plan(args.promotions, args.builds, args.apps, args.big_share)
    if args.url.startswith("sqlite:///"):
        fill_sqlite(args.url[len("sqlite:///") :], spec)
    else:
        fill_postgres(args.url, spec)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "promotions": args.promotions,
                "builds": args.builds,
                "apps": args.apps,
                "big": list(spec["team/big"]),
                "typical": list(spec["team/svc00"]),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
