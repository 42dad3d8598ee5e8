-- Indexer read models of Events (owned by the `indexer` projector): the event index, attributes,
-- objects, object references, tags and tag links. Visibility columns (org, distribution, sharing group)
-- are kept on every row so every read path can apply the access rule in SQL.

CREATE TABLE rm.tags (
    id               bigint  PRIMARY KEY,
    stream_id        uuid    NOT NULL,
    name             text    NOT NULL,
    colour           text    NOT NULL,
    exportable       boolean NOT NULL,
    org_id           bigint  NOT NULL DEFAULT 0,
    user_id          bigint  NOT NULL DEFAULT 0,
    hide_tag         boolean NOT NULL DEFAULT false,
    numerical_value  bigint,
    is_galaxy        boolean NOT NULL DEFAULT false,
    is_custom_galaxy boolean NOT NULL DEFAULT false,
    local_only       boolean NOT NULL DEFAULT false,
    deleted          boolean NOT NULL DEFAULT false
);
CREATE INDEX tags_lower_name ON rm.tags (lower(name));

CREATE TABLE rm.events (
    id                  bigint   PRIMARY KEY,
    uuid                uuid     NOT NULL UNIQUE,
    info                text     NOT NULL,
    date                date     NOT NULL,
    threat_level_id     smallint NOT NULL,
    analysis            smallint NOT NULL,
    distribution        smallint NOT NULL,
    sharing_group_id    bigint   NOT NULL,
    org_id              bigint   NOT NULL,
    orgc_id             bigint   NOT NULL,
    user_id             bigint   NOT NULL,
    published           boolean  NOT NULL,
    publish_timestamp   bigint   NOT NULL,
    timestamp           bigint   NOT NULL,
    sighting_timestamp  bigint   NOT NULL DEFAULT 0,
    proposal_email_lock boolean  NOT NULL DEFAULT false,
    locked              boolean  NOT NULL DEFAULT false,
    disable_correlation boolean  NOT NULL DEFAULT false,
    extends_uuid        text     NOT NULL DEFAULT '',
    attribute_count     bigint   NOT NULL DEFAULT 0
);
CREATE INDEX events_timestamp ON rm.events (timestamp);
CREATE INDEX events_publish_timestamp ON rm.events (publish_timestamp);
CREATE INDEX events_org ON rm.events (org_id);
CREATE INDEX events_orgc ON rm.events (orgc_id);
CREATE INDEX events_date ON rm.events (date);

CREATE TABLE rm.event_tags (
    event_id          bigint  NOT NULL,
    tag_id            bigint  NOT NULL,
    local             boolean NOT NULL DEFAULT false,
    relationship_type text,
    PRIMARY KEY (event_id, tag_id)
);
CREATE INDEX event_tags_tag ON rm.event_tags (tag_id);

CREATE TABLE rm.objects (
    id               bigint   PRIMARY KEY,
    uuid             uuid     NOT NULL UNIQUE,
    event_id         bigint   NOT NULL,
    name             text     NOT NULL,
    meta_category    text     NOT NULL DEFAULT '',
    description      text     NOT NULL DEFAULT '',
    template_uuid    uuid,
    template_version text     NOT NULL DEFAULT '',
    timestamp        bigint   NOT NULL,
    distribution     smallint NOT NULL,
    sharing_group_id bigint   NOT NULL DEFAULT 0,
    comment          text     NOT NULL DEFAULT '',
    deleted          boolean  NOT NULL DEFAULT false,
    first_seen       bigint,
    last_seen        bigint
);
CREATE INDEX objects_event ON rm.objects (event_id);
CREATE INDEX objects_name ON rm.objects (name);

CREATE TABLE rm.attributes (
    id                  bigint   PRIMARY KEY,
    uuid                uuid     NOT NULL UNIQUE,
    event_id            bigint   NOT NULL,
    object_id           bigint   NOT NULL DEFAULT 0,
    object_relation     text,
    category            text     NOT NULL,
    type                text     NOT NULL,
    value1              text     NOT NULL,
    value2              text     NOT NULL DEFAULT '',
    to_ids              boolean  NOT NULL,
    comment             text     NOT NULL DEFAULT '',
    distribution        smallint NOT NULL,
    sharing_group_id    bigint   NOT NULL DEFAULT 0,
    timestamp           bigint   NOT NULL,
    deleted             boolean  NOT NULL DEFAULT false,
    disable_correlation boolean  NOT NULL DEFAULT false,
    first_seen          bigint,
    last_seen           bigint
);
CREATE INDEX attributes_event ON rm.attributes (event_id, id);
CREATE INDEX attributes_value1 ON rm.attributes (lower(value1));
CREATE INDEX attributes_value2 ON rm.attributes (lower(value2)) WHERE value2 <> '';
CREATE INDEX attributes_type ON rm.attributes (type);
CREATE INDEX attributes_timestamp ON rm.attributes (timestamp);

CREATE TABLE rm.attribute_tags (
    attribute_id      bigint  NOT NULL,
    event_id          bigint  NOT NULL,
    tag_id            bigint  NOT NULL,
    local             boolean NOT NULL DEFAULT false,
    relationship_type text,
    PRIMARY KEY (attribute_id, tag_id)
);
CREATE INDEX attribute_tags_event ON rm.attribute_tags (event_id);
CREATE INDEX attribute_tags_tag ON rm.attribute_tags (tag_id);

CREATE TABLE rm.object_references (
    id                bigint   PRIMARY KEY,
    uuid              uuid     NOT NULL UNIQUE,
    event_id          bigint   NOT NULL,
    object_id         bigint   NOT NULL,
    object_uuid       uuid     NOT NULL,
    referenced_uuid   uuid     NOT NULL,
    referenced_id     bigint   NOT NULL DEFAULT 0,
    referenced_type   smallint NOT NULL,
    relationship_type text     NOT NULL,
    comment           text     NOT NULL DEFAULT '',
    timestamp         bigint   NOT NULL,
    deleted           boolean  NOT NULL DEFAULT false
);
CREATE INDEX object_references_object ON rm.object_references (object_id);
CREATE INDEX object_references_event ON rm.object_references (event_id);
