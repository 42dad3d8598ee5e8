-- Enabled taxonomies (owned by the indexer). The taxonomies themselves are reference data read from
-- the pytaxonomies package; only what this instance decided about them is recorded.
CREATE TABLE rm.taxonomies (
    namespace text    PRIMARY KEY,
    required  boolean NOT NULL DEFAULT false
);
