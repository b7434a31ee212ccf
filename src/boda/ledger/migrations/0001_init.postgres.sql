-- boda ledger schema 1 (PostgreSQL). Identifiers and digests use the C collation so that
-- commit-prefix range scans use the indexes.

CREATE TABLE apps (
    name TEXT COLLATE "C" PRIMARY KEY
);

CREATE TABLE builds (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app TEXT COLLATE "C" NOT NULL,
    commit_sha TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    reference TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    recorded_by TEXT NOT NULL,
    UNIQUE (app, commit_sha)
);
CREATE INDEX builds_commit ON builds (commit_sha);
CREATE INDEX builds_digest ON builds (digest, app);
CREATE INDEX builds_app_id ON builds (app, id DESC);

CREATE TABLE promotions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app TEXT COLLATE "C" NOT NULL,
    env TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    commit_sha TEXT COLLATE "C",
    reference TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    recorded_by TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('promote', 'rollback', 'force')),
    reason TEXT,
    previous_digest TEXT COLLATE "C"
);
CREATE INDEX promotions_app_env_id ON promotions (app, env, id DESC);
CREATE INDEX promotions_app_id ON promotions (app, id DESC);
CREATE INDEX promotions_digest ON promotions (digest, app);

-- The current promotion of each (app, env), moved in the transaction that appends the promotion.
CREATE TABLE heads (
    app TEXT COLLATE "C" NOT NULL,
    env TEXT COLLATE "C" NOT NULL,
    promotion_id BIGINT NOT NULL REFERENCES promotions (id),
    digest TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (app, env)
);
CREATE INDEX heads_digest ON heads (digest);

CREATE TABLE evidence (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app TEXT COLLATE "C" NOT NULL,
    env TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('pass', 'fail')),
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    url TEXT
);
CREATE INDEX evidence_app_env_digest ON evidence (app, env, digest, id DESC);
CREATE INDEX evidence_digest ON evidence (digest);

CREATE TABLE pins (
    app TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    reason TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (app, digest)
);

CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at TIMESTAMPTZ NOT NULL,
    recorded_by TEXT NOT NULL,
    action TEXT NOT NULL,
    app TEXT COLLATE "C" NOT NULL,
    env TEXT COLLATE "C",
    digest TEXT COLLATE "C",
    reason TEXT,
    detail JSONB NOT NULL
);
CREATE INDEX events_app_id ON events (app, id DESC);

-- History is append-only.
CREATE FUNCTION boda_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER builds_append_only BEFORE UPDATE OR DELETE ON builds
    FOR EACH ROW EXECUTE FUNCTION boda_append_only();
CREATE TRIGGER promotions_append_only BEFORE UPDATE OR DELETE ON promotions
    FOR EACH ROW EXECUTE FUNCTION boda_append_only();
CREATE TRIGGER evidence_append_only BEFORE UPDATE OR DELETE ON evidence
    FOR EACH ROW EXECUTE FUNCTION boda_append_only();
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION boda_append_only();
