-- boda ledger schema 1 (SQLite). Timestamps are ISO 8601 UTC text with microseconds.

CREATE TABLE apps (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE builds (
    id INTEGER PRIMARY KEY,
    app TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    digest TEXT NOT NULL,
    reference TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    UNIQUE (app, commit_sha)
);
CREATE INDEX builds_commit ON builds (commit_sha);
CREATE INDEX builds_digest ON builds (digest, app);
CREATE INDEX builds_app_id ON builds (app, id DESC);

CREATE TABLE promotions (
    id INTEGER PRIMARY KEY,
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    digest TEXT NOT NULL,
    commit_sha TEXT,
    reference TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('promote', 'rollback', 'force')),
    reason TEXT,
    previous_digest TEXT
);
CREATE INDEX promotions_app_env_id ON promotions (app, env, id DESC);
CREATE INDEX promotions_app_id ON promotions (app, id DESC);
CREATE INDEX promotions_digest ON promotions (digest, app);

-- The current promotion of each (app, env), moved in the transaction that appends the promotion.
CREATE TABLE heads (
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    promotion_id INTEGER NOT NULL REFERENCES promotions (id),
    digest TEXT NOT NULL,
    PRIMARY KEY (app, env)
) WITHOUT ROWID;
CREATE INDEX heads_digest ON heads (digest);

CREATE TABLE evidence (
    id INTEGER PRIMARY KEY,
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    digest TEXT NOT NULL,
    kind TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('pass', 'fail')),
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    url TEXT
);
CREATE INDEX evidence_app_env_digest ON evidence (app, env, digest, id DESC);
CREATE INDEX evidence_digest ON evidence (digest);

CREATE TABLE pins (
    app TEXT NOT NULL,
    digest TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (app, digest)
) WITHOUT ROWID;

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    action TEXT NOT NULL,
    app TEXT NOT NULL,
    env TEXT,
    digest TEXT,
    reason TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX events_app_id ON events (app, id DESC);

-- History is append-only.
CREATE TRIGGER builds_append_only_update BEFORE UPDATE ON builds
BEGIN SELECT RAISE(ABORT, 'builds are append-only'); END;
CREATE TRIGGER builds_append_only_delete BEFORE DELETE ON builds
BEGIN SELECT RAISE(ABORT, 'builds are append-only'); END;
CREATE TRIGGER promotions_append_only_update BEFORE UPDATE ON promotions
BEGIN SELECT RAISE(ABORT, 'promotions are append-only'); END;
CREATE TRIGGER promotions_append_only_delete BEFORE DELETE ON promotions
BEGIN SELECT RAISE(ABORT, 'promotions are append-only'); END;
CREATE TRIGGER evidence_append_only_update BEFORE UPDATE ON evidence
BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;
CREATE TRIGGER evidence_append_only_delete BEFORE DELETE ON evidence
BEGIN SELECT RAISE(ABORT, 'evidence is append-only'); END;
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
