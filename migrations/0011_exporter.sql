-- The exporter's state (`exp` schema, owned by the `exporter` projector; ARCHITECTURE.md §5–§6).
--
-- Feeds: what each audience last received of each Event (so a narrowing can be retracted and an
-- unchanged Event is not sent twice), and the outbox of feed messages. The outbox is written in the
-- same transaction as the exporter's checkpoint and published to JetStream stream CAIRN_FEEDS in
-- `seq` order with `Nats-Expected-Last-Sequence = seq - 1`: stream sequence == outbox seq, and a crash
-- between the two can neither lose nor duplicate a message.

CREATE SCHEMA IF NOT EXISTS exp;

CREATE TABLE exp.feed_state (
    audience    text    NOT NULL,               -- `public`, `community`, `org.<uuid>`
    event_id    bigint  NOT NULL,
    event_uuid  uuid    NOT NULL,
    digest      text    NOT NULL,               -- sha-256 of the Event JSON last sent
    attributes  uuid[]  NOT NULL,               -- the attribute uuids it held
    PRIMARY KEY (event_id, audience)
);
CREATE INDEX feed_state_uuid ON exp.feed_state (event_uuid);

CREATE TABLE exp.feed_outbox (
    seq         bigint  PRIMARY KEY,            -- == the CAIRN_FEEDS stream sequence
    msg_id      text    NOT NULL UNIQUE,        -- Nats-Msg-Id
    subject     text    NOT NULL,
    payload     text    NOT NULL,
    position    bigint  NOT NULL,               -- the log position that caused it
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The MISP feed (distribution "All communities", published): one row per Event it holds; the API
-- serves manifest.json, hashes.csv and <uuid>.json from here.
CREATE TABLE exp.misp_feed (
    event_uuid  uuid    PRIMARY KEY,
    event_id    bigint  NOT NULL,
    manifest    jsonb   NOT NULL,               -- the manifest.json entry
    document    text    NOT NULL,               -- <uuid>.json
    hashes      text[]  NOT NULL                -- md5 of each value (composites: each part)
);

-- Cached exports per view (an organisation's id; 0 = the site admins' view) and format. A row exists
-- once the view's users asked for that export; `dirty_position` is the first log position since the
-- last generation that may change what the file holds (NULL: fresh).
CREATE TABLE exp.exports (
    view_org            bigint  NOT NULL,
    format              text    NOT NULL,       -- json, csv_sig, csv_all, text/<type>, suricata, …
    dirty_position      bigint,
    generated_position  bigint,
    generated_at        timestamptz,
    bytes               bigint  NOT NULL DEFAULT 0,
    requested_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (view_org, format)
);
CREATE INDEX exports_dirty ON exp.exports (dirty_position) WHERE dirty_position IS NOT NULL;

-- Which organisations could see each Event when the exporter last looked (for staleness: an Event
-- that leaves an organisation's view changes that organisation's exports too).
CREATE TABLE exp.event_views (
    event_uuid  uuid     PRIMARY KEY,
    orgs        bigint[] NOT NULL
);
