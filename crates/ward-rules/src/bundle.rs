//! Rule bundles: a zip of Sigma files with their tests beside them, the unit of
//! bulk import and export. Reading is bounded (entry count, per-file and total
//! uncompressed size, measured while inflating rather than trusted from the
//! headers), so a zip bomb is refused instead of filling memory; an archive that
//! names a file twice or whose two headers of an entry disagree is refused too
//! (`zip_headers.rs`), since unzip tools would not agree on its content.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

/// How much a bundle may hold.
#[derive(Debug, Clone, Copy)]
pub struct BundleLimits {
    pub max_entries: usize,
    /// Per file, after inflating (the same bound as one rule's text).
    pub max_file_bytes: u64,
    /// All files together, after inflating.
    pub max_total_bytes: u64,
}

impl Default for BundleLimits {
    fn default() -> Self {
        Self {
            // SigmaHQ's whole rule set is ~3,100 files; leave room for tests.
            max_entries: 20_000,
            max_file_bytes: crate::Limits::default().max_bytes as u64,
            max_total_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why a bundle could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    #[error("not a readable zip archive: {0}")]
    NotZip(String),
    #[error("the archive holds more than {0} entries")]
    TooManyEntries(usize),
    #[error("{path}: larger than {limit} bytes")]
    FileTooLarge { path: String, limit: u64 },
    #[error("the archive inflates to more than {0} bytes")]
    TooLarge(u64),
    #[error("{0}: unsafe path in archive")]
    UnsafePath(String),
    #[error("{path}: {reason}")]
    Entry { path: String, reason: String },
    #[error("{0}: the archive holds two entries of this name")]
    DuplicateEntry(String),
    #[error("{path}: the local and central zip headers disagree on the {field}")]
    HeaderMismatch { path: String, field: &'static str },
}

/// A rule file found in a bundle, with its tests file when one sits beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundledRule {
    pub path: String,
    pub content: Vec<u8>,
    pub tests_path: Option<String>,
    pub tests: Option<Vec<u8>>,
}

/// The test-file suffixes recognised beside `rule.yml`, most specific first.
const TEST_SUFFIXES: [&str; 3] = [".tests.yml", ".tests.yaml", ".tests.json"];

/// The rule path a test file belongs to (`a/b.tests.yml` → `a/b`), if it is one.
fn tests_stem(path: &str) -> Option<&str> {
    TEST_SUFFIXES.iter().find_map(|s| path.strip_suffix(s))
}

fn rule_stem(path: &str) -> Option<&str> {
    if tests_stem(path).is_some() {
        return None;
    }
    path.strip_suffix(".yml")
        .or_else(|| path.strip_suffix(".yaml"))
}

/// A path inside an archive is used only as a name, never to write a file, but
/// one that climbs out (`..`), is absolute or holds a NUL is refused anyway:
/// it is a sign of a hostile archive, and `ward rules pull` writes these names.
pub fn safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && !path.contains(':')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Reads the rules (and their tests) out of a zip. Other files are ignored.
pub fn read_bundle(bytes: &[u8], limits: BundleLimits) -> Result<Vec<BundledRule>, BundleError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| BundleError::NotZip(e.to_string()))?;
    if archive.len() > limits.max_entries {
        return Err(BundleError::TooManyEntries(limits.max_entries));
    }
    crate::zip_headers::check_consistent(bytes, &mut archive)?;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| BundleError::NotZip(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        let path = entry.name().to_owned();
        if !safe_relative_path(&path) {
            return Err(BundleError::UnsafePath(path));
        }
        if rule_stem(&path).is_none() && tests_stem(&path).is_none() {
            continue;
        }
        let mut content = Vec::new();
        // One byte past the limit tells "too large" from "exactly at the limit".
        (&mut entry)
            .take(limits.max_file_bytes + 1)
            .read_to_end(&mut content)
            .map_err(|e| BundleError::Entry {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let len = content.len() as u64;
        if len > limits.max_file_bytes {
            return Err(BundleError::FileTooLarge {
                path,
                limit: limits.max_file_bytes,
            });
        }
        total += len;
        if total > limits.max_total_bytes {
            return Err(BundleError::TooLarge(limits.max_total_bytes));
        }
        files.insert(path, content);
    }
    let mut tests: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    let mut rules = Vec::new();
    for (path, content) in files {
        match tests_stem(&path) {
            Some(stem) => {
                tests.insert(stem.to_owned(), (path.clone(), content));
            }
            None => rules.push((path, content)),
        }
    }
    Ok(rules
        .into_iter()
        .map(|(path, content)| {
            let found = rule_stem(&path).and_then(|stem| tests.remove(stem));
            let (tests_path, tests) = match found {
                Some((p, c)) => (Some(p), Some(c)),
                None => (None, None),
            };
            BundledRule {
                path,
                content,
                tests_path,
                tests,
            }
        })
        .collect())
}

/// Writes files into a zip (deflated), in the order given.
pub fn write_bundle<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Vec<u8>, BundleError> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let err = |path: &str, e: &dyn std::fmt::Display| BundleError::Entry {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    for (path, content) in files {
        zip.start_file(path, options).map_err(|e| err(path, &e))?;
        zip.write_all(content).map_err(|e| err(path, &e))?;
    }
    let out = zip
        .finish()
        .map_err(|e| BundleError::NotZip(e.to_string()))?;
    Ok(out.into_inner())
}

/// A file name for a rule in an export: its title made path-safe, so a tree
/// exported from Ward reads like a Sigma repository.
pub fn file_stem_for(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
        if out.len() >= 80 {
            break;
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    if out.is_empty() {
        "rule".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_pairs_tests_with_rules() {
        let zip = write_bundle([
            ("windows/a.yml", b"title: a".as_slice()),
            ("windows/a.tests.json", b"{\"tests\": []}".as_slice()),
            ("b.yaml", b"title: b".as_slice()),
            ("README.md", b"ignored".as_slice()),
        ])
        .expect("write");
        let rules = read_bundle(&zip, BundleLimits::default()).expect("read");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].path, "b.yaml");
        assert_eq!(rules[0].tests, None);
        assert_eq!(rules[1].path, "windows/a.yml");
        assert_eq!(rules[1].tests_path.as_deref(), Some("windows/a.tests.json"));
    }

    #[test]
    fn hostile_archives_are_refused() {
        assert!(matches!(
            read_bundle(b"not a zip", BundleLimits::default()),
            Err(BundleError::NotZip(_))
        ));
        for bad in ["../x.yml", "/etc/x.yml", "a/../../x.yml", "c:x.yml"] {
            let zip = write_bundle([(bad, b"title: x".as_slice())]).expect("write");
            assert!(
                matches!(
                    read_bundle(&zip, BundleLimits::default()),
                    Err(BundleError::UnsafePath(_))
                ),
                "{bad}"
            );
        }
        // A highly compressible entry past the per-file bound: refused while
        // inflating, whatever its header claims.
        let big = vec![b'a'; 2 * 1024 * 1024];
        let zip = write_bundle([("big.yml", big.as_slice())]).expect("write");
        assert!(zip.len() < 64 * 1024, "deflated like a bomb");
        assert!(matches!(
            read_bundle(&zip, BundleLimits::default()),
            Err(BundleError::FileTooLarge { .. })
        ));
        let limits = BundleLimits {
            max_total_bytes: 10,
            ..BundleLimits::default()
        };
        let zip = write_bundle([
            ("a.yml", b"123456".as_slice()),
            ("b.yml", b"123456".as_slice()),
        ])
        .expect("write");
        assert!(matches!(
            read_bundle(&zip, limits),
            Err(BundleError::TooLarge(10))
        ));
    }

    #[test]
    fn stems_are_path_safe() {
        assert_eq!(
            file_stem_for("Whoami Execution (T1033)"),
            "whoami_execution_t1033"
        );
        assert_eq!(file_stem_for("../.."), "rule");
        assert!(safe_relative_path(&format!(
            "{}.yml",
            file_stem_for("a/b\\c")
        )));
    }
}
