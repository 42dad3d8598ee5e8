-- The correlation read model (owned by the `correlator` projector), in its own schema so it can be
-- rebuilt side by side and switched in one transaction: `es.create_correlation_tables(schema)` is the
-- one definition of its tables, used here for `corr` and by `cairnctl rebuild correlator`.
--
-- One row per correlating half of an attribute (`holders`); pairs are holders sharing a key in
-- different Events. Whether a holder is active and who may see it are decided at read time against
-- the correlator's own copy of Event and Object access fields, so a distribution change updates one
-- row, not every pair. See docs/adr/0004-correlations.md.
CREATE FUNCTION es.create_correlation_tables(s text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);
    EXECUTE format('CREATE TABLE %I.events (
        id                  bigint   PRIMARY KEY,
        uuid                uuid     NOT NULL,
        info                text     NOT NULL,
        date                text     NOT NULL,
        threat_level_id     smallint NOT NULL,
        analysis            smallint NOT NULL,
        timestamp           bigint   NOT NULL,
        org_id              bigint   NOT NULL,
        orgc_id             bigint   NOT NULL,
        distribution        smallint NOT NULL,
        sharing_group_id    bigint   NOT NULL,
        published           boolean  NOT NULL,
        disable_correlation boolean  NOT NULL)', s);
    EXECUTE format('CREATE UNIQUE INDEX ON %I.events (uuid)', s);
    EXECUTE format('CREATE TABLE %I.objects (
        id               bigint   PRIMARY KEY,
        event_id         bigint   NOT NULL,
        distribution     smallint NOT NULL,
        sharing_group_id bigint   NOT NULL,
        deleted          boolean  NOT NULL)', s);
    EXECUTE format('CREATE INDEX ON %I.objects (event_id)', s);
    EXECUTE format('CREATE TABLE %I.holders (
        attribute_id        bigint   NOT NULL,
        half                smallint NOT NULL,
        key                 text     NOT NULL,
        event_id            bigint   NOT NULL,
        object_id           bigint   NOT NULL,
        type                text     NOT NULL,
        value               text     NOT NULL,
        distribution        smallint NOT NULL,
        sharing_group_id    bigint   NOT NULL,
        deleted             boolean  NOT NULL,
        disable_correlation boolean  NOT NULL,
        ip                  inet,
        PRIMARY KEY (attribute_id, half))', s);
    EXECUTE format('CREATE INDEX ON %I.holders USING hash (key)', s);
    EXECUTE format('CREATE INDEX ON %I.holders (event_id)', s);
    EXECUTE format('CREATE INDEX ON %I.holders (object_id) WHERE object_id <> 0', s);
    EXECUTE format('CREATE INDEX ON %I.holders USING gist (ip inet_ops) WHERE ip IS NOT NULL', s);
    EXECUTE format('CREATE TABLE %I.exclusions (
        id      bigint PRIMARY KEY,
        value   text   NOT NULL,
        pattern text   NOT NULL,
        comment text   NOT NULL DEFAULT '''')', s);
END $$;

SELECT es.create_correlation_tables('corr');
