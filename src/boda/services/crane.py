"""crane-like operations on single references: digest, copy, tags, untag (no ledger, no config)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boda.errors import DigestMismatch, NotFound, Refused, UsageError
from boda.registry import open_registry
from boda.registry.copy import DEFAULT_CONCURRENCY, CopyReport, ProgressFn, copy_image
from boda.types import Digest, Reference

if TYPE_CHECKING:
    from boda.registry.base import Registry


@dataclass(frozen=True)
class Resolved:
    """What a reference resolves to (`size` None where the registry cannot tell it without a read)."""

    reference: Reference
    digest: Digest
    media_type: str
    size: int | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "reference": str(self.reference),
            "digest": str(self.digest),
            "mediaType": self.media_type,
            "size": self.size,
        }


@dataclass(frozen=True)
class TagList:
    """The tags of a repository, sorted naturally."""

    repository: str
    tags: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"repository": self.repository, "tags": list(self.tags)}


@dataclass(frozen=True)
class Untagged:
    """A tag removed, the digest it named, and whether the image went with it."""

    reference: Reference
    tag: str
    digest: Digest
    image_deleted: bool

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "reference": str(self.reference),
            "tag": self.tag,
            "digest": str(self.digest),
            "image_deleted": self.image_deleted,
        }


@contextmanager
def _opened(ref: Reference, insecure: bool) -> Iterator[Registry]:
    registry = open_registry(ref.registry, insecure=insecure)
    try:
        yield registry
    finally:
        registry.close()


def digest(text: str, *, insecure: bool = False) -> Resolved:
    """Resolve a reference to its manifest digest with one HEAD (`size` is None where the registry
    cannot tell it without a read, as on ECR)."""
    ref = Reference.parse(text)
    with _opened(ref, insecure) as registry:
        head = registry.manifest_head(ref.repository, ref.identifier)
    if head is None:
        raise NotFound(f"{ref}: manifest not found")
    if ref.digest is not None and head.digest != ref.digest:
        raise DigestMismatch(f"{ref}: registry answers with {head.digest}")
    return Resolved(ref, head.digest, head.media_type, head.size)


def copy(
    src_text: str,
    dst_text: str,
    *,
    referrers: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    insecure: bool = False,
    progress: ProgressFn | None = None,
) -> CopyReport:
    """Copy an image (or index, with its children) by digest from SRC to DST."""
    src, dst = Reference.parse(src_text), Reference.parse(dst_text)
    if dst.digest is not None and src.digest is not None and dst.digest != src.digest:
        raise UsageError(f"destination digest {dst.digest} differs from source digest {src.digest}")
    with ExitStack() as stack:
        src_reg = stack.enter_context(_opened(src, insecure))
        dst_reg = src_reg if dst.registry == src.registry else stack.enter_context(_opened(dst, insecure))
        return copy_image(
            src_reg,
            src.repository,
            src.identifier,
            dst_reg,
            dst.repository,
            dst.tag,
            expect=src.digest or dst.digest,
            referrers=referrers,
            concurrency=concurrency,
            progress=progress,
        )


def tags(text: str, *, insecure: bool = False) -> TagList:
    """All tags of a repository, sorted naturally (`ci-2` before `ci-10`)."""
    ref = Reference.parse(text)
    if ref.tag or ref.digest:
        raise UsageError(f"{text!r}: name a repository, without a tag or digest")
    with _opened(ref, insecure) as registry:
        listed = registry.tag_list(ref.repository)
    return TagList(ref.name, tuple(sorted(listed, key=natural_key)))


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sorts `ci-2` before `ci-10`: runs of digits compare as numbers."""
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p)
    return (*parts, (2, text))


def untag(text: str, *, insecure: bool = False, delete_image: bool = False) -> Untagged:
    """Remove one tag; the image and its other tags stay.

    Where removing an image's last tag deletes the image (ECR), that is refused (Refused, exit 3,
    nothing changed) unless `delete_image`; `image_deleted` in the result says what happened.
    """
    ref = Reference.parse(text)
    if not ref.tag or ref.digest is not None:
        raise UsageError(f"{text!r}: name exactly one tag to remove (REPOSITORY:TAG)")
    with _opened(ref, insecure) as registry:
        head = registry.manifest_head(ref.repository, ref.tag)
        if head is None:
            raise NotFound(f"{ref}: no such tag")
        try:
            done = registry.tag_delete(ref.repository, ref.tag, keep_image=not delete_image)
        except Refused as exc:
            raise Refused(exc.message, hint="pass --delete-image to remove the tag and the image") from exc
    return Untagged(ref, ref.tag, done.digest or head.digest, done.image_deleted)
