-- Passkeys, MFA policy, session strength and re-authentication, sign-in ceremonies.
ALTER TABLE tenants ADD COLUMN mfa_policy TEXT NOT NULL DEFAULT 'none'
    CHECK (mfa_policy IN ('none', 'require_mfa', 'require_passkey'));

ALTER TABLE sessions ADD COLUMN multi_factor BIGINT NOT NULL DEFAULT 0 CHECK (multi_factor IN (0, 1));
ALTER TABLE sessions ADD COLUMN authenticated_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET authenticated_at = created_at;

-- A user's passkeys. `credential` is webauthn-rs's serialized credential: the
-- public key, algorithm and signature counter (nothing secret).
CREATE TABLE passkeys (
    id              TEXT    PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants(id),
    user_id         TEXT    NOT NULL REFERENCES users(id),
    name            TEXT    NOT NULL,
    credential_id   TEXT    NOT NULL,
    credential      TEXT    NOT NULL,
    sign_count      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT,
    CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id)
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id);

-- The server half of a sign-in ceremony in progress (a WebAuthn challenge, an
-- OpenID Connect state). Single use: taken by DELETE ... RETURNING.
CREATE TABLE auth_ceremonies (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    session_id  TEXT,
    user_id     TEXT,
    state       TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX auth_ceremonies_expiry_idx ON auth_ceremonies (expires_at);
