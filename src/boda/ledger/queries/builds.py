"""Builds: commit -> digest, one digest per commit and app, never changed."""

from __future__ import annotations

from boda.errors import Conflict, UsageError
from boda.ledger.dialect import Dialect, Row
from boda.ledger.queries import Queries, limited
from boda.ledger.queries.apps import touch_app
from boda.ledger.queries.events import append_event
from boda.ledger.records import Build, NewEvent
from boda.ledger.text import check_text
from boda.types import COMMIT_PREFIX, FULL_COMMIT_SHA, MIN_PREFIX, Digest

BUILD_COLUMNS = "app, commit_sha, digest, reference, recorded_at, recorded_by, tag, media_type, size"


def decode_build(db: Dialect, row: Row) -> Build:
    return Build(
        row[0],
        row[1],
        Digest.parse(row[2]),
        row[3],
        db.from_db_time(row[4]),
        row[5],
        row[6],
        row[7],
        None if row[8] is None else int(row[8]),
    )


class BuildQueries(Queries):
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
        """Record a build: (build, created). Conflict if the commit was built as another digest, or
        if another commit of the app holds `tag` (the commit tag the build got)."""
        if not isinstance(commit, str) or not FULL_COMMIT_SHA.match(commit):
            raise UsageError(
                f"invalid commit {commit!r}: expected a full lower-case hex SHA (40 or 64 digits)"
            )
        for what, value in (("app", app), ("reference", reference), ("by", by), ("tag", tag)):
            check_text(value, what)
        check_text(media_type, "media type")
        if size is not None and (type(size) is not int or size < 0):
            raise UsageError(f"invalid manifest size {size!r}")
        with self._tx.write() as db:
            # Either uniqueness, of (app, commit) or of (app, tag), makes the insert do nothing.
            rows = db.execute(
                f"INSERT INTO builds ({BUILD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT DO NOTHING RETURNING {BUILD_COLUMNS}",
                (
                    app,
                    commit,
                    str(digest),
                    reference,
                    db.to_db_time(self._tx.now()),
                    by,
                    tag,
                    media_type,
                    size,
                ),
            )
            if not rows:
                existing = db.execute(
                    f"SELECT {BUILD_COLUMNS} FROM builds WHERE app = ? AND commit_sha = ?", (app, commit)
                )
                if not existing:
                    holder = db.execute("SELECT commit_sha FROM builds WHERE app = ? AND tag = ?", (app, tag))
                    raise Conflict(
                        f"commit tag {tag} of {app} is already recorded for commit"
                        f" {holder[0][0] if holder else 'another commit'}, not {commit}",
                        hint="a commit tag names one commit for ever; building again gives a longer one",
                    )
                build = decode_build(db, existing[0])
                if build.digest != digest:
                    raise Conflict(
                        f"commit {commit} of {app} was built as {build.digest}, not {digest}",
                        hint="a commit has one digest per app; a rebuild needs a new commit",
                    )
                return build, False
            build = decode_build(db, rows[0])
            touch_app(db, app)
            detail: dict[str, object] = {"commit": commit, "reference": reference}
            if tag is not None:
                detail["tag"] = tag
            append_event(db, build.recorded_at, NewEvent("build", app, by, digest=digest, detail=detail))
            return build, True

    def get_build(self, app: str, commit: str) -> Build | None:
        rows = self._tx.read(
            f"SELECT {BUILD_COLUMNS} FROM builds WHERE app = ? AND commit_sha = ?", (app, commit)
        )
        return decode_build(self._tx.db, rows[0]) if rows else None

    def builds_by_commit_prefix(self, app: str | None, prefix: str, limit: int | None = None) -> list[Build]:
        """Builds whose commit starts with `prefix` (lower-case hex), of one app or all, newest first."""
        if not COMMIT_PREFIX.match(prefix):
            raise UsageError(f"invalid commit {prefix!r}: expected {MIN_PREFIX} to 64 lower-case hex digits")
        # A range instead of LIKE so both databases use the index; 'g' sorts after every hex digit.
        params: list[object] = [prefix, prefix + "g"]
        sql = f"SELECT {BUILD_COLUMNS} FROM builds WHERE commit_sha >= ? AND commit_sha < ?"
        if app is not None:
            sql += " AND app = ?"
            params.append(app)
        sql = limited(sql + " ORDER BY id DESC", params, limit)
        return [decode_build(self._tx.db, r) for r in self._tx.read(sql, params)]

    def builds_by_digest(self, digest: Digest, app: str | None = None) -> list[Build]:
        params: list[object] = [str(digest)]
        sql = f"SELECT {BUILD_COLUMNS} FROM builds WHERE digest = ?"
        if app is not None:
            sql += " AND app = ?"
            params.append(app)
        return [decode_build(self._tx.db, r) for r in self._tx.read(sql + " ORDER BY id DESC", params)]

    def list_builds(self, app: str, limit: int | None = None) -> list[Build]:
        params: list[object] = [app]
        sql = limited(f"SELECT {BUILD_COLUMNS} FROM builds WHERE app = ? ORDER BY id DESC", params, limit)
        return [decode_build(self._tx.db, r) for r in self._tx.read(sql, params)]
