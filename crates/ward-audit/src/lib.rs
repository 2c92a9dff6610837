//! The tamper-evident audit log's mathematics, pure: the canonical encoding of an
//! event (RFC 8785 JSON canonicalization, for the subset Ward emits) and the
//! RFC 9162 Merkle tree — tree hashes, inclusion and consistency proofs and their
//! verification. Storage, the sequencer and checkpoint signing live elsewhere.
#![forbid(unsafe_code)]

pub mod canonical;
pub mod merkle;

pub use canonical::{CanonicalError, canonical_json};
pub use merkle::{Hash, leaf_hash, node_hash};
