//! Signed checkpoints: a commitment to the tree's size and root at a time, signed
//! with Ed25519 (RFC 8032) in the C2SP `tlog-checkpoint` / `signed-note` text
//! format, so the same bytes can be stored, exported, printed and verified offline.
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root hash>\ntime <unix milliseconds>\n
//! \n
//! — <origin> <base64(key hash[4] ‖ signature[64])>\n
//! ```
//! The key hash is the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key),
//! as signed-note defines for Ed25519; a verifier key is written
//! `<name>+<key hash hex>+<base64(0x01 ‖ public key)>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_compact::{KeyPair, PublicKey, Seed, Signature};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

const ALG_ED25519: u8 = 0x01;
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    #[error("malformed verifier key: {0}")]
    MalformedKey(&'static str),
    #[error("checkpoint is not signed by key {0}")]
    NoSignatureByKey(String),
    #[error("checkpoint signature does not verify")]
    BadSignature,
}

/// What a checkpoint commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub time_millis: i64,
}

impl Checkpoint {
    /// The signed text (the note body).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntime {}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root),
            self.time_millis
        )
    }

    fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let mut lines = body
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("body must end with a newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(CheckpointError::Malformed("missing origin"))?;
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(CheckpointError::Malformed("tree size is not a number"))?;
        let root: Hash = lines
            .next()
            .and_then(|r| STANDARD.decode(r).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or(CheckpointError::Malformed(
                "root is not a base64 SHA-256 hash",
            ))?;
        let time_millis = lines
            .next()
            .and_then(|t| t.strip_prefix("time "))
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or(CheckpointError::Malformed("missing time line"))?;
        if lines.next().is_some() {
            return Err(CheckpointError::Malformed("unexpected extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            time_millis,
        })
    }
}

/// The signing side. The seed comes from the master secret's "audit" purpose key.
pub struct CheckpointSigner {
    name: String,
    keys: KeyPair,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl CheckpointSigner {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Self {
        Self {
            name: name.to_owned(),
            keys: KeyPair::from_seed(Seed::new(seed)),
        }
    }

    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier::new(&self.name, *self.keys.pk)
    }

    /// The full signed note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        self.sign_note(&checkpoint.body())
    }

    /// Any note body (ending in a newline) as a signed note under this key.
    pub fn sign_note(&self, body: &str) -> String {
        let signature = self.keys.sk.sign(body.as_bytes(), None);
        let mut blob = self.verifier().key_hash.to_vec();
        blob.extend_from_slice(signature.as_ref());
        format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        )
    }
}

/// A public key that verifies checkpoints, in signed-note verifier-key form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    name: String,
    key_hash: [u8; 4],
    public: [u8; 32],
}

impl CheckpointVerifier {
    fn new(name: &str, public: [u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update(b"\n");
        h.update([ALG_ED25519]);
        h.update(public);
        let digest = h.finalize();
        Self {
            name: name.to_owned(),
            key_hash: [digest[0], digest[1], digest[2], digest[3]],
            public,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<key hash hex>+<base64(0x01 ‖ public key)>`.
    pub fn encode(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&self.public);
        format!(
            "{}+{}+{}",
            self.name,
            hex_lower(&self.key_hash),
            STANDARD.encode(key)
        )
    }

    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        // Names hold no '+' and the hash is hex, but base64 keys may contain '+'.
        let mut parts = text.trim().splitn(3, '+');
        let name = parts
            .next()
            .ok_or(CheckpointError::MalformedKey("no name"))?;
        let hash = parts
            .next()
            .ok_or(CheckpointError::MalformedKey("no key hash"))?;
        let key = parts
            .next()
            .ok_or(CheckpointError::MalformedKey("no key"))?;
        let key = STANDARD
            .decode(key)
            .map_err(|_| CheckpointError::MalformedKey("key is not base64"))?;
        let public: [u8; 32] = match key.split_first() {
            Some((&ALG_ED25519, rest)) => rest
                .try_into()
                .map_err(|_| CheckpointError::MalformedKey("Ed25519 key must be 32 bytes"))?,
            _ => return Err(CheckpointError::MalformedKey("not an Ed25519 key")),
        };
        let verifier = Self::new(name, public);
        if hex_lower(&verifier.key_hash) != hash {
            return Err(CheckpointError::MalformedKey(
                "key hash does not match name and key",
            ));
        }
        Ok(verifier)
    }

    /// Verifies a signed checkpoint and returns what it commits to.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let body = self.verify_note(note)?;
        Checkpoint::parse_body(&body)
    }

    /// Verifies any signed note and returns its body.
    pub fn verify_note(&self, note: &str) -> Result<String, CheckpointError> {
        let (body, signatures) = note
            .split_once("\n\n")
            .map(|(b, s)| (format!("{b}\n"), s))
            .ok_or(CheckpointError::Malformed("no signature block"))?;
        let prefix = format!("{SIGNATURE_PREFIX}{} ", self.name);
        let mut found = false;
        for line in signatures.lines() {
            let Some(sig) = line.strip_prefix(&prefix) else {
                continue;
            };
            let blob = STANDARD
                .decode(sig)
                .map_err(|_| CheckpointError::Malformed("signature is not base64"))?;
            if blob.len() != 68 || blob[..4] != self.key_hash {
                continue;
            }
            found = true;
            let signature =
                Signature::from_slice(&blob[4..]).map_err(|_| CheckpointError::BadSignature)?;
            let public = PublicKey::new(self.public);
            if public.verify(body.as_bytes(), &signature).is_ok() {
                return Ok(body);
            }
        }
        if found {
            Err(CheckpointError::BadSignature)
        } else {
            Err(CheckpointError::NoSignatureByKey(hex_lower(&self.key_hash)))
        }
    }
}

/// Reads what a note claims without checking its signature (for reporting which
/// checkpoint failed).
pub fn unverified_checkpoint(note: &str) -> Result<Checkpoint, CheckpointError> {
    let body = note
        .split_once("\n\n")
        .map(|(b, _)| format!("{b}\n"))
        .ok_or(CheckpointError::Malformed("no signature block"))?;
    Checkpoint::parse_body(&body)
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "ward/0123456789abcdef".into(),
            size: 42,
            root: [7u8; 32],
            time_millis: 1_790_000_000_000,
        }
    }

    #[test]
    fn signed_checkpoints_verify_with_the_exported_key() {
        let signer = CheckpointSigner::from_seed("ward/0123456789abcdef", [9u8; 32]);
        let note = signer.sign(&checkpoint());
        let key = CheckpointVerifier::parse(&signer.verifier().encode()).expect("key");
        assert_eq!(key.verify(&note).expect("verifies"), checkpoint());
        assert_eq!(unverified_checkpoint(&note).expect("parses"), checkpoint());
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1 TEST 1: the seed's public key and the empty message's signature.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .expect("hex")
                .try_into()
                .expect("32");
        let keys = KeyPair::from_seed(Seed::new(seed));
        assert_eq!(
            hex::encode(*keys.pk),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(keys.sk.sign(b"", None)),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn keys_with_plus_signs_in_base64_parse() {
        for seed in 1..=64u8 {
            let signer = CheckpointSigner::from_seed("ward/p", [seed; 32]);
            let text = signer.verifier().encode();
            assert_eq!(
                CheckpointVerifier::parse(&text),
                Ok(signer.verifier()),
                "{text}"
            );
        }
    }

    #[test]
    fn tampering_is_refused() {
        let signer = CheckpointSigner::from_seed("ward/a", [9u8; 32]);
        let other = CheckpointSigner::from_seed("ward/a", [8u8; 32]);
        let note = signer.sign(&checkpoint());
        let key = signer.verifier();
        // Changed size.
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert_eq!(key.verify(&forged), Err(CheckpointError::BadSignature));
        // Another key's signature.
        assert!(matches!(
            key.verify(&other.sign(&checkpoint())),
            Err(CheckpointError::NoSignatureByKey(_))
        ));
        // Signature bytes replaced.
        let (body, _) = note.split_once("\n\n").expect("split");
        let mut blob = key.key_hash.to_vec();
        blob.extend_from_slice(&[0u8; 64]);
        let replaced = format!("{body}\n\n\u{2014} ward/a {}\n", STANDARD.encode(blob));
        assert_eq!(key.verify(&replaced), Err(CheckpointError::BadSignature));
        // Garbage.
        assert!(key.verify("nonsense").is_err());
        assert!(CheckpointVerifier::parse("ward/a+00000000+AQ==").is_err());
        let mut wrong_hash = key.encode();
        wrong_hash.replace_range(7..9, "zz");
        assert!(CheckpointVerifier::parse(&wrong_hash).is_err());
    }
}
