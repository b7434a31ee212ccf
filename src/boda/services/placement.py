"""Placing digests in an environment: the registry write and its record, all or none.

Every placement (a promotion, a release of several apps, a rollback) goes the same way:

1. everything that can be checked is checked before the first registry write: the text to record,
   that the ledger can write now, who owns each target repository, that each source still holds
   its digest, and what each target names now;
2. under the apps' locks (never a database lock), an intent is recorded for each write; then the
   registry is written (concurrently for a release) and each digest is read back;
3. if every write landed, the promotions are recorded in one transaction that also closes the
   intents; if one failed, what moved is put back and nothing is recorded; if putting back fails
   too, the error says per app exactly what moved, and the open intents let `boda repair` finish.

A crash anywhere leaves either nothing changed or an open intent that `boda repair` reconciles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from boda.config import Environment
from boda.errors import BodaError, Conflict, NotFound
from boda.ledger import NewPromotion
from boda.registry.base import digest_named
from boda.registry.copy import copy_image
from boda.services.context import Context
from boda.types import Digest, check_free_text

if TYPE_CHECKING:
    from boda.ledger import Build, Intent

PROMOTE, ROLLBACK, FORCE = "promote", "rollback", "force"


@dataclass(frozen=True)
class Placement:
    """One app's digest placed in one environment."""

    app: str
    env: str
    digest: Digest
    commit: str | None
    reference: str
    kind: str
    previous: Digest | None
    changed: bool
    copy: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "app": self.app,
            "env": self.env,
            "digest": str(self.digest),
            "commit": self.commit,
            "reference": self.reference,
            "kind": self.kind,
            "previous": str(self.previous) if self.previous else None,
            "changed": self.changed,
            "copy": self.copy,
        }


@dataclass
class Move:
    """One registry write of a placement: what it targets, what the target named before, and how
    it went."""

    build: Build
    env: str
    repository: str
    tag: str
    #: The ledger's current digest of (app, env) when the locks were taken.
    previous: Digest | None
    #: What the target tag named in the registry before the write (strategy `tags`).
    before: Digest | None = None
    intent: Intent | None = None
    report: dict[str, Any] | None = None
    error: BaseException | None = None
    undone: bool = False
    undo_error: BaseException | None = None

    @property
    def app(self) -> str:
        return self.build.app

    def to_json(self) -> dict[str, Any]:
        """What happened to this write, for a partly applied release."""
        return {
            "app": self.app,
            "env": self.env,
            "repository": self.repository,
            "tag": self.tag,
            "digest": str(self.build.digest),
            "written": self.report is not None,
            "error": _message(self.error),
            "put_back": self.undone,
            "put_back_error": _message(self.undo_error),
            "intent": self.intent.id if self.intent else None,
        }


class PartlyApplied(Conflict):
    """A release failed midway and what had moved could not all be put back (exit 5)."""

    def __init__(self, message: str, moves: Sequence[Move], *, hint: str) -> None:
        super().__init__(message, hint=hint, reasons=tuple(_move_line(m) for m in moves))
        self.moves = tuple(moves)

    def to_json(self) -> dict[str, object]:
        """The error with every app's write, for scripts."""
        return {**super().to_json(), "apps": [m.to_json() for m in self.moves]}


def _message(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    return exc.message if isinstance(exc, BodaError) else f"{type(exc).__name__}: {exc}"


def _move_line(move: Move) -> str:
    where = f"{move.app} {move.repository}:{move.tag} -> {move.build.digest.short}"
    if move.report is None:
        return f"{where}: not written ({_message(move.error)})"
    if move.undone:
        return f"{where}: written, then put back"
    if move.undo_error is not None:
        return f"{where}: WRITTEN and could not be put back ({_message(move.undo_error)})"
    return f"{where}: written"


def place(
    ctx: Context,
    builds: Sequence[Build],
    env: Environment,
    kind: str,
    actor: str,
    reason: str | None,
    *,
    concurrency: int = 8,
    before_write: Callable[[], None] | None = None,
) -> list[Placement]:
    """Make each build's digest current in `env`, recorded, all or none (see the module docstring).

    `before_write` runs under the locks just before the first registry write (tests use it to
    force an interleaving; attestations to sign nothing that will not be written).
    """
    check_free_text(actor, "the name of who acts")
    if reason is not None:
        check_free_text(reason, "the reason")
    ctx.ledger.check_writable()
    config = ctx.config
    pairs = [(b.app, env.name) for b in builds]
    purpose = f"{kind} to {env.name}"
    with ctx.ledger.promotion_locks(pairs, purpose=purpose) as txs:
        moves = []
        for build, tx in zip(builds, txs, strict=True):
            current = tx.current()
            repo = config.repository_for(build.app, env.name)
            tag = env.name if config.strategy == "tags" else ctx.commit_tag(build)
            moves.append(Move(build, env.name, repo, tag, current.digest if current else None))
        for move in moves:
            _inspect(ctx, move)
        for move in moves:  # the build repository (tags) or the environment's (repos) is the app's
            owner_env = None if config.strategy == "tags" else move.env
            ctx.ledger.claim_repository(move.repository, app=move.app, env=owner_env, by=actor)
        for move in moves:
            move.intent = ctx.ledger.begin_intent(
                kind,
                move.app,
                by=actor,
                env=env.name,
                digest=move.build.digest,
                detail={
                    "repository": move.repository,
                    "tag": move.tag,
                    "strategy": config.strategy,
                    "before": str(move.before) if move.before else None,
                    "ledger_previous": str(move.previous) if move.previous else None,
                    "commit": move.build.commit,
                },
            )
        if before_write is not None:
            before_write()
        _write_all(ctx, moves, concurrency)
        failed = [m for m in moves if m.error is not None]
        if failed:
            _put_back(ctx, moves, actor)
            raise _failure(moves, failed)
        return _record(ctx, moves, kind, actor, reason)


def _inspect(ctx: Context, move: Move) -> None:
    """Read what can make the write fail before any write: the source's digest, and what the
    target tag names now."""
    registry = ctx.registry
    if ctx.config.strategy == "tags":
        if registry.manifest_head(move.repository, str(move.build.digest)) is None:
            raise NotFound(
                f"{move.build.digest} of {move.app} is no longer in {ctx.reference(move.repository)}"
            )
        move.before = digest_named(registry, move.repository, move.tag)
        return
    if not any(registry.manifest_head(s, str(move.build.digest)) for s in sources(ctx, move.app, move.env)):
        raise NotFound(f"{move.build.digest} of {move.app} is in none of its repositories any more")


def _write_all(ctx: Context, moves: list[Move], concurrency: int) -> None:
    def work(move: Move) -> None:
        try:
            move.report = write_registry(ctx, move.build, move.env)
        except Exception as exc:  # recorded on the move; the release decides what to do
            move.error = exc

    if len(moves) == 1:
        work(moves[0])
        return
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(moves)))) as pool:
        list(pool.map(work, moves))


def _put_back(ctx: Context, moves: list[Move], actor: str) -> None:
    """Undo what moved: an environment tag goes back to what it named before (strategy `tags`);
    a copy into an environment repository moves no tag of anything else and stays (it is only
    one more image there). A failed write may still have landed (a lost answer): its tag is put
    back too when it now names the new digest."""
    registry = ctx.registry
    for move in moves:
        if ctx.config.strategy != "tags":
            if move.report is not None or move.error is not None:
                _resolve(ctx, move, "undone" if move.report is not None else "abandoned", actor)
            continue
        try:
            now = digest_named(registry, move.repository, move.tag)
            if now != move.build.digest or now == move.before:
                _resolve(ctx, move, "abandoned", actor)
                continue
            if move.before is not None:
                copy_image(
                    registry,
                    move.repository,
                    str(move.before),
                    registry,
                    move.repository,
                    move.tag,
                    expect=move.before,
                )
            else:
                registry.tag_delete(move.repository, move.tag)
            move.undone = True
            _resolve(ctx, move, "undone", actor)
        except Exception as exc:
            move.undo_error = exc


def _resolve(ctx: Context, move: Move, resolution: str, actor: str) -> None:
    if move.intent is not None:
        ctx.ledger.resolve_intent(
            move.intent, resolution=resolution, by=actor, reason="the release failed; nothing was recorded"
        )


def _failure(moves: list[Move], failed: list[Move]) -> BaseException:
    first = failed[0].error
    assert first is not None
    stuck = [m for m in moves if m.undo_error is not None]
    if stuck:
        return PartlyApplied(
            f"release to {moves[0].env} failed and could not be fully put back: "
            + "; ".join(_move_line(m) for m in moves),
            moves,
            hint="nothing was recorded in the ledger; `boda repair` puts back what moved",
        )
    if len(moves) == 1:
        return first
    put_back = sum(1 for m in moves if m.undone)
    summary = f"release to {moves[0].env} failed for {failed[0].app}: {_message(first)}"
    summary += f"; nothing was promoted ({put_back} written tag{'s' if put_back != 1 else ''} put back)"
    if isinstance(first, BodaError):
        error: BaseException = type(first)(summary, hint=first.hint)
        error.__cause__ = first
        return error
    return first


def _record(ctx: Context, moves: list[Move], kind: str, actor: str, reason: str | None) -> list[Placement]:
    """Record every placement that changed something, in one transaction closing the intents."""
    news, intents, placements = [], [], []
    for move in moves:
        build = move.build
        reference = ctx.reference(move.repository, digest=build.digest)
        changed = move.previous != build.digest
        if changed:
            news.append(
                NewPromotion(
                    app=build.app,
                    env=move.env,
                    digest=build.digest,
                    commit=build.commit,
                    reference=reference,
                    by=actor,
                    kind=kind,
                    reason=reason,
                    expected_previous=move.previous,
                )
            )
            assert move.intent is not None
            intents.append(move.intent)
        elif move.intent is not None:
            ctx.ledger.resolve_intent(
                move.intent, resolution="done", by=actor, reason="already current: nothing to record"
            )
        placements.append(
            Placement(
                build.app,
                move.env,
                build.digest,
                build.commit,
                reference,
                kind,
                move.previous,
                changed,
                move.report or {},
            )
        )
    if news:
        ctx.ledger.record_promotions(news, intents=intents)
    return placements


def sources(ctx: Context, app: str, env: str) -> list[str]:
    """Where a copy into `env`'s repository may come from (strategy `repos`), in order: the
    environment's own repository (a rollback finds its digest there), the build repository, the
    upstream environments' nearest first, then every other environment's."""
    config = ctx.config
    found = [config.repository_for(app, env), config.repository_for(app, None)]
    upstream = config.environment(env).after
    while upstream is not None:
        found.append(config.repository_for(app, upstream))
        upstream = config.environment(upstream).after
    found += [config.repository_for(app, e.name) for e in config.environments]
    return list(dict.fromkeys(found))


def write_registry(ctx: Context, build: Build, env: str) -> dict[str, Any]:
    """Make the registry say that `build` is current in `env`; return the copy report.

    The digest is read back by the copy itself: the digest the registry reports for the manifest
    it stored (the PUT's Docker-Content-Digest, ECR's imageId), or the destination's HEAD when it
    already held the digest; anything but the built digest raises DigestMismatch.
    """
    registry = ctx.registry
    app_repo = ctx.config.repository_for(build.app, None)
    if ctx.config.strategy == "tags":
        try:
            report = copy_image(
                registry, app_repo, str(build.digest), registry, app_repo, env, expect=build.digest
            )
        except NotFound as exc:
            raise NotFound(
                f"{build.digest} of {build.app} is no longer in {ctx.reference(app_repo)}", hint=exc.message
            ) from exc
        return report.to_json()
    env_repo = ctx.config.repository_for(build.app, env)
    tag = ctx.commit_tag(build)
    for source in sources(ctx, build.app, env):
        try:
            report = copy_image(
                registry,
                source,
                str(build.digest),
                registry,
                env_repo,
                tag,
                expect=build.digest,
                referrers=ctx.config.copy_referrers,
                overwrite=False,
            )
        except NotFound:
            continue
        return report.to_json()
    raise NotFound(f"{build.digest} of {build.app} is in none of its repositories any more")
