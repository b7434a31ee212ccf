"""`boda repair`: make the registry and the ledger agree again, recording how.

What it reconciles, for one app or all, under each app's lock:

* **Open intents** (a command stopped between its registry write and its record):
  - a promotion or rollback whose write landed: by default the environment tag is put back to
    what the ledger says and the intent is resolved as undone; with `keep_registry` the
    promotion is recorded as it happened instead. A write that never landed is abandoned.
  - an expiry: every digest of the batch that the registry no longer holds and the ledger has
    not recorded is recorded as expired; then the intent is done.
* **Drift** (what `boda verify` finds):
  - an environment tag that names another digest than the ledger's current one is put back
    (default) or, with `keep_registry`, the registry's digest is recorded as promoted there
    (only a digest the ledger knows as a build of the app). A tag where the ledger has nothing
    current is recorded the same way: putting back "nothing" would delete a tag something may
    deploy from.
  - a commit tag that is missing or names another digest is written again (commit tags never
    move); an environment repository that lost its current digest gets it copied back.
  - a digest that is gone from the registry without a record is recorded as expired.
Every change is recorded with the reason given: a `repair` event for a tag put back or written
again, an `expire` event for a digest found gone, a promotion (with a closed intent) for a write
kept as it happened; `verify` agrees afterwards or says what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boda.errors import NotFound
from boda.ledger import Intent, NewPromotion
from boda.registry.base import digest_named
from boda.registry.copy import copy_image
from boda.services.context import Context, identity
from boda.services.placement import FORCE, PROMOTE, ROLLBACK, sources
from boda.services.verify import Drift, verify
from boda.types import Digest, check_free_text, is_digest

PLACEMENT_ACTIONS = frozenset({PROMOTE, ROLLBACK, FORCE})


@dataclass(frozen=True)
class Repaired:
    """One thing `repair` did."""

    app: str
    kind: str  # intent | environment-tag | commit-tag | missing | gone
    where: str
    action: str  # put back | recorded | abandoned | retagged | copied back | recorded as expired | left
    detail: str

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "kind": self.kind,
            "where": self.where,
            "action": self.action,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class RepairResult:
    """What `boda repair` did, and what `verify` still finds afterwards."""

    repairs: tuple[Repaired, ...]
    remaining: tuple[tuple[str, Drift], ...]

    @property
    def ok(self) -> bool:
        """True when the registry and the ledger agree now."""
        return not self.remaining

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "ok": self.ok,
            "repairs": [r.to_json() for r in self.repairs],
            "remaining": [{"app": app, **d.to_json()} for app, d in self.remaining],
        }


def repair(
    ctx: Context,
    app: str | None = None,
    *,
    keep_registry: bool = False,
    by: str | None = None,
    reason: str | None = None,
) -> RepairResult:
    """Reconcile open intents and drift of `app` (or of every app) and record each repair."""
    actor = check_free_text(identity(by), "the name of who acts")
    if reason is not None:
        check_free_text(reason, "the reason")
    if app is not None:
        ctx.require_app(app)
        apps = [app]
    else:
        apps = sorted(set(ctx.ledger.apps()) | {i.app for i in ctx.ledger.open_intents()})
    ctx.ledger.check_writable()
    repairs: list[Repaired] = []
    remaining: list[tuple[str, Drift]] = []
    for name in apps:
        fixer = _Fixer(ctx, name, actor, reason, keep_registry)
        with ctx.ledger.lock_apps([name], purpose="repair"):
            for intent in ctx.ledger.open_intents(name):
                fixer.intent(intent)
            if name in ctx.ledger.apps():
                for drift in verify(ctx, name).drifts:
                    fixer.drift(drift)
        repairs += fixer.done
        if name in ctx.ledger.apps():
            remaining += [(name, d) for d in verify(ctx, name).drifts]
    return RepairResult(tuple(repairs), tuple(remaining))


class _Fixer:
    """The repairs of one app (its lock held by the caller)."""

    def __init__(self, ctx: Context, app: str, actor: str, reason: str | None, keep_registry: bool) -> None:
        self.ctx = ctx
        self.app = app
        self.actor = actor
        self.reason = reason
        self.keep_registry = keep_registry
        self.done: list[Repaired] = []
        self.synced = False

    def _note(self, kind: str, where: str, action: str, detail: str) -> None:
        self.done.append(Repaired(self.app, kind, where, action, detail))

    def _event(self, env: str | None, digest: Digest | None, detail: dict[str, Any]) -> None:
        self.ctx.ledger.record_event(
            "repair",
            app=self.app,
            by=self.actor,
            env=env,
            digest=digest,
            reason=self.reason or "boda repair",
            detail=detail,
        )

    # -- intents -----------------------------------------------------------------------------

    def intent(self, intent: Intent) -> None:
        if intent.action in PLACEMENT_ACTIONS:
            self._placement_intent(intent)
        elif intent.action == "expire":
            self._expire_intent(intent)
        elif intent.action == "protection-tags":
            if not self.synced:
                from boda.services.native_retention import sync  # ECR only: imported when needed

                sync(self.ctx, self.app, by=self.actor)  # a complete sync closes the interrupted ones
                self.synced = True
            self._note("intent", f"intent {intent.id}", "recorded", "protection tags synced again")
        else:
            self._note("intent", f"intent {intent.id}", "left", f"unknown action {intent.action!r}")

    def _placement_intent(self, intent: Intent) -> None:
        ctx = self.ctx
        env, digest = intent.env, intent.digest
        repo = str(intent.detail.get("repository") or "")
        tag = str(intent.detail.get("tag") or "")
        where = f"intent {intent.id}: {intent.action} {repo}:{tag} -> {digest.short if digest else '?'}"
        if env is None or digest is None or not repo:
            ctx.ledger.resolve_intent(
                intent, resolution="abandoned", by=self.actor, reason="incomplete intent"
            )
            self._note("intent", where, "abandoned", "the intent does not say what it was about to write")
            return
        current = ctx.ledger.current(self.app, env)
        if current is not None and current.digest == digest:
            ctx.ledger.resolve_intent(intent, resolution="done", by=self.actor, reason="already recorded")
            self._note("intent", where, "recorded", "the ledger already records it")
            return
        landed = _names(ctx, repo, tag if intent.detail.get("strategy") == "tags" else str(digest)) == digest
        if not landed:
            ctx.ledger.resolve_intent(
                intent, resolution="abandoned", by=self.actor, reason="the registry write never landed"
            )
            self._note("intent", where, "abandoned", "the registry never got the write")
            return
        if self.keep_registry:
            builds = ctx.ledger.builds_by_digest(digest, self.app)
            ctx.ledger.record_promotion(
                NewPromotion(
                    app=self.app,
                    env=env,
                    digest=digest,
                    commit=builds[0].commit if builds else None,
                    reference=ctx.reference(repo, digest=digest),
                    by=self.actor,
                    kind=intent.action,
                    reason=self.reason or f"recorded by boda repair (intent {intent.id})",
                    expected_previous=current.digest if current else None,
                ),
                intent=intent,
            )
            self._note("intent", where, "recorded", "the write had landed; recorded as it happened")
            return
        if intent.detail.get("strategy") == "tags":
            self._put_tag_back(repo, tag, current.digest if current else None, env)
        ctx.ledger.resolve_intent(
            intent, resolution="undone", by=self.actor, reason=self.reason or "put back what the ledger says"
        )
        self._note(
            "intent", where, "put back", f"the ledger says {current.digest.short if current else 'nothing'}"
        )

    def _expire_intent(self, intent: Intent) -> None:
        ctx = self.ctx
        repo = str(intent.detail.get("repository") or "")
        digests = [d for d in intent.detail.get("digests") or [] if isinstance(d, str) and is_digest(d)]
        recorded = {
            str(e.digest)
            for e in ctx.ledger.iter_events(self.app, actions=("expire",))
            if e.at >= intent.at and e.detail.get("repository") == repo
        }
        for text in digests:
            if text in recorded or _names(ctx, repo, text) is not None:
                continue
            ctx.ledger.record_event(
                "expire",
                app=self.app,
                by=self.actor,
                digest=Digest.parse(text),
                reason=self.reason or f"recorded by boda repair (intent {intent.id})",
                detail={"repository": repo, "repaired": True},
            )
            self._note("intent", f"{repo}@{text}", "recorded as expired", f"intent {intent.id} deleted it")
        ctx.ledger.resolve_intent(intent, resolution="done", by=self.actor, reason="deletions reconciled")

    # -- drift ---------------------------------------------------------------------------------

    def drift(self, drift: Drift) -> None:
        if drift.kind == "environment":
            self._environment(drift)
        elif drift.kind == "commit-tag":
            self._commit_tag(drift)
        elif drift.kind == "missing":
            self._missing(drift)

    def _environment(self, drift: Drift) -> None:
        ctx = self.ctx
        repo, _, env = drift.where.rpartition(":")
        expected = Digest.parse(drift.expected) if drift.expected else None
        found = Digest.parse(drift.found) if drift.found else None
        known = found is not None and bool(ctx.ledger.builds_by_digest(found, self.app))
        if self.keep_registry or expected is None:
            if found is None or not known:
                why = (
                    "it names no build of the app" if found else "the tag is gone and the ledger says nothing"
                )
                self._note("environment-tag", drift.where, "left", why)
                return
            builds = ctx.ledger.builds_by_digest(found, self.app)
            ctx.ledger.record_promotion(
                NewPromotion(
                    app=self.app,
                    env=env,
                    digest=found,
                    commit=builds[0].commit,
                    reference=ctx.reference(repo, digest=found),
                    by=self.actor,
                    kind=PROMOTE,
                    reason=self.reason or "recorded by boda repair: the registry's tag had moved",
                    expected_previous=expected,
                )
            )
            self._note("environment-tag", drift.where, "recorded", f"{found.short} recorded as current")
            return
        self._put_tag_back(repo, env, expected, env)
        self._note(
            "environment-tag", drift.where, "put back", f"back to {expected.short}, as the ledger says"
        )

    def _put_tag_back(self, repo: str, tag: str, digest: Digest | None, env: str | None) -> None:
        """Point `tag` at `digest` again (nothing: remove the tag), recorded as a repair."""
        registry = self.ctx.registry
        before = _names(self.ctx, repo, tag)
        if digest is None:
            if before is not None:
                registry.tag_delete(repo, tag)
        else:
            copy_image(registry, repo, str(digest), registry, repo, tag, expect=digest)
        self._event(
            env,
            digest,
            {
                "repository": repo,
                "tag": tag,
                "from": str(before) if before else None,
                "to": str(digest) if digest else None,
            },
        )

    def _commit_tag(self, drift: Drift) -> None:
        ctx = self.ctx
        repo, _, tag = drift.where.rpartition(":")
        digest = Digest.parse(drift.expected)
        if _names(ctx, repo, str(digest)) is None:
            self._gone(repo, digest)
            return
        copy_image(ctx.registry, repo, str(digest), ctx.registry, repo, tag, expect=digest)
        self._event(None, digest, {"repository": repo, "tag": tag, "from": drift.found, "to": str(digest)})
        self._note("commit-tag", drift.where, "retagged", f"{tag} names {digest.short} again")

    def _missing(self, drift: Drift) -> None:
        """An environment repository (strategy `repos`) lost its current digest: copy it back."""
        ctx = self.ctx
        repo = drift.where.split("@", 1)[0]
        digest = Digest.parse(drift.expected)
        env = next(
            (e.name for e in ctx.config.environments if ctx.config.repository_for(self.app, e.name) == repo),
            None,
        )
        builds = ctx.ledger.builds_by_digest(digest, self.app)
        current = ctx.ledger.current(self.app, env) if env else None
        # The build the environment's promotion names (two commits may have built one digest).
        build = next((b for b in builds if current is not None and b.commit == current.commit), None)
        build = build or (builds[0] if builds else None)
        for source in sources(ctx, self.app, env) if env else []:
            if source == repo or _names(ctx, source, str(digest)) is None:
                continue
            tag = ctx.commit_tag(build) if build is not None else None
            copy_image(ctx.registry, source, str(digest), ctx.registry, repo, tag, expect=digest)
            self._event(env, digest, {"repository": repo, "copied_from": source})
            self._note("missing", drift.where, "copied back", f"from {source}")
            return
        self._gone(repo, digest)

    def _gone(self, repo: str, digest: Digest) -> None:
        self.ctx.ledger.record_event(
            "expire",
            app=self.app,
            by=self.actor,
            digest=digest,
            reason=self.reason or "recorded by boda repair: gone from the registry without a record",
            detail={"repository": repo, "repaired": True},
        )
        self._note("gone", f"{repo}@{digest}", "recorded as expired", "the registry no longer has it")


def _names(ctx: Context, repo: str, ref: str) -> Digest | None:
    """What `ref` (a tag or digest) names in `repo` now; None when absent."""
    try:
        return digest_named(ctx.registry, repo, ref)
    except NotFound:
        return None
