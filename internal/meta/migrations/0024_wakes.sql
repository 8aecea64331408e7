-- 0024_wakes: scale to zero (meta.Wakes; docs/design.md, "Scale to
-- zero"). A row says that a version of a deployment was asked for: an
-- edge's router woke it (woken_at, when a request found no instance) and
-- last saw a request for it (last_request). The scheduler runs instances
-- of a preview (non-active) version, or of the active version of a
-- deployment with autostop, only while last_request is within the idle
-- time; the rows stay (one per version ever woken) and are overwritten.
CREATE TABLE wakes (
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    version_id    TEXT NOT NULL REFERENCES versions (id),
    woken_at      BIGINT NOT NULL,
    last_request  BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, version_id)
);
