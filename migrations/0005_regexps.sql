-- MISP's "Import Regexp" table (owned by the indexer): rules applied to incoming attribute values.
CREATE TABLE rm.regexps (
    id          bigint PRIMARY KEY,
    regexp      text   NOT NULL,
    replacement text   NOT NULL,
    type        text   NOT NULL
);
