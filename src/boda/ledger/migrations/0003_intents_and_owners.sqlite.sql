-- boda ledger schema 3 (SQLite): intents (registry writes announced before they are made) and
-- the one owner of each registry repository.

CREATE TABLE intents (
    id INTEGER PRIMARY KEY,
    action TEXT NOT NULL,
    app TEXT NOT NULL,
    env TEXT,
    digest TEXT,
    opened_by TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    detail TEXT NOT NULL,
    closed_at TEXT,
    closed_by TEXT,
    resolution TEXT CHECK (resolution IN ('done', 'undone', 'abandoned')),
    reason TEXT,
    event_id INTEGER REFERENCES events (id),
    CHECK ((closed_at IS NULL) = (resolution IS NULL))
);
CREATE INDEX intents_open ON intents (app, id) WHERE closed_at IS NULL;

-- An intent is closed once, and what it announced never changes.
CREATE TRIGGER intents_close_once BEFORE UPDATE ON intents
WHEN OLD.closed_at IS NOT NULL
    OR NEW.id IS NOT OLD.id OR NEW.action IS NOT OLD.action OR NEW.app IS NOT OLD.app
    OR NEW.env IS NOT OLD.env OR NEW.digest IS NOT OLD.digest OR NEW.opened_by IS NOT OLD.opened_by
    OR NEW.opened_at IS NOT OLD.opened_at OR NEW.detail IS NOT OLD.detail
BEGIN SELECT RAISE(ABORT, 'intents are closed once and never changed otherwise'); END;
CREATE TRIGGER intents_append_only_delete BEFORE DELETE ON intents
BEGIN SELECT RAISE(ABORT, 'intents are append-only'); END;

CREATE TABLE repository_owners (
    repository TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    env TEXT,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX repository_owners_app ON repository_owners (app, repository);
