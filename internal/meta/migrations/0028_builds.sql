-- 0028_builds: source snapshots, builds and rebuilds (docs/design.md,
-- "Sources, builds and rebuilds").
--
-- A version whose source_sha256 names a stored snapshot (a release of
-- kind "source", or any release of those bytes) has source_snapshot set:
-- the GC keeps that release for source_retention_days after the version's
-- publish, and while it does, the builder of every build made from it.
-- build is the version's build record (JSON meta.VersionBuild), rebuild the
-- newest rebuild's verdict (JSON meta.Rebuild); both NULL when absent.
ALTER TABLE deployments ADD COLUMN source_retention_days BIGINT NOT NULL DEFAULT 365;
ALTER TABLE versions ADD COLUMN source_snapshot BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE versions ADD COLUMN build TEXT;
ALTER TABLE versions ADD COLUMN rebuild TEXT;

-- A build of a deployment (by name: its first build's success creates it),
-- a rebuild or a restore of one of its versions. queued → running (a host
-- claimed it) → succeeded | failed. spec is JSON meta.BuildSpec (its
-- snapshot and builder also in columns, for the GC); the log
-- is the command's output as text (invalid UTF-8 replaced, NULs dropped),
-- its last meta.MaxBuildLog bytes.
CREATE TABLE builds (
    id              TEXT PRIMARY KEY,
    deployment      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    version_number  BIGINT NOT NULL DEFAULT 0,
    state           TEXT NOT NULL,
    pin_host        TEXT NOT NULL DEFAULT '',
    host            TEXT NOT NULL DEFAULT '',
    source_sha256   TEXT NOT NULL,
    builder_sha256  TEXT NOT NULL,
    spec            TEXT NOT NULL,
    actor           TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    started_at      BIGINT,
    finished_at     BIGINT,
    duration_ms     BIGINT NOT NULL DEFAULT 0,
    exit_code       BIGINT,
    error           TEXT NOT NULL DEFAULT '',
    artifact_sha256 TEXT NOT NULL DEFAULT '',
    log             TEXT NOT NULL DEFAULT '',
    log_sha256      TEXT NOT NULL DEFAULT '',
    log_bytes       BIGINT NOT NULL DEFAULT 0,
    verdict         TEXT NOT NULL DEFAULT '',
    differs         TEXT NOT NULL DEFAULT ''
);

CREATE INDEX builds_deployment ON builds (deployment, created_at);
CREATE INDEX builds_state ON builds (state, created_at);
CREATE INDEX builds_builder ON builds (builder_sha256);

-- The snapshots a deployment may name: those uploaded through it (the
-- uploader had the bytes). A snapshot is global bytes; who may use it is
-- per deployment, so a digest learnt elsewhere gives nothing.
CREATE TABLE source_owners (
    deployment TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (deployment, sha256)
);

-- The GC finds the versions of a snapshot by its digest.
CREATE INDEX versions_source ON versions (source_sha256);
