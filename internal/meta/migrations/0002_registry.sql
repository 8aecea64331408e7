-- 0002_registry: what the OCI registry knows beyond the bytes (meta.Registry).
--
-- Plain SQL for every backend (see 0001_init). Blob and manifest bytes live
-- once in the blob store; these tables say which repository may serve them.
-- Digests are "alg:hex" text. Booleans are INTEGER 0 or 1.

CREATE TABLE oci_repositories (
    name          TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    created_at    BIGINT NOT NULL
);

CREATE INDEX oci_repositories_deployment_id ON oci_repositories (deployment_id);

-- which repository may serve which blob (layers, configs)
CREATE TABLE oci_blobs (
    repository TEXT NOT NULL REFERENCES oci_repositories (name),
    digest     TEXT NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);

CREATE INDEX oci_blobs_digest ON oci_blobs (digest);

CREATE TABLE oci_manifests (
    repository    TEXT NOT NULL REFERENCES oci_repositories (name),
    digest        TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    size          BIGINT NOT NULL,
    -- '' when the manifest has no subject
    subject       TEXT NOT NULL DEFAULT '',
    artifact_type TEXT NOT NULL DEFAULT '',
    -- JSON object, '' when there are none
    annotations   TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);

CREATE INDEX oci_manifests_subject ON oci_manifests (repository, subject);
CREATE INDEX oci_manifests_digest ON oci_manifests (digest);

CREATE TABLE oci_tags (
    repository TEXT NOT NULL,
    tag        TEXT NOT NULL,
    digest     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository, tag),
    FOREIGN KEY (repository, digest) REFERENCES oci_manifests (repository, digest)
);

CREATE INDEX oci_tags_digest ON oci_tags (repository, digest);

CREATE TABLE oci_deployment_settings (
    deployment_id  TEXT PRIMARY KEY REFERENCES deployments (id),
    anonymous_pull INTEGER NOT NULL DEFAULT 0
);
