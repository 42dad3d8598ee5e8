-- The event log: the source of truth (ARCHITECTURE.md §4).
-- Positions are gap-free and commit-ordered because every append takes the single es.log_head row;
-- see docs/adr/0001-ordering.md for why a bigserial position is not used.

CREATE SCHEMA IF NOT EXISTS es;

-- One row per aggregate (an Event, an organisation, a user, a sharing group, ...), written once when the
-- stream is created. A stream's version is its highest stream_version in es.changes (an index probe);
-- appends read it while holding the log-head lock, so the check cannot race (docs/adr/0001-ordering.md).
CREATE TABLE es.streams (
    stream_id      uuid        PRIMARY KEY,
    stream_type    text        NOT NULL,
    first_position bigint      NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The single log-head row: last position, last commit and the head of the SHA-256 commit chain.
-- Every append locks it first, which serialises appends across processes and makes positions gap-free
-- and commit-ordered. A low fillfactor leaves room for HOT updates of this one hot row.
CREATE TABLE es.log_head (
    id            smallint PRIMARY KEY CHECK (id = 1),
    last_position bigint   NOT NULL,
    last_commit   bigint   NOT NULL,
    chain_hash    bytea    NOT NULL
) WITH (fillfactor = 10);
INSERT INTO es.log_head VALUES (1, 0, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- One row per accepted command: a contiguous run of positions.
CREATE TABLE es.commits (
    commit_seq     bigint      PRIMARY KEY,
    first_position bigint      NOT NULL,
    last_position  bigint      NOT NULL,
    command_id     uuid        NOT NULL UNIQUE,
    command_type   text        NOT NULL,
    actor          jsonb       NOT NULL,
    committed_at   timestamptz NOT NULL,
    batch_digest   bytea       NOT NULL,
    chain_hash     bytea       NOT NULL,
    CHECK (last_position >= first_position)
);

-- Every change, by position.
CREATE TABLE es.changes (
    position       bigint      PRIMARY KEY,
    commit_seq     bigint      NOT NULL,
    change_id      uuid        NOT NULL UNIQUE,
    stream_id      uuid        NOT NULL,
    stream_type    text        NOT NULL,
    stream_version bigint      NOT NULL,
    change_type    text        NOT NULL,
    schema_version smallint    NOT NULL,
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    content_hash   bytea       NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX changes_stream_type_pos ON es.changes (stream_type, position);
CREATE INDEX changes_change_type_pos ON es.changes (change_type, position);
CREATE INDEX changes_recorded_at ON es.changes USING brin (recorded_at);

-- The log is append-only: the application can neither rewrite nor remove history.
CREATE FUNCTION es.refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'es.% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER changes_append_only BEFORE UPDATE OR DELETE ON es.changes
    FOR EACH STATEMENT EXECUTE FUNCTION es.refuse_rewrite();
CREATE TRIGGER changes_no_truncate BEFORE TRUNCATE ON es.changes
    FOR EACH STATEMENT EXECUTE FUNCTION es.refuse_rewrite();
CREATE TRIGGER commits_append_only BEFORE UPDATE OR DELETE ON es.commits
    FOR EACH STATEMENT EXECUTE FUNCTION es.refuse_rewrite();
CREATE TRIGGER commits_no_truncate BEFORE TRUNCATE ON es.commits
    FOR EACH STATEMENT EXECUTE FUNCTION es.refuse_rewrite();

-- Projector bookkeeping: checkpoints move in the same transaction as the read model they describe.
CREATE TABLE es.projector_checkpoints (
    projector  text        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- A change a projector failed to apply; after max attempts it is dead-lettered and skipped.
CREATE TABLE es.projector_failures (
    projector  text        NOT NULL,
    position   bigint      NOT NULL,
    attempts   integer     NOT NULL,
    last_error text        NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_seen  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (projector, position)
);

CREATE TABLE es.dead_letters (
    projector   text        NOT NULL,
    position    bigint      NOT NULL,
    change_id   uuid        NOT NULL,
    change_type text        NOT NULL,
    error       text        NOT NULL,
    attempts    integer     NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (projector, position)
);

-- Numeric ids that MISP clients see. Allocated before a command is decided (decide is pure), so gaps
-- are possible (MISP has them too); the values themselves are recorded in the changes.
CREATE SCHEMA IF NOT EXISTS ids;
CREATE SEQUENCE ids.organisation;
CREATE SEQUENCE ids.user_account;
CREATE SEQUENCE ids.auth_key;
CREATE SEQUENCE ids.event;
CREATE SEQUENCE ids.attribute;
CREATE SEQUENCE ids.object;
CREATE SEQUENCE ids.object_reference;
CREATE SEQUENCE ids.tag;
CREATE SEQUENCE ids.tag_link;
CREATE SEQUENCE ids.sharing_group;
CREATE SEQUENCE ids.proposal;
CREATE SEQUENCE ids.sighting;
CREATE SEQUENCE ids.post;
CREATE SEQUENCE ids.thread;
CREATE SEQUENCE ids.delegation;
CREATE SEQUENCE ids.regexp;
CREATE SEQUENCE ids.taxonomy;
CREATE SEQUENCE ids.template;
CREATE SEQUENCE ids.template_element;
CREATE SEQUENCE ids.correlation_exclusion;
CREATE SEQUENCE ids.server;
CREATE SEQUENCE ids.warninglist;
