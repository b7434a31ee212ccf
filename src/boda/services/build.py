"""Record a build: commit → digest, with the immutable commit tag written once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boda.errors import Conflict, NotFound, UsageError
from boda.ledger import check_text
from boda.registry.copy import copy_image
from boda.services.context import Context, check_app, check_full_commit, identity
from boda.types import Digest, Reference, validate_tag

if TYPE_CHECKING:
    from boda.registry.base import Registry


@dataclass(frozen=True)
class BuildResult:
    """The outcome of `boda build`."""

    app: str
    commit: str
    digest: Digest
    tag: str
    reference: str
    created: bool
    #: Where the image was copied from into the app's repository (None: it was already there).
    copied_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "commit": self.commit,
            "digest": str(self.digest),
            "tag": self.tag,
            "reference": self.reference,
            "created": self.created,
            "copied_from": self.copied_from,
        }


def _source(ctx: Context, app: str, image: str | None, digest: str | None) -> tuple[Reference | None, str]:
    """Where the built image is: (external reference or None, tag-or-digest in the app repo)."""
    if (image is None) == (digest is None):
        raise UsageError("name the built image by exactly one of an image reference or a digest")
    if digest is not None:
        return None, str(Digest.parse(digest))
    assert image is not None
    if image.startswith((":", "@")):  # relative to the app's repository in the configured registry
        tag, _, pinned = image[1:].partition("@") if image[0] == ":" else ("", "", image[1:])
        return None, str(Digest.parse(pinned)) if pinned else validate_tag(tag)
    return Reference.parse(image), ""


def record_build(
    ctx: Context,
    app: str,
    *,
    commit: str,
    image: str | None = None,
    digest: str | None = None,
    by: str | None = None,
) -> BuildResult:
    """Resolve the image's digest, write the commit tag (never moved) and record the build.

    The image may be named by digest or tag in the app's repository (`--digest D`, `--image :TAG`),
    or by a full reference anywhere (another registry, another app's repository), in which case it
    is copied into the app's repository and the result says from where. A tag is resolved by
    hashing the manifest the registry returns, never by trusting the digest a HEAD reports.
    Re-running the same build changes nothing.
    """
    check_app(app)
    commit = check_full_commit(commit)
    actor = check_text(identity(by), "the name of who acts") or ""
    external, local_ref = _source(ctx, app, image, digest)
    registry = ctx.registry
    repo = ctx.config.repository_for(app, None)
    tag = ctx.config.commit_tag_for(commit)
    ctx.ledger.check_writable()
    copied_from = None
    if external is not None:
        from boda.registry import open_registry  # a second registry: opened only when named

        src = open_registry(external.registry)
        try:
            resolved = _resolve(src, external.repository, external.identifier, str(external))
            _refuse_if_recorded_elsewhere(ctx, app, commit, resolved)
            _refuse_if_tag_moves(ctx, repo, tag, resolved)
            ctx.ledger.claim_repository(repo, app=app, env=None, by=actor)
            copy_image(src, external.repository, str(resolved), registry, repo, tag, expect=resolved)
            copied_from = str(external.with_digest(resolved))
        finally:
            if src is not registry:
                src.close()
    else:
        resolved = _resolve(registry, repo, local_ref, f"{ctx.reference(repo)}: image {local_ref}")
        _refuse_if_recorded_elsewhere(ctx, app, commit, resolved)
        present = _refuse_if_tag_moves(ctx, repo, tag, resolved)
        ctx.ledger.claim_repository(repo, app=app, env=None, by=actor)
        if present is None:
            copy_image(registry, repo, str(resolved), registry, repo, tag, expect=resolved)
    reference = ctx.reference(repo, digest=resolved)
    build, created = ctx.ledger.record_build(
        app=app, commit=commit, digest=resolved, reference=reference, by=actor
    )
    return BuildResult(app, build.commit, build.digest, tag, reference, created, copied_from)


def _resolve(registry: Registry, repo: str, ref: str, what: str) -> Digest:
    """The digest of the manifest `ref` names, computed over the bytes the registry returns (a
    digest ref is verified by the backend against those bytes)."""
    try:
        return registry.manifest_get(repo, ref).digest
    except NotFound as exc:
        raise NotFound(f"{what} not found", hint=exc.message) from exc


def _refuse_if_recorded_elsewhere(ctx: Context, app: str, commit: str, digest: Digest) -> None:
    existing = ctx.ledger.get_build(app, commit)
    if existing is not None and existing.digest != digest:
        raise Conflict(
            f"commit {commit} of {app} is already recorded with digest {existing.digest}, not {digest}",
            hint="one commit builds one image; rebuilds must not change what a commit means",
        )


def _refuse_if_tag_moves(ctx: Context, repo: str, tag: str, digest: Digest) -> Digest | None:
    """The digest the commit tag already names (equal to `digest`), or None when it is absent."""
    head = ctx.registry.manifest_head(repo, tag)
    if head is not None and head.digest != digest:
        raise Conflict(
            f"commit tag {repo}:{tag} already names {head.digest}; refusing to move it to {digest}",
            hint="commit tags are immutable",
        )
    return head.digest if head is not None else None
