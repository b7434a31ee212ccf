"""The one `Ledger` protocol both databases implement (records are in `ledger.records`).

Every change appends an `Event` in the same short transaction. Lists are newest first. Registry
writes are serialised by app locks (`lock_apps`, `promotion_locks`), which are not database
transactions: no database lock is held while the registry is written.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from boda.ledger.records import (
    EVIDENCE_RESULTS,
    PROMOTION_KINDS,
    Attestation,
    Build,
    Event,
    Evidence,
    Intent,
    NewPromotion,
    Pin,
    Promotion,
    RepositoryOwner,
)
from boda.types import Digest

__all__ = [
    "EVIDENCE_RESULTS",
    "PROMOTION_KINDS",
    "Attestation",
    "Build",
    "Event",
    "Evidence",
    "Intent",
    "Ledger",
    "NewPromotion",
    "Pin",
    "Promotion",
    "PromotionTx",
    "RepositoryOwner",
]


@runtime_checkable
class PromotionTx(Protocol):
    """One (app, env) inside `Ledger.promotion_locks`: its app's lock is held for the block.

    Reads see the ledger now; each record is a short transaction of its own, committed at once
    (an exception later in the block undoes nothing: the registry write it records happened).
    """

    app: str
    env: str

    def current(self) -> Promotion | None:
        """The current promotion of the locked (app, env)."""
        ...

    def previous_digests(self, depth: int) -> list[Digest]:
        """`Ledger.previous_digests` for the locked (app, env)."""
        ...

    def previous_promotions(self, depth: int) -> list[Promotion]:
        """`Ledger.previous_promotions` for the locked (app, env)."""
        ...

    def record_promotion(
        self,
        *,
        digest: Digest,
        commit: str | None,
        reference: str,
        by: str,
        kind: str,
        reason: str | None,
        expected_previous: Digest | None,
        intent: Intent | int | None = None,
    ) -> Promotion:
        """`Ledger.record_promotion` for the locked (app, env)."""
        ...

    def record_event(
        self,
        action: str,
        *,
        by: str,
        digest: Digest | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
        intent: Intent | int | None = None,
    ) -> Event:
        """`Ledger.record_event` about the locked (app, env)."""
        ...


@runtime_checkable
class Ledger(Protocol):
    """The ledger. Database failures raise LedgerError (exit 6) with the driver's error as cause;
    text the database cannot store is a UsageError (exit 2) before anything is written; missing
    things are None or NotFound."""

    url: str
    """The ledger URL with any password redacted."""

    # -- locks and writability -----------------------------------------------------------------

    def lock_apps(
        self, apps: Iterable[str], *, timeout: float = ..., purpose: str = ""
    ) -> AbstractContextManager[None]:
        """Hold the exclusive lock of every app named (taken in sorted order) for the block.

        Hold it across the registry writes of those apps; it is not a transaction and blocks
        nothing else. LockTimeout (Conflict, exit 5) after `timeout` seconds, naming the holder;
        `purpose` (e.g. "promote to prd") is what other waiters are told this holder does.
        """
        ...

    def lock_build_tags(
        self, app: str, *, timeout: float = ..., purpose: str = ""
    ) -> AbstractContextManager[None]:
        """Hold the lock of `app`'s commit tags for the block: `boda build` chooses a commit tag,
        writes it and records it under this lock, so two builds never take the same tag. Apart
        from the app's lock: a build never waits for a promotion or an expiry."""
        ...

    def promotion_locks(
        self, pairs: Sequence[tuple[str, str]], *, timeout: float = ..., purpose: str = ""
    ) -> AbstractContextManager[Sequence[PromotionTx]]:
        """`lock_apps` of the pairs' apps; yields one view per (app, env) pair, in the given order."""
        ...

    def promotion_lock(
        self, app: str, env: str, *, timeout: float = ..., purpose: str = ""
    ) -> AbstractContextManager[PromotionTx]:
        """`promotion_locks` of one pair."""
        ...

    def check_writable(self) -> None:
        """LedgerError (exit 6, one line) unless a write would succeed now: a real write, rolled
        back (read-only files and transactions, missing privileges, a lost connection)."""
        ...

    # -- builds --------------------------------------------------------------------------------

    def record_build(
        self,
        app: str,
        *,
        commit: str,
        digest: Digest,
        reference: str,
        by: str,
        tag: str | None = None,
        media_type: str | None = None,
        size: int | None = None,
    ) -> tuple[Build, bool]:
        """Record a build with the commit tag it got and its manifest's media type and size:
        (build, created). Conflict if the commit was built as another digest, or another commit
        of the app holds `tag`. Re-recording returns the build as first recorded."""
        ...

    def get_build(self, app: str, commit: str) -> Build | None: ...

    def builds_by_commit_prefix(self, app: str | None, prefix: str, limit: int | None = None) -> list[Build]:
        """Builds whose commit starts with `prefix` (lower-case hex), of one app or all, newest first."""
        ...

    def builds_by_digest(self, digest: Digest, app: str | None = None) -> list[Build]: ...

    def list_builds(self, app: str, limit: int | None = None) -> list[Build]: ...

    def apps(self) -> list[str]:
        """Every app with a build, evidence, promotion or pin recorded, sorted by name."""
        ...

    # -- evidence ------------------------------------------------------------------------------

    def record_evidence(
        self,
        app: str,
        *,
        env: str,
        digest: Digest,
        kind: str,
        result: str,
        by: str,
        url: str | None = None,
    ) -> Evidence: ...

    def evidence(self, app: str, env: str | None = None, digest: Digest | None = None) -> list[Evidence]:
        """All evidence matching the filters, newest first."""
        ...

    # -- attestations --------------------------------------------------------------------------

    def record_signed_evidence(
        self,
        app: str,
        *,
        env: str,
        digest: Digest,
        kind: str,
        result: str,
        by: str,
        url: str | None,
        statement: Digest,
        predicate_type: str,
        signer: str,
        repository: str,
    ) -> tuple[Evidence, Attestation]:
        """Record evidence and the signed statement attesting it, in one transaction."""
        ...

    def record_attestation(
        self,
        app: str,
        *,
        env: str,
        digest: Digest,
        statement: Digest,
        predicate_type: str,
        signer: str,
        repository: str,
        by: str,
        promotion_id: int,
    ) -> Attestation:
        """Record the signed statement attesting a promotion."""
        ...

    def attestations(
        self, app: str, env: str | None = None, digest: Digest | None = None
    ) -> list[Attestation]:
        """Every recorded attestation matching the filters, newest first."""
        ...

    # -- promotions ----------------------------------------------------------------------------

    def record_promotion(self, new: NewPromotion, *, intent: Intent | int | None = None) -> Promotion:
        """Append a promotion; Conflict unless (app, env) is still at `new.expected_previous`.
        With `intent`, that open intent of the same app is closed in the same transaction."""
        ...

    def record_promotions(
        self, news: Sequence[NewPromotion], *, intents: Sequence[Intent | int] = ()
    ) -> list[Promotion]:
        """A release: every promotion in one transaction, or none if any compare-and-set fails.
        Each intent is closed by the promotion of its app (and env)."""
        ...

    def promotions(self, app: str, env: str | None = None, limit: int | None = None) -> list[Promotion]: ...

    def iter_promotions(
        self, app: str, env: str | None = None, *, before: int | None = None, page_size: int = ...
    ) -> Iterator[Promotion]:
        """Every promotion of `app` (in `env`), newest first, fetched in pages by id (bounded memory);
        `before` starts below that id."""
        ...

    def current(self, app: str, env: str) -> Promotion | None: ...

    def current_all(self, app: str) -> dict[str, Promotion]:
        """The current promotion of every environment the app was ever promoted to."""
        ...

    def previous_digests(self, app: str, env: str, depth: int) -> list[Digest]:
        """Up to `depth` distinct digests current in (app, env) before the current one, newest first.

        The current digest itself is never in the list (a rollback to it would change nothing).
        """
        ...

    def previous_promotions(self, app: str, env: str, depth: int) -> list[Promotion]:
        """For each of `previous_digests(app, env, depth)`, the last promotion that made it current."""
        ...

    def environments_with(self, digest: Digest, app: str | None = None) -> list[Promotion]:
        """The current promotions whose digest is `digest`: where it runs now."""
        ...

    def promotions_of(
        self, digest: Digest, app: str | None = None, env: str | None = None
    ) -> list[Promotion]:
        """Every promotion of `digest` (of `app`, in `env`), newest first: where it ran."""
        ...

    # -- pins ----------------------------------------------------------------------------------

    def pin(self, app: str, digest: Digest, *, reason: str, by: str) -> tuple[Pin, bool]:
        """Pin a digest; (existing pin, False) when it already is."""
        ...

    def unpin(self, app: str, digest: Digest, *, by: str) -> Pin:
        """Remove a pin and return it; NotFound when the digest is not pinned."""
        ...

    def pins(self, app: str) -> list[Pin]: ...

    # -- events --------------------------------------------------------------------------------

    def record_event(
        self,
        action: str,
        *,
        app: str,
        by: str,
        env: str | None = None,
        digest: Digest | None = None,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
        intent: Intent | int | None = None,
    ) -> Event:
        """Append an event; with `intent`, close that open intent in the same transaction."""
        ...

    def events(
        self, app: str | None = None, limit: int | None = None, *, actions: Collection[str] = ()
    ) -> list[Event]:
        """Events (of `app`; of those `actions`, all when empty), newest first."""
        ...

    def iter_events(
        self,
        app: str | None = None,
        *,
        actions: Collection[str] = (),
        before: int | None = None,
        page_size: int = ...,
    ) -> Iterator[Event]:
        """Every event (of `app`; of those `actions`), newest first, fetched in pages by id
        (bounded memory)."""
        ...

    # -- intents -------------------------------------------------------------------------------

    def begin_intent(
        self,
        action: str,
        app: str,
        *,
        by: str,
        env: str | None = None,
        digest: Digest | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Intent:
        """Record (committed at once) that a registry write is about to happen; close it by passing
        it to the record_* call of the fact it produces, or with `resolve_intent`."""
        ...

    def get_intent(self, number: int) -> Intent | None: ...

    def open_intents(self, app: str | None = None) -> list[Intent]:
        """Intents neither completed nor resolved (of `app`), newest first."""
        ...

    def resolve_intent(
        self,
        intent: Intent | int,
        *,
        resolution: str,
        by: str,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Event:
        """Close an open intent as done, undone or abandoned, appending a `resolve` event.
        NotFound for no such intent; Conflict if it is closed already."""
        ...

    # -- repository owners ---------------------------------------------------------------------

    def claim_repository(
        self, repository: str, *, app: str, env: str | None = None, by: str
    ) -> tuple[RepositoryOwner, bool]:
        """Record that `repository` belongs to `app` (in `env`): (owner, created). The same owner
        again changes nothing; another owner is RepositoryClaimed (a UsageError, exit 2)."""
        ...

    def repository_owner(self, repository: str) -> RepositoryOwner | None: ...

    def repositories_of(self, app: str) -> list[RepositoryOwner]:
        """The repositories `app` owns, sorted by name."""
        ...

    # -- lifecycle -----------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The database's schema version (the latest this boda knows, once opened)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Ledger: ...

    def __exit__(self, *exc: object) -> None: ...
