"""An app boda built 10,000 times, for the `gc plan` lines of section 6: IMAGES tiny images in one
repository, each under the commit tag boda writes (`{commit:.8}`), every build recorded in a SQLite
ledger (bulk SQL into boda's own schema), and the newest three promoted to dev, stg and prd (with
their environment tags, strategy `tags`).

    python bench/populate_gc.py HOST REPO IMAGES LEDGER_PATH
    python bench/populate_gc.py --ledger-only BUILDS_JSON LEDGER_PATH

The first form pushes the images, writes BUILDS_JSON (`builds.json` beside the ledger: each build's
digest and manifest size) and the ledger. The second writes only a ledger from BUILDS_JSON, with the
schema of the boda on PYTHONPATH: a build's commit tag, media type and size go in where that schema
has them (ledger schema 4), as `boda build` records them; an older schema gets the builds as that
boda recorded them. Plain httpx with 8 threads and sqlite3; untimed setup. The first form prints
{"digests": [...newest three]}.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from populate_inventory import OCI_MANIFEST, image_manifest, upload_layer

ENVS = ("dev", "stg", "prd")


def commit_of(n: int) -> str:
    return hashlib.sha1(f"gc bench commit {n}".encode()).hexdigest()


def push_images(host: str, repo: str, count: int) -> dict[str, object]:
    """Push the images and the environment tags; what the ledger needs to record their builds."""
    client = httpx.Client(base_url=f"http://{host}", timeout=60, limits=httpx.Limits(max_connections=16))
    layer = upload_layer(client, repo)

    def image(n: int) -> tuple[int, str, int]:
        manifest = image_manifest(client, repo, layer, n)
        tag = commit_of(n)[:8]
        response = client.put(
            f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        response.raise_for_status()
        return n, "sha256:" + hashlib.sha256(manifest).hexdigest(), len(manifest)

    with ThreadPoolExecutor(8) as pool:
        pushed = sorted(pool.map(image, range(count)))
    for env, n in zip(ENVS, (count - 3, count - 2, count - 1), strict=True):
        got = client.get(f"/v2/{repo}/manifests/{commit_of(n)[:8]}", headers={"Accept": OCI_MANIFEST})
        got.raise_for_status()
        client.put(
            f"/v2/{repo}/manifests/{env}", content=got.content, headers={"Content-Type": OCI_MANIFEST}
        ).raise_for_status()
    client.close()
    return {
        "host": host,
        "repo": repo,
        "builds": [{"commit": commit_of(n), "digest": digest, "size": size} for n, digest, size in pushed],
    }


def write_ledger(data: dict[str, object], ledger_path: str) -> None:
    """The ledger of those builds, in the schema of the boda that is imported."""
    from boda.ledger import open_ledger

    open_ledger(f"sqlite:///{ledger_path}", create=True).close()  # boda's schema
    host, repo = str(data["host"]), str(data["repo"])
    builds: list[dict[str, object]] = data["builds"]  # type: ignore[assignment]
    count = len(builds)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    conn = sqlite3.connect(ledger_path, isolation_level=None)
    facts = "tag" in {row[1] for row in conn.execute("PRAGMA table_info(builds)")}
    columns = "app, commit_sha, digest, reference, recorded_at, recorded_by"
    if facts:
        columns += ", tag, media_type, size"
    rows = []
    for n, b in enumerate(builds):
        row: tuple[object, ...] = (
            repo,
            b["commit"],
            b["digest"],
            f"{host}/{repo}@{b['digest']}",
            (start + timedelta(minutes=n)).isoformat(timespec="microseconds"),
            "ci",
        )
        if facts:
            row += (str(b["commit"])[:8], OCI_MANIFEST, b["size"])
        rows.append(row)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO apps (name) VALUES (?) ON CONFLICT DO NOTHING", (repo,))
    conn.executemany(
        f"INSERT INTO builds ({columns}) VALUES ({', '.join('?' * len(rows[0]))})",
        rows,
    )
    for i, (env, n) in enumerate(zip(ENVS, (count - 3, count - 2, count - 1), strict=True)):
        digest = builds[n]["digest"]
        conn.execute(
            "INSERT INTO promotions (id, app, env, digest, commit_sha, reference, recorded_at, recorded_by,"
            " kind) VALUES (?, ?, ?, ?, ?, ?, ?, 'ci', 'promote')",
            (
                i + 1,
                repo,
                env,
                digest,
                builds[n]["commit"],
                f"{host}/{repo}@{digest}",
                (start + timedelta(minutes=count + i)).isoformat(timespec="microseconds"),
            ),
        )
        conn.execute(
            "INSERT INTO heads (app, env, promotion_id, digest) VALUES (?, ?, ?, ?)",
            (repo, env, i + 1, digest),
        )
    conn.execute("COMMIT")
    conn.close()


def main() -> int:
    if sys.argv[1] == "--ledger-only":
        builds_json, ledger_path = sys.argv[2:4]
        write_ledger(json.loads(Path(builds_json).read_text()), ledger_path)
        return 0
    host, repo, count_text, ledger_path = sys.argv[1:5]
    data = push_images(host, repo, int(count_text))
    (Path(ledger_path).parent / "builds.json").write_text(json.dumps(data))
    write_ledger(data, ledger_path)
    builds: list[dict[str, object]] = data["builds"]  # type: ignore[assignment]
    print(json.dumps({"digests": [b["digest"] for b in builds[-3:]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
