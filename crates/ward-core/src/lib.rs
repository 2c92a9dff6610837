//! Ward's domain: tenants, users, roles and the permission matrix, sessions, API
//! tokens, password policy, sign-in throttling and audit events.
//!
//! Pure code: no HTTP, no SQL, no clock and no randomness of its own — time and
//! random bytes are passed in, so every rule here is unit-testable.
#![forbid(unsafe_code)]

pub mod audit;
pub mod audit_format;
pub mod connection;
pub mod domain;
pub mod egress;
pub mod email;
pub mod ids;
pub mod keys;
pub mod mfa;
pub mod passkey;
pub mod password_policy;
pub mod rbac;
pub mod rule;
pub mod rule_review;
pub mod session;
pub mod sso;
pub mod tenant;
pub mod text;
pub mod throttle;
pub mod time;
pub mod token;
pub mod user;

pub use audit::{Actor, AuditEvent, AuditOutcome, RequestContext};
pub use email::Email;
pub use ids::{
    CeremonyId, EventId, PasskeyId, RuleId, SessionId, SsoProviderId, TenantId, TokenId, UserId,
};
pub use rbac::{Permission, Role};
pub use time::Timestamp;

/// A value that failed validation, naming the field so API and CLI can say which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Checks a free-text field: trimmed, non-empty, at most `max` characters, no
/// control characters (they break logs, CSV exports and terminals), and no
/// invisible or bidirectional formatting character (they make text read other
/// than it is; `text::is_invisible_or_bidi`). Names shown to people go through
/// `text::checked_name`, which adds NFC and the mixed-script check.
pub fn checked_text(field: &'static str, value: &str, max: usize) -> Result<String, InvalidField> {
    let v = value.trim();
    if v.is_empty() {
        return Err(InvalidField::new(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(InvalidField::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(InvalidField::new(
            field,
            "must not contain control characters",
        ));
    }
    if let Some(c) = text::hidden_character(v) {
        return Err(InvalidField::new(
            field,
            format!("must not contain invisible or bidirectional characters ({c})"),
        ));
    }
    Ok(v.to_owned())
}
