//! Passkeys as Ward keeps them, and the sign-in ceremonies that use them.

use serde::Serialize;

use crate::{CeremonyId, InvalidField, PasskeyId, SessionId, TenantId, Timestamp, UserId};

/// A user's registered passkey. `credential` is the WebAuthn library's serialized
/// credential (public key, algorithm, counter): public material, stored in clear.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyRecord {
    pub id: PasskeyId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    /// The authenticator's credential id, base64url without padding.
    pub credential_id: String,
    #[serde(skip)]
    pub credential: String,
    pub sign_count: i64,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

pub fn check_passkey_name(name: &str) -> Result<String, InvalidField> {
    crate::text::checked_name("name", name, 100)
}

/// What a ceremony is for. Each kind is finished only by its own route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Registering a passkey in a signed-in session.
    PasskeyRegistration,
    /// Passwordless sign-in with a discoverable passkey.
    PasskeySignIn,
    /// The passkey step after a correct password.
    SecondFactor,
    /// Re-authentication with a passkey in a signed-in session.
    PasskeyReauth,
    /// An OpenID Connect authorization request (state, nonce, PKCE verifier).
    OidcSignIn,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::PasskeyRegistration => "passkey_registration",
            CeremonyKind::PasskeySignIn => "passkey_sign_in",
            CeremonyKind::SecondFactor => "second_factor",
            CeremonyKind::PasskeyReauth => "passkey_reauth",
            CeremonyKind::OidcSignIn => "oidc_sign_in",
        }
    }
}

/// How long a ceremony may take: WebAuthn's recommended timeout for user
/// verification is 5 minutes; an IdP sign-in may need longer.
pub const CEREMONY_TTL_SECS: i64 = 10 * 60;

/// The server half of a ceremony, single use.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub id: CeremonyId,
    pub kind: CeremonyKind,
    /// The session it belongs to (registration, re-authentication).
    pub session_id: Option<SessionId>,
    /// The user it is for (second factor after a password).
    pub user_id: Option<UserId>,
    /// The library's serialized state (challenge, allowed credentials, ...).
    pub state: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
