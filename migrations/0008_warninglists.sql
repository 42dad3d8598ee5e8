-- Enabled warninglists (owned by the indexer). The lists themselves are reference data read from the
-- pymispwarninglists package; only the instance's choice of which ones flag values is recorded.
CREATE TABLE rm.warninglists (
    key text PRIMARY KEY
);
