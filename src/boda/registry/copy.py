"""Copy by digest, written once above the `Registry` protocol.

The cheapest path that keeps the digest always wins:

* same repository: one manifest GET and one manifest PUT (a tag move, no blob is touched);
* same registry, other repository: mount every blob (zero blob bytes), children before the parent;
* another registry or backend: HEAD each blob in the destination and stream only the missing ones,
  concurrently and in chunks, verifying each blob's digest on the way.

The destination's reported digest is compared with the source digest; a mismatch is an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from boda.errors import Conflict, DigestMismatch, NotFound
from boda.registry.base import Registry
from boda.types import Descriptor, Digest, Manifest

DEFAULT_CONCURRENCY = 4


@dataclass
class CopyReport:
    """What a copy did. `bytes_uploaded` is blob bytes sent to the destination."""

    source: str
    destination: str
    digest: str = ""
    media_type: str = ""
    skipped: bool = False
    manifests_put: int = 0
    blobs_total: int = 0
    blobs_present: int = 0
    blobs_mounted: int = 0
    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    referrers_copied: int = 0
    requests: int = 0
    seconds: float = 0.0
    _children: set[str] = field(default_factory=set, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        out = asdict(self)
        out.pop("_children")
        out["seconds"] = round(self.seconds, 4)
        return out


ProgressFn = Callable[[str, Descriptor], None]


def _same_registry(a: Registry, b: Registry) -> bool:
    return a is b or a.name == b.name


def _verified(chunks: Iterable[bytes], desc: Descriptor, counter: list[int]) -> Iterator[bytes]:
    """Pass chunks through, hashing them; raise DigestMismatch at the end if they are wrong."""
    hasher = desc.digest.hasher()
    size = 0
    for chunk in chunks:
        hasher.update(chunk)
        size += len(chunk)
        counter[0] += len(chunk)
        yield chunk
    if hasher.hexdigest() != desc.digest.hex or size != desc.size:
        raise DigestMismatch(f"blob {desc.digest} read from the source does not match its digest or size")


class _Copier:
    def __init__(
        self,
        src: Registry,
        src_repo: str,
        dst: Registry,
        dst_repo: str,
        report: CopyReport,
        concurrency: int,
        progress: ProgressFn | None,
    ) -> None:
        self.src, self.src_repo, self.dst, self.dst_repo = src, src_repo, dst, dst_repo
        self.report = report
        self.same_registry = _same_registry(src, dst)
        from concurrent.futures import ThreadPoolExecutor  # only copies across repositories need it

        self.pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        self.progress = progress

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def blob(self, desc: Descriptor) -> str:
        """Make one blob present in the destination; returns how: present, mounted or uploaded."""
        if self.same_registry and self.dst.blob_mount(self.dst_repo, desc.digest, self.src_repo):
            how = "mounted"
        elif not self.same_registry and self.dst.blob_head(self.dst_repo, desc.digest) is not None:
            how = "present"
        else:
            counter = [0]
            with self.src.blob_get(self.src_repo, desc.digest) as chunks:
                self.dst.blob_put(self.dst_repo, desc.digest, desc.size, _verified(chunks, desc, counter))
            self.report.bytes_uploaded += counter[0]
            how = "uploaded"
        if self.progress is not None:
            self.progress(how, desc)
        return how

    def image_blobs(self, manifest: Manifest) -> None:
        blobs = manifest.blobs
        self.report.blobs_total += len(blobs)
        for how in self.pool.map(self.blob, blobs):
            if how == "mounted":
                self.report.blobs_mounted += 1
            elif how == "present":
                self.report.blobs_present += 1
            else:
                self.report.blobs_uploaded += 1

    def manifest_tree(self, manifest: Manifest, ref: str) -> Digest:
        """Copy blobs and children, then PUT `manifest` under `ref`; return the reported digest."""
        for child in manifest.children:
            if str(child.digest) in self.report._children:
                continue
            self.report._children.add(str(child.digest))
            if self.dst.manifest_head(self.dst_repo, str(child.digest)) is not None:
                continue
            child_manifest = self.src.manifest_get(self.src_repo, str(child.digest))
            self.manifest_tree(child_manifest, str(child.digest))
        if not manifest.is_index:
            self.image_blobs(manifest)
        reported = self.dst.manifest_put(self.dst_repo, ref, manifest)
        self.report.manifests_put += 1
        if reported != manifest.digest:
            raise DigestMismatch(
                f"{self.dst.name} stored {self.dst_repo}@{manifest.digest} but reports digest {reported}"
            )
        return reported


def _requests(*registries: Registry) -> int:
    seen: dict[int, int] = {}
    for reg in registries:
        seen[id(reg)] = reg.stats.snapshot()[0]
    return sum(seen.values())


def copy_image(
    src: Registry,
    src_repo: str,
    src_ref: str,
    dst: Registry,
    dst_repo: str,
    dst_tag: str | None = None,
    *,
    expect: Digest | None = None,
    referrers: bool = False,
    overwrite: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressFn | None = None,
) -> CopyReport:
    """Copy the manifest `src_ref` (tag or digest) of `src_repo` to `dst_repo`, tagged `dst_tag`.

    Without `dst_tag` the manifest is stored by digest. With `expect`, a source that resolves to
    another digest is refused. With `referrers`, signatures, SBOMs and attestations of the image
    are copied too. With `overwrite=False` a destination tag naming another digest is a Conflict
    (checked with the HEAD the copy makes anyway; same-repository tag moves always overwrite).
    Nothing is re-serialised: the destination digest equals the source digest.
    """
    started = time.perf_counter()
    before = _requests(src, dst)
    report = CopyReport(
        source=f"{src.name}/{src_repo}:{src_ref}"
        if ":" not in src_ref
        else f"{src.name}/{src_repo}@{src_ref}",
        destination=f"{dst.name}/{dst_repo}" + (f":{dst_tag}" if dst_tag else ""),
    )
    same_repo = _same_registry(src, dst) and src_repo == dst_repo
    if same_repo:
        # A tag move: one read and one write; the PUT's reported digest is the read-back.
        manifest = src.manifest_get(src_repo, str(expect) if expect else src_ref)
        _check_expected(manifest.digest, expect, src_ref)
        _fill(report, manifest)
        if dst_tag is not None:
            reported = dst.manifest_put(dst_repo, dst_tag, manifest)
            report.manifests_put += 1
            if reported != manifest.digest:
                raise DigestMismatch(f"{dst.name} reports {reported} after tagging {manifest.digest}")
        else:
            report.skipped = True
    else:
        head = src.manifest_head(src_repo, src_ref)
        if head is None:
            raise NotFound(f"{src.name}/{src_repo}: no manifest {src_ref}")
        _check_expected(head.digest, expect, src_ref)
        existing = dst.manifest_head(dst_repo, dst_tag or str(head.digest))
        if existing is not None and existing.digest != head.digest and not overwrite:
            raise Conflict(
                f"{dst.name}/{dst_repo}:{dst_tag} already names {existing.digest}; refusing to move it to"
                f" {head.digest}",
                hint="this tag is immutable (a commit tag)",
            )
        if existing is not None and existing.digest == head.digest:
            report.skipped = True
            report.digest, report.media_type = str(head.digest), head.media_type
        else:
            manifest = src.manifest_get(src_repo, str(head.digest))
            _fill(report, manifest)
            copier = _Copier(src, src_repo, dst, dst_repo, report, concurrency, progress)
            try:
                copier.manifest_tree(manifest, dst_tag or str(manifest.digest))
            finally:
                copier.close()
        if referrers:
            report.referrers_copied = _copy_referrers(src, src_repo, dst, dst_repo, head.digest, concurrency)
    report.requests = _requests(src, dst) - before
    report.seconds = time.perf_counter() - started
    return report


def _copy_referrers(
    src: Registry, src_repo: str, dst: Registry, dst_repo: str, digest: Digest, concurrency: int
) -> int:
    """Copy every referrer of `digest` (and theirs) that the destination lacks; return how many."""
    copied = 0
    pending = [digest]
    while pending:
        subject = pending.pop()
        for desc in src.referrers(src_repo, subject):
            pending.append(desc.digest)
            if dst.manifest_head(dst_repo, str(desc.digest)) is not None:
                continue
            sub = copy_image(src, src_repo, str(desc.digest), dst, dst_repo, None, concurrency=concurrency)
            copied += 0 if sub.skipped else 1
    return copied


def _check_expected(actual: Digest, expect: Digest | None, ref: str) -> None:
    if expect is not None and actual != expect:
        raise DigestMismatch(f"source {ref} resolves to {actual}, expected {expect}")


def _fill(report: CopyReport, manifest: Manifest) -> None:
    report.digest, report.media_type = str(manifest.digest), manifest.media_type
