-- boda ledger schema: attestations (SQLite). A signed in-toto statement boda wrote to the registry
-- as a referrer of an image: which evidence or promotion it attests, its artifact's digest, its
-- predicate type and the key that signed it.

CREATE TABLE attestations (
    id INTEGER PRIMARY KEY,
    app TEXT NOT NULL,
    env TEXT NOT NULL,
    digest TEXT NOT NULL,
    statement TEXT NOT NULL,
    predicate_type TEXT NOT NULL,
    signer TEXT NOT NULL,
    repository TEXT NOT NULL,
    evidence_id INTEGER REFERENCES evidence (id),
    promotion_id INTEGER REFERENCES promotions (id),
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    CHECK ((evidence_id IS NULL) <> (promotion_id IS NULL))
);
CREATE INDEX attestations_app_digest ON attestations (app, digest, id DESC);
CREATE INDEX attestations_evidence ON attestations (evidence_id) WHERE evidence_id IS NOT NULL;
CREATE INDEX attestations_promotion ON attestations (promotion_id) WHERE promotion_id IS NOT NULL;

CREATE TRIGGER attestations_append_only_update BEFORE UPDATE ON attestations
BEGIN SELECT RAISE(ABORT, 'attestations are append-only'); END;
CREATE TRIGGER attestations_append_only_delete BEFORE DELETE ON attestations
BEGIN SELECT RAISE(ABORT, 'attestations are append-only'); END;
