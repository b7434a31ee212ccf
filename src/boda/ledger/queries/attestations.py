"""Attestations: the signed statements boda wrote to the registry, recorded with what they attest.

Signed evidence is recorded with its statement in one transaction; a promotion's statement is
recorded against the promotion it attests.
"""

from __future__ import annotations

from boda.errors import UsageError
from boda.ledger.dialect import Dialect, Row
from boda.ledger.queries.events import append_event
from boda.ledger.queries.evidence import EvidenceQueries
from boda.ledger.records import Attestation, Evidence, NewEvent
from boda.ledger.text import check_text
from boda.types import Digest

ATTESTATION_COLUMNS = (
    "id, app, env, digest, statement, predicate_type, signer, repository, evidence_id, promotion_id,"
    " recorded_at, recorded_by"
)


def decode_attestation(db: Dialect, row: Row) -> Attestation:
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
        at=db.from_db_time(row[10]),
        by=row[11],
    )


def _check_names(app: str, env: str, by: str, predicate_type: str, signer: str, repository: str) -> None:
    for what, value in (("predicate type", predicate_type), ("signer", signer), ("repository", repository)):
        check_text(value, what)
        if not value or any(ord(c) < 32 for c in value):
            raise UsageError(f"invalid attestation {what} {value!r}")
    for what, value in (("app", app), ("env", env), ("by", by)):
        check_text(value, what)


def _insert_attestation(
    db: Dialect,
    now: object,
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
    """Insert one row and its event inside the open transaction."""
    rows = db.execute(
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
            now,
            by,
        ),
    )
    attestation = decode_attestation(db, rows[0])
    append_event(
        db,
        attestation.at,
        NewEvent(
            "attestation",
            app,
            by,
            env,
            digest,
            detail={
                "attestation_id": attestation.id,
                "statement": str(statement),
                "predicate_type": predicate_type,
                "signer": signer,
                "repository": repository,
                "evidence_id": evidence_id,
                "promotion_id": promotion_id,
            },
        ),
    )
    return attestation


class AttestationQueries(EvidenceQueries):
    """Evidence queries and the attestations of evidence and promotions."""

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
        _check_names(app, env, by, predicate_type, signer, repository)
        with self._tx.write() as db:
            evidence = self.record_evidence(
                app, env=env, digest=digest, kind=kind, result=result, by=by, url=url
            )
            attestation = _insert_attestation(
                db,
                db.to_db_time(self._tx.now()),
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
        """Record the signed statement attesting a promotion."""
        _check_names(app, env, by, predicate_type, signer, repository)
        with self._tx.write() as db:
            found = db.execute("SELECT app, env, digest FROM promotions WHERE id = ?", (promotion_id,))
            if not found or tuple(found[0]) != (app, env, str(digest)):
                raise UsageError(f"promotion {promotion_id} is not of {app} {digest} in {env}")
            return _insert_attestation(
                db,
                db.to_db_time(self._tx.now()),
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
        """Every recorded attestation matching the filters, newest first."""
        params: list[object] = [app]
        sql = f"SELECT {ATTESTATION_COLUMNS} FROM attestations WHERE app = ?"
        if digest is not None:
            sql += " AND digest = ?"
            params.append(str(digest))
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        return [decode_attestation(self._tx.db, r) for r in self._tx.read(sql + " ORDER BY id DESC", params)]
