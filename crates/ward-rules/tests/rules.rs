//! The SigmaHQ corpus beside the repository (`../shared/data/sigma`): every
//! community rule validates, every rule in the regression data fires on its
//! recorded events, the `windefend` rules see Defender's spaced field names;
//! and the bad inputs the issue names are refused clearly and quickly.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ward_rules::{Limits, Severity, parse_event_stream, validate};

fn sigma_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn every_sigmahq_rule_is_accepted() {
    let mut files = Vec::new();
    yaml_files(&sigma_data().join("rules"), &mut files);
    assert!(files.len() > 3000, "the corpus is there ({})", files.len());
    let mut rejected = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        let v = validate(&bytes, Limits::default());
        if !v.is_valid() {
            let first = v
                .errors()
                .next()
                .map(ToString::to_string)
                .unwrap_or_default();
            rejected.push(format!("{}: {first}", f.display()));
        }
    }
    assert!(
        rejected.is_empty(),
        "{} rejected, first: {:?}",
        rejected.len(),
        rejected.first()
    );
}

#[test]
fn every_regression_rule_fires_on_its_events() {
    let root = sigma_data();
    let mut infos = Vec::new();
    yaml_files(&root.join("regression_data"), &mut infos);
    let infos: Vec<_> = infos
        .into_iter()
        .filter(|p| p.ends_with("info.yml"))
        .collect();
    assert!(
        infos.len() > 100,
        "regression data is there ({})",
        infos.len()
    );
    let mut rules = Vec::new();
    yaml_files(&root.join("rules"), &mut rules);
    let by_id: std::collections::HashMap<String, PathBuf> = rules
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("id:"))?
                .trim()
                .to_owned();
            Some((id, p))
        })
        .collect();
    let mut failures = Vec::new();
    for info in &infos {
        let dir = info.parent().expect("dir");
        // The rule is named by id in info.yml (paths in the corpus move).
        let text = std::fs::read_to_string(info).expect("info");
        let id = text
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix("- id:"))
            .map(|s| s.trim().to_owned())
            .expect("rule id in info.yml");
        let Some(rule_path) = by_id.get(&id) else {
            failures.push(format!("{}: no rule with id {id}", info.display()));
            continue;
        };
        let bytes = std::fs::read(rule_path).expect("read");
        let v = validate(&bytes, Limits::default());
        let Some(rule) = v.rules.first() else {
            failures.push(format!("{}: does not compile", rule_path.display()));
            continue;
        };
        for entry in std::fs::read_dir(dir).expect("dir").filter_map(Result::ok) {
            let p = entry.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let events =
                parse_event_stream(&std::fs::read_to_string(&p).expect("read")).expect("events");
            if !events.iter().any(|e| rule.matches(e)) {
                failures.push(format!(
                    "{} did not fire on {}",
                    rule_path.display(),
                    p.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
}

fn first_error(text: &[u8]) -> ward_rules::Diagnostic {
    let started = Instant::now();
    let v = validate(text, Limits::default());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "validation stays fast"
    );
    assert!(!v.is_valid());
    v.errors().next().cloned().expect("an error")
}

const GOOD: &str = "title: Whoami
id: 5a1b2c3d-0000-4000-8000-000000000001
status: test
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\whoami.exe'
    condition: selection
level: low
";

#[test]
fn a_good_rule_is_valid_and_evaluates() {
    let v = validate(GOOD.as_bytes(), Limits::default());
    assert!(v.is_valid(), "{:?}", v.diagnostics);
    let rule = &v.rules[0];
    assert!(rule.matches(&serde_json::json!({"Image": "C:\\Windows\\System32\\whoami.exe"})));
    assert!(!rule.matches(&serde_json::json!({"Image": "C:\\Windows\\notepad.exe"})));
}

#[test]
fn bad_rules_are_refused_with_positions() {
    // Tabs for indentation: a YAML error with its line.
    let e = first_error(GOOD.replace("    condition", "\tcondition").as_bytes());
    assert_eq!(e.code, "yaml");
    assert_eq!(e.line, Some(10), "{e}");

    // Unknown modifier.
    let e = first_error(GOOD.replace("endswith", "endswitch").as_bytes());
    assert_eq!(e.code, "unknown_modifier", "{e}");
    assert_eq!(e.line, Some(9), "{e}");

    // A condition naming a missing selection.
    let e = first_error(
        GOOD.replace("condition: selection", "condition: selection and filter")
            .as_bytes(),
    );
    assert!(e.message.contains("filter"), "{e}");
    assert_eq!((e.code.as_str(), e.line), ("condition", Some(10)), "{e}");

    // An invalid regular expression.
    let e = first_error(
        GOOD.replace("Image|endswith: '\\whoami.exe'", "Image|re: '(unclosed'")
            .as_bytes(),
    );
    assert!(
        e.message.to_lowercase().contains("regex") || e.code == "invalid_regex",
        "{e}"
    );

    // Invalid UTF-8.
    let mut bytes = GOOD.as_bytes().to_vec();
    bytes.extend_from_slice(b"\xff\xfe");
    assert_eq!(first_error(&bytes).code, "not_utf8");

    // Too large (10 MB).
    let big = format!("{GOOD}# {}\n", "x".repeat(10 * 1024 * 1024));
    assert_eq!(first_error(big.as_bytes()).code, "too_large");

    // Not Sigma at all.
    assert!(!validate(b"just: yaml\n", Limits::default()).is_valid());
}

#[test]
fn hostile_yaml_is_refused_quickly() {
    // Billion laughs: aliases expanding exponentially.
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
    let mut prev = "a";
    for n in names {
        bomb.push_str(&format!(
            "{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
        prev = n;
    }
    bomb.push_str(GOOD);
    let _ = first_error(bomb.as_bytes());

    // Deep nesting.
    let deep = format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let e = first_error(deep.as_bytes());
    assert_eq!(e.code, "yaml", "{e}");

    // Catastrophic-backtracking regex: the engine is linear-time, so it stays fast.
    let v = validate(
        GOOD.replace("Image|endswith: '\\whoami.exe'", "Image|re: '^(a+)+$'")
            .as_bytes(),
        Limits::default(),
    );
    assert!(v.is_valid(), "{:?}", v.diagnostics);
    let evil = serde_json::json!({"Image": format!("{}!", "a".repeat(100_000))});
    let started = Instant::now();
    assert!(!v.rules[0].matches(&evil));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn lint_findings_are_warnings() {
    let v = validate(
        GOOD.replace("level: low\n", "level: low\ntags:\n    - attack.T1033\n")
            .as_bytes(),
        Limits::default(),
    );
    assert!(
        v.is_valid(),
        "warnings do not invalidate: {:?}",
        v.diagnostics
    );
    assert!(
        v.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Warning),
        "{:?}",
        v.diagnostics
    );
}

/// Defender events written as Windows exports them, with spaced `EventData`
/// names, against the corpus's own `windefend` rules, which use the names
/// without spaces. The corpus has no recorded Defender event, so the events
/// are built here with the field names Defender writes.
#[test]
fn windefend_rules_see_spaced_defender_fields() {
    let rule = |name: &str| {
        let path = sigma_data()
            .join("rules/windows/builtin/windefend")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v = validate(&bytes, Limits::default());
        v.rules.into_iter().next().expect("the rule compiles")
    };
    let defender = |event_id: u32, data: &str| {
        let text = format!(
            r##"{{"Event": {{"System": {{"EventID": {event_id},
                "Channel": "Microsoft-Windows-Windows Defender/Operational",
                "Provider": {{"#attributes": {{"Name": "Microsoft-Windows-Windows Defender"}}}}}},
              "EventData": {data}}}}}"##
        );
        let mut events = parse_event_stream(&text).expect("event");
        events.pop().expect("one event")
    };

    // `SourceName: 'AMSI'` (EventID 1116).
    let amsi = rule("win_defender_malware_detected_amsi_source.yml");
    let detected = |source: &str| {
        defender(
            1116,
            &format!(
                r##"{{"Product Name": "Microsoft Defender Antivirus", "Threat Name": "Trojan:PowerShell/Test",
                    "Source ID": "10", "Source Name": "{source}", "Process Name": "Unknown"}}"##
            ),
        )
    };
    assert!(amsi.matches(&detected("AMSI")));
    assert!(!amsi.matches(&detected("Real-Time Protection")));

    // ASR blocked lsass access (EventID 1121), except from the `ProcessName`s
    // the rule filters out: without the mapping the filters never apply and
    // svchost.exe would be reported too.
    let lsass = rule("win_defender_asr_lsass_access.yml");
    let blocked = |process: &str| {
        defender(
            1121,
            &format!(
                r##"{{"Product Name": "Microsoft Defender Antivirus",
                    "ID": "9E6C4E1F-7D60-472F-BA1A-A39EF669E4B2",
                    "Process Name": {process:?}, "Path": "C:\\Windows\\System32\\lsass.exe"}}"##
            ),
        )
    };
    assert!(lsass.matches(&blocked(r"C:\Users\u\Downloads\mimikatz.exe")));
    assert!(!lsass.matches(&blocked(r"C:\Windows\System32\svchost.exe")));
}
