//! The tamper-evident audit log's mathematics, pure: the canonical encoding of an
//! event (RFC 8785 JSON canonicalization, for the subset Ward emits), the RFC 9162
//! Merkle tree — tree hashes, inclusion and consistency proofs and their
//! verification — the stored tree's frontier and proof planning, Ed25519-signed
//! checkpoints, and the offline verifier of exported logs. Storage, the sequencer
//! and the jobs live elsewhere.
#![forbid(unsafe_code)]

pub mod canonical;
pub mod checkpoint;
pub mod merkle;
pub mod tree;
pub mod verify;

pub use canonical::{
    CanonicalError, canonical_json, write_canonical, write_canonical_string, write_canonical_text,
};
pub use checkpoint::{Checkpoint, CheckpointError, CheckpointSigner, CheckpointVerifier};
pub use merkle::{Hash, leaf_hash, node_hash};
pub use tree::{Frontier, LeafRange, NodeId};
pub use verify::{ExportLine, ExportManifest, ExportReport, ExportVerifier, IndexDigest, Problem};
