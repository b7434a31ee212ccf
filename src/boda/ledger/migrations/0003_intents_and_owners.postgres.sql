-- boda ledger schema 3 (PostgreSQL): intents (registry writes announced before they are made) and
-- the one owner of each registry repository.

CREATE TABLE intents (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action TEXT NOT NULL,
    app TEXT COLLATE "C" NOT NULL,
    env TEXT COLLATE "C",
    digest TEXT COLLATE "C",
    opened_by TEXT NOT NULL,
    opened_at TIMESTAMPTZ NOT NULL,
    detail JSONB NOT NULL,
    closed_at TIMESTAMPTZ,
    closed_by TEXT,
    resolution TEXT CHECK (resolution IN ('done', 'undone', 'abandoned')),
    reason TEXT,
    event_id BIGINT REFERENCES events (id),
    CHECK ((closed_at IS NULL) = (resolution IS NULL))
);
CREATE INDEX intents_open ON intents (app, id) WHERE closed_at IS NULL;

-- An intent is closed once, and what it announced never changes.
CREATE FUNCTION boda_intent_close_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'intents are append-only';
    END IF;
    IF OLD.closed_at IS NOT NULL
        OR (NEW.id, NEW.action, NEW.app, NEW.env, NEW.digest, NEW.opened_by, NEW.opened_at, NEW.detail)
           IS DISTINCT FROM
           (OLD.id, OLD.action, OLD.app, OLD.env, OLD.digest, OLD.opened_by, OLD.opened_at, OLD.detail)
    THEN
        RAISE EXCEPTION 'intents are closed once and never changed otherwise';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER intents_close_once BEFORE UPDATE OR DELETE ON intents
    FOR EACH ROW EXECUTE FUNCTION boda_intent_close_once();

CREATE TABLE repository_owners (
    repository TEXT COLLATE "C" PRIMARY KEY,
    app TEXT COLLATE "C" NOT NULL,
    env TEXT COLLATE "C",
    claimed_by TEXT NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX repository_owners_app ON repository_owners (app, repository);
