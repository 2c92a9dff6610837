//! Argon2id password hashing: PHC strings, re-hash detection, and a dummy hash so
//! unknown accounts take as long to refuse as known ones.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::{CryptoError, SecureRandom};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordHashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl PasswordHashParams {
    /// m = 64 MiB, t = 3, p = 4: RFC 9106 §4 "second recommended option" uses
    /// m = 64 MiB, t = 3, p = 4 for memory-constrained environments; OWASP's
    /// Password Storage Cheat Sheet's minimum is m = 19 MiB, t = 2, p = 1.
    pub const RECOMMENDED: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 4,
    };

    /// OWASP Password Storage Cheat Sheet minimum for Argon2id (m = 19 MiB, t = 2).
    /// Anything weaker is only accepted when explicitly marked `danger_`.
    pub const OWASP_MINIMUM_MEMORY_KIB: u32 = 19 * 1024;
    pub const OWASP_MINIMUM_ITERATIONS: u32 = 2;

    /// Test-only weak parameters, so test suites can hash hundreds of passwords.
    pub const fn danger_insecure_for_tests() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Whether these parameters meet the OWASP minimum.
    pub fn meets_owasp_minimum(&self) -> bool {
        self.memory_kib >= Self::OWASP_MINIMUM_MEMORY_KIB
            && self.iterations >= Self::OWASP_MINIMUM_ITERATIONS
    }

    fn argon2_params(&self) -> Result<Params, CryptoError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| CryptoError::PasswordParams(e.to_string()))
    }
}

/// An encoded Argon2 hash (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
#[derive(Clone, PartialEq, Eq)]
pub struct PhcString(String);

impl PhcString {
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PhcString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhcString([redacted])")
    }
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordVerification {
    /// The password matches; `needs_rehash` when the stored hash used other parameters.
    Valid {
        needs_rehash: bool,
    },
    Invalid,
}

/// Hashes and verifies passwords with fixed parameters. CPU- and memory-heavy:
/// callers run it off the async runtime and bound its concurrency.
#[derive(Debug, Clone)]
pub struct PasswordHashing {
    params: PasswordHashParams,
    dummy: PhcString,
}

impl PasswordHashing {
    /// Builds the hasher and its dummy hash (of a random password nobody knows).
    pub fn new(params: PasswordHashParams, rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        params.argon2_params()?;
        let mut unknown = [0u8; 32];
        rng.fill(&mut unknown)?;
        let mut this = Self {
            params,
            dummy: PhcString(String::new()),
        };
        this.dummy = this.hash_bytes(&unknown, rng)?;
        Ok(this)
    }

    pub fn params(&self) -> PasswordHashParams {
        self.params
    }

    /// Hashes a password with a fresh 16-byte salt (RFC 9106 §3.1 recommends 128 bits).
    pub fn hash(&self, password: &str, rng: &dyn SecureRandom) -> Result<PhcString, CryptoError> {
        self.hash_bytes(password.as_bytes(), rng)
    }

    fn hash_bytes(
        &self,
        password: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<PhcString, CryptoError> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt)?;
        let argon = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            self.params.argon2_params()?,
        );
        let hash = argon
            .hash_password_with_salt(password, &salt)
            .map_err(|_| CryptoError::PasswordHash)?;
        Ok(PhcString(hash.to_string()))
    }

    /// Verifies against a stored hash. The hash's own parameters are used to verify;
    /// `needs_rehash` reports whether they differ from the configured ones.
    pub fn verify(
        &self,
        password: &str,
        stored: &PhcString,
    ) -> Result<PasswordVerification, CryptoError> {
        let parsed =
            PasswordHash::new(stored.as_str()).map_err(|_| CryptoError::StoredHashFormat)?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        if !ok {
            return Ok(PasswordVerification::Invalid);
        }
        let stored_params = Params::try_from(&parsed).map_err(|_| CryptoError::StoredHashFormat)?;
        let needs_rehash = parsed.algorithm.as_str() != "argon2id"
            || stored_params.m_cost() != self.params.memory_kib
            || stored_params.t_cost() != self.params.iterations
            || stored_params.p_cost() != self.params.parallelism;
        Ok(PasswordVerification::Valid { needs_rehash })
    }

    /// Spends the same work as a real verification against a hash that matches
    /// nothing, so an unknown account is indistinguishable by timing.
    pub fn verify_dummy(&self, password: &str) {
        let _ = self.verify(password, &self.dummy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    #[test]
    fn hash_verify_and_rehash_detection() {
        let weak = PasswordHashing::new(PasswordHashParams::danger_insecure_for_tests(), &OsRandom)
            .expect("params");
        let phc = weak
            .hash("correct horse battery staple", &OsRandom)
            .expect("hash");
        assert!(phc.as_str().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            weak.verify("correct horse battery staple", &phc)
                .expect("verify"),
            PasswordVerification::Valid {
                needs_rehash: false
            }
        );
        assert_eq!(
            weak.verify("wrong horse battery staple", &phc)
                .expect("verify"),
            PasswordVerification::Invalid
        );
        let stronger = PasswordHashing::new(
            PasswordHashParams {
                memory_kib: 128,
                iterations: 2,
                parallelism: 1,
            },
            &OsRandom,
        )
        .expect("params");
        assert_eq!(
            stronger
                .verify("correct horse battery staple", &phc)
                .expect("verify"),
            PasswordVerification::Valid { needs_rehash: true }
        );
    }

    #[test]
    fn recommended_params_encode_as_documented() {
        let h = PasswordHashing::new(PasswordHashParams::RECOMMENDED, &OsRandom).expect("params");
        let phc = h.hash("a long enough password", &OsRandom).expect("hash");
        assert!(
            phc.as_str().starts_with("$argon2id$v=19$m=65536,t=3,p=4$"),
            "{}",
            phc.as_str()
        );
        assert!(PasswordHashParams::RECOMMENDED.meets_owasp_minimum());
        assert!(!PasswordHashParams::danger_insecure_for_tests().meets_owasp_minimum());
    }

    #[test]
    fn garbage_stored_hash_is_an_error_not_a_panic() {
        let h = PasswordHashing::new(PasswordHashParams::danger_insecure_for_tests(), &OsRandom)
            .expect("params");
        assert!(
            h.verify("x", &PhcString::from_stored("$argon2id$garbage".into()))
                .is_err()
        );
    }
}
