-- 0015_hosts: compute hosts, their instances and each deployment's replica
-- count (meta.Hosts; docs/design.md, "Hosts and instances").
--
-- A host row is written by its agent (register, heartbeat) through the
-- API. capacity and used are JSON objects (hostapi.Capacity). agent_url
-- and agent_key are where and how the API reaches the agent to stream an
-- instance's logs: the key is a random secret of the agent's current run,
-- never a token.
CREATE TABLE hosts (
    id         TEXT PRIMARY KEY,
    hostname   TEXT NOT NULL DEFAULT '',
    region     TEXT NOT NULL DEFAULT '',
    driver     TEXT NOT NULL DEFAULT '',
    isolation  TEXT NOT NULL DEFAULT '',
    capacity   TEXT NOT NULL DEFAULT '{}',
    used       TEXT NOT NULL DEFAULT '{}',
    state      TEXT NOT NULL,
    agent_url  TEXT NOT NULL DEFAULT '',
    agent_key  TEXT NOT NULL DEFAULT '',
    token_id   TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);

-- An instance is desired while its row exists: placement inserts it
-- (pending) and deletes it; the host's heartbeats fill in what it
-- observes. last_log is a JSON array of lines, kept when it failed.
CREATE TABLE instances (
    id             TEXT PRIMARY KEY,
    deployment_id  TEXT NOT NULL REFERENCES deployments (id),
    version_id     TEXT NOT NULL REFERENCES versions (id),
    host_id        TEXT NOT NULL REFERENCES hosts (id),
    state          TEXT NOT NULL,
    addr           TEXT NOT NULL DEFAULT '',
    tree_digest    TEXT NOT NULL DEFAULT '',
    started_at     BIGINT,
    exit_code      BIGINT,
    restarts       BIGINT NOT NULL DEFAULT 0,
    last_log       TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE INDEX instances_deployment ON instances (deployment_id);
CREATE INDEX instances_host ON instances (host_id);

-- replicas: how many instances of its active version a (rootfs or oci)
-- deployment wants; no row means 0.
CREATE TABLE deployment_replicas (
    deployment_id TEXT PRIMARY KEY REFERENCES deployments (id),
    replicas      BIGINT NOT NULL
);

-- placement_gen is bumped by every placement change, so that a placement
-- computed from a snapshot applies only if nothing moved since.
CREATE TABLE placement_gen (
    id  BIGINT PRIMARY KEY,
    gen BIGINT NOT NULL
);
INSERT INTO placement_gen (id, gen) VALUES (1, 0);
