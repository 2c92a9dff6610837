//! What a verification finds wrong, and the offline verifier of an exported log:
//! a JSON Lines file holding a signed checkpoint, then every leaf of an index range
//! in order — a company's own events in full with their inclusion proofs, other
//! companies' events as leaf hashes only.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::canonical_json;
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointVerifier};
use crate::merkle::{Hash, leaf_hash, verify_inclusion};
use crate::tree::{Frontier, NodeId};

/// The first thing found wrong, naming the leaf index where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The event at this index no longer hashes to its leaf.
    Modified { index: u64 },
    /// The leaf's event is gone.
    Missing { index: u64 },
    /// The event at `index` is the one committed at `holds`.
    Reordered { index: u64, holds: u64 },
    /// An event that is in no leaf although the sequencer has integrated later
    /// ones; it would sit at `index`.
    Inserted { index: u64, event_id: String },
    /// A stored subtree hash differs from the one recomputed from the events.
    NodeAltered { node: NodeId },
    /// A checkpoint's root is not the root of the recomputed tree at its size.
    CheckpointRoot { size: u64 },
    /// A checkpoint's signature does not verify.
    BadSignature { size: u64, reason: String },
    /// A signed checkpoint covers more leaves than the log holds.
    Truncated {
        checkpoint_size: u64,
        tree_size: u64,
    },
    /// The audit tables lack their append-only protection.
    Schema(String),
    /// An export line is not what the format allows.
    Malformed { line: usize, reason: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Modified { index } => write!(
                f,
                "index {index}: modified (the event no longer matches its leaf hash)"
            ),
            Self::Missing { index } => write!(f, "index {index}: missing (the event is gone)"),
            Self::Reordered { index, holds } => write!(
                f,
                "index {index}: reordered (it holds the event committed at index {holds})"
            ),
            Self::Inserted { index, event_id } => write!(
                f,
                "index {index}: inserted (event {event_id} is in no leaf of the tree)"
            ),
            Self::NodeAltered { node } => write!(
                f,
                "index {}: tree node altered (level {}, covering leaves from {})",
                node.index << node.level,
                node.level,
                node.index << node.level
            ),
            Self::CheckpointRoot { size } => write!(
                f,
                "checkpoint at tree size {size}: root does not match the recomputed tree"
            ),
            Self::BadSignature { size, reason } => {
                write!(
                    f,
                    "checkpoint at tree size {size}: bad signature ({reason})"
                )
            }
            Self::Truncated {
                checkpoint_size,
                tree_size,
            } => write!(
                f,
                "index {tree_size}: truncated (a signed checkpoint covers {checkpoint_size} events, the log holds {tree_size})"
            ),
            Self::Schema(what) => write!(f, "schema: {what}"),
            Self::Malformed { line, reason } => write!(f, "line {line}: {reason}"),
        }
    }
}

/// One line of an export file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExportLine {
    /// The signed checkpoint every proof in the file is against. Always first.
    Checkpoint { note: String },
    /// An event in full: its canonical encoding is the leaf.
    Event {
        index: u64,
        event: Value,
        /// Inclusion proof in the checkpoint's tree, hex hashes bottom to top.
        inclusion: Vec<String>,
    },
    /// Another company's event, as its leaf hash only.
    Leaf { index: u64, leaf_hash: String },
    /// Always last: what the file holds, signed with the checkpoint key, so no
    /// line can be dropped, added, or turned from an event into a bare hash.
    Manifest { note: String },
}

/// The signed description of an export: whose events are in full, which leaves,
/// against which tree, how many events, and a digest of their indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportManifest {
    pub origin: String,
    /// A company id, or `*` for an operator's export of everyone's events.
    pub tenant: String,
    pub from: u64,
    pub to: u64,
    pub tree_size: u64,
    pub events: u64,
    /// SHA-256 over the indexes of the events given in full, 8 bytes big-endian each.
    pub digest: Hash,
}

const MANIFEST_HEADER: &str = "ward-audit-export";

impl ExportManifest {
    pub fn body(&self) -> String {
        format!(
            "{MANIFEST_HEADER}\n{}\ntenant {}\nrange {} {}\ntree {}\nevents {}\ndigest {}\n",
            self.origin,
            self.tenant,
            self.from,
            self.to,
            self.tree_size,
            self.events,
            hex(&self.digest)
        )
    }

    pub fn parse(body: &str) -> Option<Self> {
        let mut l = body.strip_suffix('\n')?.split('\n');
        if l.next()? != MANIFEST_HEADER {
            return None;
        }
        let origin = l.next()?.to_owned();
        let tenant = l.next()?.strip_prefix("tenant ")?.to_owned();
        let (from, to) = l.next()?.strip_prefix("range ")?.split_once(' ')?;
        let tree_size = l.next()?.strip_prefix("tree ")?.parse().ok()?;
        let events = l.next()?.strip_prefix("events ")?.parse().ok()?;
        let digest = parse_hash(l.next()?.strip_prefix("digest ")?)?;
        if l.next().is_some() {
            return None;
        }
        Some(Self {
            origin,
            tenant,
            from: from.parse().ok()?,
            to: to.parse().ok()?,
            tree_size,
            events,
            digest,
        })
    }
}

/// Accumulates the manifest digest: the indexes of the events given in full.
#[derive(Clone, Default)]
pub struct IndexDigest(sha2::Sha256);

impl IndexDigest {
    pub fn add(&mut self, index: u64) {
        use sha2::Digest;
        self.0.update(index.to_be_bytes());
    }

    pub fn finish(self) -> Hash {
        use sha2::Digest;
        self.0.finalize().into()
    }
}

/// What an export file proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub checkpoint: Checkpoint,
    /// Whose events the file gives in full (`*`: everyone's).
    pub tenant: String,
    pub first_index: Option<u64>,
    pub events: u64,
    pub hashes_only: u64,
    /// Whether the file held every leaf of the checkpoint's tree, so its root was
    /// recomputed from them as well.
    pub complete_tree: bool,
}

/// Verifies an export line by line, in constant memory.
pub struct ExportVerifier<'k> {
    key: &'k CheckpointVerifier,
    line: usize,
    checkpoint: Option<Checkpoint>,
    next_index: Option<u64>,
    first_index: Option<u64>,
    events: u64,
    hashes_only: u64,
    whole_tree: Option<Frontier>,
    digest: IndexDigest,
    manifest: Option<ExportManifest>,
}

impl<'k> ExportVerifier<'k> {
    pub fn new(key: &'k CheckpointVerifier) -> Self {
        Self {
            key,
            line: 0,
            checkpoint: None,
            next_index: None,
            first_index: None,
            events: 0,
            hashes_only: 0,
            whole_tree: None,
            digest: IndexDigest::default(),
            manifest: None,
        }
    }

    pub fn feed(&mut self, text: &str) -> Result<(), Problem> {
        self.line += 1;
        let line = self.line;
        let malformed = |reason: String| Problem::Malformed { line, reason };
        let parsed: ExportLine = serde_json::from_str(text)
            .map_err(|e| malformed(format!("not an export line: {e}")))?;
        if self.manifest.is_some() {
            return Err(malformed("a line after the manifest".into()));
        }
        match parsed {
            ExportLine::Manifest { note } => {
                let checkpoint = self.need_checkpoint(line)?.clone();
                let body = self
                    .key
                    .verify_note(&note)
                    .map_err(|e| Problem::BadSignature {
                        size: checkpoint.size,
                        reason: format!("export manifest: {}", describe(&e)),
                    })?;
                let m = ExportManifest::parse(&body)
                    .ok_or_else(|| malformed("the manifest is not an export manifest".into()))?;
                if m.origin != checkpoint.origin || m.tree_size != checkpoint.size {
                    return Err(malformed("the manifest is for another log or tree".into()));
                }
                self.manifest = Some(m);
                Ok(())
            }
            ExportLine::Checkpoint { note } => {
                if self.checkpoint.is_some() {
                    return Err(malformed("a second checkpoint".into()));
                }
                let claimed = crate::checkpoint::unverified_checkpoint(&note)
                    .map_err(|e| malformed(e.to_string()))?;
                let checkpoint = self.key.verify(&note).map_err(|e| Problem::BadSignature {
                    size: claimed.size,
                    reason: describe(&e),
                })?;
                self.checkpoint = Some(checkpoint);
                Ok(())
            }
            ExportLine::Event {
                index,
                event,
                inclusion,
            } => {
                let checkpoint = self.need_checkpoint(line)?;
                let (size, root) = (checkpoint.size, checkpoint.root);
                self.take_index(index)?;
                let bytes = canonical_json(&event).map_err(|e| malformed(e.to_string()))?;
                let leaf = leaf_hash(&bytes);
                let proof = inclusion
                    .iter()
                    .map(|h| parse_hash(h))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| malformed("proof hash is not 32 bytes of hex".into()))?;
                if !verify_inclusion(index, size, &leaf, &proof, &root) {
                    return Err(Problem::Modified { index });
                }
                self.events += 1;
                self.digest.add(index);
                self.extend_whole_tree(leaf);
                Ok(())
            }
            ExportLine::Leaf { index, leaf_hash } => {
                self.need_checkpoint(line)?;
                self.take_index(index)?;
                let leaf = parse_hash(&leaf_hash)
                    .ok_or_else(|| malformed("leaf hash is not 32 bytes of hex".into()))?;
                self.hashes_only += 1;
                self.extend_whole_tree(leaf);
                Ok(())
            }
        }
    }

    fn need_checkpoint(&self, line: usize) -> Result<&Checkpoint, Problem> {
        self.checkpoint.as_ref().ok_or(Problem::Malformed {
            line,
            reason: "the checkpoint must come first".into(),
        })
    }

    fn take_index(&mut self, index: u64) -> Result<(), Problem> {
        let size = self.checkpoint.as_ref().map_or(0, |c| c.size);
        match self.next_index {
            None => {
                self.first_index = Some(index);
                if index == 0 {
                    self.whole_tree = Some(Frontier::new());
                }
            }
            Some(expected) if index == expected => {}
            Some(expected) if index > expected => return Err(Problem::Missing { index: expected }),
            Some(expected) => {
                return Err(Problem::Reordered {
                    index: expected,
                    holds: index,
                });
            }
        }
        if index >= size {
            return Err(Problem::Malformed {
                line: self.line,
                reason: format!("index {index} is beyond the checkpoint's tree size {size}"),
            });
        }
        self.next_index = Some(index + 1);
        Ok(())
    }

    fn extend_whole_tree(&mut self, leaf: Hash) {
        if let Some(f) = self.whole_tree.as_mut() {
            f.append(leaf);
        }
    }

    pub fn finish(self) -> Result<ExportReport, Problem> {
        let checkpoint = self.checkpoint.ok_or(Problem::Malformed {
            line: self.line,
            reason: "no checkpoint in the file".into(),
        })?;
        // The signed manifest says which leaves the file holds and which of them
        // are events in full; anything else is a truncated or edited file.
        let manifest = self.manifest.ok_or(Problem::Malformed {
            line: self.line,
            reason: "no signed manifest at the end: the file is truncated".into(),
        })?;
        let to = self.next_index.unwrap_or(manifest.from);
        let from = self.first_index.unwrap_or(manifest.from);
        if from != manifest.from {
            return Err(Problem::Missing {
                index: manifest.from.min(from),
            });
        }
        if to != manifest.to {
            return Err(Problem::Missing {
                index: to.min(manifest.to),
            });
        }
        if self.events != manifest.events || self.digest.finish() != manifest.digest {
            return Err(Problem::Malformed {
                line: self.line,
                reason: format!(
                    "the file gives {} events in full where the signed manifest lists {}, or different ones",
                    self.events, manifest.events
                ),
            });
        }
        let complete_tree = match self.whole_tree {
            Some(f) if f.size() == checkpoint.size => {
                if f.root() != checkpoint.root {
                    return Err(Problem::CheckpointRoot {
                        size: checkpoint.size,
                    });
                }
                true
            }
            _ => false,
        };
        Ok(ExportReport {
            checkpoint,
            tenant: manifest.tenant,
            first_index: self.first_index,
            events: self.events,
            hashes_only: self.hashes_only,
            complete_tree,
        })
    }
}

fn describe(e: &CheckpointError) -> String {
    e.to_string()
}

pub fn parse_hash(text: &str) -> Option<Hash> {
    hex_decode(text)?.try_into().ok()
}

pub fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointSigner;
    use crate::merkle::{inclusion_proof, root};
    use serde_json::json;

    fn events(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"id": format!("e{i}"), "tenant_id": if i % 3 == 0 { "other" } else { "acme" }}))
            .collect()
    }

    /// An export of every leaf, acme's in full, the other company's as hashes.
    fn export(events: &[Value], signer: &CheckpointSigner) -> Vec<String> {
        let leaves: Vec<Hash> = events
            .iter()
            .map(|e| leaf_hash(&canonical_json(e).expect("canonical")))
            .collect();
        let checkpoint = Checkpoint {
            origin: "ward/t".into(),
            size: leaves.len() as u64,
            root: root(&leaves),
            time_millis: 1,
        };
        let mut lines = vec![
            serde_json::to_string(&ExportLine::Checkpoint {
                note: signer.sign(&checkpoint),
            })
            .expect("json"),
        ];
        let mut digest = IndexDigest::default();
        let mut full = 0;
        for (i, e) in events.iter().enumerate() {
            let line = if e["tenant_id"] == "acme" {
                digest.add(i as u64);
                full += 1;
                ExportLine::Event {
                    index: i as u64,
                    event: e.clone(),
                    inclusion: inclusion_proof(i, &leaves)
                        .expect("proof")
                        .iter()
                        .map(hex)
                        .collect(),
                }
            } else {
                ExportLine::Leaf {
                    index: i as u64,
                    leaf_hash: hex(&leaves[i]),
                }
            };
            lines.push(serde_json::to_string(&line).expect("json"));
        }
        let manifest = ExportManifest {
            origin: "ward/t".into(),
            tenant: "acme".into(),
            from: 0,
            to: leaves.len() as u64,
            tree_size: leaves.len() as u64,
            events: full,
            digest: digest.finish(),
        };
        lines.push(
            serde_json::to_string(&ExportLine::Manifest {
                note: signer.sign_note(&manifest.body()),
            })
            .expect("json"),
        );
        lines
    }

    fn run(lines: &[String], key: &CheckpointVerifier) -> Result<ExportReport, Problem> {
        let mut v = ExportVerifier::new(key);
        for l in lines {
            v.feed(l)?;
        }
        v.finish()
    }

    #[test]
    fn an_honest_export_verifies_and_every_tampering_names_its_index() {
        let signer = CheckpointSigner::from_seed("ward/t", [3u8; 32]);
        let key = signer.verifier();
        let lines = export(&events(10), &signer);
        let report = run(&lines, &key).expect("verifies");
        assert_eq!((report.events, report.hashes_only), (6, 4));
        assert!(report.complete_tree);

        // One byte of event 4 changed.
        let mut t = lines.clone();
        t[5] = t[5].replace("\"e4\"", "\"e5\"");
        assert_eq!(run(&t, &key), Err(Problem::Modified { index: 4 }));
        // Event 4 deleted.
        let mut t = lines.clone();
        t.remove(5);
        assert_eq!(run(&t, &key), Err(Problem::Missing { index: 4 }));
        // Events 4 and 5 swapped.
        let mut t = lines.clone();
        t.swap(5, 6);
        assert_eq!(
            run(&t, &key),
            Err(Problem::Missing { index: 4 }),
            "index 5 arrives where 4 was expected"
        );
        // A hash-only leaf changed: the recomputed root no longer matches.
        let mut t = lines.clone();
        let leaf0: ExportLine = serde_json::from_str(&t[1]).expect("line");
        let ExportLine::Leaf { leaf_hash, .. } = leaf0 else {
            panic!("leaf 0 is the other company's")
        };
        t[1] = t[1].replace(&leaf_hash, &"00".repeat(32));
        assert_eq!(run(&t, &key), Err(Problem::CheckpointRoot { size: 10 }));
        // One of acme's events turned into a bare hash (hiding it): the hash is
        // right, but the signed manifest lists it as an event.
        let mut t = lines.clone();
        let e1: ExportLine = serde_json::from_str(&t[2]).expect("line");
        let ExportLine::Event { index, event, .. } = e1 else {
            panic!("leaf 1 is acme's")
        };
        t[2] = serde_json::to_string(&ExportLine::Leaf {
            index,
            leaf_hash: hex(&crate::merkle::leaf_hash(
                &canonical_json(&event).expect("canonical"),
            )),
        })
        .expect("json");
        assert!(matches!(run(&t, &key), Err(Problem::Malformed { .. })));
        // The tail cut off (whole lines): no manifest.
        let t = lines[..7].to_vec();
        assert!(matches!(run(&t, &key), Err(Problem::Malformed { .. })));
        // Lines dropped before a kept manifest: range mismatch.
        let mut t = lines[..7].to_vec();
        t.push(lines.last().expect("manifest").clone());
        assert!(run(&t, &key).is_err());
        // Checkpoint signed by someone else.
        let other = CheckpointSigner::from_seed("ward/t", [4u8; 32]);
        let forged = export(&events(10), &other);
        assert!(matches!(
            run(&forged, &key),
            Err(Problem::BadSignature { size: 10, .. })
        ));
    }
}
