"""Evidence: test results and sign-offs about a digest in an environment."""

from __future__ import annotations

from boda.errors import UsageError
from boda.ledger.dialect import Dialect, Row
from boda.ledger.queries import Queries
from boda.ledger.queries.apps import touch_app
from boda.ledger.queries.events import append_event
from boda.ledger.records import EVIDENCE_RESULTS, Evidence, NewEvent
from boda.ledger.text import check_text
from boda.types import Digest

EVIDENCE_COLUMNS = "id, app, env, digest, kind, result, recorded_by, recorded_at, url"


def decode_evidence(db: Dialect, row: Row) -> Evidence:
    return Evidence(
        id=int(row[0]),
        app=row[1],
        env=row[2],
        digest=Digest.parse(row[3]),
        kind=row[4],
        result=row[5],
        by=row[6],
        at=db.from_db_time(row[7]),
        url=row[8],
    )


class EvidenceQueries(Queries):
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
    ) -> Evidence:
        if result not in EVIDENCE_RESULTS:
            raise UsageError(f"invalid evidence result {result!r}: expected pass or fail")
        for what, value in (("app", app), ("env", env), ("kind", kind), ("by", by), ("url", url)):
            check_text(value, what)
        with self._tx.write() as db:
            rows = db.execute(
                "INSERT INTO evidence (app, env, digest, kind, result, recorded_by, recorded_at, url)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {EVIDENCE_COLUMNS}",
                (app, env, str(digest), kind, result, by, db.to_db_time(self._tx.now()), url),
            )
            evidence = decode_evidence(db, rows[0])
            touch_app(db, app)
            append_event(
                db,
                evidence.at,
                NewEvent(
                    "evidence",
                    app,
                    by,
                    env,
                    digest,
                    detail={"evidence_id": evidence.id, "kind": kind, "result": result, "url": url},
                ),
            )
            return evidence

    def evidence(self, app: str, env: str | None = None, digest: Digest | None = None) -> list[Evidence]:
        """All evidence matching the filters, newest first."""
        params: list[object] = [app]
        sql = f"SELECT {EVIDENCE_COLUMNS} FROM evidence WHERE app = ?"
        if env is not None:
            sql += " AND env = ?"
            params.append(env)
        if digest is not None:
            sql += " AND digest = ?"
            params.append(str(digest))
        return [decode_evidence(self._tx.db, r) for r in self._tx.read(sql + " ORDER BY id DESC", params)]
