//! Rule benchmarks, one core, same-run baselines (`cargo xtask bench --rules`):
//! parse + validate the SigmaHQ corpus (beside parsing its YAML alone), and
//! evaluate 100 rules against a stream of events (beside parsing the same JSON
//! events alone, and the per-rule loop beside the indexed engine).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ward_rules::{Limits, RuleSet, parse_event_stream, validate};

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    (best, last.expect("runs > 0"))
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma");
    let mut rule_files = Vec::new();
    files(&root.join("rules"), "yml", &mut rule_files);
    let texts: Vec<Vec<u8>> = rule_files
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);

    println!("| measurement | value |");
    println!("|---|---|");
    let (yaml_only, _) = best_of(runs, || {
        texts
            .iter()
            .filter(|t| yaml_serde::from_slice::<yaml_serde::Value>(t).is_ok())
            .count()
    });
    println!(
        "| baseline: YAML parse only, {} files | {:.0} ms |",
        texts.len(),
        yaml_only * 1000.0
    );
    let (full, valid) = best_of(runs, || {
        texts
            .iter()
            .filter(|t| validate(t, Limits::default()).is_valid())
            .count()
    });
    println!(
        "| parse + validate + compile + lint, {} files ({valid} valid) | {:.0} ms |",
        texts.len(),
        full * 1000.0
    );

    // 100 rules: the first 100 Windows process-creation rules, in path order.
    let rules: Vec<_> = rule_files
        .iter()
        .zip(&texts)
        .filter(|(p, _)| p.to_string_lossy().contains("process_creation"))
        .filter_map(|(_, t)| validate(t, Limits::default()).rules.into_iter().next())
        .take(100)
        .collect();
    // Events: the regression data's EVTX events and flat process-creation
    // events, repeated to 200k, as one JSON Lines text.
    let mut samples = Vec::new();
    let mut event_files = Vec::new();
    files(&root.join("regression_data"), "json", &mut event_files);
    for f in &event_files {
        let text = std::fs::read_to_string(f).expect("read");
        for e in parse_event_stream(&text).expect("events") {
            samples.push(serde_json::to_string(&e).expect("json"));
        }
    }
    for i in 0..50 {
        samples.push(format!(
            "{{\"Image\":\"C:\\\\Windows\\\\System32\\\\tool{i}.exe\",\"CommandLine\":\"tool{i}.exe /quiet /norestart --id {i}\",\"ParentImage\":\"C:\\\\Windows\\\\explorer.exe\",\"User\":\"ACME\\\\analyst\",\"EventID\":1}}"
        ));
    }
    let n = 200_000;
    let stream: String = samples
        .iter()
        .cycle()
        .take(n)
        .map(|s| format!("{s}\n"))
        .collect();

    let (parse_only, parsed) = best_of(runs, || parse_event_stream(&stream).expect("events"));
    println!(
        "| baseline: parse {n} JSON events only | {:.0} events/s |",
        n as f64 / parse_only
    );
    let set = RuleSet::new(&rules);
    let (indexed, hits) = best_of(runs, || {
        let events = parse_event_stream(&stream).expect("events");
        events.iter().map(|e| set.count_matches(e)).sum::<usize>()
    });
    println!(
        "| parse + evaluate {} rules (indexed engine), {n} events, {hits} matches | {:.0} events/s |",
        set.len(),
        n as f64 / indexed
    );
    let (indexed_only, hits3) = best_of(runs, || {
        parsed.iter().map(|e| set.count_matches(e)).sum::<usize>()
    });
    println!(
        "| evaluate only, {} rules (indexed engine), {n} events, {hits3} matches | {:.0} events/s |",
        set.len(),
        n as f64 / indexed_only
    );
    let (looped, hits2) = best_of(runs, || {
        parsed
            .iter()
            .map(|e| rules.iter().filter(|r| r.matches(e)).count())
            .sum::<usize>()
    });
    println!(
        "| evaluate only, {} rules one by one, {n} events, {hits2} matches | {:.0} events/s |",
        rules.len(),
        n as f64 / looped
    );
}
