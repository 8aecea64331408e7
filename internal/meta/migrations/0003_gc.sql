-- 0003_gc: garbage collection of releases (meta.GC, meta.Leases, meta.Policies).
--
-- Plain SQL for every backend (see 0001_init). Times are BIGINT unix
-- nanoseconds UTC.

-- the newest keep_versions archived versions of a deployment are never collected
ALTER TABLE deployments ADD COLUMN keep_versions INTEGER NOT NULL DEFAULT 0;

-- marked by GC: collectable once the grace period passed and still unrooted
ALTER TABLE releases ADD COLUMN collecting_at BIGINT;

-- holds on a release sha256: 'use' by an in-flight publish (a root),
-- 'delete' by a collector deleting its bytes (publish waits for it to end)
CREATE TABLE release_leases (
    sha256     TEXT NOT NULL,
    holder     TEXT NOT NULL,
    purpose    TEXT NOT NULL CHECK (purpose IN ('use', 'delete')),
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, holder)
);

CREATE INDEX release_leases_expires_at ON release_leases (expires_at);

-- exclusive locks with an expiry, e.g. the one GC runner across processes
CREATE TABLE gc_locks (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- blobs seen in the store with no live release, by digest: deleted once
-- seen for longer than the grace period
CREATE TABLE gc_orphans (
    digest        TEXT PRIMARY KEY,
    first_seen_at BIGINT NOT NULL
);

CREATE INDEX versions_collected_at ON versions (collected_at);
