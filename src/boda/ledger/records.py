"""The ledger's records: what it stores (Build, Promotion, Evidence, Attestation, Pin, Event,
Intent, RepositoryOwner) and what callers hand it to store (NewPromotion, NewEvent).

Builds, promotions, evidence, attestations and events are append-only; pins and repository owners
are state; an intent is opened once and closed once. Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boda.types import Digest

PROMOTION_KINDS = frozenset({"promote", "rollback", "force"})
EVIDENCE_RESULTS = frozenset({"pass", "fail"})
# How an intent ends: `done` (the write happened and its fact is recorded), `undone` (what moved
# was put back), `abandoned` (the write did not happen, or nothing is left to do).
INTENT_RESOLUTIONS = frozenset({"done", "undone", "abandoned"})


@dataclass(frozen=True)
class Build:
    """A commit of an app built into a digest; one commit has one digest per app.

    `tag`, `media_type` and `size` (of the manifest) are recorded with every build since ledger
    schema 4; a build recorded before has None (its tag is what the configured template gives).
    """

    app: str
    commit: str
    digest: Digest
    reference: str
    recorded_at: datetime
    recorded_by: str
    #: The commit tag the build got (a longer form than the template's after a collision).
    tag: str | None = None
    media_type: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class NewPromotion:
    """A promotion to record: `digest` becomes current in (app, env) if `expected_previous` still is."""

    app: str
    env: str
    digest: Digest
    commit: str | None
    reference: str
    by: str
    kind: str
    reason: str | None
    expected_previous: Digest | None


@dataclass(frozen=True)
class Promotion:
    """A digest made current in an environment; `previous_digest` was current just before."""

    id: int
    app: str
    env: str
    digest: Digest
    commit: str | None
    reference: str
    at: datetime
    by: str
    kind: str
    reason: str | None
    previous_digest: Digest | None


@dataclass(frozen=True)
class Evidence:
    """A fact about a digest in an environment (`tests` passed, `signoff` given, ...)."""

    id: int
    app: str
    env: str
    digest: Digest
    kind: str
    result: str
    by: str
    at: datetime
    url: str | None


@dataclass(frozen=True)
class Attestation:
    """A signed statement boda wrote to the registry as a referrer of `digest`: the evidence or
    promotion it attests, its artifact's digest (`statement`), and the key that signed it."""

    id: int
    app: str
    env: str
    digest: Digest
    statement: Digest
    predicate_type: str
    signer: str
    repository: str
    evidence_id: int | None
    promotion_id: int | None
    at: datetime
    by: str


@dataclass(frozen=True)
class Pin:
    """A digest protected from expiry by hand."""

    app: str
    digest: Digest
    reason: str
    by: str
    at: datetime


@dataclass(frozen=True)
class NewEvent:
    """An event to append to the audit log."""

    action: str
    app: str
    by: str
    env: str | None = None
    digest: Digest | None = None
    reason: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Event:
    """One entry of the append-only audit log."""

    id: int
    at: datetime
    by: str
    action: str
    app: str
    env: str | None
    digest: Digest | None
    reason: str | None
    detail: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Intent:
    """A registry write announced before it was made; open until its fact is recorded or it is
    resolved (by `boda repair`). An open intent after a crash says what may have happened."""

    id: int
    action: str
    app: str
    env: str | None
    digest: Digest | None
    by: str
    at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict, hash=False)
    closed_at: datetime | None = None
    closed_by: str | None = None
    resolution: str | None = None
    reason: str | None = None

    @property
    def open(self) -> bool:
        """True until the intent was completed or resolved."""
        return self.closed_at is None


@dataclass(frozen=True)
class RepositoryOwner:
    """The one app (and environment; None for the app's build repository) a registry repository
    belongs to."""

    repository: str
    app: str
    env: str | None
    by: str
    at: datetime
