"""Small synthetic images with real layers, for the demo, the tests and the benchmarks.

Every image is deterministic for its seed: a gzip'ed tar layer of pseudo-random bytes, a config
with the right diff_ids, and a manifest (OCI or Docker v2). Indexes hold one image per platform.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from boda.registry.base import Registry
from boda.types import (
    ANNOTATION_REF_NAME,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Digest,
    Manifest,
)

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
COSIGN_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"


@dataclass(frozen=True)
class SyntheticImage:
    """A manifest with the blobs it needs; an index carries its child images."""

    manifest: Manifest
    blobs: dict[Digest, bytes]
    children: tuple[SyntheticImage, ...] = ()

    @property
    def digest(self) -> Digest:
        """The manifest digest."""
        return self.manifest.digest

    def all_blobs(self) -> dict[Digest, bytes]:
        """Blobs of this image and of every child."""
        out = dict(self.blobs)
        for child in self.children:
            out.update(child.all_blobs())
        return out


def _noise(seed: str, size: int) -> bytes:
    """`size` deterministic pseudo-random bytes (incompressible, so layers have real size)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _layer(seed: str, size: int) -> tuple[bytes, str]:
    """A gzip'ed tar holding one file of `size` bytes; returns (blob, diff_id)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = _noise(seed, size)
        info = tarfile.TarInfo(name=f"data/{hashlib.sha256(seed.encode()).hexdigest()[:16]}.bin")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = buf.getvalue()
    return gzip.compress(
        tar_bytes, compresslevel=1, mtime=0
    ), f"sha256:{hashlib.sha256(tar_bytes).hexdigest()}"


def make_image(
    seed: str,
    *,
    layers: int = 2,
    layer_size: int = 1024,
    arch: str = "amd64",
    os: str = "linux",
    docker: bool = False,
    annotations: dict[str, str] | None = None,
) -> SyntheticImage:
    """A single-platform image of `layers` layers of `layer_size` random bytes each."""
    blobs: dict[Digest, bytes] = {}
    layer_descs = []
    diff_ids = []
    for i in range(layers):
        blob, diff_id = _layer(f"{seed}/{arch}/{i}", layer_size)
        digest = Digest.of(blob)
        blobs[digest] = blob
        diff_ids.append(diff_id)
        layer_descs.append(
            {
                "mediaType": DOCKER_LAYER if docker else OCI_LAYER_GZIP,
                "digest": str(digest),
                "size": len(blob),
            }
        )
    config = json.dumps(
        {
            "architecture": arch,
            "os": os,
            "config": {"Labels": {"dev.boda.seed": seed}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = Digest.of(config)
    blobs[config_digest] = config
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": str(config_digest),
            "size": len(config),
        },
        "layers": layer_descs,
    }
    if annotations and not docker:
        doc["annotations"] = dict(annotations)
    return SyntheticImage(Manifest.from_json(doc), blobs)


def make_index(
    seed: str,
    *,
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
    docker: bool = False,
    layers: int = 1,
    layer_size: int = 1024,
) -> SyntheticImage:
    """A multi-platform index (or Docker manifest list) with one child image per platform."""
    children = []
    entries = []
    for platform in platforms:
        os_name, _, arch = platform.partition("/")
        child = make_image(seed, layers=layers, layer_size=layer_size, arch=arch, os=os_name, docker=docker)
        children.append(child)
        entries.append(
            {
                "mediaType": child.manifest.media_type,
                "digest": str(child.digest),
                "size": child.manifest.size,
                "platform": {"architecture": arch, "os": os_name},
            }
        )
    doc = {"schemaVersion": 2, "mediaType": DOCKER_LIST if docker else OCI_INDEX, "manifests": entries}
    return SyntheticImage(Manifest.from_json(doc), {}, tuple(children))


def make_referrer(
    subject: Manifest, *, artifact_type: str = COSIGN_SIG, payload: bytes = b"sig"
) -> SyntheticImage:
    """An OCI 1.1 artifact manifest whose `subject` is `subject` (a signature, SBOM, ...)."""
    empty = b"{}"
    layer_digest = Digest.of(payload)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": str(Digest.of(empty)), "size": len(empty)},
        "layers": [
            {"mediaType": "application/octet-stream", "digest": str(layer_digest), "size": len(payload)}
        ],
        "subject": {"mediaType": subject.media_type, "digest": str(subject.digest), "size": subject.size},
        "annotations": {"dev.boda.kind": artifact_type},
    }
    return SyntheticImage(Manifest.from_json(doc), {Digest.of(empty): empty, layer_digest: payload})


def push(registry: Registry, repo: str, image: SyntheticImage, tag: str | None = None) -> Digest:
    """Upload blobs (skipping those present), children by digest, then the manifest."""
    for child in image.children:
        push(registry, repo, child)
    for digest, data in image.blobs.items():
        if registry.blob_head(repo, digest) is None:
            registry.blob_put(repo, digest, len(data), iter([data]))
    return registry.manifest_put(repo, tag or str(image.digest), image.manifest)


def write_oci_layout(path: Path, image: SyntheticImage, tag: str) -> None:
    """Write a plain OCI image layout that `skopeo copy oci:PATH:TAG ...` can read."""
    blobs_dir = path / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)

    def put(digest: Digest, data: bytes) -> None:
        (blobs_dir / digest.hex).write_bytes(data)

    def walk(img: SyntheticImage) -> None:
        for child in img.children:
            walk(child)
        for digest, data in img.blobs.items():
            put(digest, data)
        put(img.digest, img.manifest.raw)

    walk(image)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index_file = path / "index.json"
    entries = json.loads(index_file.read_text())["manifests"] if index_file.exists() else []
    entries = [e for e in entries if e.get("annotations", {}).get(ANNOTATION_REF_NAME) != tag]
    entries.append(image.manifest.descriptor({ANNOTATION_REF_NAME: tag}).to_json())
    index_file.write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
