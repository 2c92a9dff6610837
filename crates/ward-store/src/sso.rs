//! OpenID Connect providers per company. The client secret is stored sealed (the
//! server seals and opens it); everything else is plain configuration.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use ward_core::sso::{RoleMapping, SsoProvider};
use ward_core::{AuditEvent, Role, SsoProviderId, TenantId, Timestamp, UserId};

use crate::audit::insert_audit;
use crate::{Store, StoreError};

/// A secret sealed with the settings key, and the master version it is under.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub bytes: Vec<u8>,
    pub master_version: u32,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SealedSecret(v{}, {} bytes)",
            self.master_version,
            self.bytes.len()
        )
    }
}

#[derive(Debug, Clone)]
pub struct StoredSsoProvider {
    pub provider: SsoProvider,
    pub secret: Option<SealedSecret>,
}

/// The `config` column.
#[derive(Serialize, Deserialize)]
struct Config {
    scopes: Vec<String>,
    groups_claim: String,
    role_mappings: Vec<RoleMapping>,
    default_role: Option<Role>,
    allowed_domains: Vec<String>,
    jit_provisioning: bool,
    mfa_acr_values: Vec<String>,
}

const COLUMNS: &str = "id, tenant_id, name, issuer, client_id, client_secret, secret_master_version, \
     config, enabled, created_at, updated_at, created_by, updated_by";

fn config_of(p: &SsoProvider) -> Result<String, StoreError> {
    serde_json::to_string(&Config {
        scopes: p.scopes.clone(),
        groups_claim: p.groups_claim.clone(),
        role_mappings: p.role_mappings.clone(),
        default_role: p.default_role,
        allowed_domains: p.allowed_domains.clone(),
        jit_provisioning: p.jit_provisioning,
        mfa_acr_values: p.mfa_acr_values.clone(),
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn row(r: &AnyRow) -> Result<StoredSsoProvider, StoreError> {
    let config: String = r.try_get("config")?;
    let c: Config = serde_json::from_str(&config)
        .map_err(|e| StoreError::Corrupt(format!("sso config: {e}")))?;
    let secret = match (
        r.try_get::<Option<Vec<u8>>, _>("client_secret")?,
        r.try_get::<Option<i64>, _>("secret_master_version")?,
    ) {
        (Some(bytes), Some(v)) => Some(SealedSecret {
            bytes,
            master_version: u32::try_from(v)
                .map_err(|_| StoreError::Corrupt("secret master version".into()))?,
        }),
        _ => None,
    };
    Ok(StoredSsoProvider {
        provider: SsoProvider {
            id: SsoProviderId::from_stored(r.try_get("id")?),
            tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
            name: r.try_get("name")?,
            issuer: r.try_get("issuer")?,
            client_id: r.try_get("client_id")?,
            scopes: c.scopes,
            groups_claim: c.groups_claim,
            role_mappings: c.role_mappings,
            default_role: c.default_role,
            allowed_domains: c.allowed_domains,
            jit_provisioning: c.jit_provisioning,
            mfa_acr_values: c.mfa_acr_values,
            enabled: r.try_get::<i64, _>("enabled")? != 0,
            created_at: Timestamp::from_millis(r.try_get("created_at")?),
            updated_at: Timestamp::from_millis(r.try_get("updated_at")?),
            created_by: r
                .try_get::<Option<String>, _>("created_by")?
                .map(UserId::from_stored),
            updated_by: r
                .try_get::<Option<String>, _>("updated_by")?
                .map(UserId::from_stored),
        },
        secret,
    })
}

impl Store {
    pub async fn create_sso_provider(
        &self,
        p: &SsoProvider,
        secret: Option<&SealedSecret>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO sso_providers (id, tenant_id, name, issuer, client_id, client_secret, \
             secret_master_version, config, enabled, created_at, updated_at, created_by, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(p.id.as_str().to_owned())
        .bind(p.tenant_id.as_str().to_owned())
        .bind(p.name.clone())
        .bind(p.issuer.clone())
        .bind(p.client_id.clone())
        .bind(secret.map(|s| s.bytes.clone()))
        .bind(secret.map(|s| i64::from(s.master_version)))
        .bind(config_of(p)?)
        .bind(i64::from(p.enabled))
        .bind(p.created_at.millis())
        .bind(p.updated_at.millis())
        .bind(p.created_by.as_ref().map(|u| u.as_str().to_owned()))
        .bind(p.updated_by.as_ref().map(|u| u.as_str().to_owned()))
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a provider's configuration; the secret too when `secret` is
    /// `Some` (`Some(None)` clears it).
    pub async fn update_sso_provider(
        &self,
        p: &SsoProvider,
        secret: Option<Option<&SealedSecret>>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let mut sql =
            "UPDATE sso_providers SET name = $1, issuer = $2, client_id = $3, config = $4, \
                       enabled = $5, updated_at = $6, updated_by = $9"
                .to_owned();
        if secret.is_some() {
            sql.push_str(", client_secret = $10, secret_master_version = $11");
        }
        sql.push_str(" WHERE id = $7 AND tenant_id = $8");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(p.name.clone())
            .bind(p.issuer.clone())
            .bind(p.client_id.clone())
            .bind(config_of(p)?)
            .bind(i64::from(p.enabled))
            .bind(p.updated_at.millis())
            .bind(p.id.as_str().to_owned())
            .bind(p.tenant_id.as_str().to_owned())
            .bind(p.updated_by.as_ref().map(|u| u.as_str().to_owned()));
        if let Some(s) = secret {
            q = q
                .bind(s.map(|s| s.bytes.clone()))
                .bind(s.map(|s| i64::from(s.master_version)));
        }
        let n = q.execute(&mut *tx).await?.rows_affected();
        if n != 1 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delete_sso_provider(
        &self,
        tenant: &TenantId,
        id: &SsoProviderId,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        // Its links go with it (a provider re-added later starts with none), and
        // so do the sessions it opened: nobody vouches for them any more.
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE sso_provider_id = $2 AND revoked_at IS NULL",
        )
        .bind(now.millis())
        .bind(id.as_str().to_owned())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM external_identities WHERE provider_id = $1 AND tenant_id = $2")
            .bind(id.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM sso_providers WHERE id = $1 AND tenant_id = $2")
            .bind(id.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A company's providers; `None` lists every company's (for key rotation).
    pub async fn list_sso_providers(
        &self,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<StoredSsoProvider>, StoreError> {
        let rows = match tenant {
            Some(t) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM sso_providers WHERE tenant_id = $1 ORDER BY name"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(t.as_str().to_owned())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!("SELECT {COLUMNS} FROM sso_providers ORDER BY tenant_id, name");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(row).collect()
    }

    /// One provider, whichever company it belongs to (the sign-in callback finds
    /// the company from it).
    pub async fn find_sso_provider(
        &self,
        id: &SsoProviderId,
    ) -> Result<Option<StoredSsoProvider>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sso_providers WHERE id = $1");
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(row).transpose()
    }

    /// Re-seals a client secret under a new master version, if it is unchanged.
    pub async fn reseal_sso_secret(
        &self,
        id: &SsoProviderId,
        old: &[u8],
        new: &SealedSecret,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE sso_providers SET client_secret = $1, secret_master_version = $2 \
             WHERE id = $3 AND client_secret = $4",
        )
        .bind(new.bytes.clone())
        .bind(i64::from(new.master_version))
        .bind(id.as_str().to_owned())
        .bind(old.to_vec())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
