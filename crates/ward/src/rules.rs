//! `ward rules validate|test|eval`: detection-as-code checks that run in a CI
//! pipeline with no server, database or configuration. Each prints one line per
//! finding (`FILE:LINE:COL: error[code]: message`) and exits 1 when anything is
//! invalid or fails.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ward_rules::{
    Limits, TestExpectation, parse_event_stream, parse_rule_tests, run_rule_tests, validate,
};

use crate::cli::RulesCommand;

pub fn run(cmd: RulesCommand) -> Result<()> {
    match cmd {
        RulesCommand::Validate { paths, quiet } => validate_paths(&paths, quiet),
        RulesCommand::Test { paths } => test_paths(&paths),
        RulesCommand::Eval { rule, events } => eval(&rule, &events),
        RulesCommand::Pack { dir, out } => pack(&dir, &out),
    }
}

/// Zips every rule under `dir`, with the tests file beside each, under paths
/// relative to `dir` (what the import reports per file).
fn pack(dir: &Path, out: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for rule in rule_files(&[dir.to_path_buf()])? {
        for p in std::iter::once(rule.clone()).chain(tests_for(&rule)) {
            let rel = p
                .strip_prefix(dir)
                .ok()
                .and_then(|r| r.to_str())
                .map(|r| r.replace(std::path::MAIN_SEPARATOR, "/"))
                .filter(|r| ward_rules::bundle::safe_relative_path(r))
                .with_context(|| format!("{}: the path cannot go into a zip", p.display()))?;
            files.push((rel, read(&p)?));
        }
    }
    if files.is_empty() {
        bail!("{}: no .yml or .yaml rules found", dir.display());
    }
    let rules = files.iter().filter(|(p, _)| !p.contains(".tests.")).count();
    let zip =
        ward_rules::bundle::write_bundle(files.iter().map(|(p, c)| (p.as_str(), c.as_slice())))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(out, &zip).with_context(|| format!("{}", out.display()))?;
    println!(
        "packed {rules} rule(s) and {} tests file(s) into {} ({} bytes)",
        files.len() - rules,
        out.display(),
        zip.len()
    );
    Ok(())
}

/// Rule files under the given paths (directories walked, sorted); test files
/// (`*.tests.yml`) are not rules.
fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, out)?;
            }
        } else {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let is_rule =
                (name.ends_with(".yml") || name.ends_with(".yaml")) && !name.contains(".tests.");
            if is_rule {
                out.push(p.to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if !p.exists() {
            bail!("{}: no such file or directory", p.display());
        }
        if p.is_file() {
            out.push(p.clone());
        } else {
            walk(p, &mut out)?;
        }
    }
    Ok(out)
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("{}", p.display()))
}

fn validate_paths(paths: &[PathBuf], quiet: bool) -> Result<()> {
    let files = rule_files(paths)?;
    let (mut invalid, mut warnings) = (0usize, 0usize);
    let mut ids: HashMap<String, PathBuf> = HashMap::new();
    for f in &files {
        let v = validate(&read(f)?, Limits::default());
        let mut bad = !v.is_valid();
        for d in &v.diagnostics {
            if d.severity == ward_rules::Severity::Warning {
                warnings += 1;
                if quiet {
                    continue;
                }
            }
            println!("{}:{d}", f.display());
        }
        for doc in &v.documents {
            if let Some(id) = &doc.id {
                if let Some(first) = ids.get(id) {
                    println!(
                        "{}: error[duplicate_id]: rule id {id} is also used by {}",
                        f.display(),
                        first.display()
                    );
                    bad = true;
                } else {
                    ids.insert(id.clone(), f.clone());
                }
            }
        }
        if bad {
            invalid += 1;
        }
    }
    println!(
        "{} file(s): {} valid, {invalid} invalid, {warnings} warning(s)",
        files.len(),
        files.len() - invalid
    );
    if invalid > 0 {
        bail!("{invalid} of {} rule file(s) are invalid", files.len());
    }
    Ok(())
}

/// `rule.yml` → `rule.tests.yml` or `rule.tests.json` beside it.
fn tests_for(rule: &Path) -> Option<PathBuf> {
    let stem = rule.file_stem()?.to_string_lossy().into_owned();
    ["yml", "yaml", "json"]
        .iter()
        .map(|ext| rule.with_file_name(format!("{stem}.tests.{ext}")))
        .find(|p| p.exists())
}

fn test_paths(paths: &[PathBuf]) -> Result<()> {
    let files = rule_files(paths)?;
    let (mut passed, mut failed, mut broken, mut untested) = (0usize, 0usize, 0usize, 0usize);
    for f in &files {
        let v = validate(&read(f)?, Limits::default());
        let Some(rule) = v.rules.first().filter(|_| v.is_valid()) else {
            for d in v.errors() {
                println!("{}:{d}", f.display());
            }
            broken += 1;
            continue;
        };
        let Some(tests_file) = tests_for(f) else {
            untested += 1;
            continue;
        };
        let text = std::fs::read_to_string(&tests_file)
            .with_context(|| format!("{}", tests_file.display()))?;
        let tests = match parse_rule_tests(&text) {
            Ok(t) => t,
            Err(e) => {
                println!("{}: error[tests]: {e}", tests_file.display());
                broken += 1;
                continue;
            }
        };
        for o in run_rule_tests(rule, &tests) {
            let want = match o.expect {
                TestExpectation::Match => "match",
                TestExpectation::NoMatch => "no match",
            };
            if o.passed {
                passed += 1;
                println!("ok   {}: {}", f.display(), o.name);
            } else {
                failed += 1;
                println!("FAIL {}: {} (expected {want})", f.display(), o.name);
            }
        }
    }
    println!(
        "{passed} passed, {failed} failed; {broken} rule(s) invalid; {untested} rule(s) without tests"
    );
    if failed > 0 || broken > 0 {
        bail!("{failed} test(s) failed, {broken} rule(s) could not be tested");
    }
    Ok(())
}

fn eval(rule: &Path, events: &[PathBuf]) -> Result<()> {
    let v = validate(&read(rule)?, Limits::default());
    if !v.is_valid() {
        for d in v.errors() {
            println!("{}:{d}", rule.display());
        }
        bail!("{} is not a valid rule", rule.display());
    }
    let Some(compiled) = v.rules.first() else {
        bail!("{} holds no detection rule", rule.display());
    };
    for source in events {
        let text = if source.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("stdin")?;
            s
        } else {
            std::fs::read_to_string(source).with_context(|| format!("{}", source.display()))?
        };
        let parsed =
            parse_event_stream(&text).map_err(|e| anyhow::anyhow!("{}: {e}", source.display()))?;
        for (i, e) in parsed.iter().enumerate() {
            let verdict = if compiled.matches(e) {
                "match"
            } else {
                "no match"
            };
            println!("{}:{}: {verdict}", source.display(), i + 1);
        }
    }
    Ok(())
}
