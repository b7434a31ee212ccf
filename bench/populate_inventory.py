"""Push one app with many tags for section 6: IMAGES tiny images (a shared layer and a unique
config each), every image tagged twice (its commit tag and `build-<n>`).

    python bench/populate_inventory.py HOST REPO IMAGES

Plain httpx with 8 threads; untimed setup.
"""

from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload_blob(client: httpx.Client, repo: str, data: bytes, digest: str) -> None:
    """One monolithic upload (POST a session, PUT the bytes)."""
    start = client.post(f"/v2/{repo}/blobs/uploads/")
    start.raise_for_status()
    location = start.headers["location"]
    sep = "&" if "?" in location else "?"
    client.put(
        f"{location}{sep}digest={digest}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    ).raise_for_status()


def upload_layer(client: httpx.Client, repo: str) -> tuple[str, int]:
    """The one layer every image shares: (digest, size)."""
    layer = b"\x1f\x8b" + hashlib.sha512(b"shared layer").digest() * 64
    upload_blob(client, repo, layer, _digest(layer))
    return _digest(layer), len(layer)


def image_manifest(client: httpx.Client, repo: str, layer: tuple[str, int], n: int) -> bytes:
    """Upload image n's unique config; return its manifest (not yet pushed)."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"build": str(n)}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = _digest(config)
    upload_blob(client, repo, config, config_digest)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer[0],
                    "size": layer[1],
                }
            ],
        },
        separators=(",", ":"),
    ).encode()


def main() -> int:
    host, repo, count_text = sys.argv[1:4]
    count = int(count_text)
    base = f"http://{host}"
    client = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=16))
    layer = upload_layer(client, repo)

    def image(n: int) -> None:
        manifest = image_manifest(client, repo, layer, n)
        commit_tag = hashlib.sha1(f"commit {n}".encode()).hexdigest()[:8]
        for tag in (commit_tag, f"build-{n}"):
            client.put(
                f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
            ).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(image, range(count)))
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
