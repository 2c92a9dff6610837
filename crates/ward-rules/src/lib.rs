//! Detection rules, the pure part: Sigma YAML validated with line and column
//! (the `rsigma` parser, linter and compiler underneath), events in flat JSON or
//! Windows EVTX JSON mapped to Sigma field names, local evaluation, and the rule
//! test file format. No I/O: callers hand in bytes and get values back.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod diff;
pub mod event;
pub mod rule_tests;
pub mod validate;
mod zip_headers;

pub use diff::unified_diff;
pub use event::{EventError, normalize_event, parse_event_stream};
pub use rule_tests::{RuleTest, TestExpectation, TestOutcome, parse_rule_tests, run_rule_tests};
pub use validate::{
    CompiledRule, Diagnostic, Limits, RuleSet, RuleSummary, Severity, Validation, content_hash,
    validate,
};
