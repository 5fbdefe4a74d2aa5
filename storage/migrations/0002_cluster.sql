-- Clipstream's PostgreSQL schema, version 2 (issue 21): what the nodes of
-- a cluster coordinate through (`storage/src/cluster/postgres.rs`). Times
-- are the database's clock only, so the nodes' clocks may disagree.

-- A row per running `clipstream serve`: `id` is its run's owner name (the
-- node id and a suffix of the run), `url` where the others reach it.
CREATE TABLE nodes (
    id text PRIMARY KEY,
    node_id text NOT NULL,
    url text NOT NULL,
    routing_keys text[] NOT NULL,
    heartbeat timestamptz NOT NULL
);

-- A row per piece of work queued or running: a render (its output's
-- content key), a background job. `queued` rows wait for any node whose
-- routing keys allow them; `running` rows are held by `owner` until
-- `expires`, which the owner's heartbeat pushes on.
CREATE TABLE work (
    kind text NOT NULL,
    key text COLLATE "C" NOT NULL,
    payload bytea NOT NULL,
    routing_key text,
    priority smallint NOT NULL DEFAULT 0,
    background boolean NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'running')),
    owner text,
    epoch bigint NOT NULL DEFAULT 0,
    expires timestamptz,
    created timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);
CREATE INDEX work_waiting ON work (priority DESC, created) WHERE state = 'queued';
CREATE INDEX work_owner ON work (owner) WHERE state = 'running';
