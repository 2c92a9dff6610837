-- Per-tenant key versions, SIEM connections (the first encrypted entity), job leases.
ALTER TABLE installation ADD COLUMN master_version BIGINT NOT NULL DEFAULT 1;

CREATE TABLE tenant_keys (
    tenant_id       TEXT    NOT NULL REFERENCES tenants(id),
    version         BIGINT NOT NULL CHECK (version >= 1),
    state           TEXT    NOT NULL CHECK (state IN ('active', 'decrypt_only', 'destroyed')),
    wrapped_key     BYTEA,
    master_version  BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT,
    destroyed_at    BIGINT,
    PRIMARY KEY (tenant_id, version),
    CHECK ((state = 'destroyed') = (wrapped_key IS NULL))
);
-- At most one active version per company.
CREATE UNIQUE INDEX tenant_keys_one_active ON tenant_keys (tenant_id) WHERE state = 'active';

CREATE TABLE connections (
    id                      TEXT    PRIMARY KEY,
    tenant_id               TEXT    NOT NULL REFERENCES tenants(id),
    name                    TEXT    NOT NULL,
    kind                    TEXT    NOT NULL CHECK (kind IN ('splunk', 'elastic', 'sentinel', 'crowdstrike', 'generic-http')),
    base_url                TEXT    NOT NULL,
    credentials             BYTEA    NOT NULL,
    credentials_key_version BIGINT NOT NULL,
    credential_fields       TEXT    NOT NULL,
    credentials_changed_at  BIGINT NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    CONSTRAINT connections_tenant_name_key UNIQUE (tenant_id, name)
);
CREATE INDEX connections_key_version_idx ON connections (tenant_id, credentials_key_version);

CREATE TABLE key_policies (
    tenant_id               TEXT    PRIMARY KEY REFERENCES tenants(id),
    rotation_interval_days  BIGINT NOT NULL CHECK (rotation_interval_days BETWEEN 1 AND 3650)
);

CREATE TABLE job_leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_at  BIGINT NOT NULL
);
