-- A rule's test cases, and the record of every test run.
CREATE TABLE rule_tests (
    rule_id     TEXT    PRIMARY KEY REFERENCES rules(id),
    tests       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT    NOT NULL
);

CREATE TABLE rule_test_runs (
    id          TEXT    PRIMARY KEY,
    rule_id     TEXT    NOT NULL REFERENCES rules(id),
    version     INTEGER NOT NULL,
    run_by      TEXT    NOT NULL,
    run_at      INTEGER NOT NULL,
    passed      INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    results     TEXT    NOT NULL
);
CREATE INDEX rule_test_runs_rule_idx ON rule_test_runs (rule_id, run_at);
