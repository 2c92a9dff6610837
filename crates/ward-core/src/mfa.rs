//! Multi-factor policy: how strongly a session was authenticated, what a company
//! requires, and the re-authentication window for sensitive actions.

use serde::{Deserialize, Serialize};

use crate::{InvalidField, Timestamp};

/// How a session was authenticated. Stored as text in `sessions.auth_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Password alone.
    Password,
    /// Password, then a passkey as second factor.
    PasswordAndPasskey,
    /// A discoverable passkey with user verification (possession + PIN/biometric).
    Passkey,
    /// Single sign-on; whether the provider asserted MFA is kept beside it.
    Oidc,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::PasswordAndPasskey => "password+passkey",
            AuthMethod::Passkey => "passkey",
            AuthMethod::Oidc => "oidc",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "password" => Some(AuthMethod::Password),
            "password+passkey" => Some(AuthMethod::PasswordAndPasskey),
            "passkey" => Some(AuthMethod::Passkey),
            "oidc" => Some(AuthMethod::Oidc),
            _ => None,
        }
    }

    /// Whether a passkey was part of the sign-in.
    pub fn used_passkey(self) -> bool {
        matches!(self, AuthMethod::PasswordAndPasskey | AuthMethod::Passkey)
    }
}

/// A company's sign-in requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    /// A password (or SSO) is enough.
    #[default]
    None,
    /// A second factor: a passkey, or MFA asserted by the identity provider.
    RequireMfa,
    /// A passkey, whatever the identity provider asserts.
    RequirePasskey,
}

impl MfaPolicy {
    pub const ALL: [MfaPolicy; 3] = [
        MfaPolicy::None,
        MfaPolicy::RequireMfa,
        MfaPolicy::RequirePasskey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MfaPolicy::None => "none",
            MfaPolicy::RequireMfa => "require_mfa",
            MfaPolicy::RequirePasskey => "require_passkey",
        }
    }

    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        match text.trim() {
            "none" => Ok(MfaPolicy::None),
            "require_mfa" => Ok(MfaPolicy::RequireMfa),
            "require_passkey" => Ok(MfaPolicy::RequirePasskey),
            _ => Err(InvalidField::new(
                "policy",
                "must be one of none, require_mfa, require_passkey",
            )),
        }
    }

    /// Whether a session authenticated this way meets the policy. `multi_factor`
    /// is true when a passkey was used or the identity provider asserted MFA.
    pub fn is_met_by(self, method: AuthMethod, multi_factor: bool) -> bool {
        match self {
            MfaPolicy::None => true,
            MfaPolicy::RequireMfa => multi_factor,
            MfaPolicy::RequirePasskey => method.used_passkey(),
        }
    }

    /// Whether a password sign-in must be followed by a passkey before a full
    /// session is granted, given whether the user has a passkey.
    pub fn wants_second_factor(self, has_passkey: bool) -> bool {
        has_passkey || self != MfaPolicy::None
    }
}

/// `amr` values (RFC 8176) that show the identity provider used more than one
/// factor. `mfa` is the generic one; the others are factors that are themselves
/// possession- or inherence-based and only appear alongside another.
pub const MULTI_FACTOR_AMR: [&str; 6] = ["mfa", "hwk", "otp", "sms", "swk", "fpt"];

/// Whether an ID token's `amr`/`acr` claims assert multi-factor authentication.
pub fn idp_asserted_mfa(amr: &[String], acr: Option<&str>, mfa_acr_values: &[String]) -> bool {
    amr.iter().any(|a| MULTI_FACTOR_AMR.contains(&a.as_str()))
        || acr.is_some_and(|a| mfa_acr_values.iter().any(|v| v == a))
}

/// How recently a session must have proven its user's identity before a sensitive
/// action (key rotation, role changes, SSO and MFA settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReauthWindow {
    pub secs: i64,
}

impl Default for ReauthWindow {
    fn default() -> Self {
        Self { secs: 10 * 60 }
    }
}

impl ReauthWindow {
    pub fn is_recent(self, authenticated_at: Timestamp, now: Timestamp) -> bool {
        now.seconds_since(authenticated_at) < self.secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        use AuthMethod::*;
        assert!(MfaPolicy::None.is_met_by(Password, false));
        assert!(!MfaPolicy::RequireMfa.is_met_by(Password, false));
        assert!(MfaPolicy::RequireMfa.is_met_by(PasswordAndPasskey, true));
        assert!(MfaPolicy::RequireMfa.is_met_by(Oidc, true));
        assert!(!MfaPolicy::RequirePasskey.is_met_by(Oidc, true));
        assert!(MfaPolicy::RequirePasskey.is_met_by(Passkey, true));
        assert!(MfaPolicy::None.wants_second_factor(true));
        assert!(!MfaPolicy::None.wants_second_factor(false));
        assert!(MfaPolicy::RequireMfa.wants_second_factor(false));
        for p in MfaPolicy::ALL {
            assert_eq!(MfaPolicy::parse(p.as_str()), Ok(p));
        }
        assert!(MfaPolicy::parse("always").is_err());
        for m in [Password, PasswordAndPasskey, Passkey, Oidc] {
            assert_eq!(AuthMethod::parse(m.as_str()), Some(m));
        }
    }

    #[test]
    fn amr_and_acr() {
        let amr = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(idp_asserted_mfa(&amr(&["pwd", "mfa"]), None, &[]));
        assert!(idp_asserted_mfa(&amr(&["hwk"]), None, &[]));
        assert!(!idp_asserted_mfa(&amr(&["pwd"]), None, &[]));
        let acr = vec!["http://schemas.openid.net/pape/policies/2007/06/multi-factor".to_owned()];
        assert!(idp_asserted_mfa(&[], Some(acr[0].as_str()), &acr));
        assert!(!idp_asserted_mfa(&[], Some("1"), &acr));
    }

    #[test]
    fn reauth_window() {
        let w = ReauthWindow { secs: 600 };
        let t0 = Timestamp::from_millis(0);
        assert!(w.is_recent(t0, t0.plus_seconds(599)));
        assert!(!w.is_recent(t0, t0.plus_seconds(600)));
    }
}
