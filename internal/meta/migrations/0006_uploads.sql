-- 0006_uploads: OCI blob upload sessions shared by every API process
-- (meta.Uploads).
--
-- Plain SQL for every backend (see 0001_init). A session's bytes are its
-- parts, each an ordinary blob named by digest ("sha256:…") in the blob
-- store; size is the sum of the parts' sizes and guards appends. Times are
-- BIGINT unix nanoseconds UTC.

CREATE TABLE uploads (
    id         TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    size       BIGINT NOT NULL DEFAULT 0
);

-- the sweep: sessions idle for longer than the upload TTL
CREATE INDEX uploads_updated_at ON uploads (updated_at);

-- Deleting an upload deletes its parts with it, in the same statement:
-- a part appended concurrently (PostgreSQL, READ COMMITTED) is either
-- seen by the cascade or refused by its upload's missing row.
CREATE TABLE upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL,
    digest    TEXT NOT NULL,
    size      BIGINT NOT NULL,
    PRIMARY KEY (upload_id, seq)
);

-- a session renews the leases of all its parts at once (holder
-- "upload-<id>", meta.Leases.RenewLeases)
CREATE INDEX release_leases_holder ON release_leases (holder);
