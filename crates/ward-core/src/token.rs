//! API tokens: metadata and the rules for their scope and validity. The secret is
//! never here; only its keyed digest is stored (see `ward_crypto::api_token`).

use serde::Serialize;

use crate::user::User;
use crate::{Role, TenantId, Timestamp, TokenId, UserId};

/// Longest allowed token lifetime: one year. Long-lived automation should rotate.
pub const MAX_TOKEN_LIFETIME_DAYS: i64 = 366;
pub const DEFAULT_TOKEN_LIFETIME_DAYS: i64 = 90;

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
