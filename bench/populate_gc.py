"""An app boda built 10,000 times, for the `gc plan` lines of section 6: IMAGES tiny images in one
repository, each under the commit tag boda writes (`{commit:.8}`), every build recorded in a SQLite
ledger (bulk SQL into boda's own schema), and the newest three promoted to dev, stg and prd (with
their environment tags, strategy `tags`).

    python bench/populate_gc.py HOST REPO IMAGES LEDGER_PATH

Plain httpx with 8 threads and sqlite3; untimed setup. Prints {"digests": [...newest three]}.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
from populate_inventory import OCI_MANIFEST, image_manifest, upload_layer

ENVS = ("dev", "stg", "prd")


def commit_of(n: int) -> str:
    return hashlib.sha1(f"gc bench commit {n}".encode()).hexdigest()


def main() -> int:
    host, repo, count_text, ledger_path = sys.argv[1:5]
    count = int(count_text)
    client = httpx.Client(base_url=f"http://{host}", timeout=60, limits=httpx.Limits(max_connections=16))
    layer = upload_layer(client, repo)

    def image(n: int) -> tuple[int, str]:
        manifest = image_manifest(client, repo, layer, n)
        tag = commit_of(n)[:8]
        response = client.put(
            f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        response.raise_for_status()
        return n, "sha256:" + hashlib.sha256(manifest).hexdigest()

    with ThreadPoolExecutor(8) as pool:
        digests = dict(pool.map(image, range(count)))
    manifests = {}
    for env, n in zip(ENVS, (count - 3, count - 2, count - 1), strict=True):
        got = client.get(f"/v2/{repo}/manifests/{commit_of(n)[:8]}", headers={"Accept": OCI_MANIFEST})
        got.raise_for_status()
        manifests[env] = got.content
        client.put(
            f"/v2/{repo}/manifests/{env}", content=got.content, headers={"Content-Type": OCI_MANIFEST}
        ).raise_for_status()
    client.close()

    from boda.ledger import open_ledger

    open_ledger(f"sqlite:///{ledger_path}", create=True).close()  # boda's schema
    start = datetime(2025, 1, 1, tzinfo=UTC)
    conn = sqlite3.connect(ledger_path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO apps (name) VALUES (?) ON CONFLICT DO NOTHING", (repo,))
    conn.executemany(
        "INSERT INTO builds (app, commit_sha, digest, reference, recorded_at, recorded_by)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                repo,
                commit_of(n),
                digests[n],
                f"{host}/{repo}@{digests[n]}",
                (start + timedelta(minutes=n)).isoformat(timespec="microseconds"),
                "ci",
            )
            for n in range(count)
        ],
    )
    for i, (env, n) in enumerate(zip(ENVS, (count - 3, count - 2, count - 1), strict=True)):
        conn.execute(
            "INSERT INTO promotions (id, app, env, digest, commit_sha, reference, recorded_at, recorded_by,"
            " kind) VALUES (?, ?, ?, ?, ?, ?, ?, 'ci', 'promote')",
            (
                i + 1,
                repo,
                env,
                digests[n],
                commit_of(n),
                f"{host}/{repo}@{digests[n]}",
                (start + timedelta(minutes=count + i)).isoformat(timespec="microseconds"),
            ),
        )
        conn.execute(
            "INSERT INTO heads (app, env, promotion_id, digest) VALUES (?, ?, ?, ?)",
            (repo, env, i + 1, digests[n]),
        )
    conn.execute("COMMIT")
    conn.close()
    print(json.dumps({"digests": [digests[count - 3], digests[count - 2], digests[count - 1]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
