-- 0019_rollouts: rolling replacements of a dynamic deployment's active
-- version (meta.Scheduling). A rollout is running until the scheduler
-- finishes it: succeeded (the pointer moved in the same transaction),
-- failed (the deadline passed; the pointer did not move) or superseded
-- (a newer rollout of the deployment started). healthy/wanted are its
-- progress as the scheduler last saw it.
CREATE TABLE rollouts (
    id              TEXT PRIMARY KEY,
    deployment_id   TEXT NOT NULL REFERENCES deployments (id),
    action          TEXT NOT NULL,
    from_version_id TEXT REFERENCES versions (id),
    to_version_id   TEXT NOT NULL REFERENCES versions (id),
    state           TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    actor           TEXT NOT NULL DEFAULT '',
    healthy         BIGINT NOT NULL DEFAULT 0,
    wanted          BIGINT NOT NULL DEFAULT 0,
    deadline        BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT
);

CREATE INDEX rollouts_deployment ON rollouts (deployment_id, created_at);
