//! API tokens: metadata and the rules for their scope and validity. The secret is
//! never here; only its keyed digest is stored (see `ward_crypto::api_token`).

use serde::Serialize;

use crate::user::User;
use crate::{Role, TenantId, Timestamp, TokenId, UserId};

/// Longest allowed token lifetime: one year. Long-lived automation should rotate.
pub const MAX_TOKEN_LIFETIME_DAYS: i64 = 366;
pub const DEFAULT_TOKEN_LIFETIME_DAYS: i64 = 90;
/// Longest lifetime of a token with the `sensitive` capability: one hour, so a
/// leaked one is a short window, not a persistence backdoor (issue 15, item 5).
pub const SENSITIVE_TOKEN_LIFETIME_SECS: i64 = 3600;

#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    pub id: TokenId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    /// The most this token may do; the effective role is never above the owner's
    /// current role (see `effective_role`).
    pub scope: Role,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// May perform security-sensitive actions (MFA policy, SSO providers, roles,
    /// keys, domains). Only minted from a session that met the company's MFA
    /// policy and re-authenticated recently; lives at most an hour.
    pub sensitive: bool,
    /// The identity provider of the session that minted the token, if any
    /// (separation of duties follows it like the session's).
    pub sso_provider_id: Option<crate::SsoProviderId>,
    /// The `metrics` scope: reads `GET /metrics` (its company's series only) and
    /// nothing else, so a scraper's credential opens no other door.
    pub metrics: bool,
}

impl ApiToken {
    pub fn is_usable(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// A token acts with the lesser of its scope and its owner's current role, so
    /// demoting a user demotes their tokens at once.
    pub fn effective_role(&self, owner_role: Role) -> Role {
        self.scope.min(owner_role)
    }
}

/// A token joined with what authorisation needs about its owner.
#[derive(Debug, Clone)]
pub struct TokenWithOwner {
    pub token: ApiToken,
    pub owner: User,
}
