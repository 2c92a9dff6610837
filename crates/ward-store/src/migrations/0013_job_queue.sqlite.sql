-- The durable job queue (issue 16): multi-step background work that must survive
-- a crash or a `kill -9` — a deployment batch, a re-encryption pass, an erasure.
-- A worker claims a job by setting `locked_by` and `locked_until` (renewed while
-- it runs); a lock that expires makes the job claimable again, and `attempts`,
-- raised on every claim, fences a worker that lost its lock out of the row.
CREATE TABLE job_queue (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    tenant_id    TEXT    REFERENCES tenants(id),
    payload      TEXT    NOT NULL,
    progress     TEXT,
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at       INTEGER NOT NULL,
    locked_by    TEXT,
    locked_until INTEGER,
    last_error   TEXT,
    dedupe_key   TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
-- Claims scan the ready jobs in due order.
CREATE INDEX job_queue_due_idx ON job_queue (state, run_at);
-- At most one pending job per (kind, dedupe key): enqueuing twice is a no-op.
CREATE UNIQUE INDEX job_queue_pending_key ON job_queue (kind, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');
