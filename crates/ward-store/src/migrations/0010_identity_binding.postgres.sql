-- Closing the adversarial review's sign-in findings (issue 15, items 1, 2, 5).

-- An external identity is bound to an account by (provider, subject), never by
-- email. A provider reaches only accounts linked to it (JIT-created by it, or
-- linked by their owner or the operator).
CREATE TABLE external_identities (
    provider_id TEXT    NOT NULL REFERENCES sso_providers(id),
    subject     TEXT    NOT NULL,
    tenant_id   TEXT    NOT NULL REFERENCES tenants(id),
    user_id     TEXT    NOT NULL REFERENCES users(id),
    linked_by   TEXT    NOT NULL CHECK (linked_by IN ('provisioning', 'owner', 'operator')),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (provider_id, subject),
    CONSTRAINT external_identities_user_key UNIQUE (provider_id, user_id)
);
CREATE INDEX external_identities_user_idx ON external_identities (user_id);

-- Who controls a provider (separation of duties counts it) and who made an account.
ALTER TABLE sso_providers ADD COLUMN created_by TEXT;
ALTER TABLE sso_providers ADD COLUMN updated_by TEXT;
ALTER TABLE users ADD COLUMN created_by TEXT;

-- The provider a session was opened through (NULL: password or passkey), and
-- whether its last (re-)authentication proved a second factor.
ALTER TABLE sessions ADD COLUMN sso_provider_id TEXT;
ALTER TABLE sessions ADD COLUMN reauth_multi_factor BIGINT NOT NULL DEFAULT 0
    CHECK (reauth_multi_factor IN (0, 1));
UPDATE sessions SET reauth_multi_factor = multi_factor;

-- API tokens: the provider of the session that minted them, and the explicit
-- capability for security-sensitive actions (short-lived, minted after a
-- recent re-authentication that meets the company's MFA policy).
ALTER TABLE api_tokens ADD COLUMN sso_provider_id TEXT;
ALTER TABLE api_tokens ADD COLUMN sensitive BIGINT NOT NULL DEFAULT 0 CHECK (sensitive IN (0, 1));

-- Optional review policy: approvers' accounts must predate the change.
ALTER TABLE tenants ADD COLUMN rule_approvers_predate BIGINT NOT NULL DEFAULT 0
    CHECK (rule_approvers_predate IN (0, 1));

-- Email domains a company claims; verified by the operator or a DNS TXT record.
-- At most one company holds a domain verified.
CREATE TABLE tenant_domains (
    tenant_id   TEXT    NOT NULL REFERENCES tenants(id),
    domain      TEXT    NOT NULL,
    token       TEXT    NOT NULL,
    verified_at BIGINT,
    verified_by TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);
CREATE UNIQUE INDEX tenant_domains_verified_key ON tenant_domains (domain) WHERE verified_at IS NOT NULL;
