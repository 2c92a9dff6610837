//! Server-side sessions and the pure rules that decide whether one is still good.

use serde::Serialize;

use crate::user::User;
use crate::{SessionId, TenantId, Timestamp, UserId};

/// A session as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: SessionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// Absolute expiry, fixed at creation.
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub ip: String,
    pub user_agent: String,
    /// How the session was authenticated: `password`, `password+passkey`,
    /// `passkey` or `oidc` (see [`crate::mfa::AuthMethod`]).
    pub auth_method: String,
    /// Whether more than one factor was proven (a passkey, or MFA asserted by the
    /// identity provider).
    pub multi_factor: bool,
    /// When the user last proved who they are in this session: the sign-in, or a
    /// later re-authentication. Sensitive actions need this to be recent.
    pub authenticated_at: Timestamp,
    /// Whether that last sign-in or re-authentication proved a second factor.
    /// Security-sensitive changes in a company that requires MFA need it.
    pub reauth_multi_factor: bool,
    /// The identity provider the session was opened through (`None`: password or
    /// passkey). Separation of duties asks who controls it.
    pub sso_provider_id: Option<crate::SsoProviderId>,
}

impl Session {
    pub fn method(&self) -> Option<crate::mfa::AuthMethod> {
        crate::mfa::AuthMethod::parse(&self.auth_method)
    }

    /// Whether this session meets the company's MFA policy.
    pub fn meets(&self, policy: crate::mfa::MfaPolicy) -> bool {
        self.method()
            .is_some_and(|m| policy.is_met_by(m, self.multi_factor))
    }
}

/// Idle and absolute timeouts (OWASP Session Management Cheat Sheet: idle 15–30
/// minutes for sensitive applications, absolute 4–8 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 8 * 60 * 60,
        }
    }
}

/// Whether a session may be used at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Active,
    Revoked,
    IdleExpired,
    Expired,
}

/// How often `last_seen_at` is written: at most once a minute, so an authenticated
/// request is one read, not a read and a write.
pub const TOUCH_INTERVAL_SECS: i64 = 60;

impl SessionPolicy {
    pub fn state(&self, s: &Session, now: Timestamp) -> SessionState {
        if s.revoked_at.is_some() {
            SessionState::Revoked
        } else if now >= s.expires_at {
            SessionState::Expired
        } else if now.seconds_since(s.last_seen_at) >= self.idle_timeout_secs {
            SessionState::IdleExpired
        } else {
            SessionState::Active
        }
    }

    pub fn needs_touch(&self, s: &Session, now: Timestamp) -> bool {
        now.seconds_since(s.last_seen_at) >= TOUCH_INTERVAL_SECS
    }
}

/// A session joined with its user as they are now (role and status are read on
/// every request, so a demotion or a disable takes effect at once).
#[derive(Debug, Clone)]
pub struct SessionWithUser {
    pub session: Session,
    pub user: User,
    /// The company's MFA policy as it is now.
    pub mfa_policy: crate::mfa::MfaPolicy,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(created: i64, last_seen: i64) -> Session {
        Session {
            id: SessionId::from_random([1; 16]),
            tenant_id: TenantId::from_random([2; 16]),
            user_id: UserId::from_random([3; 16]),
            created_at: Timestamp::from_millis(created),
            last_seen_at: Timestamp::from_millis(last_seen),
            expires_at: Timestamp::from_millis(created).plus_seconds(3600),
            revoked_at: None,
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            auth_method: "password".into(),
            multi_factor: false,
            authenticated_at: Timestamp::from_millis(created),
            reauth_multi_factor: false,
            sso_provider_id: None,
        }
    }

    #[test]
    fn timeouts() {
        let p = SessionPolicy {
            idle_timeout_secs: 600,
            absolute_timeout_secs: 3600,
        };
        let s = session(0, 0);
        let at = |secs: i64| Timestamp::from_millis(secs * 1000);
        assert_eq!(p.state(&s, at(599)), SessionState::Active);
        assert_eq!(p.state(&s, at(600)), SessionState::IdleExpired);
        let busy = session(0, 3500 * 1000);
        assert_eq!(p.state(&busy, at(3599)), SessionState::Active);
        assert_eq!(p.state(&busy, at(3600)), SessionState::Expired);
        let mut revoked = session(0, 0);
        revoked.revoked_at = Some(at(1));
        assert_eq!(p.state(&revoked, at(2)), SessionState::Revoked);
        assert!(!p.needs_touch(&s, at(59)));
        assert!(p.needs_touch(&s, at(60)));
    }
}
