-- Connected servers (owned by the indexer, from the instance stream's server changes).
CREATE TABLE rm.servers (
    id   bigint PRIMARY KEY,
    doc  jsonb  NOT NULL
);

-- The sync work's own state (owned by the API's sync consumers). Not facts, so not in the log:
-- a peer's key is a secret, and a consumer's position in a peer's feed is progress.
CREATE SCHEMA IF NOT EXISTS sync;
CREATE TABLE sync.server_keys (
    server_id  bigint PRIMARY KEY,
    authkey    text   NOT NULL
);
CREATE TABLE sync.cursors (
    server_id        bigint      PRIMARY KEY,
    position         bigint      NOT NULL,
    remote_instance  uuid,
    events_applied   bigint      NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
