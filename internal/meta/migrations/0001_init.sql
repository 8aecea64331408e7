-- 0001_init: the initial metadata schema.
--
-- Shared by every SQL backend: plain SQL only. Times are BIGINT unix
-- nanoseconds UTC. {{autoid}} is replaced by the dialect's auto-increment
-- int64 primary key. Statements are split on ';' after '--' comments are
-- stripped, so no ';' or '--' inside string literals.

CREATE TABLE deployments (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    kind              TEXT NOT NULL CHECK (kind IN ('static', 'oci', 'rootfs')),
    -- no FOREIGN KEY: deployments and versions reference each other
    active_version_id TEXT,
    retention_days    INTEGER NOT NULL,
    created_at        BIGINT NOT NULL
);

CREATE TABLE releases (
    sha256       TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    uri          TEXT NOT NULL,
    tree_sha256  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    collected_at BIGINT
);

CREATE TABLE versions (
    id                   TEXT PRIMARY KEY,
    deployment_id        TEXT NOT NULL REFERENCES deployments (id),
    version_number       BIGINT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('ready', 'active', 'archived', 'collected')),
    source_sha256        TEXT NOT NULL DEFAULT '',
    artifact_uri         TEXT NOT NULL,
    artifact_sha256      TEXT NOT NULL REFERENCES releases (sha256),
    manifest_files       BIGINT NOT NULL DEFAULT 0,
    manifest_total_bytes BIGINT NOT NULL DEFAULT 0,
    manifest_entrypoint  TEXT NOT NULL DEFAULT '',
    created_at           BIGINT NOT NULL,
    archived_at          BIGINT,
    collected_at         BIGINT,
    -- internal: strictly increasing per deployment, orders activations
    activated_at         BIGINT,
    UNIQUE (deployment_id, version_number)
);

CREATE INDEX versions_artifact_sha256 ON versions (artifact_sha256);
CREATE INDEX versions_deployment_activated ON versions (deployment_id, activated_at);

CREATE TABLE domains (
    hostname      TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    version_id    TEXT REFERENCES versions (id),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE INDEX domains_deployment_id ON domains (deployment_id);
CREATE INDEX domains_version_id ON domains (version_id);

CREATE TABLE events (
    id             {{autoid}},
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL DEFAULT '',
    action         TEXT NOT NULL,
    deployment_id  TEXT NOT NULL DEFAULT '',
    version_id     TEXT NOT NULL DEFAULT '',
    hostname       TEXT NOT NULL DEFAULT '',
    release_sha256 TEXT NOT NULL DEFAULT '',
    detail         TEXT
);

CREATE INDEX events_deployment_id ON events (deployment_id, id);
CREATE INDEX events_hostname ON events (hostname, id);
CREATE INDEX events_at ON events (at);
