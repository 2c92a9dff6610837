//! Tenant key versions: reading wrapped keys, creating the first one, rotating,
//! destroying, and the rotation policy.

use sqlx::{Any, Row, Transaction};
use ward_core::keys::{KeyState, KeyVersionInfo};
use ward_core::{AuditEvent, TenantId, Timestamp};

use crate::audit::insert_audit;
use crate::{Conflict, Store, StoreError};

/// A key version with its wrapped key (absent once destroyed).
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub info: KeyVersionInfo,
    pub wrapped: Option<Vec<u8>>,
}

const KEY_COLUMNS: &str =
    "tenant_id, version, state, wrapped_key, master_version, created_at, retired_at, destroyed_at";

fn key_from_row(r: &sqlx::any::AnyRow) -> Result<StoredKey, StoreError> {
    let state: String = r.try_get("state")?;
    let to_u32 =
        |v: i64| u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("key version {v}")));
    Ok(StoredKey {
        info: KeyVersionInfo {
            tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
            version: to_u32(r.try_get("version")?)?,
            state: KeyState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("key state {state}")))?,
            master_version: to_u32(r.try_get("master_version")?)?,
            created_at: Timestamp::from_millis(r.try_get("created_at")?),
            retired_at: r
                .try_get::<Option<i64>, _>("retired_at")?
                .map(Timestamp::from_millis),
            destroyed_at: r
                .try_get::<Option<i64>, _>("destroyed_at")?
                .map(Timestamp::from_millis),
        },
        wrapped: r.try_get("wrapped_key")?,
    })
}

impl Store {
    /// The company's active key version, if it has one yet.
    pub async fn active_key(&self, tenant: &TenantId) -> Result<Option<StoredKey>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM tenant_keys WHERE tenant_id = $1 AND state = 'active'"
        )))
        .bind(tenant.as_str().to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// One key version of a company.
    pub async fn key_version(
        &self,
        tenant: &TenantId,
        version: u32,
    ) -> Result<Option<StoredKey>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM tenant_keys WHERE tenant_id = $1 AND version = $2"
        )))
        .bind(tenant.as_str().to_owned())
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Every version of a company's key, newest first.
    pub async fn key_versions(&self, tenant: &TenantId) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM tenant_keys WHERE tenant_id = $1 ORDER BY version DESC"
        )))
        .bind(tenant.as_str().to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Stores a company's first key version. `Conflict::Other` if another writer
    /// created one first (the caller re-reads).
    pub async fn create_first_key(
        &self,
        tenant: &TenantId,
        wrapped: &[u8],
        master_version: u32,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_key(&mut tx, tenant, 1, wrapped, master_version, now).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes `new_version` the active key: the current active version becomes
    /// decrypt-only in the same transaction. Refuses (`Conflict::Other`) when the
    /// active version is not `expected_active` (a concurrent rotation won).
    #[allow(clippy::too_many_arguments)]
    pub async fn rotate_key(
        &self,
        tenant: &TenantId,
        expected_active: u32,
        new_version: u32,
        wrapped: &[u8],
        master_version: u32,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE tenant_keys SET state = 'decrypt_only', retired_at = $1 \
             WHERE tenant_id = $2 AND version = $3 AND state = 'active'",
        )
        .bind(now.millis())
        .bind(tenant.as_str().to_owned())
        .bind(i64::from(expected_active))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(StoreError::Conflict(Conflict::Other));
        }
        insert_key(&mut tx, tenant, new_version, wrapped, master_version, now).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Destroys a decrypt-only version: wipes its wrapped key. Only when no
    /// ciphertext of any registered field still uses it (checked in the same
    /// transaction). Returns false when it is not (yet) destroyable.
    pub async fn destroy_key_version(
        &self,
        tenant: &TenantId,
        version: u32,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        for field in crate::encrypted::ENCRYPTED_FIELDS {
            let remaining: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) AS n FROM {} WHERE tenant_id = $1 AND {} = $2",
                field.table, field.version_column
            )))
            .bind(tenant.as_str().to_owned())
            .bind(i64::from(version))
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if remaining > 0 {
                return Ok(false);
            }
        }
        let n = sqlx::query(
            "UPDATE tenant_keys SET state = 'destroyed', wrapped_key = NULL, destroyed_at = $1 \
             WHERE tenant_id = $2 AND version = $3 AND state = 'decrypt_only'",
        )
        .bind(now.millis())
        .bind(tenant.as_str().to_owned())
        .bind(i64::from(version))
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

    /// The company's rotation interval in days, if it set one.
    pub async fn rotation_interval_days(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<i64>, StoreError> {
        let row =
            sqlx::query("SELECT rotation_interval_days FROM key_policies WHERE tenant_id = $1")
                .bind(tenant.as_str().to_owned())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row
            .map(|r| r.try_get("rotation_interval_days"))
            .transpose()?)
    }

    pub async fn set_rotation_interval_days(
        &self,
        tenant: &TenantId,
        days: i64,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM key_policies WHERE tenant_id = $1")
            .bind(tenant.as_str().to_owned())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO key_policies (tenant_id, rotation_interval_days) VALUES ($1, $2)")
            .bind(tenant.as_str().to_owned())
            .bind(days)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ids of every company.
    pub async fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows = sqlx::query("SELECT id FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(TenantId::from_stored(r.try_get("id")?)))
            .collect()
    }
}

async fn insert_key(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    version: u32,
    wrapped: &[u8],
    master_version: u32,
    now: Timestamp,
) -> Result<(), StoreError> {
    let r = sqlx::query(
        "INSERT INTO tenant_keys (tenant_id, version, state, wrapped_key, master_version, created_at) \
         VALUES ($1, $2, 'active', $3, $4, $5)",
    )
    .bind(tenant.as_str().to_owned())
    .bind(i64::from(version))
    .bind(wrapped.to_vec())
    .bind(i64::from(master_version))
    .bind(now.millis())
    .execute(&mut **tx)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(Conflict::Other),
            other => other,
        }),
    }
}

/// A wrapped tenant key still under an older master secret.
#[derive(Debug, Clone)]
pub struct KeyToRewrap {
    pub tenant_id: TenantId,
    pub version: u32,
    pub wrapped: Vec<u8>,
}

impl Store {
    /// Up to `limit` undestroyed tenant keys wrapped under master version `old`.
    pub async fn keys_under_master(
        &self,
        old: u32,
        limit: u32,
    ) -> Result<Vec<KeyToRewrap>, StoreError> {
        let rows = sqlx::query(
            "SELECT tenant_id, version, wrapped_key FROM tenant_keys \
             WHERE master_version = $1 AND wrapped_key IS NOT NULL ORDER BY tenant_id, version LIMIT $2",
        )
        .bind(i64::from(old))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let v: i64 = r.try_get("version")?;
                Ok(KeyToRewrap {
                    tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
                    version: u32::try_from(v)
                        .map_err(|_| StoreError::Corrupt("key version".into()))?,
                    wrapped: r.try_get("wrapped_key")?,
                })
            })
            .collect()
    }

    /// Replaces one wrapped key if it is still under master version `old`.
    pub async fn rewrap_key(
        &self,
        key: &KeyToRewrap,
        old: u32,
        new_wrapped: &[u8],
        new: u32,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE tenant_keys SET wrapped_key = $1, master_version = $2 \
             WHERE tenant_id = $3 AND version = $4 AND master_version = $5 AND wrapped_key = $6",
        )
        .bind(new_wrapped.to_vec())
        .bind(i64::from(new))
        .bind(key.tenant_id.as_str().to_owned())
        .bind(i64::from(key.version))
        .bind(i64::from(old))
        .bind(key.wrapped.clone())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Undestroyed tenant keys per master version.
    pub async fn keys_per_master_version(&self) -> Result<Vec<(u32, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT master_version AS v, COUNT(*) AS n FROM tenant_keys WHERE wrapped_key IS NOT NULL \
             GROUP BY master_version ORDER BY master_version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let v: i64 = r.try_get("v")?;
                Ok((
                    u32::try_from(v).map_err(|_| StoreError::Corrupt("master version".into()))?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    /// Ends a master-secret rotation: the new key check and master version become
    /// the installation's, with the audit event, in one transaction. Refuses
    /// (`Conflict::Other`) while any key is still under an older master version.
    pub async fn finish_master_rotation(
        &self,
        new_key_check: &[u8],
        new_version: u32,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let left: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM tenant_keys WHERE wrapped_key IS NOT NULL AND master_version <> $1",
        )
        .bind(i64::from(new_version))
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if left > 0 {
            return Err(StoreError::Conflict(Conflict::Other));
        }
        sqlx::query("UPDATE installation SET key_check = $1, master_version = $2 WHERE id = 1")
            .bind(new_key_check.to_vec())
            .bind(i64::from(new_version))
            .execute(&mut *tx)
            .await?;
        for e in audit {
            insert_audit(&mut tx, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
