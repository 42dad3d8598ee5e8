-- Read models of the indexer: organisations, users, API keys and instance settings (the "directory").
-- Owned by the `indexer` projector; written only by it.

CREATE SCHEMA IF NOT EXISTS rm;

CREATE TABLE rm.organisations (
    id            bigint PRIMARY KEY,
    uuid          uuid   NOT NULL UNIQUE,
    name          text   NOT NULL,
    local         boolean NOT NULL,
    deleted       boolean NOT NULL DEFAULT false,
    doc           jsonb  NOT NULL
);
CREATE INDEX organisations_name ON rm.organisations (lower(name));

CREATE TABLE rm.users (
    id        bigint  PRIMARY KEY,
    uuid      uuid    NOT NULL UNIQUE,
    org_id    bigint  NOT NULL,
    email     text    NOT NULL,
    role_id   bigint  NOT NULL,
    disabled  boolean NOT NULL,
    deleted   boolean NOT NULL DEFAULT false,
    doc       jsonb   NOT NULL
);
CREATE INDEX users_email ON rm.users (lower(email));
CREATE INDEX users_org ON rm.users (org_id);

CREATE TABLE rm.auth_keys (
    id          bigint  PRIMARY KEY,
    uuid        uuid    NOT NULL UNIQUE,
    user_id     bigint  NOT NULL,
    key_hash    text    NOT NULL UNIQUE,
    revoked     boolean NOT NULL DEFAULT false,
    doc         jsonb   NOT NULL
);
CREATE INDEX auth_keys_user ON rm.auth_keys (user_id);

CREATE TABLE rm.instance (
    id              smallint PRIMARY KEY CHECK (id = 1),
    instance_uuid   uuid,
    host_org_id     bigint,
    admin_user_id   bigint,
    default_role_id bigint NOT NULL DEFAULT 3
);
INSERT INTO rm.instance (id) VALUES (1);

CREATE TABLE rm.settings (
    name  text  PRIMARY KEY,
    value jsonb NOT NULL
);
