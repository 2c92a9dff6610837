-- Tamper-evident audit log: leaves in integration order, the perfect subtrees of
-- the RFC 9162 tree, signed checkpoints; and the sinks events are forwarded to.
CREATE TABLE audit_leaves (
    leaf_index     BIGINT PRIMARY KEY,
    event_seq      BIGINT NOT NULL UNIQUE REFERENCES audit_events(seq),
    integrated_at  BIGINT NOT NULL
);

-- Every perfect, aligned subtree: leaves [node_index << level, (node_index + 1) << level).
-- Level 0 rows are the leaf hashes.
CREATE TABLE audit_tree (
    level       BIGINT   NOT NULL,
    node_index  BIGINT   NOT NULL,
    hash        BYTEA    NOT NULL,
    PRIMARY KEY (level, node_index)
);

CREATE TABLE audit_checkpoints (
    tree_size  BIGINT PRIMARY KEY,
    root_hash  BYTEA  NOT NULL,
    issued_at  BIGINT NOT NULL,
    note       TEXT   NOT NULL
);

CREATE TRIGGER audit_leaves_no_update_delete BEFORE UPDATE OR DELETE ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION ward_audit_append_only();
CREATE TRIGGER audit_leaves_no_truncate BEFORE TRUNCATE ON audit_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_append_only();
CREATE TRIGGER audit_tree_no_update_delete BEFORE UPDATE OR DELETE ON audit_tree
    FOR EACH ROW EXECUTE FUNCTION ward_audit_append_only();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON audit_tree
    FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_append_only();
CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ward_audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_append_only();

-- Forwarding sinks. `secret` (an HEC token or a webhook HMAC key) is sealed with
-- the master secret's "settings" purpose key, bound to the sink id.
CREATE TABLE audit_sinks (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    config          TEXT    NOT NULL,
    secret          BYTEA,
    secret_master_version BIGINT,
    created_at      BIGINT  NOT NULL,
    -- Leaves [0, delivered_size) have been acknowledged by the sink.
    delivered_size  BIGINT  NOT NULL DEFAULT 0,
    failing_since   BIGINT,
    alerted         BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT
);
