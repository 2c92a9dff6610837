-- Foundation schema: installation, tenants, users, sessions, API tokens, audit trail.
CREATE TABLE installation (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    salt        BYTEA    NOT NULL,
    key_check   BYTEA    NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE tenants (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    slug        TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE users (
    id                  TEXT    PRIMARY KEY,
    tenant_id           TEXT    NOT NULL REFERENCES tenants(id),
    email               TEXT    NOT NULL,
    display_name        TEXT    NOT NULL,
    role                TEXT    NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    password_hash       TEXT,
    disabled            BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    password_changed_at BIGINT,
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE INDEX users_tenant_idx ON users (tenant_id);

CREATE TABLE sessions (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants(id),
    user_id       TEXT    NOT NULL REFERENCES users(id),
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
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
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    CONSTRAINT api_tokens_digest_key UNIQUE (digest)
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- The audit trail. `seq` orders events for reading; the Merkle leaf index of the
-- tamper-evident log is assigned later by the sequencer, in a table of its own.
CREATE TABLE audit_events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    occurred_at  BIGINT NOT NULL,
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

CREATE FUNCTION ward_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION ward_audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION ward_audit_append_only();
