-- MISP's event templates (owned by the indexer): one row per live template, its complete record in
-- `doc` (elements included), as the last template change carried it.
CREATE TABLE rm.event_templates (
    id      bigint  PRIMARY KEY,
    uuid    uuid    NOT NULL UNIQUE,
    org_id  bigint  NOT NULL,
    share   boolean NOT NULL,
    name    text    NOT NULL,
    doc     jsonb   NOT NULL
);
