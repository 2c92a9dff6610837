-- Detection rules per company, with immutable versions.
CREATE TABLE rules (
    id               TEXT    PRIMARY KEY,
    tenant_id        TEXT    NOT NULL REFERENCES tenants(id),
    sigma_id         TEXT,
    title            TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('draft', 'in_review', 'approved', 'rejected')),
    current_version  BIGINT  NOT NULL CHECK (current_version >= 1),
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    CONSTRAINT rules_tenant_sigma_id_key UNIQUE (tenant_id, sigma_id)
);
CREATE INDEX rules_tenant_idx ON rules (tenant_id, title);

CREATE TABLE rule_versions (
    rule_id       TEXT    NOT NULL REFERENCES rules(id),
    version       BIGINT  NOT NULL CHECK (version >= 1),
    content       TEXT    NOT NULL,
    content_hash  TEXT    NOT NULL,
    author_id     TEXT    NOT NULL,
    author_label  TEXT    NOT NULL,
    note          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (rule_id, version)
);
CREATE FUNCTION ward_rule_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rule versions are immutable';
END;
$$;
CREATE TRIGGER rule_versions_no_update_delete BEFORE UPDATE OR DELETE ON rule_versions
    FOR EACH ROW EXECUTE FUNCTION ward_rule_versions_immutable();
CREATE TRIGGER rule_versions_no_truncate BEFORE TRUNCATE ON rule_versions
    FOR EACH STATEMENT EXECUTE FUNCTION ward_rule_versions_immutable();
