-- 0004_replicas: copies of blobs in the non-primary regions (meta.Replicas).
--
-- Plain SQL for every backend (see 0001_init). One row per blob digest
-- ("sha256:…") and region other than the primary; the primary holds every
-- blob and has no rows. Times are BIGINT unix nanoseconds UTC.

CREATE TABLE blob_replicas (
    digest      TEXT NOT NULL,
    region      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'failed', 'deleting')),
    -- tries since the row became pending or deleting
    attempts    INTEGER NOT NULL DEFAULT 0,
    -- classified reason of the last failure, '' once ready
    reason      TEXT NOT NULL DEFAULT '',
    -- token of the replicator working on the row, '' when unclaimed
    claim       TEXT NOT NULL DEFAULT '',
    next_try_at BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (digest, region)
);

-- the replicator's queue: rows that are not ready, by due time
CREATE INDEX blob_replicas_due ON blob_replicas (state, next_try_at);
