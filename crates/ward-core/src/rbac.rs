//! Roles and the one permission matrix. Every route names the permission it needs;
//! this file decides which roles hold it. Separation of duties is a rule here too.

use serde::{Deserialize, Serialize};

use crate::{InvalidField, UserId};

/// A user's role within their company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::User, Role::Viewer];

    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "viewer" => Ok(Role::Viewer),
            _ => Err(InvalidField::new(
                "role",
                "must be one of admin, user, viewer",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Viewer => "viewer",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Role::Viewer => 0,
            Role::User => 1,
            Role::Admin => 2,
        }
    }

    /// Whether this role grants no more than `other` (for token scopes and for who
    /// may assign which role).
    pub fn is_at_most(self, other: Role) -> bool {
        self.rank() <= other.rank()
    }

    /// The lesser of two roles (a token's effective role under its creator's).
    pub fn min(self, other: Role) -> Role {
        if self.is_at_most(other) { self } else { other }
    }

    pub fn allows(self, permission: Permission) -> bool {
        permission.roles().contains(&self)
    }
}

/// Everything a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read one's own account (`GET /me`).
    ReadOwnAccount,
    /// List and revoke one's own sessions.
    ManageOwnSessions,
    /// Create, list and revoke one's own API tokens (scope never above one's role).
    ManageOwnTokens,
    /// Read the company's user directory (to assign work, see who approved).
    ReadUsers,
    /// Create users, change roles, disable users, revoke their sessions.
    ManageUsers,
    /// Read the company's audit trail.
    ReadAuditLog,
    /// Read work objects (rules, cases, alerts).
    ReadWorkObjects,
    /// Create and edit work objects.
    WriteWorkObjects,
    /// Approve another person's change (never one's own: see `check_separation_of_duties`).
    ApproveChanges,
    /// Company settings: SSO, MFA policy, retention.
    ManageSettings,
    /// Encryption keys: rotation and policy.
    ManageKeys,
    /// See key versions and re-encryption progress.
    ReadKeyStatus,
    /// See SIEM connections' metadata (never their credentials).
    ReadConnections,
    /// Create, change, delete and test SIEM connections.
    ManageConnections,
}

impl Permission {
    pub const ALL: [Permission; 14] = [
        Permission::ReadOwnAccount,
        Permission::ManageOwnSessions,
        Permission::ManageOwnTokens,
        Permission::ReadUsers,
        Permission::ManageUsers,
        Permission::ReadAuditLog,
        Permission::ReadWorkObjects,
        Permission::WriteWorkObjects,
        Permission::ApproveChanges,
        Permission::ManageSettings,
        Permission::ManageKeys,
        Permission::ReadKeyStatus,
        Permission::ReadConnections,
        Permission::ManageConnections,
    ];

    /// The matrix. Admin: everything in the company. User: create and edit work
    /// objects, no user/settings/key management. Viewer: read only — including the
    /// audit trail, which is what auditors hold the Viewer role for.
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Permission::ReadOwnAccount
            | Permission::ManageOwnSessions
            | Permission::ManageOwnTokens
            | Permission::ReadUsers
            | Permission::ReadConnections
            | Permission::ReadWorkObjects => &[Admin, User, Viewer],
            Permission::WriteWorkObjects | Permission::ApproveChanges => &[Admin, User],
            Permission::ReadAuditLog | Permission::ReadKeyStatus => &[Admin, Viewer],
            Permission::ManageUsers
            | Permission::ManageSettings
            | Permission::ManageKeys
            | Permission::ManageConnections => &[Admin],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Permission::ReadOwnAccount => "read_own_account",
            Permission::ManageOwnSessions => "manage_own_sessions",
            Permission::ManageOwnTokens => "manage_own_tokens",
            Permission::ReadUsers => "read_users",
            Permission::ManageUsers => "manage_users",
            Permission::ReadAuditLog => "read_audit_log",
            Permission::ReadWorkObjects => "read_work_objects",
            Permission::WriteWorkObjects => "write_work_objects",
            Permission::ApproveChanges => "approve_changes",
            Permission::ManageSettings => "manage_settings",
            Permission::ManageKeys => "manage_keys",
            Permission::ReadKeyStatus => "read_key_status",
            Permission::ReadConnections => "read_connections",
            Permission::ManageConnections => "manage_connections",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Permission::ReadOwnAccount => "Read and change one's own account (profile, password)",
            Permission::ManageOwnSessions => "List and revoke one's own sessions",
            Permission::ManageOwnTokens => {
                "Create, list and revoke one's own API tokens (scope never above one's role)"
            }
            Permission::ReadUsers => "Read the company's user directory",
            Permission::ManageUsers => {
                "Create users, change roles, disable users, revoke their sessions"
            }
            Permission::ReadAuditLog => "Read and export the company's audit trail",
            Permission::ReadWorkObjects => "Read rules, cases, alerts and observables",
            Permission::WriteWorkObjects => "Create and edit rules, cases, alerts and observables",
            Permission::ApproveChanges => {
                "Approve or reject another person's change (separation of duties applies)"
            }
            Permission::ManageSettings => "Company settings: SSO providers, MFA policy, retention",
            Permission::ManageKeys => "Encryption keys: rotation and rotation policy",
            Permission::ReadKeyStatus => "See key versions and re-encryption progress",
            Permission::ReadConnections => {
                "See SIEM connections' metadata (never their credentials)"
            }
            Permission::ManageConnections => {
                "Create, change, delete and test SIEM connections (credentials are write-only)"
            }
        }
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    #[error("your role does not allow this")]
    Role,
    #[error("separation of duties: the author of a change cannot approve it")]
    SeparationOfDuties,
}

/// The rule every approval obeys: the approver holds `ApproveChanges` and is not
/// the author of the change being approved.
pub fn check_separation_of_duties(
    approver: &UserId,
    approver_role: Role,
    author: &UserId,
) -> Result<(), AccessDenied> {
    if !approver_role.allows(Permission::ApproveChanges) {
        return Err(AccessDenied::Role);
    }
    if approver == author {
        return Err(AccessDenied::SeparationOfDuties);
    }
    Ok(())
}

/// The role a principal may grant (to a new user or a token): never above its own.
pub fn check_grant(granter: Role, granted: Role) -> Result<(), AccessDenied> {
    if granted.is_at_most(granter) {
        Ok(())
    } else {
        Err(AccessDenied::Role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_shape() {
        for p in Permission::ALL {
            assert!(
                Role::Admin.allows(p),
                "admin holds everything in the company"
            );
        }
        for p in Permission::ALL {
            let viewer = Role::Viewer.allows(p);
            let writes = matches!(
                p,
                Permission::WriteWorkObjects
                    | Permission::ApproveChanges
                    | Permission::ManageUsers
                    | Permission::ManageSettings
                    | Permission::ManageKeys
                    | Permission::ManageConnections
            );
            assert_eq!(viewer, !writes, "viewer is read-only: {p:?}");
        }
        assert!(!Role::User.allows(Permission::ManageUsers));
        assert!(Role::User.allows(Permission::WriteWorkObjects));
    }

    #[test]
    fn separation_of_duties() {
        let a = UserId::from_random([1; 16]);
        let b = UserId::from_random([2; 16]);
        assert_eq!(
            check_separation_of_duties(&a, Role::Admin, &a),
            Err(AccessDenied::SeparationOfDuties)
        );
        assert_eq!(check_separation_of_duties(&b, Role::User, &a), Ok(()));
        assert_eq!(
            check_separation_of_duties(&b, Role::Viewer, &a),
            Err(AccessDenied::Role)
        );
    }

    #[test]
    fn grants_never_escalate() {
        assert!(check_grant(Role::User, Role::Admin).is_err());
        assert!(check_grant(Role::Viewer, Role::User).is_err());
        assert!(check_grant(Role::Admin, Role::Admin).is_ok());
        assert!(check_grant(Role::User, Role::Viewer).is_ok());
        assert_eq!(Role::Admin.min(Role::Viewer), Role::Viewer);
    }
}
