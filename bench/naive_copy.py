"""A naive pull + push, as a script a CI job might carry: GET every blob whole, re-PUT it, PUT the
manifest. No mounts, no existence checks, no concurrency; manifest bytes are kept (same digest).

    python bench/naive_copy.py http://127.0.0.1:5000 src/repo:tag dst/repo:tag

Prints {"requests": N, "bytes_uploaded": B} on stdout.
"""

from __future__ import annotations

import json
import sys

import httpx

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def main() -> int:
    base, src, dst = sys.argv[1:4]
    src_repo, src_tag = src.rsplit(":", 1)
    dst_repo, dst_tag = dst.rsplit(":", 1)
    requests = 0
    uploaded = 0
    with httpx.Client(base_url=base, timeout=120) as client:
        got = client.get(f"/v2/{src_repo}/manifests/{src_tag}", headers={"Accept": ACCEPT})
        got.raise_for_status()
        requests += 1
        raw = got.content
        media_type = got.headers["content-type"]
        doc = json.loads(raw)
        for desc in [doc["config"], *doc["layers"]]:
            blob = client.get(f"/v2/{src_repo}/blobs/{desc['digest']}", follow_redirects=True)
            blob.raise_for_status()
            requests += 1
            start = client.post(f"/v2/{dst_repo}/blobs/uploads/")
            start.raise_for_status()
            requests += 1
            location = start.headers["location"]
            sep = "&" if "?" in location else "?"
            put = client.put(
                f"{location}{sep}digest={desc['digest']}",
                content=blob.content,
                headers={"Content-Type": "application/octet-stream"},
            )
            put.raise_for_status()
            requests += 1
            uploaded += len(blob.content)
        put = client.put(
            f"/v2/{dst_repo}/manifests/{dst_tag}", content=raw, headers={"Content-Type": media_type}
        )
        put.raise_for_status()
        requests += 1
    print(json.dumps({"requests": requests, "bytes_uploaded": uploaded}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
