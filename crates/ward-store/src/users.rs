//! Users, their credentials, and the changes an Admin or the operator makes to them.

use sqlx::{AssertSqlSafe, Row};
use ward_core::user::{User, UserChange, UserCredentials};
use ward_core::{AuditEvent, Email, Role, TenantId, Timestamp, UserId};

use crate::audit::insert_audit;
use crate::rows::{self, USER_COLUMNS};
use crate::{Store, StoreError};

impl Store {
    pub async fn create_user(
        &self,
        u: &User,
        password_hash: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_user(&mut tx, u, password_hash, None).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates a user on behalf of `created_by` (an Admin), remembered so that
    /// separation of duties can refuse approvals by accounts an author made.
    pub async fn create_user_by(
        &self,
        u: &User,
        password_hash: Option<&str>,
        created_by: &UserId,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_user(&mut tx, u, password_hash, Some(created_by)).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Who created an account (an Admin's id; `None` for the operator, SSO
    /// provisioning, or accounts older than this record).
    pub async fn user_creator(
        &self,
        tenant: &TenantId,
        id: &UserId,
    ) -> Result<Option<UserId>, StoreError> {
        let row = sqlx::query("SELECT created_by FROM users WHERE id = $1 AND tenant_id = $2")
            .bind(id.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("created_by"))
            .transpose()?
            .flatten()
            .map(UserId::from_stored))
    }

    /// A user of `tenant` by id. Another tenant's user is `None`, exactly like a
    /// missing one, so ids never leak across companies.
    pub async fn find_user(
        &self,
        tenant: &TenantId,
        id: &UserId,
    ) -> Result<Option<User>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1 AND u.tenant_id = $2");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::user).transpose()
    }

    /// A user by email across the instance (sign-in and the operator's CLI).
    pub async fn find_user_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(email.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(UserCredentials {
                user: rows::user(&r)?,
                password_hash: r.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    pub async fn list_users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 ORDER BY u.email");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::user).collect()
    }

    /// Applies `change` to a user of `tenant`. Disabling revokes every session in
    /// the same transaction. Refuses to leave a company without an enabled Admin.
    pub async fn update_user(
        &self,
        tenant: &TenantId,
        id: &UserId,
        change: &UserChange,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<UpdateOutcome, StoreError> {
        let mut tx = self.begin().await?;
        // Changes to one company's users take turns, so two Admins demoting each
        // other at once cannot both see "another Admin remains". SQLite's
        // BEGIN IMMEDIATE already serializes writers; PostgreSQL's READ COMMITTED
        // needs the company row locked.
        self.lock_company(&mut tx, tenant).await?;
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1 AND u.tenant_id = $2");
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(UpdateOutcome::NotFound);
        };
        let before = rows::user(&row)?;
        let mut after = before.clone();
        if let Some(name) = &change.display_name {
            after.display_name = name.clone();
        }
        if let Some(role) = change.role {
            after.role = role;
        }
        if let Some(disabled) = change.disabled {
            after.disabled = disabled;
        }
        let loses_admin = before.role == Role::Admin
            && !before.disabled
            && (after.role != Role::Admin || after.disabled);
        if loses_admin {
            let admins: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1 AND role = 'admin' AND disabled = 0",
            )
            .bind(tenant.as_str().to_owned())
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if admins <= 1 {
                return Ok(UpdateOutcome::LastAdmin);
            }
        }
        after.updated_at = now;
        sqlx::query(
            "UPDATE users SET display_name = $1, role = $2, disabled = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(after.display_name.clone())
        .bind(after.role.as_str())
        .bind(i64::from(after.disabled))
        .bind(now.millis())
        .bind(id.as_str().to_owned())
        .execute(&mut *tx)
        .await?;
        let mut revoked = 0;
        if after.disabled && !before.disabled {
            revoked = revoke_all_sessions(&mut tx, id, now).await?;
            // Tokens are revoked for good: re-enabling the user does not bring
            // back a credential that may have leaked while they were out.
            revoke_all_tokens(&mut tx, id, now).await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(UpdateOutcome::Updated {
            before: Box::new(before),
            after: Box::new(after),
            sessions_revoked: revoked,
        })
    }

    /// Sets a new password hash and revokes every session of the user, in one
    /// transaction. Returns false if the user does not exist.
    pub async fn set_password(
        &self,
        id: &UserId,
        password_hash: &str,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.set_password_revoking(id, password_hash, now, true, audit)
            .await
            .map(|r| r.is_some())
    }

    /// Sets a new password hash and revokes every session of the user, and, when
    /// `revoke_tokens`, every API token, in one transaction. `None` if the user
    /// does not exist; otherwise how many tokens were revoked.
    pub async fn set_password_revoking(
        &self,
        id: &UserId,
        password_hash: &str,
        now: Timestamp,
        revoke_tokens: bool,
        audit: &AuditEvent,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3",
        )
        .bind(password_hash.to_owned())
        .bind(now.millis())
        .bind(id.as_str().to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        revoke_all_sessions(&mut tx, id, now).await?;
        let tokens = if revoke_tokens {
            revoke_all_tokens(&mut tx, id, now).await?
        } else {
            0
        };
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Some(tokens))
    }
}

/// What `update_user` did.
#[derive(Debug)]
pub enum UpdateOutcome {
    Updated {
        before: Box<User>,
        after: Box<User>,
        sessions_revoked: u64,
    },
    NotFound,
    /// The change would leave the company without an enabled Admin; nothing changed.
    LastAdmin,
}

/// Revokes every unrevoked API token of `user`; how many.
pub(crate) async fn revoke_all_tokens(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: &UserId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now.millis())
    .bind(user.as_str().to_owned())
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

pub(crate) async fn revoke_all_sessions(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: &UserId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now.millis())
        .bind(user.as_str().to_owned())
        .execute(&mut **tx)
        .await?
        .rows_affected(),
    )
}

pub(crate) async fn insert_user(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    u: &User,
    password_hash: Option<&str>,
    created_by: Option<&UserId>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, display_name, role, password_hash, disabled, \
         created_at, updated_at, password_changed_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(u.id.as_str().to_owned())
    .bind(u.tenant_id.as_str().to_owned())
    .bind(u.email.as_str().to_owned())
    .bind(u.display_name.clone())
    .bind(u.role.as_str())
    .bind(password_hash.map(str::to_owned))
    .bind(i64::from(u.disabled))
    .bind(u.created_at.millis())
    .bind(u.updated_at.millis())
    .bind(password_hash.map(|_| u.created_at.millis()))
    .bind(created_by.map(|c| c.as_str().to_owned()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
