"""Record a build: commit → digest, with the immutable commit tag written once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boda.errors import Conflict, DigestMismatch, NotFound, UsageError
from boda.registry.base import digest_named
from boda.registry.copy import copy_image
from boda.services.context import Context, check_app, check_full_commit, identity
from boda.types import Digest, Manifest, Reference, check_free_text, validate_tag

if TYPE_CHECKING:
    from boda.ledger import Build
    from boda.registry.base import Registry


@dataclass(frozen=True)
class Collision:
    """A shorter commit tag the build could not get: another commit of the app holds it."""

    tag: str
    commit: str
    digest: Digest

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"tag": self.tag, "commit": self.commit, "digest": str(self.digest)}


@dataclass(frozen=True)
class BuildResult:
    """The outcome of `boda build`."""

    app: str
    commit: str
    digest: Digest
    #: The commit tag the build has: the template's, or a longer one after `collisions`.
    tag: str
    reference: str
    created: bool
    #: Where the image was copied from into the app's repository (None: it was already there).
    copied_from: str | None = None
    #: The shorter commit tags other commits of the app hold (empty: the template's tag was free).
    collisions: tuple[Collision, ...] = ()

    @property
    def note(self) -> str | None:
        """What the person running the build should know: the tag is longer than usual."""
        if not self.collisions:
            return None
        held = ", ".join(f"{c.tag} (commit {c.commit[:12]})" for c in self.collisions)
        return f"commit tag {held} already taken by another commit of {self.app}: tagged {self.tag} instead"

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
            "collisions": [c.to_json() for c in self.collisions],
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

    The commit tag is the template's (`{commit:.8}`) unless another commit of the app already holds
    it (a collision of the short form): then the first longer form nobody holds (`{commit:.12}`,
    `{commit:.16}`, ... the full SHA), and the result lists the collisions. The tag the build got,
    the manifest's media type and size are recorded with it. A tag that names a digest the ledger
    does not know as that commit's build stays a Conflict. Re-running the same build changes nothing.
    """
    check_app(app)
    commit = check_full_commit(commit)  # before anything is written: its tag is made from it
    actor = check_free_text(identity(by), "the name of who acts")
    external, local_ref = _source(ctx, app, image, digest)
    registry = ctx.registry
    repo = ctx.config.repository_for(app, None)
    ctx.ledger.check_writable()
    copied_from = None
    if external is not None:
        from boda.registry import open_registry  # a second registry: opened only when named

        src = open_registry(external.registry)
        try:
            manifest = _resolve(src, external.repository, external.identifier, str(external))
            existing = _refuse_if_recorded_elsewhere(ctx, app, commit, manifest.digest)
            _tag_for(ctx, app, repo, commit, manifest.digest, existing)  # refuses before any write
            ctx.ledger.claim_repository(repo, app=app, env=None, by=actor)
            # By digest: the tag is written under the lock below, which a long copy must not hold.
            copy_image(
                src, external.repository, str(manifest.digest), registry, repo, None, expect=manifest.digest
            )
            copied_from = str(external.with_digest(manifest.digest))
        finally:
            if src is not registry:
                src.close()
    else:
        manifest = _resolve(registry, repo, local_ref, f"{ctx.reference(repo)}: image {local_ref}")
        existing = _refuse_if_recorded_elsewhere(ctx, app, commit, manifest.digest)
        _tag_for(ctx, app, repo, commit, manifest.digest, existing)  # refuses before any write
        ctx.ledger.claim_repository(repo, app=app, env=None, by=actor)
    resolved = manifest.digest
    reference = ctx.reference(repo, digest=resolved)
    with ctx.ledger.lock_build_tags(app, purpose=f"build {commit[:12]}"):
        # Chosen again under the lock: another build may have taken a tag since.
        tag, present, collisions = _tag_for(ctx, app, repo, commit, resolved, existing)
        if present is None:
            reported = registry.manifest_put(repo, tag, manifest)
            if reported != resolved:
                raise DigestMismatch(f"{registry.name} reports {reported} after tagging {resolved} as {tag}")
        build, created = ctx.ledger.record_build(
            app=app,
            commit=commit,
            digest=resolved,
            reference=reference,
            by=actor,
            tag=tag,
            media_type=manifest.media_type,
            size=manifest.size,
        )
    return BuildResult(
        app, build.commit, build.digest, ctx.commit_tag(build), reference, created, copied_from, collisions
    )


def _resolve(registry: Registry, repo: str, ref: str, what: str) -> Manifest:
    """The manifest `ref` names; its digest is computed over the bytes the registry returns (a
    digest ref is verified by the backend against those bytes)."""
    try:
        return registry.manifest_get(repo, ref)
    except NotFound as exc:
        raise NotFound(f"{what} not found", hint=exc.message) from exc


def _refuse_if_recorded_elsewhere(ctx: Context, app: str, commit: str, digest: Digest) -> Build | None:
    """The build of `commit` already recorded (with `digest`), or None; Conflict for another digest."""
    existing = ctx.ledger.get_build(app, commit)
    if existing is not None and existing.digest != digest:
        raise Conflict(
            f"commit {commit} of {app} is already recorded with digest {existing.digest}, not {digest}",
            hint="one commit builds one image; rebuilds must not change what a commit means",
        )
    return existing


def _refuse_if_tag_moves(ctx: Context, repo: str, tag: str, digest: Digest) -> Digest | None:
    """The digest the commit tag already names (equal to `digest`), or None when it is absent."""
    named = digest_named(ctx.registry, repo, tag)
    if named is not None and named != digest:
        raise Conflict(
            f"commit tag {repo}:{tag} already names {named}; refusing to move it to {digest}",
            hint="commit tags are immutable",
        )
    return named


def _tag_for(
    ctx: Context, app: str, repo: str, commit: str, digest: Digest, existing: Build | None
) -> tuple[str, Digest | None, tuple[Collision, ...]]:
    """The commit tag the build of `commit` gets: (tag, the digest it names already or None when
    it is to be written, the shorter tags other commits hold). A build recorded before keeps the
    tag it got; a new one gets the first candidate nobody else holds (see `_choose_tag`)."""
    if existing is not None:
        tag = ctx.commit_tag(existing)
        return tag, _refuse_if_tag_moves(ctx, repo, tag, digest), ()
    return _choose_tag(ctx, app, repo, commit, digest)


def _choose_tag(
    ctx: Context, app: str, repo: str, commit: str, digest: Digest
) -> tuple[str, Digest | None, tuple[Collision, ...]]:
    """The commit tag a new build of `commit` gets: (tag, the digest it names already or None when
    it is to be written, the shorter tags other commits hold).

    A candidate (`Config.commit_tags_for`) is held by another commit when the ledger records it as
    that commit's tag (its image may be gone: a commit tag is never given to another digest) and
    the registry's tag is absent or names that build's digest. Any other digest under a candidate
    is a Conflict: commit tags never move.
    """
    candidates = ctx.config.commit_tags_for(commit)
    holders: dict[str, Build] = {}
    for build in ctx.ledger.builds_by_commit_prefix(
        app, commit[: ctx.config.commit_tag_digits or len(commit)]
    ):
        if build.commit != commit:
            holders.setdefault(ctx.commit_tag(build), build)
    collisions: list[Collision] = []
    for tag in candidates:
        found = digest_named(ctx.registry, repo, tag)
        holder = holders.get(tag)
        if holder is None and found is not None and found != digest:
            # A build whose tag this is, recorded while the template was another one.
            holder = next(
                (
                    b
                    for b in ctx.ledger.builds_by_digest(found, app)
                    if b.commit != commit and ctx.commit_tag(b) == tag
                ),
                None,
            )
        if holder is not None:
            if found is not None and found != holder.digest:
                raise Conflict(
                    f"commit tag {repo}:{tag} of commit {holder.commit[:12]} names {found}, not its"
                    f" recorded build {holder.digest}",
                    hint="`boda verify` shows the drift and `boda repair` puts the tag back",
                )
            collisions.append(Collision(tag, holder.commit, holder.digest))
            continue
        if found is not None and found != digest:
            raise Conflict(
                f"commit tag {repo}:{tag} already names {found}; refusing to move it to {digest}",
                hint="commit tags are immutable; that digest is no recorded build of another commit",
            )
        return tag, found, tuple(collisions)
    raise Conflict(
        f"every commit tag of commit {commit} in {repo} is held by another commit ({', '.join(candidates)})",
        hint="commit tags are immutable; the template [promotion] commit_tag cannot tell these commits apart",
    )
