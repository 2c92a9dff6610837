//! External identities: the binding of an identity provider's subject (`sub`) to
//! a Ward account. SSO sign-in reaches an account only through this table, never
//! by matching an email address.

use sqlx::Row;
use ward_core::user::User;
use ward_core::{AuditEvent, SsoProviderId, TenantId, Timestamp, UserId};

use crate::audit::insert_audit;
use crate::{Store, StoreError};

/// One binding of (provider, subject) to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub provider_id: SsoProviderId,
    pub subject: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// `provisioning` (JIT-created by the provider), `owner` (linked by the
    /// account's owner after signing in by their existing means) or `operator`.
    pub linked_by: &'static str,
    pub created_at: Timestamp,
}

fn linked_by(text: &str) -> Result<&'static str, StoreError> {
    match text {
        "provisioning" => Ok("provisioning"),
        "owner" => Ok("owner"),
        "operator" => Ok("operator"),
        other => Err(StoreError::Corrupt(format!("identity link kind {other:?}"))),
    }
}

fn identity(r: &sqlx::any::AnyRow) -> Result<ExternalIdentity, StoreError> {
    Ok(ExternalIdentity {
        provider_id: SsoProviderId::from_stored(r.try_get("provider_id")?),
        subject: r.try_get("subject")?,
        tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
        user_id: UserId::from_stored(r.try_get("user_id")?),
        linked_by: linked_by(&r.try_get::<String, _>("linked_by")?)?,
        created_at: Timestamp::from_millis(r.try_get("created_at")?),
    })
}

const COLUMNS: &str = "provider_id, subject, tenant_id, user_id, linked_by, created_at";

async fn insert_identity(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    i: &ExternalIdentity,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO external_identities (provider_id, subject, tenant_id, user_id, linked_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(i.provider_id.as_str().to_owned())
    .bind(i.subject.clone())
    .bind(i.tenant_id.as_str().to_owned())
    .bind(i.user_id.as_str().to_owned())
    .bind(i.linked_by)
    .bind(i.created_at.millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The account bound to (provider, subject), if any.
    pub async fn find_identity(
        &self,
        provider: &SsoProviderId,
        subject: &str,
    ) -> Result<Option<ExternalIdentity>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM external_identities WHERE provider_id = $1 AND subject = $2"
        );
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(provider.as_str().to_owned())
            .bind(subject.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(identity).transpose()
    }

    /// A user's links, oldest first.
    pub async fn user_identities(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<ExternalIdentity>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM external_identities WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY created_at, provider_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .bind(user.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(identity).collect()
    }

    /// Binds an identity to an existing account. A subject already bound, or an
    /// account already linked to this provider, is `Conflict::IdentityLinked`.
    pub async fn link_identity(
        &self,
        i: &ExternalIdentity,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_identity(&mut tx, i).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Just-in-time provisioning: the account and its binding in one transaction,
    /// with both audit events.
    pub async fn provision_sso_user(
        &self,
        user: &User,
        i: &ExternalIdentity,
        created: &AuditEvent,
        linked: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        crate::users::insert_user(&mut tx, user, None, None).await?;
        insert_identity(&mut tx, i).await?;
        insert_audit(&mut tx, created).await?;
        insert_audit(&mut tx, linked).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a user's link to a provider. False if there was none.
    pub async fn unlink_identity(
        &self,
        tenant: &TenantId,
        user: &UserId,
        provider: &SsoProviderId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "DELETE FROM external_identities WHERE tenant_id = $1 AND user_id = $2 AND provider_id = $3",
        )
        .bind(tenant.as_str().to_owned())
        .bind(user.as_str().to_owned())
        .bind(provider.as_str().to_owned())
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
