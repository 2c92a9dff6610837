//! The envelope: how one encrypted field is stored.
//!
//! ```text
//! offset  size  field
//! 0       1     format version (1)
//! 1       1     algorithm (1 = HKDF-SHA256 one-time key + AES-256-GCM)
//! 2       4     tenant key version, big-endian
//! 6       16    HKDF salt (random per encryption)
//! 22      12    AES-GCM nonce (random per encryption)
//! 34      n+16  ciphertext ‖ 128-bit tag
//! ```
//!
//! The one-time key is HKDF-Expand-SHA256(PRK = tenant key, info "ward/v1/field-key" ‖ salt).
//! The AAD is `"ward/v1/field" ‖ header ‖ tenant id ‖ entity ‖ field ‖ row id` (each
//! length-prefixed), so a ciphertext moved to another row, field or company — or
//! with any header byte changed — fails to decrypt.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::aead::{self, NONCE_LEN, TAG_LEN};
use crate::tenant_key::{TenantKey, push_field};
use crate::{CryptoError, SecureRandom};

pub const FORMAT_V1: u8 = 1;
pub const ALG_HKDF_SHA256_AES256GCM: u8 = 1;
pub const SALT_LEN: usize = 16;
pub const HEADER_LEN: usize = 2 + 4 + SALT_LEN + NONCE_LEN;
/// Longest plaintext accepted (field values are small; this bounds memory).
pub const MAX_PLAINTEXT: usize = 1024 * 1024;

/// Where a ciphertext lives. Part of the AAD: the binding that makes moved
/// ciphertexts undecryptable.
#[derive(Debug, Clone, Copy)]
pub struct FieldContext<'a> {
    pub tenant_id: &'a str,
    pub entity: &'a str,
    pub field: &'a str,
    pub row_id: &'a str,
}

/// A parsed envelope header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeHeader {
    pub key_version: u32,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
}

/// Reads the header; checks format, algorithm and minimum length. Never panics.
pub fn parse_header(envelope: &[u8]) -> Result<EnvelopeHeader, CryptoError> {
    if envelope.len() < HEADER_LEN + TAG_LEN {
        return Err(CryptoError::EnvelopeTruncated);
    }
    let format = envelope[0];
    if format != FORMAT_V1 {
        return Err(CryptoError::EnvelopeFormat(format));
    }
    let alg = envelope[1];
    if alg != ALG_HKDF_SHA256_AES256GCM {
        return Err(CryptoError::EnvelopeAlgorithm(alg));
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&envelope[2..6]);
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&envelope[6..6 + SALT_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&envelope[6 + SALT_LEN..HEADER_LEN]);
    Ok(EnvelopeHeader {
        key_version: u32::from_be_bytes(version),
        salt,
        nonce,
    })
}

/// Encrypts with a fresh random salt and nonce.
pub fn seal(
    key: &TenantKey,
    key_version: u32,
    ctx: FieldContext<'_>,
    plaintext: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, CryptoError> {
    // One call to the random source for both (a system call with `OsRandom`).
    let mut random = [0u8; SALT_LEN + NONCE_LEN];
    rng.fill(&mut random)?;
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&random[..SALT_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&random[SALT_LEN..]);
    seal_with(key, key_version, ctx, plaintext, salt, nonce)
}

/// Encrypts with the given salt and nonce. Only for test vectors: reusing a
/// (key, salt, nonce) triple breaks AES-GCM.
pub fn seal_with(
    key: &TenantKey,
    key_version: u32,
    ctx: FieldContext<'_>,
    plaintext: &[u8],
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, CryptoError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(CryptoError::EnvelopeTooLarge);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(FORMAT_V1);
    out.push(ALG_HKDF_SHA256_AES256GCM);
    out.extend_from_slice(&key_version.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let one_time = one_time_key(key, &salt);
    let aad = aad(&out, ctx);
    let ct = aead::seal(&one_time, &nonce, plaintext, &aad).ok_or(CryptoError::Decrypt)?;
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts. `key` must be the tenant key of the version in the header.
pub fn open(
    key: &TenantKey,
    ctx: FieldContext<'_>,
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let header = parse_header(envelope)?;
    let one_time = one_time_key(key, &header.salt);
    let aad = aad(&envelope[..HEADER_LEN], ctx);
    aead::open(&one_time, &header.nonce, &envelope[HEADER_LEN..], &aad)
        .map(Zeroizing::new)
        .ok_or(CryptoError::Decrypt)
}

/// HKDF-Expand-SHA256(PRK = tenant key, info = "ward/v1/field-key" ‖ salt, 32).
/// The tenant key is already a uniformly random 256-bit key, so the Extract step
/// is skipped as RFC 5869 §3.3 allows; the per-operation salt goes into `info`,
/// which makes every one-time key distinct (same property, half the hashing).
fn one_time_key(key: &TenantKey, salt: &[u8; SALT_LEN]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::from_prk(key.bytes()).expect("a 32-byte PRK is at least HashLen");
    let mut okm = Zeroizing::new([0u8; 32]);
    hk.expand_multi_info(
        &[b"ward/v1/field-key".as_slice(), salt.as_slice()],
        okm.as_mut(),
    )
    .expect("32-byte HKDF-SHA256 output is always within the RFC 5869 limit");
    okm
}

fn aad(header: &[u8], ctx: FieldContext<'_>) -> Vec<u8> {
    let mut aad = b"ward/v1/field".to_vec();
    aad.extend_from_slice(header);
    push_field(&mut aad, ctx.tenant_id.as_bytes());
    push_field(&mut aad, ctx.entity.as_bytes());
    push_field(&mut aad, ctx.field.as_bytes());
    push_field(&mut aad, ctx.row_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    const CTX: FieldContext<'static> = FieldContext {
        tenant_id: "tenant-a",
        entity: "connection",
        field: "credentials",
        row_id: "row-1",
    };

    #[test]
    fn round_trip_and_every_binding() {
        let key = TenantKey::generate(&OsRandom).expect("key");
        let env = seal(&key, 3, CTX, b"s3cret-token", &OsRandom).expect("seal");
        assert_eq!(parse_header(&env).expect("header").key_version, 3);
        assert_eq!(
            open(&key, CTX, &env).expect("open").as_slice(),
            b"s3cret-token"
        );
        for moved in [
            FieldContext {
                tenant_id: "tenant-b",
                ..CTX
            },
            FieldContext {
                entity: "case",
                ..CTX
            },
            FieldContext {
                field: "base_url",
                ..CTX
            },
            FieldContext {
                row_id: "row-2",
                ..CTX
            },
        ] {
            assert!(matches!(open(&key, moved, &env), Err(CryptoError::Decrypt)));
        }
        let other = TenantKey::generate(&OsRandom).expect("key");
        assert!(open(&other, CTX, &env).is_err());
    }

    #[test]
    fn damaged_envelopes_are_errors_not_panics() {
        let key = TenantKey::generate(&OsRandom).expect("key");
        let env = seal(&key, 1, CTX, b"value", &OsRandom).expect("seal");
        for len in 0..env.len() {
            assert!(open(&key, CTX, &env[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..env.len() {
            let mut flipped = env.clone();
            flipped[i] ^= 0x01;
            assert!(open(&key, CTX, &flipped).is_err(), "bit flip at {i}");
        }
        let mut bumped = env.clone();
        bumped[0] = 2;
        assert!(matches!(
            open(&key, CTX, &bumped),
            Err(CryptoError::EnvelopeFormat(2))
        ));
        let mut alg = env.clone();
        alg[1] = 9;
        assert!(matches!(
            open(&key, CTX, &alg),
            Err(CryptoError::EnvelopeAlgorithm(9))
        ));
        // Version bumped in the header: the AAD covers it.
        let mut version = env;
        version[5] ^= 1;
        assert!(open(&key, CTX, &version).is_err());
    }

    #[test]
    fn fresh_salt_and_nonce_every_time() {
        let key = TenantKey::generate(&OsRandom).expect("key");
        let a = seal(&key, 1, CTX, b"same", &OsRandom).expect("seal");
        let b = seal(&key, 1, CTX, b"same", &OsRandom).expect("seal");
        assert_ne!(a, b);
    }

    /// Published vectors (testdata/envelope-vectors.json), computed independently
    /// with Python's `cryptography` package from the format above.
    #[test]
    fn published_test_vectors() {
        let text = include_str!("../testdata/envelope-vectors.json");
        let doc: serde_json::Value = serde_json::from_str(text).expect("vectors parse");
        let vectors = doc["vectors"].as_array().expect("vectors");
        assert!(!vectors.is_empty());
        for v in vectors {
            let h = |k: &str| hex::decode(v[k].as_str().expect("field")).expect("hex");
            let key: [u8; 32] = h("tenant_key").try_into().expect("32");
            let key = TenantKey::danger_from_bytes(key);
            let salt: [u8; SALT_LEN] = h("salt").try_into().expect("16");
            let nonce: [u8; NONCE_LEN] = h("nonce").try_into().expect("12");
            let s = |k: &str| v["context"][k].as_str().expect("context").to_owned();
            let (t, e, f, r) = (s("tenant_id"), s("entity"), s("field"), s("row_id"));
            let ctx = FieldContext {
                tenant_id: &t,
                entity: &e,
                field: &f,
                row_id: &r,
            };
            let version = u32::try_from(v["key_version"].as_u64().expect("version")).expect("u32");
            let sealed = seal_with(&key, version, ctx, &h("plaintext"), salt, nonce).expect("seal");
            assert_eq!(
                hex::encode(&sealed),
                v["envelope"].as_str().expect("envelope"),
                "{}",
                v["name"]
            );
            assert_eq!(
                open(&key, ctx, &sealed).expect("open").as_slice(),
                h("plaintext").as_slice()
            );
        }
    }
}
