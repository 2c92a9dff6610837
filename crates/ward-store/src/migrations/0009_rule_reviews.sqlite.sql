-- Review and approval of detection rules, rule deletion, and the per-company
-- number of approvals a rule needs.
ALTER TABLE tenants ADD COLUMN rule_min_approvers INTEGER NOT NULL DEFAULT 1
    CHECK (rule_min_approvers BETWEEN 1 AND 5);
-- The newest approved version (what a deployment would ship), and deletion:
-- versions are immutable, so a deleted rule keeps them and leaves the lists.
ALTER TABLE rules ADD COLUMN approved_version INTEGER;
-- What the list filters on, kept from the current version when it is saved:
-- level, tags (space-separated), logsource (product/category/service) and the
-- author of the current version.
ALTER TABLE rules ADD COLUMN level TEXT;
ALTER TABLE rules ADD COLUMN tags TEXT NOT NULL DEFAULT '';
ALTER TABLE rules ADD COLUMN logsource TEXT NOT NULL DEFAULT '';
ALTER TABLE rules ADD COLUMN author_label TEXT NOT NULL DEFAULT '';
ALTER TABLE rules ADD COLUMN deleted_at INTEGER;

-- One review round per submission. At most one is open per rule; an edit of the
-- rule or of its tests voids it.
CREATE TABLE rule_reviews (
    id                TEXT    PRIMARY KEY,
    rule_id           TEXT    NOT NULL REFERENCES rules(id),
    -- 1, 2, 3, ... per rule: the order of rounds (times may tie).
    round             INTEGER NOT NULL,
    version           INTEGER NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('open', 'approved', 'rejected', 'voided')),
    submitted_by      TEXT    NOT NULL,
    submitted_label   TEXT    NOT NULL,
    submitted_at      INTEGER NOT NULL,
    -- JSON array of the user ids who wrote the change (they may not review it).
    authors           TEXT    NOT NULL,
    required          INTEGER NOT NULL,
    test_run_id       TEXT    NOT NULL REFERENCES rule_test_runs(id),
    closed_by_label   TEXT,
    closed_at         INTEGER,
    reason            TEXT
);
CREATE UNIQUE INDEX rule_reviews_one_open ON rule_reviews (rule_id) WHERE state = 'open';
CREATE UNIQUE INDEX rule_reviews_round_key ON rule_reviews (rule_id, round);

CREATE TABLE rule_approvals (
    review_id       TEXT    NOT NULL REFERENCES rule_reviews(id),
    approver_id     TEXT    NOT NULL,
    approver_label  TEXT    NOT NULL,
    approved_at     INTEGER NOT NULL,
    PRIMARY KEY (review_id, approver_id)
);
