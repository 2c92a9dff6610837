//! Validation of a Sigma file: size and encoding first, then YAML and Sigma
//! structure (errors with line and column), then compilation (modifiers, regular
//! expressions, conditions naming missing selections), then lint findings as
//! warnings. A file is valid when it has no error-severity diagnostic.

use rsigma_parser::lint::Severity as LintSeverity;
use serde::Serialize;

/// Input bounds, checked before any parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted file (SigmaHQ's largest rule is under 100 KiB).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding, with its position when known (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code: `yaml`, `too_large`, `not_utf8`, `sigma`, `unknown_modifier`,
    /// `condition`, `compile`, or the linter's rule name for warnings.
    pub code: String,
    pub message: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{l}:{c}: {sev}[{}]: {}", self.code, self.message),
            (Some(l), None) => write!(f, "{l}: {sev}[{}]: {}", self.code, self.message),
            _ => write!(f, "{sev}[{}]: {}", self.code, self.message),
        }
    }
}

/// What a valid document is, for listings and duplicate-id checks.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSummary {
    /// `detection`, `correlation` or `filter`.
    pub kind: &'static str,
    pub id: Option<String>,
    pub title: String,
    pub level: Option<String>,
    pub status: Option<String>,
    pub tags: Vec<String>,
    pub author: Option<String>,
    /// `product/category/service`, empty parts left out.
    pub logsource: String,
}

/// A detection rule ready to evaluate.
pub struct CompiledRule {
    pub summary: RuleSummary,
    pub(crate) compiled: rsigma_eval::CompiledRule,
}

impl std::fmt::Debug for CompiledRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRule")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl CompiledRule {
    /// Whether the rule matches this (already normalized) event.
    pub fn matches(&self, event: &serde_json::Value) -> bool {
        rsigma_eval::evaluate_rule(&self.compiled, &rsigma_eval::JsonEvent::borrow(event)).is_some()
    }
}

/// The result of validating one file.
#[derive(Debug, Default)]
pub struct Validation {
    pub documents: Vec<RuleSummary>,
    pub rules: Vec<CompiledRule>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Validation {
    pub fn is_valid(&self) -> bool {
        !self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
            && !self.documents.is_empty()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    fn error(&mut self, code: &str, message: impl Into<String>, at: Option<(u32, u32)>) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            code: code.to_owned(),
            message: message.into(),
            line: at.map(|p| p.0),
            column: at.map(|p| p.1),
        });
    }
}

/// Validates one Sigma file (one or more YAML documents).
pub fn validate(bytes: &[u8], limits: Limits) -> Validation {
    let mut v = Validation::default();
    if bytes.len() > limits.max_bytes {
        v.error(
            "too_large",
            format!(
                "the file is {} bytes; the limit is {} bytes",
                bytes.len(),
                limits.max_bytes
            ),
            None,
        );
        return v;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = position_of_byte(bytes, e.valid_up_to());
            v.error("not_utf8", "the file is not valid UTF-8", Some(at));
            return v;
        }
    };
    // YAML syntax first, with the parser's own position.
    if let Err(e) = check_yaml(text) {
        let at = e.location().map(|l| (l.line() as u32, l.column() as u32));
        v.error("yaml", scrub_yaml_message(&e.to_string()), at);
        return v;
    }
    let collection = match rsigma_parser::parse_sigma_yaml(text) {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            let at = locate(text, &message);
            v.error(code_of(&message), message, at);
            return v;
        }
    };
    for message in &collection.errors {
        let at = locate(text, message);
        v.error(code_of(message), message.clone(), at);
    }
    for rule in &collection.rules {
        let summary = summarize_rule(rule);
        match rsigma_eval::compile_rule(rule) {
            Ok(compiled) => {
                v.documents.push(summary.clone());
                v.rules.push(CompiledRule { summary, compiled });
            }
            Err(e) => {
                let message = e.to_string();
                let at = locate(text, &message);
                v.error(code_of(&message), message, at);
            }
        }
    }
    for c in &collection.correlations {
        v.documents.push(RuleSummary {
            kind: "correlation",
            id: c.id.clone(),
            title: c.title.clone(),
            level: c.level.map(|l| format!("{l:?}").to_lowercase()),
            status: c.status.map(|s| format!("{s:?}").to_lowercase()),
            tags: c.tags.clone(),
            author: c.author.clone(),
            logsource: String::new(),
        });
    }
    for f in &collection.filters {
        v.documents.push(RuleSummary {
            kind: "filter",
            id: f.id.clone(),
            title: f.title.clone(),
            level: None,
            status: None,
            tags: Vec::new(),
            author: f.author.clone(),
            logsource: String::new(),
        });
    }
    if v.documents.is_empty() && v.errors().next().is_none() {
        v.error("sigma", "the file holds no Sigma rule", None);
    }
    for w in rsigma_parser::lint_yaml_str(text) {
        let severity = match w.severity {
            LintSeverity::Error => Severity::Error,
            _ => Severity::Warning,
        };
        // The parser and compiler already reported structural errors with
        // better messages; keep the linter's errors only when they found none.
        if severity == Severity::Error && v.errors().next().is_some() {
            continue;
        }
        v.diagnostics.push(Diagnostic {
            severity,
            code: w.rule.to_string(),
            message: w.message.clone(),
            line: w.span.map(|s| s.start_line + 1),
            column: w.span.map(|s| s.start_col + 1),
        });
    }
    v
}

fn summarize_rule(r: &rsigma_parser::SigmaRule) -> RuleSummary {
    let ls = &r.logsource;
    let logsource = [&ls.product, &ls.category, &ls.service]
        .iter()
        .filter_map(|p| p.as_deref())
        .collect::<Vec<_>>()
        .join("/");
    RuleSummary {
        kind: "detection",
        id: r.id.clone(),
        title: r.title.clone(),
        level: r.level.map(|l| format!("{l:?}").to_lowercase()),
        status: r.status.map(|s| format!("{s:?}").to_lowercase()),
        tags: r.tags.clone(),
        author: r.author.clone(),
        logsource,
    }
}

/// Parses every document as plain YAML (no Sigma meaning yet), so syntax errors
/// carry the YAML parser's line and column.
fn check_yaml(text: &str) -> Result<(), yaml_serde::Error> {
    use serde::Deserialize;
    for doc in yaml_serde::Deserializer::from_str(text) {
        yaml_serde::Value::deserialize(doc)?;
    }
    Ok(())
}

/// YAML errors quote the input near the fault; the position is enough.
fn scrub_yaml_message(m: &str) -> String {
    m.lines().next().unwrap_or(m).to_owned()
}

fn code_of(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("unknown modifier") || m.contains("modifier") {
        "unknown_modifier"
    } else if m.contains("condition") || m.contains("selection") || m.contains("identifier") {
        "condition"
    } else if m.contains("regex") || m.contains("regular expression") {
        "invalid_regex"
    } else {
        "sigma"
    }
}

/// The best position for a parser message that carries none: the first line
/// holding the token the message quotes (`'name'` or `` `name` ``).
fn locate(text: &str, message: &str) -> Option<(u32, u32)> {
    if code_of(message) == "condition" {
        for (i, line) in text.lines().enumerate() {
            if let Some(col) = line.find("condition:") {
                return Some((i as u32 + 1, col as u32 + 1));
            }
        }
    }
    let quoted = ['\'', '`', '"'].iter().find_map(|q| {
        let start = message.find(*q)? + 1;
        let end = start + message[start..].find(*q)?;
        Some(&message[start..end]).filter(|s| !s.is_empty())
    })?;
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line
            .find(&format!("|{quoted}"))
            .map(|c| c + 1)
            .or_else(|| line.find(quoted))
        {
            return Some((i as u32 + 1, col as u32 + 1));
        }
    }
    None
}

fn position_of_byte(bytes: &[u8], offset: usize) -> (u32, u32) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() as u32 + 1;
    let col = before.iter().rev().take_while(|b| **b != b'\n').count() as u32 + 1;
    (line, col)
}

/// Many rules evaluated together with the library's indexed engine (rules are
/// pre-filtered by the fields and values an event carries), for streams of
/// events against a rule set.
pub struct RuleSet {
    engine: rsigma_eval::Engine,
}

impl RuleSet {
    pub fn new<'a>(rules: impl IntoIterator<Item = &'a CompiledRule>) -> Self {
        let mut engine = rsigma_eval::Engine::new();
        engine.extend_compiled_rules(rules.into_iter().map(|r| r.compiled.clone()));
        Self { engine }
    }

    pub fn len(&self) -> usize {
        self.engine.rule_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many rules match this (normalized) event.
    pub fn count_matches(&self, event: &serde_json::Value) -> usize {
        self.engine
            .evaluate(&rsigma_eval::JsonEvent::borrow(event))
            .len()
    }
}

/// The content hash a rule version is known by: SHA-256 of its text, hex.
pub fn content_hash(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
