"""Attestations: the signed statements boda wrote to the registry, recorded with what they attest.

A mixin of `SqlLedger`: signed evidence is recorded with its statement in one transaction; a
promotion's statement is recorded against the promotion it attests (joining the transaction of
the caller's promotion lock when one is open).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from boda.errors import UsageError
from boda.ledger.base import Attestation, Event, Evidence
from boda.types import Digest

Row = tuple[Any, ...]


class _Connection(Protocol):
    """What these queries use of `_sql.Dialect` (named here: `_sql` imports this module)."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    def to_db_time(self, value: datetime) -> object: ...

    def from_db_time(self, value: Any) -> datetime: ...


ATTESTATION_COLUMNS = (
    "id, app, env, digest, statement, predicate_type, signer, repository, evidence_id, promotion_id,"
    " recorded_at, recorded_by"
)


class AttestationQueries:
    """Queries over the `attestations` table (schema migration `attestations`)."""

    _db: _Connection

    if TYPE_CHECKING:

        def _write(self) -> AbstractContextManager[None]: ...

        def _now(self) -> datetime: ...

        def _query(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

        def _append_event(
            self,
            action: str,
            *,
            app: str,
            by: str,
            env: str | None = None,
            digest: Digest | None = None,
            reason: str | None = None,
            detail: Mapping[str, Any] | None = None,
        ) -> Event: ...

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

    def _attestation(self, row: Row) -> Attestation:
        return Attestation(
            id=int(row[0]),
            app=row[1],
            env=row[2],
            digest=Digest.parse(row[3]),
            statement=Digest.parse(row[4]),
            predicate_type=row[5],
            signer=row[6],
            repository=row[7],
            evidence_id=int(row[8]) if row[8] is not None else None,
            promotion_id=int(row[9]) if row[9] is not None else None,
            at=self._db.from_db_time(row[10]),
            by=row[11],
        )

    def _insert_attestation(
        self,
        app: str,
        env: str,
        digest: Digest,
        *,
        statement: Digest,
        predicate_type: str,
        signer: str,
        repository: str,
        by: str,
        evidence_id: int | None = None,
        promotion_id: int | None = None,
    ) -> Attestation:
        """Insert one row and its event; the caller holds the write transaction."""
        for what, value in (
            ("predicate type", predicate_type),
            ("signer", signer),
            ("repository", repository),
        ):
            if not value or any(ord(c) < 32 for c in value):
                raise UsageError(f"invalid attestation {what} {value!r}")
        rows = self._db.execute(
            "INSERT INTO attestations (app, env, digest, statement, predicate_type, signer, repository,"
            " evidence_id, promotion_id, recorded_at, recorded_by)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {ATTESTATION_COLUMNS}",
            (
                app,
                env,
                str(digest),
                str(statement),
                predicate_type,
                signer,
                repository,
                evidence_id,
                promotion_id,
                self._db.to_db_time(self._now()),
                by,
            ),
        )
        attestation = self._attestation(rows[0])
        self._append_event(
            "attestation",
            app=app,
            env=env,
            by=by,
            digest=digest,
            detail={
                "attestation_id": attestation.id,
                "statement": str(statement),
                "predicate_type": predicate_type,
                "signer": signer,
                "repository": repository,
                "evidence_id": evidence_id,
                "promotion_id": promotion_id,
            },
        )
        return attestation

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
        with self._write():
            evidence = self.record_evidence(
                app, env=env, digest=digest, kind=kind, result=result, by=by, url=url
            )
            attestation = self._insert_attestation(
                app,
                env,
                digest,
                statement=statement,
                predicate_type=predicate_type,
                signer=signer,
                repository=repository,
                by=by,
                evidence_id=evidence.id,
            )
            return evidence, attestation

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
        with self._write():
            found = self._db.execute("SELECT app, env, digest FROM promotions WHERE id = ?", (promotion_id,))
            if not found or tuple(found[0]) != (app, env, str(digest)):
                raise UsageError(f"promotion {promotion_id} is not of {app} {digest} in {env}")
            return self._insert_attestation(
                app,
                env,
                digest,
                statement=statement,
                predicate_type=predicate_type,
                signer=signer,
                repository=repository,
                by=by,
                promotion_id=promotion_id,
            )

    def attestations(
        self, app: str, env: str | None = None, digest: Digest | None = None
    ) -> list[Attestation]:
        params: list[object] = [app]
        sql = f"SELECT {ATTESTATION_COLUMNS} FROM attestations WHERE app = ?"
        if digest is not None:
            sql += " AND digest = ?"
            params.append(str(digest))
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        return [self._attestation(r) for r in self._query(sql + " ORDER BY id DESC", params)]
