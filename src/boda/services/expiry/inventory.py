"""What a repository holds, as the policy engine sees it: every manifest with its tags, a push
time, the children of each index and the subject of each referrer."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from boda.errors import NotFound
from boda.policy.image import EcrImage
from boda.registry.base import ImageLister, ImageRecord
from boda.services.context import Context
from boda.types import INDEX_TYPES, Digest

if TYPE_CHECKING:
    from boda.registry.base import Registry


def repositories(ctx: Context, app: str) -> list[str]:
    """Every repository that holds images of `app` under the configured strategy."""
    repos = [ctx.config.repository_for(app, None)]
    if ctx.config.strategy == "repos":
        repos += [ctx.config.repository_for(app, env.name) for env in ctx.config.environments]
    return repos


@dataclass
class Inventory:
    """What one repository holds, as the policy engine sees it."""

    repository: str
    images: list[EcrImage]
    unknown_age: set[str] = field(default_factory=set)


def read_inventory(ctx: Context, app: str, repo: str) -> Inventory:
    """Every manifest of `repo` with tags, push time, index children and referrer subject.

    Starts from what the backend lists (all manifests on ECR and layouts, tagged ones on an OCI
    registry) plus every recorded build, then follows index children and referrers until nothing
    new turns up, so untagged children and signatures are planned as part of their image.
    """
    registry = ctx.registry
    records = {str(r.digest): r for r in _image_list(registry, repo)}
    builds = ctx.ledger.list_builds(app)
    for build in builds:
        if str(build.digest) not in records:
            head = registry.manifest_head(repo, str(build.digest))
            if head is not None:
                records[str(build.digest)] = ImageRecord(head.digest, (), head.media_type)
    children: dict[str, tuple[str, ...]] = {}
    subjects: dict[str, str] = {d: s for d, r in records.items() if (s := _subject_of(r))}

    def explore(digest: str) -> tuple[str, tuple[str, ...], list[ImageRecord]]:
        record = records[digest]
        kids: tuple[str, ...] = ()
        found: list[ImageRecord] = []
        if record.media_type in INDEX_TYPES:
            manifest = registry.manifest_get(repo, digest)
            kids = tuple(str(c.digest) for c in manifest.children)
            found += [ImageRecord(c.digest, (), c.media_type, size=c.size) for c in manifest.children]
        for ref in registry.referrers(repo, Digest.parse(digest)):
            found.append(
                ImageRecord(
                    ref.digest,
                    (),
                    ref.media_type,
                    size=ref.size,
                    subject=Digest.parse(digest),
                    artifact_type=ref.artifact_type,
                )
            )
        return digest, kids, found

    pending = list(records)
    with ThreadPoolExecutor(max_workers=8) as pool:
        while pending:
            discovered: list[str] = []
            for digest, kids, found in pool.map(explore, pending):
                children[digest] = kids
                for record in found:
                    key = str(record.digest)
                    if record.subject is not None:
                        subjects.setdefault(key, str(record.subject))
                    if key not in records:
                        records[key] = record
                        discovered.append(key)
            pending = discovered
    return _as_engine_images(
        ctx, app, repo, records, children, subjects, {str(b.digest): b.recorded_at for b in builds}
    )


def _as_engine_images(
    ctx: Context,
    app: str,
    repo: str,
    records: dict[str, ImageRecord],
    children: dict[str, tuple[str, ...]],
    subjects: dict[str, str],
    built_at: dict[str, datetime],
) -> Inventory:
    """Give every image a push time: its own, its build's, its parent's or subject's, else unknown."""
    promoted_at: dict[str, datetime] = {}
    if ctx.config.retention.age_from == "promotion":
        for p in ctx.ledger.promotions(app):
            promoted_at.setdefault(str(p.digest), p.at)
    parent_of = {kid: parent for parent, kids in children.items() for kid in kids}
    known: dict[str, datetime] = {}
    for digest, record in records.items():
        pushed = record.pushed_at or built_at.get(digest)
        if pushed is not None:
            known[digest] = max(pushed, promoted_at.get(digest, pushed))

    def age_of(digest: str, depth: int = 0) -> datetime | None:
        if digest in known or depth > 8:
            return known.get(digest)
        related = subjects.get(digest) or parent_of.get(digest)
        return age_of(related, depth + 1) if related else None

    inventory = Inventory(repo, [])
    now = datetime.now(UTC)
    for digest, record in records.items():
        pushed = age_of(digest)
        if pushed is None:
            inventory.unknown_age.add(digest)
            pushed = now
        inventory.images.append(
            EcrImage(
                digest=digest,
                tags=record.tags,
                pushed_at=pushed,
                last_pulled_at=record.last_pulled_at,
                status="ARCHIVED" if record.status == "ARCHIVED" else "ACTIVE",
                last_archived_at=record.last_archived_at,
                media_type=record.media_type,
                children=children.get(digest, ()),
                subject=subjects.get(digest),
            )
        )
    return inventory


def _image_list(registry: Registry, repo: str) -> list[ImageRecord]:
    if not isinstance(registry, ImageLister):
        return []  # a backend that cannot list: the recorded builds are the inventory
    try:
        return registry.image_list(repo)
    except NotFound:
        return []  # the repository does not exist (yet): nothing to expire there


_SHA256_TAG = re.compile(r"^sha256-([0-9a-f]{64})(?:\.(?:sig|att|sbom))?$")


def _subject_of(record: ImageRecord) -> str | None:
    """The image a manifest belongs to: its `subject`, or the digest its tag names — the OCI
    referrers fallback tag `sha256-<hex>` and cosign's `sha256-<hex>.sig|.att|.sbom`."""
    if record.subject is not None:
        return str(record.subject)
    for tag in record.tags:
        match = _SHA256_TAG.match(tag)
        if match:
            return f"sha256:{match.group(1)}"
    return None
