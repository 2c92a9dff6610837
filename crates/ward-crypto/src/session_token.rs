//! Session cookies: a PASETO v4.local token (XChaCha20 + BLAKE2b-MAC) sealing the
//! server-side session id under the "sessions" purpose key. The session itself lives
//! in the database, so revocation is immediate; the token only makes the id
//! unforgeable and unreadable, and binds it to this installation's key.

use pasetors::Local;
use pasetors::keys::SymmetricKey;
use pasetors::token::UntrustedToken;
use pasetors::version4::{LocalToken, V4};

use crate::{CryptoError, PurposeKey};

/// Implicit assertion (PASETO spec §"Implicit Assertions"): binds tokens to their
/// use, so a token sealed for something else under the same key is refused.
const IMPLICIT_ASSERTION: &[u8] = b"ward/v1/session-cookie";

/// The session id recovered from a cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSession {
    pub session_id: String,
}

/// Seals and opens session tokens.
pub struct SessionSealer {
    key: SymmetricKey<V4>,
}

impl std::fmt::Debug for SessionSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSealer([redacted])")
    }
}

impl SessionSealer {
    pub fn new(key: &PurposeKey) -> Self {
        Self {
            key: SymmetricKey::<V4>::from(key.bytes())
                .expect("a 32-byte key is always a valid PASETO v4.local key"),
        }
    }

    /// Seals a session id into a `v4.local.` token.
    pub fn seal(&self, session_id: &str) -> Result<String, CryptoError> {
        LocalToken::encrypt(
            &self.key,
            session_id.as_bytes(),
            None,
            Some(IMPLICIT_ASSERTION),
        )
        .map_err(|_| CryptoError::SessionToken)
    }

    /// Opens a token. Any tampering, a foreign key or a malformed token is one error.
    pub fn open(&self, token: &str) -> Result<SealedSession, CryptoError> {
        // Session ids are short; refuse absurd cookies before parsing.
        if token.len() > 512 {
            return Err(CryptoError::SessionToken);
        }
        let untrusted =
            UntrustedToken::<Local, V4>::try_from(token).map_err(|_| CryptoError::SessionToken)?;
        let trusted = LocalToken::decrypt(&self.key, &untrusted, None, Some(IMPLICIT_ASSERTION))
            .map_err(|_| CryptoError::SessionToken)?;
        Ok(SealedSession {
            session_id: trusted.payload().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstallationSalt, MasterSecret, Purpose};

    fn sealer(byte: u8) -> SessionSealer {
        let secret = MasterSecret::from_base64(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [byte; 32],
        ))
        .expect("secret");
        let salt = InstallationSalt::from_bytes(&[0u8; 32]).expect("salt");
        SessionSealer::new(&secret.derive(&salt, Purpose::Sessions))
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = sealer(1);
        let token = s.seal("session-123").expect("seal");
        assert!(token.starts_with("v4.local."));
        assert_eq!(s.open(&token).expect("open").session_id, "session-123");
        // Another installation's key.
        assert!(sealer(2).open(&token).is_err());
        // Tampering: flip one character of the body.
        let mut bytes = token.into_bytes();
        let i = bytes.len() - 5;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert!(s.open(&tampered).is_err());
        assert!(s.open("garbage").is_err());
        assert!(s.open("").is_err());
    }
}
