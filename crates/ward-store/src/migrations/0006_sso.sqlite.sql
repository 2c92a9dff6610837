-- A company's OpenID Connect identity providers. The client secret is sealed
-- with the settings key (AAD: sso_provider, id, client_secret, master version).
CREATE TABLE sso_providers (
    id                      TEXT    PRIMARY KEY,
    tenant_id               TEXT    NOT NULL REFERENCES tenants(id),
    name                    TEXT    NOT NULL,
    issuer                  TEXT    NOT NULL,
    client_id               TEXT    NOT NULL,
    client_secret           BLOB,
    secret_master_version   INTEGER,
    config                  TEXT    NOT NULL,
    enabled                 INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    CONSTRAINT sso_providers_tenant_name_key UNIQUE (tenant_id, name)
);
CREATE INDEX sso_providers_tenant_idx ON sso_providers (tenant_id);
