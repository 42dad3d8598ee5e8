-- Roles added beside MISP's six defaults (owned by the indexer); the defaults live in the code.
CREATE TABLE rm.roles (
    id   bigint PRIMARY KEY,
    doc  jsonb  NOT NULL
);
