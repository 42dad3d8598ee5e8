-- A pending delegation lets its target organisation see the Event (acl::event_visible), so the
-- correlator's copy of Event access fields carries the pending delegate too, and the one SQL access
-- rule (acl_sql::events) reads the same column on rm.events and corr.events.
ALTER TABLE corr.events ADD COLUMN delegate_org_id bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION es.create_correlation_tables(s text) RETURNS void LANGUAGE plpgsql AS $$
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
        disable_correlation boolean  NOT NULL,
        delegate_org_id     bigint   NOT NULL DEFAULT 0)', s);
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
