-- 0018_desired: each deployment's desired state as a record with history
-- (meta.Scheduling; docs/design.md, "Scheduling and routing"), and the
-- releases a host's cache holds.
--
-- desired_states is append-only: every change is a row, numbered per
-- deployment from 1; the current state is the row with the highest seq.
-- spec is a JSON object (meta.Desired). deployment_replicas (0015) stays
-- the replica count placement reads, written in the same transaction.
CREATE TABLE desired_states (
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    seq           BIGINT NOT NULL,
    spec          TEXT NOT NULL,
    actor         TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);

-- cached: a JSON array of the release sha256s the host's cache holds, as
-- its agent last reported them; placement prefers such hosts.
ALTER TABLE hosts ADD COLUMN cached TEXT NOT NULL DEFAULT '[]';
