//! Tenant keys: a random 256-bit key per company and key version, stored only
//! wrapped (AES-256-GCM) under the master credential key, which is derived from the
//! master secret with HKDF ("ward/v1/credentials") and never persisted. The wrap's
//! AAD binds the wrapped key to its company, key version and master version, so a
//! wrapped key copied to another company or version does not unwrap.

use zeroize::Zeroizing;

use crate::aead::{self, NONCE_LEN, TAG_LEN};
use crate::{CryptoError, InstallationSalt, MasterSecret, Purpose, SecureRandom};

const WRAP_FORMAT: u8 = 1;
/// Wrapped form: format (1) ‖ nonce (12) ‖ AES-256-GCM(tenant key) (32) ‖ tag (16).
pub const WRAPPED_LEN: usize = 1 + NONCE_LEN + 32 + TAG_LEN;

/// A tenant key in the clear. Lives only in memory for one operation; zeroized on drop.
pub struct TenantKey(Zeroizing<[u8; 32]>);

impl TenantKey {
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill(k.as_mut())?;
        Ok(Self(k))
    }

    /// A fixed key, for published test vectors only.
    pub fn danger_from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKey([redacted])")
    }
}

/// What a wrapped key is bound to.
#[derive(Debug, Clone, Copy)]
pub struct WrapContext<'a> {
    pub tenant_id: &'a str,
    pub key_version: u32,
    pub master_version: u32,
}

impl WrapContext<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = b"ward/v1/tenant-key".to_vec();
        push_field(&mut aad, self.tenant_id.as_bytes());
        aad.extend_from_slice(&self.key_version.to_be_bytes());
        aad.extend_from_slice(&self.master_version.to_be_bytes());
        aad
    }
}

/// The key that wraps tenant keys. Derived per master secret; held as an expanded
/// AES key schedule (zeroized on drop by the `aes` crate).
pub struct MasterCredentialKey(aead::PreparedKey);

impl std::fmt::Debug for MasterCredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterCredentialKey([redacted])")
    }
}

impl MasterCredentialKey {
    pub fn derive(master: &MasterSecret, salt: &InstallationSalt) -> Self {
        let key = master.derive(salt, Purpose::Credentials);
        Self(
            aead::PreparedKey::new(key.bytes())
                .expect("a 32-byte key is always a valid AES-256 key"),
        )
    }

    pub fn wrap(
        &self,
        key: &TenantKey,
        ctx: WrapContext<'_>,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce)?;
        let ct = self
            .0
            .seal(&nonce, key.bytes(), &ctx.aad())
            .ok_or(CryptoError::Wrap)?;
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.push(WRAP_FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn unwrap(&self, wrapped: &[u8], ctx: WrapContext<'_>) -> Result<TenantKey, CryptoError> {
        if wrapped.len() != WRAPPED_LEN || wrapped.first() != Some(&WRAP_FORMAT) {
            return Err(CryptoError::Unwrap);
        }
        let (nonce, ct) = wrapped[1..].split_at(NONCE_LEN);
        let pt = Zeroizing::new(
            self.0
                .open(nonce, ct, &ctx.aad())
                .ok_or(CryptoError::Unwrap)?,
        );
        let arr: [u8; 32] = pt.as_slice().try_into().map_err(|_| CryptoError::Unwrap)?;
        Ok(TenantKey(Zeroizing::new(arr)))
    }
}

/// Appends a length-prefixed field (u16 big-endian length), so concatenated
/// fields can never be confused with each other ("ab"+"c" vs "a"+"bc").
pub(crate) fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&field[..usize::from(len)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    fn mck(byte: u8) -> MasterCredentialKey {
        let secret = MasterSecret::from_base64(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [byte; 32],
        ))
        .expect("secret");
        MasterCredentialKey::derive(
            &secret,
            &InstallationSalt::from_bytes(&[5; 32]).expect("salt"),
        )
    }

    #[test]
    fn wrap_binds_tenant_version_and_master() {
        let k = TenantKey::generate(&OsRandom).expect("key");
        let ctx = WrapContext {
            tenant_id: "tenant-a",
            key_version: 1,
            master_version: 1,
        };
        let wrapped = mck(1).wrap(&k, ctx, &OsRandom).expect("wrap");
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        let back = mck(1).unwrap(&wrapped, ctx).expect("unwrap");
        assert_eq!(back.bytes(), k.bytes());
        // Copied to another company, another version, another master version: refused.
        for other in [
            WrapContext {
                tenant_id: "tenant-b",
                ..ctx
            },
            WrapContext {
                key_version: 2,
                ..ctx
            },
            WrapContext {
                master_version: 2,
                ..ctx
            },
        ] {
            assert!(mck(1).unwrap(&wrapped, other).is_err());
        }
        // Another master secret: refused.
        assert!(mck(2).unwrap(&wrapped, ctx).is_err());
        // Truncated or flipped: refused, no panic.
        assert!(mck(1).unwrap(&wrapped[..20], ctx).is_err());
        let mut flipped = wrapped.clone();
        flipped[30] ^= 1;
        assert!(mck(1).unwrap(&flipped, ctx).is_err());
    }
}
