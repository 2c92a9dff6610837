//! The root of the key hierarchy: the master secret, the installation salt, the
//! HKDF-SHA256 purpose keys derived from them, and the key-check value that lets
//! Ward refuse to start with the wrong master secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::{CryptoError, SecureRandom};

/// Minimum master secret length: 256 bits, the HKDF-SHA256 output size
/// (RFC 5869 §3.1 recommends IKM of at least the hash length).
pub const MIN_MASTER_SECRET_BYTES: usize = 32;

/// The installation's master secret. Never stored in the database; zeroized on drop.
pub struct MasterSecret(Zeroizing<Vec<u8>>);

impl MasterSecret {
    /// Parses base64 (standard alphabet, padding optional, surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let trimmed = text.trim();
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let bytes = Zeroizing::new(
            engine
                .decode(trimmed)
                .map_err(|_| CryptoError::MasterSecretFormat)?,
        );
        if bytes.len() < MIN_MASTER_SECRET_BYTES {
            return Err(CryptoError::MasterSecretFormat);
        }
        Ok(Self(bytes))
    }

    /// Generates a fresh 256-bit master secret.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new(vec![0u8; MIN_MASTER_SECRET_BYTES]);
        rng.fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// The base64 form, for writing the generated key file. Zeroized on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(&*self.0))
    }

    /// Derives the key for `purpose` with HKDF-SHA256 (RFC 5869): the master secret
    /// is the IKM, the installation salt the salt, the purpose label the info.
    pub fn derive(&self, salt: &InstallationSalt, purpose: Purpose) -> PurposeKey {
        let hk = Hkdf::<Sha256>::new(Some(&salt.0), &self.0);
        let mut okm = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 255 * 32 byte output limit.
        hk.expand(purpose.info().as_bytes(), okm.as_mut())
            .expect("32-byte HKDF-SHA256 output is always within the RFC 5869 limit");
        PurposeKey(okm)
    }

    /// The key-check value stored in the database for this secret and salt.
    pub fn key_check(&self, salt: &InstallationSalt) -> KeyCheckValue {
        let key = self.derive(salt, Purpose::KeyCheck);
        KeyCheckValue(*key.0)
    }
}

impl std::fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterSecret([redacted])")
    }
}

/// What a derived key is for. Each purpose gets an independent key, so a key
/// that leaks from one subsystem opens nothing in another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Credentials,
    Settings,
    Sessions,
    ApiTokens,
    Audit,
    Backup,
    KeyCheck,
}

impl Purpose {
    /// The HKDF info label (DESIGN.md's key hierarchy).
    pub fn info(self) -> &'static str {
        match self {
            Purpose::Credentials => "ward/v1/credentials",
            Purpose::Settings => "ward/v1/settings",
            Purpose::Sessions => "ward/v1/sessions",
            Purpose::ApiTokens => "ward/v1/api-tokens",
            Purpose::Audit => "ward/v1/audit",
            Purpose::Backup => "ward/v1/backup",
            Purpose::KeyCheck => "ward/v1/key-check",
        }
    }
}

/// A 256-bit key derived for one purpose. Zeroized on drop.
pub struct PurposeKey(Zeroizing<[u8; 32]>);

impl PurposeKey {
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as a seed for a primitive outside this crate (the audit log's
    /// Ed25519 checkpoint key). Copy it only into a type that zeroizes or keeps it
    /// private, never into a log line.
    pub fn seed_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.0)
    }
}

impl std::fmt::Debug for PurposeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PurposeKey([redacted])")
    }
}

/// The random, non-secret installation salt, stored in the database at first start.
#[derive(Clone, PartialEq, Eq)]
pub struct InstallationSalt([u8; 32]);

impl InstallationSalt {
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::SaltFormat)?;
        Ok(Self(arr))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for InstallationSalt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InstallationSalt({})", hex::encode(self.0))
    }
}

/// HKDF output under the "key-check" purpose: proves a master secret is the one
/// this installation was initialised with, without revealing anything about it.
pub struct KeyCheckValue([u8; 32]);

impl KeyCheckValue {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time comparison.
    pub fn matches(&self, other: &KeyCheckValue) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Drop for KeyCheckValue {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for KeyCheckValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCheckValue([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> MasterSecret {
        MasterSecret::from_base64(&STANDARD.encode([byte; 32])).expect("valid test secret")
    }

    #[test]
    fn rejects_short_or_malformed_secrets() {
        assert!(MasterSecret::from_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(MasterSecret::from_base64("not base64 !!").is_err());
        assert!(MasterSecret::from_base64("").is_err());
    }

    #[test]
    fn purposes_give_independent_keys() {
        let salt = InstallationSalt::from_bytes(&[7u8; 32]).expect("32 bytes");
        let s = secret(1);
        let a = s.derive(&salt, Purpose::Sessions);
        let b = s.derive(&salt, Purpose::ApiTokens);
        assert_ne!(a.bytes(), b.bytes());
        assert_eq!(a.bytes(), s.derive(&salt, Purpose::Sessions).bytes());
    }

    #[test]
    fn key_check_distinguishes_secrets_and_salts() {
        let salt = InstallationSalt::from_bytes(&[7u8; 32]).expect("32 bytes");
        let other_salt = InstallationSalt::from_bytes(&[8u8; 32]).expect("32 bytes");
        assert!(
            secret(1)
                .key_check(&salt)
                .matches(&secret(1).key_check(&salt))
        );
        assert!(
            !secret(1)
                .key_check(&salt)
                .matches(&secret(2).key_check(&salt))
        );
        assert!(
            !secret(1)
                .key_check(&salt)
                .matches(&secret(1).key_check(&other_salt))
        );
    }

    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        // RFC 5869 Appendix A.1, to pin the primitive and its wiring.
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").expect("hex");
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").expect("hex");
        let hk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
        let mut okm = [0u8; 42];
        hk.expand(&info, &mut okm).expect("valid length");
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn debug_never_prints_key_material() {
        let s = secret(0xab);
        assert_eq!(format!("{s:?}"), "MasterSecret([redacted])");
    }
}
