-- Keyset pagination over a company's connections (re-encryption, verification,
-- backups) walks (tenant_id, id) in order; without this index each page sorted.
CREATE INDEX connections_tenant_id_idx ON connections (tenant_id, id);
