-- boda ledger schema: attestations (PostgreSQL). A signed in-toto statement boda wrote to the
-- registry as a referrer of an image: which evidence or promotion it attests, its artifact's
-- digest, its predicate type and the key that signed it.

CREATE TABLE attestations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app TEXT COLLATE "C" NOT NULL,
    env TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    statement TEXT COLLATE "C" NOT NULL,
    predicate_type TEXT NOT NULL,
    signer TEXT NOT NULL,
    repository TEXT NOT NULL,
    evidence_id BIGINT REFERENCES evidence (id),
    promotion_id BIGINT REFERENCES promotions (id),
    recorded_at TIMESTAMPTZ NOT NULL,
    recorded_by TEXT NOT NULL,
    CHECK ((evidence_id IS NULL) <> (promotion_id IS NULL))
);
CREATE INDEX attestations_app_digest ON attestations (app, digest, id DESC);
CREATE INDEX attestations_evidence ON attestations (evidence_id) WHERE evidence_id IS NOT NULL;
CREATE INDEX attestations_promotion ON attestations (promotion_id) WHERE promotion_id IS NOT NULL;

CREATE TRIGGER attestations_append_only BEFORE UPDATE OR DELETE ON attestations
    FOR EACH ROW EXECUTE FUNCTION boda_append_only();
