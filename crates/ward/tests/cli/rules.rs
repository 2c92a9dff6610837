//! `ward rules validate|test|eval` as a CI pipeline runs them: no configuration,
//! no database, exit codes and one line per finding.

use std::path::Path;
use std::process::{Command, Output};

fn ward(dir: &Path, args: &[&str]) -> Output {
    Command::new(super::BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("WARD_DATABASE_URL")
        .output()
        .expect("run ward")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const RULE: &str = "title: Whoami
id: 7d0f0a4e-0000-4000-8000-000000000001
status: test
description: whoami run
author: Ward tests
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
fn validate_reports_each_invalid_file_and_exits_1() {
    let dir = tempdir();
    std::fs::write(dir.join("good.yml"), RULE).expect("write");
    std::fs::write(dir.join("bad.yml"), RULE.replace("endswith", "endswitch")).expect("write");
    std::fs::write(
        dir.join("dup.yml"),
        RULE.replace("title: Whoami", "title: Again"),
    )
    .expect("write");
    let o = ward(&dir, &["rules", "validate", "."]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("bad.yml:11:15: error[unknown_modifier]"),
        "{out}"
    );
    assert!(out.contains("error[duplicate_id]"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 of 3 rule file(s) are invalid"));
    std::fs::remove_file(dir.join("bad.yml")).expect("rm");
    std::fs::remove_file(dir.join("dup.yml")).expect("rm");
    let o = ward(&dir, &["rules", "validate", "good.yml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = ward(&dir, &["rules", "validate", "missing.yml"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn the_sigmahq_corpus_validates() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma/rules");
    let o = ward(
        Path::new("."),
        &[
            "rules",
            "validate",
            "--quiet",
            corpus.to_str().expect("utf8"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("3141 valid, 0 invalid"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn eval_prints_a_verdict_per_event() {
    let dir = tempdir();
    std::fs::write(dir.join("rule.yml"), RULE).expect("write");
    std::fs::write(
        dir.join("events.json"),
        "{\"Image\": \"C:\\\\Windows\\\\whoami.exe\"}\n{\"Image\": \"C:\\\\notepad.exe\"}\n[{\"Event\": {\"System\": {\"EventID\": 1}, \"EventData\": {\"Image\": \"C:\\\\x\\\\whoami.exe\"}}}]",
    )
    .expect("write");
    let o = ward(&dir, &["rules", "eval", "rule.yml", "events.json"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "events.json:1: match\nevents.json:2: no match\nevents.json:3: match\n"
    );
    std::fs::write(dir.join("broken.json"), "{\"Image\": 1}\nnot json").expect("write");
    let o = ward(&dir, &["rules", "eval", "rule.yml", "broken.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("event 2: not JSON"));
}

#[test]
fn test_runs_tests_beside_rules() {
    let dir = tempdir();
    std::fs::write(dir.join("rule.yml"), RULE).expect("write");
    std::fs::write(
        dir.join("rule.tests.yml"),
        "tests:\n  - name: caught\n    expect: match\n    event: {\"Image\": \"C:\\\\whoami.exe\"}\n  - name: quiet\n    expect: no_match\n    event: {\"Image\": \"C:\\\\calc.exe\"}\n",
    )
    .expect("write");
    let o = ward(&dir, &["rules", "test", "."]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("2 passed, 0 failed"));
    std::fs::write(
        dir.join("rule.tests.yml"),
        "tests:\n  - name: wrongly expected\n    expect: match\n    event: {\"Image\": \"C:\\\\calc.exe\"}\n",
    )
    .expect("write");
    let o = ward(&dir, &["rules", "test", "."]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("FAIL"), "{}", stdout(&o));
    std::fs::write(
        dir.join("rule.tests.yml"),
        "tests:\n  - name: x\n    expect: match\n    event: \"not an object\"\n",
    )
    .expect("write");
    let o = ward(&dir, &["rules", "test", "."]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("must be a JSON object"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn pack_zips_rules_with_their_tests() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.join("rules/windows")).expect("mkdir");
    std::fs::write(dir.join("rules/windows/rule.yml"), RULE).expect("write");
    std::fs::write(dir.join("rules/windows/rule.tests.yml"), "tests: []\n").expect("write");
    std::fs::write(dir.join("rules/README.md"), "not a rule").expect("write");
    let o = ward(&dir, &["rules", "pack", "rules", "--out", "rules.zip"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout(&o).contains("packed 1 rule(s) and 1 tests file(s)"),
        "{}",
        stdout(&o)
    );
    let zip = std::fs::read(dir.join("rules.zip")).expect("zip");
    let rules = ward_rules::bundle::read_bundle(&zip, ward_rules::bundle::BundleLimits::default())
        .expect("bundle");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].path, "windows/rule.yml");
    assert_eq!(
        rules[0].tests_path.as_deref(),
        Some("windows/rule.tests.yml")
    );
    // Nothing to pack, or no directory: a one-line reason and exit 1.
    std::fs::create_dir_all(dir.join("empty")).expect("mkdir");
    for args in [
        ["rules", "pack", "empty", "--out", "e.zip"],
        ["rules", "pack", "nowhere", "--out", "e.zip"],
    ] {
        let o = ward(&dir, &args);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&o.stderr).trim().lines().count(), 1);
    }
    assert!(!dir.join("e.zip").exists(), "nothing written");
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ward-rules-{}-{}",
        std::process::id(),
        super::rand_suffix()
    ));
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}
