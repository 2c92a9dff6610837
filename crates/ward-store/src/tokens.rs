//! API tokens: stored by keyed digest, looked up by it, listed and revoked by owner.

use sqlx::AssertSqlSafe;
use ward_core::token::{ApiToken, TokenWithOwner};
use ward_core::{AuditEvent, TenantId, Timestamp, TokenId, UserId};

use crate::audit::insert_audit;
use crate::revoke::Revocable;
use crate::rows::{self, TOKEN_COLUMNS, USER_COLUMNS_PREFIXED};
use crate::{Store, StoreError};

impl Store {
    pub async fn create_token(
        &self,
        t: &ApiToken,
        digest: &str,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, tenant_id, user_id, name, scope, digest, created_at, expires_at, \
             last_used_at, revoked_at, sensitive, sso_provider_id, metrics) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, $10, $11)",
        )
        .bind(t.id.as_str().to_owned())
        .bind(t.tenant_id.as_str().to_owned())
        .bind(t.user_id.as_str().to_owned())
        .bind(t.name.clone())
        .bind(t.scope.as_str())
        .bind(digest.to_owned())
        .bind(t.created_at.millis())
        .bind(t.expires_at.millis())
        .bind(i64::from(t.sensitive))
        .bind(t.sso_provider_id.as_ref().map(|p| p.as_str().to_owned()))
        .bind(i64::from(t.metrics))
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn token_by_digest(
        &self,
        digest: &str,
    ) -> Result<Option<TokenWithOwner>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS_PREFIXED} \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = $1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(digest.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(TokenWithOwner {
                token: rows::token(&r)?,
                owner: rows::user_with_prefix(&r, "u_")?,
            })
        })
        .transpose()
    }

    /// Records use, at most once a minute per token (the caller checks).
    pub async fn touch_token(&self, id: &TokenId, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now.millis())
            .bind(id.as_str().to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn list_tokens(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<ApiToken>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t WHERE t.tenant_id = $1 AND t.user_id = $2 \
             ORDER BY t.created_at DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .bind(user.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::token).collect()
    }

    /// Revokes one of `user`'s tokens. False if there is no such unrevoked token.
    pub async fn revoke_token(
        &self,
        tenant: &TenantId,
        user: &UserId,
        id: &TokenId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.revoke_owned(Revocable::ApiToken, tenant, user, id.as_str(), now, audit)
            .await
    }
}
