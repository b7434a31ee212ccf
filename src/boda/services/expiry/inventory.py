"""What a repository holds, as the policy engine sees it: every manifest with its tags, a push
time, the children of each index and the subject of each referrer."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING

from boda.errors import NotFound
from boda.policy.image import EcrImage
from boda.registry import manifest_cache_for
from boda.registry.base import ImageLister, ImageRecord
from boda.services.context import Context
from boda.services.expired import expiries
from boda.types import INDEX_TYPES, Digest, Manifest

if TYPE_CHECKING:
    from boda.ledger.base import Build
    from boda.registry.base import Registry
    from boda.registry.manifest_cache import ManifestCache


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

    A backend that lists every manifest (ECR, the layout) is asked for its list. Otherwise (an OCI
    registry lists tag names only) the tags are listed and resolved: a commit tag boda wrote for a
    recorded build names that build's digest (boda never moves one, `build` refuses to, and
    `gc apply` re-reads every digest before deleting it), and the ledger says what that manifest is
    (a build recorded before it did is read once); every other tag is resolved with a HEAD,
    concurrently; recorded digests no tag names are looked for by digest. Index children and
    referrers are then followed until nothing new turns up (only indexes are read for it), so
    untagged children and signatures are planned as part of their image. Manifests come from the
    on-disk cache when it has them.
    """
    registry = ctx.registry
    builds = ctx.ledger.list_builds(app)
    manifests = _Manifests(registry, repo, manifest_cache_for(ctx.config.registry))
    try:
        if isinstance(registry, ImageLister) and registry.lists_every_manifest:
            records = {str(r.digest): r for r in _image_list(registry, repo)}
        else:
            records = _tagged(registry, repo, _commit_tags(ctx, builds), manifests)
            gone = expiries(ctx, app)
            for digest in _recorded_here(ctx, app, repo, builds):
                if digest in records or repo in gone.repositories(digest):
                    continue  # listed already, or deleted by boda's expiry (and not rebuilt since)
                head = registry.manifest_head(repo, digest)
                if head is not None:
                    records[digest] = ImageRecord(head.digest, (), head.media_type, size=head.size)
        children: dict[str, tuple[str, ...]] = {}
        subjects: dict[str, str] = {d: s for d, r in records.items() if (s := _subject_of(r))}

        def explore(digest: str) -> tuple[str, tuple[str, ...], list[ImageRecord]]:
            record = records[digest]
            kids: tuple[str, ...] = ()
            found: list[ImageRecord] = []
            if record.media_type in INDEX_TYPES:
                manifest = manifests.get(record.digest)
                kids = tuple(str(c.digest) for c in manifest.children)
                found += [ImageRecord(c.digest, (), c.media_type, size=c.size) for c in manifest.children]
            for ref in registry.referrers(repo, record.digest):
                found.append(
                    ImageRecord(
                        ref.digest,
                        (),
                        ref.media_type,
                        size=ref.size,
                        subject=record.digest,
                        artifact_type=ref.artifact_type,
                    )
                )
            return digest, kids, found

        def explore_all(digests: list[str]) -> list[tuple[str, tuple[str, ...], list[ImageRecord]]]:
            return [explore(d) for d in digests]

        pending = list(records)
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            while pending:
                discovered: list[str] = []
                # A few batches per worker: most answers need no request (the cache, a tag list just
                # read), and a task per manifest would cost more than the answers.
                size = max(1, len(pending) // (CONCURRENCY * 4))
                batches = [pending[i : i + size] for i in range(0, len(pending), size)]
                for digest, kids, found in chain.from_iterable(pool.map(explore_all, batches)):
                    children[digest] = kids
                    for record in found:
                        key = str(record.digest)
                        if record.subject is not None:
                            subjects.setdefault(key, str(record.subject))
                        if key not in records:
                            records[key] = record
                            discovered.append(key)
                pending = discovered
    finally:
        manifests.close()
    return _as_engine_images(
        ctx, app, repo, records, children, subjects, {str(b.digest): b.recorded_at for b in builds}
    )


#: Requests in flight at once while resolving tags and following children and referrers.
CONCURRENCY = 8


class _Manifests:
    """The manifests one inventory reads by digest: once each, from the cache when it has them."""

    def __init__(self, registry: Registry, repo: str, cache: ManifestCache | None) -> None:
        self._registry = registry
        self._repo = repo
        self._cache = cache
        # Filled from several threads: a dict's get and set are atomic, and two threads reading
        # the same manifest at once only cost one extra read.
        self._memo: dict[str, Manifest] = {}  # by hex digest (hashing a str is cheapest)

    def cached(self, digest: Digest) -> Manifest | None:
        """The manifest if this inventory or the cache has it (no request)."""
        found = self._memo.get(digest.hex)
        if found is None and self._cache is not None:
            found = self._cache.get(digest)
            if found is not None:
                self._memo[digest.hex] = found
        return found

    def get(self, digest: Digest) -> Manifest:
        """The manifest, read from the registry when not cached (NotFound when it is not there)."""
        found = self.cached(digest)
        if found is None:
            found = self._registry.manifest_get(self._repo, str(digest))
            if self._cache is not None:
                self._cache.put(found)
            self._memo[digest.hex] = found
        return found

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def _commit_tags(ctx: Context, builds: list[Build]) -> dict[str, Build]:
    """The commit tag of every recorded build (as it got it) -> the build (a tag two builds share
    is left out)."""
    known: dict[str, Build] = {}
    shared: set[str] = set()
    for build in builds:
        tag = ctx.commit_tag(build)
        if known.setdefault(tag, build).digest != build.digest:
            shared.add(tag)
    for tag in shared:
        del known[tag]
    return known


def _recorded_here(ctx: Context, app: str, repo: str, builds: list[Build]) -> list[str]:
    """Digests boda put into `repo`: every build in the app's repository, what was promoted to an
    environment in that environment's repository (strategy `repos`)."""
    digests: dict[str, None] = {}
    if repo == ctx.config.repository_for(app, None):
        digests.update((str(b.digest), None) for b in builds)
    for env in ctx.config.environments:
        if ctx.config.strategy == "repos" and repo == ctx.config.repository_for(app, env.name):
            digests.update((str(p.digest), None) for p in ctx.ledger.promotions(app, env.name))
    return list(digests)


def _tagged(
    registry: Registry, repo: str, known: dict[str, Build], manifests: _Manifests
) -> dict[str, ImageRecord]:
    """The manifests the tags of `repo` name, by digest ({} for a repository that does not exist).

    A commit tag of a recorded build names that build's digest; what the manifest is (its media
    type and size) comes from the ledger (recorded since schema 4), else from the cache, else the
    manifest is read. Other tags are HEAD-ed."""
    try:
        tags = registry.tag_list(repo)
    except NotFound:
        return {}
    resolved: list[tuple[str, Digest, str, int]] = []
    asking: list[str] = []
    reading: list[tuple[str, Digest]] = []
    cached = manifests.cached
    for tag in tags:
        build = known.get(tag)
        if build is None:
            asking.append(tag)
        elif build.media_type is not None and build.size is not None:
            resolved.append((tag, build.digest, build.media_type, build.size))
        elif (manifest := cached(build.digest)) is not None:
            resolved.append((tag, manifest.digest, manifest.media_type, manifest.size))
        else:
            reading.append((tag, build.digest))

    def head(tag: str) -> tuple[str, Digest, str, int] | None:
        found = registry.manifest_head(repo, tag)
        return (tag, found.digest, found.media_type, found.size or 0) if found is not None else None

    def read(tag: str, digest: Digest) -> tuple[str, Digest, str, int] | None:
        try:
            manifest = manifests.get(digest)
        except NotFound:
            return head(tag)  # the image went (the tag was moved by someone else): ask the registry
        return tag, manifest.digest, manifest.media_type, manifest.size

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        answers = [pool.submit(read, tag, digest) for tag, digest in reading]
        answers += [pool.submit(head, tag) for tag in asking]
        resolved += [found for answer in answers if (found := answer.result()) is not None]
    by_digest: dict[str, tuple[Digest, str, int, list[str]]] = {}
    for tag, digest, media_type, size in resolved:
        by_digest.setdefault(str(digest), (digest, media_type, size, []))[3].append(tag)
    return {
        key: ImageRecord(digest, tuple(sorted(names)), media_type, size=size)
        for key, (digest, media_type, size, names) in sorted(by_digest.items())
    }


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
            promoted = promoted_at.get(digest)
            known[digest] = pushed if promoted is None or promoted < pushed else promoted

    def age_of(digest: str, depth: int = 0) -> datetime | None:
        if digest in known or depth > 8:
            return known.get(digest)
        related = subjects.get(digest) or parent_of.get(digest)
        return age_of(related, depth + 1) if related else None

    inventory = Inventory(repo, [])
    now = datetime.now(UTC)
    for digest, record in records.items():
        pushed = known.get(digest) or age_of(digest)
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
