-- Sharing groups (owned by the indexer): the group, its member organisations and its servers.
CREATE TABLE rm.sharing_groups (
    id            bigint  PRIMARY KEY,
    uuid          uuid    NOT NULL UNIQUE,
    name          text    NOT NULL,
    releasability text    NOT NULL DEFAULT '',
    description   text    NOT NULL DEFAULT '',
    org_id        bigint  NOT NULL,
    org_uuid      uuid    NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    roaming       boolean NOT NULL DEFAULT false,
    local         boolean NOT NULL DEFAULT true,
    created       bigint  NOT NULL,
    modified      bigint  NOT NULL,
    deleted       boolean NOT NULL DEFAULT false
);

CREATE TABLE rm.sharing_group_orgs (
    sharing_group_id bigint  NOT NULL,
    org_id           bigint  NOT NULL,
    extend           boolean NOT NULL DEFAULT false,
    PRIMARY KEY (sharing_group_id, org_id)
);
CREATE INDEX sharing_group_orgs_org ON rm.sharing_group_orgs (org_id);

CREATE TABLE rm.sharing_group_servers (
    sharing_group_id bigint  NOT NULL,
    server_id        bigint  NOT NULL,
    all_orgs         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (sharing_group_id, server_id)
);
