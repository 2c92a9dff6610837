//! AES-256-GCM (NIST SP 800-38D) with 96-bit nonces, the one AEAD Ward uses.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// 96-bit nonce: SP 800-38D §8.2 recommends 96-bit IVs.
pub const NONCE_LEN: usize = 12;
/// 128-bit tag: SP 800-38D §5.2.1.2, the full tag length.
pub const TAG_LEN: usize = 16;

/// A key with its AES key schedule expanded once, for keys used many times (the
/// master credential key). The `aes` crate zeroizes the schedule on drop.
pub(crate) struct PreparedKey(Aes256Gcm);

impl PreparedKey {
    pub(crate) fn new(key: &[u8; 32]) -> Option<Self> {
        Aes256Gcm::new_from_slice(key).ok().map(Self)
    }

    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Option<Vec<u8>> {
        let nonce = Nonce::try_from(&nonce[..]).ok()?;
        self.0
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .ok()
    }

    pub(crate) fn open(&self, nonce: &[u8], ciphertext: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let nonce = Nonce::try_from(nonce).ok()?;
        self.0
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()
    }
}

pub(crate) fn seal(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Option<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let nonce = Nonce::try_from(&nonce[..]).ok()?;
    cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .ok()
}

pub(crate) fn open(key: &[u8; 32], nonce: &[u8], ciphertext: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let nonce = Nonce::try_from(nonce).ok()?;
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

/// Raw AES-256-GCM for the benchmark baseline (`cargo xtask bench`).
pub fn bench_raw_seal_open(key: &[u8; 32], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> bool {
    seal(key, nonce, plaintext, b"")
        .and_then(|ct| open(key, nonce, &ct, b""))
        .is_some_and(|pt| pt.len() == plaintext.len())
}
