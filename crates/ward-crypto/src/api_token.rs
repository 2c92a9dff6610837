//! API tokens: `ward_` + 32 random bytes (base64url), shown once, stored only as
//! HMAC-SHA256 under the "api-tokens" purpose key, so a database dump alone cannot
//! be replayed or brute-forced offline without the master secret.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{CryptoError, PurposeKey, SecureRandom};

pub const TOKEN_PREFIX: &str = "ward_";
/// 32 bytes = 256 bits of entropy; base64url without padding is 43 characters.
const TOKEN_BYTES: usize = 32;
const ENCODED_LEN: usize = 43;

/// A freshly generated token secret. Shown to its creator once; zeroized on drop.
pub struct ApiTokenSecret(Zeroizing<String>);

impl ApiTokenSecret {
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
        rng.fill(raw.as_mut())?;
        Ok(Self(Zeroizing::new(format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(raw.as_ref())
        ))))
    }

    /// The token text, for the one response that reveals it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether a presented string has the token shape (cheap pre-check, not auth).
    pub fn is_well_formed(presented: &str) -> bool {
        presented.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
            rest.len() == ENCODED_LEN
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    }
}

impl std::fmt::Debug for ApiTokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiTokenSecret([redacted])")
    }
}

/// The stored form of a token: HMAC-SHA256(key, token), hex-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDigest(pub String);

/// Computes token digests under the api-tokens key.
pub struct ApiTokenHasher {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ApiTokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiTokenHasher([redacted])")
    }
}

impl ApiTokenHasher {
    pub fn new(key: &PurposeKey) -> Self {
        Self {
            key: Zeroizing::new(*key.bytes()),
        }
    }

    /// The digest looked up in the database. Lookup by an unpredictable keyed digest
    /// leaks nothing useful through timing, so no separate constant-time step is needed.
    pub fn digest(&self, token: &str) -> TokenDigest {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.as_ref())
            .expect("HMAC accepts keys of any length");
        mac.update(token.as_bytes());
        TokenDigest(hex::encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstallationSalt, MasterSecret, OsRandom, Purpose};

    #[test]
    fn tokens_are_well_formed_unique_and_digested_by_key() {
        let a = ApiTokenSecret::generate(&OsRandom).expect("token");
        let b = ApiTokenSecret::generate(&OsRandom).expect("token");
        assert!(ApiTokenSecret::is_well_formed(a.expose()));
        assert_ne!(a.expose(), b.expose());
        assert!(!ApiTokenSecret::is_well_formed("ward_short"));
        assert!(!ApiTokenSecret::is_well_formed("Bearer x"));
        let salt = InstallationSalt::from_bytes(&[1u8; 32]).expect("salt");
        let k1 =
            MasterSecret::from_base64(&base64::engine::general_purpose::STANDARD.encode([3u8; 32]))
                .expect("secret");
        let k2 =
            MasterSecret::from_base64(&base64::engine::general_purpose::STANDARD.encode([4u8; 32]))
                .expect("secret");
        let h1 = ApiTokenHasher::new(&k1.derive(&salt, Purpose::ApiTokens));
        let h2 = ApiTokenHasher::new(&k2.derive(&salt, Purpose::ApiTokens));
        assert_eq!(h1.digest(a.expose()), h1.digest(a.expose()));
        assert_ne!(h1.digest(a.expose()), h2.digest(a.expose()));
        assert_eq!(format!("{a:?}"), "ApiTokenSecret([redacted])");
    }
}
