-- Collaboration read models (owned by the `indexer` projector): proposals (MISP's shadow attributes),
-- delegation requests, the discussion threads and posts of Events, sightings.
--
-- None of these rows carries its own access fields: each is visible through its Event (and, for
-- proposals on an attribute and for sightings, through that attribute), joined to `rm.events` /
-- `rm.attributes`; sightings then pass MISP's `Plugin.Sightings_policy`
-- (`cairn_domain::acl::{proposal_visible, post_visible, sighting_visible}`).
--
-- Ids come from the sequences `ids.proposal`, `ids.delegation`, `ids.thread`, `ids.post` and
-- `ids.sighting` (0001_event_log.sql).

-- The organisation a pending delegation targets sees the Event (acl::EventAccess::delegate_org_id):
-- kept on the Event's row so every SQL visibility condition can add `OR e.delegate_org_id = <org>`.
ALTER TABLE rm.events ADD COLUMN delegate_org_id bigint NOT NULL DEFAULT 0;
CREATE INDEX events_delegate_org ON rm.events (delegate_org_id) WHERE delegate_org_id <> 0;

-- Proposals, pending and resolved. `deleted` is MISP's flag (true once accepted or discarded);
-- `status` says which. Edit and deletion proposals share the target attribute's uuid (MISP), so uuid
-- is not unique.
CREATE TABLE rm.shadow_attributes (
    id                  bigint   PRIMARY KEY,
    uuid                uuid     NOT NULL,
    event_id            bigint   NOT NULL,
    event_uuid          uuid     NOT NULL,
    old_id              bigint   NOT NULL DEFAULT 0,
    event_org_id        bigint   NOT NULL,
    category            text     NOT NULL,
    type                text     NOT NULL,
    value1              text     NOT NULL,
    value2              text     NOT NULL DEFAULT '',
    to_ids              boolean  NOT NULL,
    comment             text     NOT NULL DEFAULT '',
    disable_correlation boolean  NOT NULL DEFAULT false,
    first_seen          bigint,
    last_seen           bigint,
    proposal_to_delete  boolean  NOT NULL DEFAULT false,
    org_id              bigint   NOT NULL,
    user_id             bigint   NOT NULL,
    email               text     NOT NULL DEFAULT '',
    timestamp           bigint   NOT NULL,
    -- beyond MISP: the target attribute's revision and timestamp the proposal was based on
    base_revision       bigint   NOT NULL DEFAULT 0,
    base_timestamp      bigint   NOT NULL DEFAULT 0,
    deleted             boolean  NOT NULL DEFAULT false,
    status              text     NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'discarded')),
    -- the attribute an accepted proposal created, changed or deleted
    attribute_id        bigint,
    resolved_at         bigint,
    resolved_by_org_id  bigint,
    resolved_by_user_id bigint
);
CREATE INDEX shadow_attributes_event ON rm.shadow_attributes (event_id, id);
-- `hasproposal` and the Event view: pending proposals of an Event
CREATE INDEX shadow_attributes_event_pending ON rm.shadow_attributes (event_id) WHERE NOT deleted;
-- `Attribute[].ShadowAttribute[]`
CREATE INDEX shadow_attributes_old ON rm.shadow_attributes (old_id) WHERE old_id <> 0;
CREATE INDEX shadow_attributes_org ON rm.shadow_attributes (org_id, id);
CREATE INDEX shadow_attributes_event_org ON rm.shadow_attributes (event_org_id, id);
CREATE INDEX shadow_attributes_timestamp ON rm.shadow_attributes (timestamp);

-- Delegation requests, pending and resolved (MISP deletes them; we keep the history).
-- `distribution` -1 means "recipient decides".
CREATE TABLE rm.event_delegations (
    id                  bigint   PRIMARY KEY,
    event_id            bigint   NOT NULL,
    event_uuid          uuid     NOT NULL,
    org_id              bigint   NOT NULL,
    requester_org_id    bigint   NOT NULL,
    requester_user_id   bigint   NOT NULL,
    message             text     NOT NULL DEFAULT '',
    distribution        smallint NOT NULL CHECK (distribution BETWEEN -1 AND 4),
    sharing_group_id    bigint   NOT NULL DEFAULT 0,
    timestamp           bigint   NOT NULL,
    status              text     NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'discarded')),
    resolved_at         bigint,
    resolved_by_org_id  bigint,
    resolved_by_user_id bigint
);
CREATE UNIQUE INDEX event_delegations_one_pending ON rm.event_delegations (event_id) WHERE status = 'pending';
-- `index/context:pending` (to my organisation) and `context:issued` (by my organisation)
CREATE INDEX event_delegations_target_pending ON rm.event_delegations (org_id, id) WHERE status = 'pending';
CREATE INDEX event_delegations_requester_pending ON rm.event_delegations (requester_org_id, id) WHERE status = 'pending';
CREATE INDEX event_delegations_event ON rm.event_delegations (event_id, id);

-- One discussion thread per Event (MISP's `threads` with `event_id`); `deleted` once its last post
-- is, after which a new post starts a new thread.
CREATE TABLE rm.threads (
    id            bigint  PRIMARY KEY,
    event_id      bigint  NOT NULL,
    event_uuid    uuid    NOT NULL,
    title         text    NOT NULL,
    org_id        bigint  NOT NULL,
    user_id       bigint  NOT NULL,
    date_created  bigint  NOT NULL,
    date_modified bigint  NOT NULL,
    post_count    bigint  NOT NULL DEFAULT 0,
    deleted       boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX threads_event_live ON rm.threads (event_id) WHERE NOT deleted;
CREATE INDEX threads_date_modified ON rm.threads (date_modified);

CREATE TABLE rm.posts (
    id            bigint  PRIMARY KEY,
    thread_id     bigint  NOT NULL,
    event_id      bigint  NOT NULL,
    user_id       bigint  NOT NULL,
    org_id        bigint  NOT NULL,
    contents      text    NOT NULL,
    post_id       bigint  NOT NULL DEFAULT 0,
    date_created  bigint  NOT NULL,
    date_modified bigint  NOT NULL,
    deleted       boolean NOT NULL DEFAULT false
);
CREATE INDEX posts_thread ON rm.posts (thread_id, id);
CREATE INDEX posts_event ON rm.posts (event_id);
CREATE INDEX posts_user ON rm.posts (user_id);

-- Sightings (from the per-Event sightings streams). Deleted ones are removed.
CREATE TABLE rm.sightings (
    id             bigint   PRIMARY KEY,
    uuid           uuid     NOT NULL UNIQUE,
    event_id       bigint   NOT NULL,
    event_uuid     uuid     NOT NULL,
    attribute_id   bigint   NOT NULL,
    attribute_uuid uuid     NOT NULL,
    org_id         bigint   NOT NULL,
    user_id        bigint   NOT NULL,
    type           smallint NOT NULL CHECK (type BETWEEN 0 AND 2),
    source         text     NOT NULL DEFAULT '',
    date_sighting  bigint   NOT NULL
);
CREATE INDEX sightings_event ON rm.sightings (event_id, id);
-- `Attribute[].Sighting[]`, `listSightings`, restSearch by attribute + type + date range
CREATE INDEX sightings_attribute_type_date ON rm.sightings (attribute_id, type, date_sighting);
-- org filters and policy 1 ("has my organisation reported on this Event?")
CREATE INDEX sightings_org_event ON rm.sightings (org_id, event_id);
-- restSearch `from`/`to`/`last` without a context
CREATE INDEX sightings_date ON rm.sightings (date_sighting);
