//! Server-side sessions: created at sign-in, read on every request, revoked at
//! sign-out, by the user, by an Admin, or by disabling the user.

use sqlx::AssertSqlSafe;
use ward_core::session::{Session, SessionWithUser};
use ward_core::{AuditEvent, SessionId, TenantId, Timestamp, UserId};

use crate::audit::insert_audit;
use crate::revoke::Revocable;
use crate::rows::{self, SESSION_COLUMNS, USER_COLUMNS_PREFIXED};
use crate::users::revoke_all_sessions;
use crate::{Store, StoreError};

impl Store {
    /// Creates a session at sign-in, upgrading the password hash in the same
    /// transaction when its parameters are out of date.
    pub async fn create_session(
        &self,
        s: &Session,
        rehashed_password: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_session(&mut tx, s).await?;
        if let Some(hash) = rehashed_password {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash.to_owned())
                .bind(s.user_id.as_str().to_owned())
                .execute(&mut *tx)
                .await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session and its user as they are now: one indexed read, done
    /// on every cookie-authenticated request.
    pub async fn session_with_user(
        &self,
        id: &SessionId,
    ) -> Result<Option<SessionWithUser>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS_PREFIXED}, t.mfa_policy \
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = s.tenant_id \
             WHERE s.id = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(SessionWithUser {
                session: rows::session(&r)?,
                user: rows::user_with_prefix(&r, "u_")?,
                mfa_policy: rows::mfa_policy(&r)?,
            })
        })
        .transpose()
    }

    /// Several sessions with their users in one read, for the request-time lookup
    /// batcher. The id list is padded to a few fixed sizes so the prepared-statement
    /// cache sees a handful of statements, not one per batch size.
    pub async fn sessions_with_users(
        &self,
        ids: &[SessionId],
    ) -> Result<Vec<SessionWithUser>, StoreError> {
        let Some(last) = ids.last() else {
            return Ok(Vec::new());
        };
        let size = [1usize, 2, 4, 8, 16, 32, 64]
            .into_iter()
            .find(|n| *n >= ids.len())
            .unwrap_or(ids.len());
        let placeholders: Vec<String> = (1..=size).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, {USER_COLUMNS_PREFIXED}, t.mfa_policy \
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = s.tenant_id \
             WHERE s.id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for i in 0..size {
            q = q.bind(ids.get(i).unwrap_or(last).as_str().to_owned());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(SessionWithUser {
                    session: rows::session(r)?,
                    user: rows::user_with_prefix(r, "u_")?,
                    mfa_policy: rows::mfa_policy(r)?,
                })
            })
            .collect()
    }

    /// Records activity (throttled by the caller to once a minute per session).
    pub async fn touch_session(&self, id: &SessionId, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now.millis())
            .bind(id.as_str().to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A user's sessions that are not revoked and not past absolute expiry.
    pub async fn list_sessions(
        &self,
        tenant: &TenantId,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.tenant_id = $1 AND s.user_id = $2 \
             AND s.revoked_at IS NULL AND s.expires_at > $3 ORDER BY s.created_at DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .bind(user.as_str().to_owned())
            .bind(now.millis())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::session).collect()
    }

    /// Revokes one of `user`'s sessions. False if there is no such live session
    /// (including one belonging to someone else).
    pub async fn revoke_session(
        &self,
        tenant: &TenantId,
        user: &UserId,
        id: &SessionId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.revoke_owned(Revocable::Session, tenant, user, id.as_str(), now, audit)
            .await
    }

    /// Revokes every live session of a user; returns how many.
    pub async fn revoke_user_sessions(
        &self,
        user: &UserId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = revoke_all_sessions(&mut tx, user, now).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Inserts a new session inside the caller's transaction.
pub(crate) async fn insert_session(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    s: &Session,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, tenant_id, user_id, created_at, last_seen_at, expires_at, \
             revoked_at, ip, user_agent, auth_method, multi_factor, authenticated_at, \
             reauth_multi_factor, sso_provider_id) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(s.id.as_str().to_owned())
    .bind(s.tenant_id.as_str().to_owned())
    .bind(s.user_id.as_str().to_owned())
    .bind(s.created_at.millis())
    .bind(s.last_seen_at.millis())
    .bind(s.expires_at.millis())
    .bind(s.ip.clone())
    .bind(s.user_agent.clone())
    .bind(s.auth_method.clone())
    .bind(i64::from(s.multi_factor))
    .bind(s.authenticated_at.millis())
    .bind(i64::from(s.reauth_multi_factor))
    .bind(s.sso_provider_id.as_ref().map(|p| p.as_str().to_owned()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
