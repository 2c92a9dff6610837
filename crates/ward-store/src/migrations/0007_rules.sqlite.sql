-- Detection rules per company, with immutable versions.
CREATE TABLE rules (
    id               TEXT    PRIMARY KEY,
    tenant_id        TEXT    NOT NULL REFERENCES tenants(id),
    sigma_id         TEXT,
    title            TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('draft', 'in_review', 'approved', 'rejected')),
    current_version  INTEGER NOT NULL CHECK (current_version >= 1),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CONSTRAINT rules_tenant_sigma_id_key UNIQUE (tenant_id, sigma_id)
);
CREATE INDEX rules_tenant_idx ON rules (tenant_id, title);

CREATE TABLE rule_versions (
    rule_id       TEXT    NOT NULL REFERENCES rules(id),
    version       INTEGER NOT NULL CHECK (version >= 1),
    content       TEXT    NOT NULL,
    content_hash  TEXT    NOT NULL,
    author_id     TEXT    NOT NULL,
    author_label  TEXT    NOT NULL,
    note          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (rule_id, version)
);
CREATE TRIGGER rule_versions_no_update BEFORE UPDATE ON rule_versions
BEGIN SELECT RAISE(ABORT, 'rule versions are immutable'); END;
CREATE TRIGGER rule_versions_no_delete BEFORE DELETE ON rule_versions
BEGIN SELECT RAISE(ABORT, 'rule versions are immutable'); END;
