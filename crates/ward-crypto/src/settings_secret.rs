//! Settings secrets (a forwarding sink's HEC token or webhook HMAC key, an SSO
//! provider's client secret): installation settings, not company data, so they are
//! sealed with the master secret's "settings" purpose key rather than a tenant key.
//! Format: 0x01 ‖ 96-bit nonce ‖ AES-256-GCM(ciphertext ‖ tag); the AAD binds the
//! owner kind, owner id, field and master version, so a sealed secret copied to
//! another sink, field or master version does not open.

use zeroize::Zeroizing;

use crate::aead::{self, NONCE_LEN};
use crate::tenant_key::push_field;
use crate::{CryptoError, InstallationSalt, MasterSecret, Purpose, SecureRandom};

const FORMAT: u8 = 1;

/// Where a settings secret belongs.
#[derive(Debug, Clone, Copy)]
pub struct SettingsContext<'a> {
    /// E.g. `audit_sink`.
    pub owner_kind: &'a str,
    pub owner_id: &'a str,
    pub field: &'a str,
    pub master_version: u32,
}

impl SettingsContext<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = b"ward/v1/settings-secret".to_vec();
        push_field(&mut aad, self.owner_kind.as_bytes());
        push_field(&mut aad, self.owner_id.as_bytes());
        push_field(&mut aad, self.field.as_bytes());
        aad.extend_from_slice(&self.master_version.to_be_bytes());
        aad
    }
}

/// The "settings" purpose key of one master secret.
pub struct SettingsKey(aead::PreparedKey);

impl std::fmt::Debug for SettingsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SettingsKey([redacted])")
    }
}

impl SettingsKey {
    pub fn derive(master: &MasterSecret, salt: &InstallationSalt) -> Self {
        let key = master.derive(salt, Purpose::Settings);
        Self(
            aead::PreparedKey::new(key.bytes())
                .expect("a 32-byte key is always a valid AES-256 key"),
        )
    }

    pub fn seal(
        &self,
        secret: &[u8],
        ctx: SettingsContext<'_>,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce)?;
        let ct = self
            .0
            .seal(&nonce, secret, &ctx.aad())
            .ok_or(CryptoError::Wrap)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(
        &self,
        sealed: &[u8],
        ctx: SettingsContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN + aead::TAG_LEN || sealed[0] != FORMAT {
            return Err(CryptoError::Unwrap);
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        self.0
            .open(nonce, ct, &ctx.aad())
            .map(Zeroizing::new)
            .ok_or(CryptoError::Unwrap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    fn ctx(id: &str, v: u32) -> SettingsContext<'_> {
        SettingsContext {
            owner_kind: "audit_sink",
            owner_id: id,
            field: "secret",
            master_version: v,
        }
    }

    #[test]
    fn sealed_secrets_open_only_in_their_place() {
        let salt = InstallationSalt::generate(&OsRandom).expect("salt");
        let master = MasterSecret::generate(&OsRandom).expect("master");
        let key = SettingsKey::derive(&master, &salt);
        let sealed = key
            .seal(b"hec-token", ctx("s1", 1), &OsRandom)
            .expect("seal");
        assert_eq!(
            key.open(&sealed, ctx("s1", 1)).expect("open").as_slice(),
            b"hec-token"
        );
        assert!(key.open(&sealed, ctx("s2", 1)).is_err(), "another sink");
        assert!(
            key.open(&sealed, ctx("s1", 2)).is_err(),
            "another master version"
        );
        let mut other_field = ctx("s1", 1);
        other_field.field = "client_secret";
        assert!(key.open(&sealed, other_field).is_err());
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(key.open(&t, ctx("s1", 1)).is_err(), "bit flip at {i}");
        }
        assert!(key.open(&sealed[..sealed.len() - 1], ctx("s1", 1)).is_err());
        let other = SettingsKey::derive(&MasterSecret::generate(&OsRandom).expect("m"), &salt);
        assert!(
            other.open(&sealed, ctx("s1", 1)).is_err(),
            "another master secret"
        );
        assert!(!format!("{key:?}").contains("hec"));
    }
}
