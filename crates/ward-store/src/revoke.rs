//! Revoking something a user owns (a session, an API token): one statement scoped
//! by tenant and owner, and the audit event, in one transaction.

use ward_core::{AuditEvent, TenantId, Timestamp, UserId};

use crate::audit::insert_audit;
use crate::{Store, StoreError};

/// The kinds of owned, revocable records.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Revocable {
    Session,
    ApiToken,
}

impl Revocable {
    fn statement(self) -> &'static str {
        match self {
            Revocable::Session => {
                "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND user_id = $4 \
                 AND revoked_at IS NULL"
            }
            Revocable::ApiToken => {
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND user_id = $4 \
                 AND revoked_at IS NULL"
            }
        }
    }
}

impl Store {
    /// Revokes `id` if it belongs to `user` in `tenant` and is not revoked yet.
    /// False (and nothing written) otherwise — including another owner's record.
    pub(crate) async fn revoke_owned(
        &self,
        kind: Revocable,
        tenant: &TenantId,
        user: &UserId,
        id: &str,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(kind.statement())
            .bind(now.millis())
            .bind(id.to_owned())
            .bind(tenant.as_str().to_owned())
            .bind(user.as_str().to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}
