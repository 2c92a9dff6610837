//! Randomness as an input: domain code takes a `SecureRandom` so tests can fix it.

use crate::CryptoError;

/// A source of cryptographically secure random bytes.
pub trait SecureRandom: Send + Sync {
    /// Fills `out` with random bytes.
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError>;

    /// Returns `N` random bytes.
    fn bytes<const N: usize>(&self) -> Result<[u8; N], CryptoError>
    where
        Self: Sized,
    {
        let mut out = [0u8; N];
        self.fill(&mut out)?;
        Ok(out)
    }
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::fill(out).map_err(|_| CryptoError::Randomness)
    }
}
