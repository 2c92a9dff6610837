//! Rule tests: sample events with the expected verdict, kept beside a rule as
//! `<rule>.tests.yml` (or `.tests.json`) for `ward rules test`, and stored with
//! a rule in Ward. Format:
//!
//! ```yaml
//! tests:
//!   - name: encoded PowerShell is caught
//!     expect: match          # or: no_match
//!     event: {"CommandLine": "powershell -enc ..."}
//! ```
//!
//! `event` is flat JSON or EVTX JSON (see `event`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::normalize_event;
use crate::validate::CompiledRule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestExpectation {
    Match,
    NoMatch,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTest {
    pub name: String,
    pub expect: TestExpectation,
    pub event: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    tests: Vec<RuleTest>,
}

/// Parses a test file (YAML or JSON).
pub fn parse_rule_tests(text: &str) -> Result<Vec<RuleTest>, String> {
    let file: TestFile = yaml_serde::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        format!(
            "{}{at}",
            e.to_string().lines().next().unwrap_or("invalid test file")
        )
    })?;
    for (i, t) in file.tests.iter().enumerate() {
        if !t.event.is_object() {
            return Err(format!(
                "test {} ({:?}): `event` must be a JSON object",
                i + 1,
                t.name
            ));
        }
    }
    Ok(file.tests)
}

/// One test's result.
#[derive(Debug, Clone, Serialize)]
pub struct TestOutcome {
    pub name: String,
    pub expect: TestExpectation,
    pub matched: bool,
    pub passed: bool,
}

/// Runs tests against a rule.
pub fn run_rule_tests(rule: &CompiledRule, tests: &[RuleTest]) -> Vec<TestOutcome> {
    tests
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let matched = normalize_event(t.event.clone(), i + 1)
                .map(|e| rule.matches(&e))
                .unwrap_or(false);
            TestOutcome {
                name: t.name.clone(),
                expect: t.expect,
                matched,
                passed: matched == (t.expect == TestExpectation::Match),
            }
        })
        .collect()
}
