-- How long each cached export took to write: a stale export is regenerated no sooner than four times
-- that after its last generation, so a large export under constant writes costs at most about a fifth
-- of a core, while small ones stay fresh within moments.
ALTER TABLE exp.exports ADD COLUMN duration_ms bigint NOT NULL DEFAULT 0;
