-- Foundation schema: installation, tenants, users, sessions, API tokens, audit trail.
CREATE TABLE installation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    salt        BLOB    NOT NULL,
    key_check   BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE tenants (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    slug        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE users (
    id                  TEXT    PRIMARY KEY,
    tenant_id           TEXT    NOT NULL REFERENCES tenants(id),
    email               TEXT    NOT NULL,
    display_name        TEXT    NOT NULL,
    role                TEXT    NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    password_hash       TEXT,
    disabled            INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    password_changed_at INTEGER,
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE INDEX users_tenant_idx ON users (tenant_id);

CREATE TABLE sessions (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants(id),
    user_id       TEXT    NOT NULL REFERENCES users(id),
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    ip            TEXT    NOT NULL,
    user_agent    TEXT    NOT NULL,
    auth_method   TEXT    NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE api_tokens (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants(id),
    user_id       TEXT    NOT NULL REFERENCES users(id),
    name          TEXT    NOT NULL,
    scope         TEXT    NOT NULL CHECK (scope IN ('admin', 'user', 'viewer')),
    digest        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER,
    CONSTRAINT api_tokens_digest_key UNIQUE (digest)
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- The audit trail. `seq` orders events for reading; the Merkle leaf index of the
-- tamper-evident log is assigned later by the sequencer, in a table of its own.
CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    occurred_at  INTEGER NOT NULL,
    tenant_id    TEXT,
    actor_kind   TEXT    NOT NULL,
    actor_id     TEXT,
    actor_label  TEXT    NOT NULL,
    ip           TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    target_kind  TEXT,
    target_id    TEXT,
    outcome      TEXT    NOT NULL CHECK (outcome IN ('success', 'failure')),
    details      TEXT    NOT NULL
);
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, seq);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
