//! Users: one company, one role, a unique email address, maybe a password.

use serde::Serialize;

use crate::{Email, InvalidField, Role, TenantId, Timestamp, UserId};

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: Email,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A user together with the stored password hash, for sign-in only. Never serialised.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .field("password_hash", &"[redacted]")
            .finish()
    }
}

/// A display name is shown beside approvals and in the audit trail: no hidden
/// or bidirectional characters, NFC, no look-alike mixed-script word.
pub fn check_display_name(name: &str) -> Result<String, InvalidField> {
    crate::text::checked_name("display_name", name, 200)
}

/// A change an Admin may make to a user. `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}
