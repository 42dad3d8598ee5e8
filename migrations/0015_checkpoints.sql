-- Signed checkpoints of the chain head (the notary in the relay writes them; see
-- shared/eventlog/src/checkpoint.rs). Append-only like the log itself.
CREATE TABLE es.checkpoints (
    commit_seq  bigint      PRIMARY KEY,
    position    bigint      NOT NULL,
    chain_hash  bytea       NOT NULL,
    signed_at   timestamptz NOT NULL,
    body        text        NOT NULL,
    signature   text        NOT NULL,
    public_key  text        NOT NULL
);
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON es.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION es.refuse_rewrite();
