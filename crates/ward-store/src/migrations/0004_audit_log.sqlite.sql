-- Tamper-evident audit log: leaves in integration order, the perfect subtrees of
-- the RFC 9162 tree, signed checkpoints; and the sinks events are forwarded to.
CREATE TABLE audit_leaves (
    leaf_index     INTEGER PRIMARY KEY,
    event_seq      INTEGER NOT NULL UNIQUE REFERENCES audit_events(seq),
    integrated_at  INTEGER NOT NULL
);

-- Every perfect, aligned subtree: leaves [node_index << level, (node_index + 1) << level).
-- Level 0 rows are the leaf hashes.
CREATE TABLE audit_tree (
    level       INTEGER NOT NULL,
    node_index  INTEGER NOT NULL,
    hash        BLOB    NOT NULL,
    PRIMARY KEY (level, node_index)
) WITHOUT ROWID;

CREATE TABLE audit_checkpoints (
    tree_size  INTEGER PRIMARY KEY,
    root_hash  BLOB    NOT NULL,
    issued_at  INTEGER NOT NULL,
    note       TEXT    NOT NULL
);

CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'audit_leaves is append-only'); END;
CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves
BEGIN SELECT RAISE(ABORT, 'audit_leaves is append-only'); END;
CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END;
CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

-- Forwarding sinks. `secret` (an HEC token or a webhook HMAC key) is sealed with
-- the master secret's "settings" purpose key, bound to the sink id.
CREATE TABLE audit_sinks (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    config          TEXT    NOT NULL,
    secret          BLOB,
    secret_master_version INTEGER,
    created_at      INTEGER NOT NULL,
    -- Leaves [0, delivered_size) have been acknowledged by the sink.
    delivered_size  INTEGER NOT NULL DEFAULT 0,
    failing_since   INTEGER,
    alerted         INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
