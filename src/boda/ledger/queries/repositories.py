"""Repository owners: each registry repository belongs to one app (and environment), so expiry
never plans one app's repository with another app's protections."""

from __future__ import annotations

from boda.errors import UsageError
from boda.ledger.dialect import Dialect, Row
from boda.ledger.queries import Queries
from boda.ledger.queries.events import append_event
from boda.ledger.records import NewEvent, RepositoryOwner
from boda.ledger.text import check_text
from boda.types import validate_repository

OWNER_COLUMNS = "repository, app, env, claimed_by, claimed_at"


class RepositoryClaimed(UsageError):
    """A repository already belongs to another app or environment (exit 2: the configuration or
    build that would give it a second owner is bad input)."""

    def __init__(self, repository: str, owner: RepositoryOwner, app: str, env: str | None) -> None:
        super().__init__(
            f"repository {repository} belongs to {_whose(owner.app, owner.env)}, not {_whose(app, env)}",
            hint="give each app and environment its own repository (repo_template) or app name",
        )
        self.owner = owner


def _whose(app: str, env: str | None) -> str:
    return f"app {app} (build repository)" if env is None else f"app {app} in {env}"


def decode_owner(db: Dialect, row: Row) -> RepositoryOwner:
    return RepositoryOwner(row[0], row[1], row[2], row[3], db.from_db_time(row[4]))


class RepositoryQueries(Queries):
    def claim_repository(
        self, repository: str, *, app: str, env: str | None = None, by: str
    ) -> tuple[RepositoryOwner, bool]:
        """Record that `repository` belongs to `app` (in `env`; None: the app's build repository).

        (owner, created); claiming again for the same owner changes nothing; RepositoryClaimed
        (a UsageError, exit 2) if another app or environment owns it.
        """
        validate_repository(repository)
        for what, value in (("app", app), ("env", env), ("by", by)):
            check_text(value, what)
        with self._tx.write() as db:
            now = self._tx.now()
            rows = db.execute(
                f"INSERT INTO repository_owners ({OWNER_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
                f" ON CONFLICT (repository) DO NOTHING RETURNING {OWNER_COLUMNS}",
                (repository, app, env, by, db.to_db_time(now)),
            )
            if not rows:
                existing = decode_owner(
                    db,
                    db.execute(
                        f"SELECT {OWNER_COLUMNS} FROM repository_owners WHERE repository = ?", (repository,)
                    )[0],
                )
                if (existing.app, existing.env) != (app, env):
                    raise RepositoryClaimed(repository, existing, app, env)
                return existing, False
            append_event(db, now, NewEvent("claim", app, by, env, detail={"repository": repository}))
            return decode_owner(db, rows[0]), True

    def repository_owner(self, repository: str) -> RepositoryOwner | None:
        rows = self._tx.read(
            f"SELECT {OWNER_COLUMNS} FROM repository_owners WHERE repository = ?", (repository,)
        )
        return decode_owner(self._tx.db, rows[0]) if rows else None

    def repositories_of(self, app: str) -> list[RepositoryOwner]:
        """The repositories `app` owns, sorted by name."""
        rows = self._tx.read(
            f"SELECT {OWNER_COLUMNS} FROM repository_owners WHERE app = ? ORDER BY repository", (app,)
        )
        return [decode_owner(self._tx.db, r) for r in rows]
