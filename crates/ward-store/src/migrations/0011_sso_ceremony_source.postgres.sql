-- The address that started a sign-in ceremony, so open OpenID Connect ceremonies
-- can be bounded per source address (an unauthenticated start writes a row).
ALTER TABLE auth_ceremonies ADD COLUMN client_ip TEXT;
CREATE INDEX auth_ceremonies_source_idx ON auth_ceremonies (client_ip, kind, expires_at);
