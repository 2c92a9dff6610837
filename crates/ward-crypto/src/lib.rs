//! Ward's cryptography: the key hierarchy's root (master secret, installation salt,
//! HKDF purpose keys, key-check value), Argon2id password hashing, PASETO v4.local
//! session sealing and API-token hashing.
//!
//! This is the only crate that touches cryptographic primitives; everything else
//! sees opaque, zeroizing key types whose `Debug` prints `[redacted]`.
#![forbid(unsafe_code)]

pub mod aead;
pub mod api_token;
pub mod backup;
pub mod envelope;
pub mod master;
pub mod password;
pub mod random;
pub mod session_token;
pub mod settings_secret;
pub mod tenant_key;

pub use api_token::{ApiTokenHasher, ApiTokenSecret, TokenDigest};
pub use envelope::{EnvelopeHeader, FieldContext};
pub use master::{InstallationSalt, KeyCheckValue, MasterSecret, Purpose, PurposeKey};
pub use password::{PasswordHashParams, PasswordHashing, PasswordVerification, PhcString};
pub use random::{OsRandom, SecureRandom};
pub use session_token::{SealedSession, SessionSealer};
pub use settings_secret::{SettingsContext, SettingsKey};
pub use tenant_key::{MasterCredentialKey, TenantKey, WrapContext};

/// Errors from Ward's cryptography. Messages never contain key or secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("master secret must be base64 of at least 32 bytes")]
    MasterSecretFormat,
    #[error("the operating system's random number generator failed")]
    Randomness,
    #[error("invalid password hashing parameters: {0}")]
    PasswordParams(String),
    #[error("password hashing failed")]
    PasswordHash,
    #[error("stored password hash is not a valid Argon2 PHC string")]
    StoredHashFormat,
    #[error("session token is invalid")]
    SessionToken,
    #[error("installation salt must be 32 bytes")]
    SaltFormat,
    #[error("wrapping the tenant key failed")]
    Wrap,
    #[error("the wrapped tenant key does not unwrap under this master secret and context")]
    Unwrap,
    #[error("the encrypted value is truncated")]
    EnvelopeTruncated,
    #[error("unsupported envelope format version {0}")]
    EnvelopeFormat(u8),
    #[error("unsupported envelope algorithm {0}")]
    EnvelopeAlgorithm(u8),
    #[error("the value is too large to encrypt")]
    EnvelopeTooLarge,
    #[error("decryption failed: wrong key, or the value was altered or moved")]
    Decrypt,
}
