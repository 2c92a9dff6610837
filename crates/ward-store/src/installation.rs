//! The installation row: the HKDF salt and the master secret's key-check value.

use sqlx::Row;
use ward_core::AuditEvent;

use crate::audit::insert_audit;
use crate::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct InstallationRecord {
    pub salt: Vec<u8>,
    pub key_check: Vec<u8>,
    /// Which master secret generation wraps the tenant keys (1 until the first
    /// master-secret rotation).
    pub master_version: u32,
}

impl Store {
    /// The installation row, or `None` before first start (or on an empty database).
    /// Reads only: safe to call before migrating, to check the master secret first.
    pub async fn installation(&self) -> Result<Option<InstallationRecord>, StoreError> {
        if self.schema_version().await?.is_none() {
            return Ok(None);
        }
        // Version 1 predates the master_version column.
        let sql = if self.schema_version().await?.unwrap_or(0) >= 2 {
            "SELECT salt, key_check, master_version FROM installation WHERE id = 1"
        } else {
            "SELECT salt, key_check, 1 AS master_version FROM installation WHERE id = 1"
        };
        let row = sqlx::query(sql).fetch_optional(&self.pool).await?;
        row.map(|r| {
            let mv: i64 = r.try_get("master_version")?;
            Ok(InstallationRecord {
                salt: r.try_get("salt")?,
                key_check: r.try_get("key_check")?,
                master_version: u32::try_from(mv)
                    .map_err(|_| StoreError::Corrupt("master version".into()))?,
            })
        })
        .transpose()
    }

    /// Records the installation's salt and key check, once.
    pub async fn initialize_installation(
        &self,
        record: &InstallationRecord,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO installation (id, salt, key_check, created_at) VALUES (1, $1, $2, $3)",
        )
        .bind(record.salt.clone())
        .bind(record.key_check.clone())
        .bind(audit.occurred_at.millis())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}
