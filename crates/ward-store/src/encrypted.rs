//! The registry of encrypted fields: the one place that lists every column holding
//! an envelope. Re-encryption, key destruction and `ward keys verify` walk it, so a
//! new encrypted field cannot be forgotten by any of them.

use sqlx::{AssertSqlSafe, Row};
use ward_core::TenantId;

use crate::{Store, StoreError};

/// One encrypted column.
#[derive(Debug, Clone, Copy)]
pub struct EncryptedField {
    /// Entity and field names: part of every ciphertext's AAD.
    pub entity: &'static str,
    pub field: &'static str,
    pub table: &'static str,
    pub id_column: &'static str,
    pub column: &'static str,
    /// Copy of the envelope's key version, kept in step by every write, for counting.
    pub version_column: &'static str,
}

/// Every encrypted field. Add new ones here (and nowhere else).
pub const ENCRYPTED_FIELDS: &[EncryptedField] = &[EncryptedField {
    entity: "connection",
    field: "credentials",
    table: "connections",
    id_column: "id",
    column: "credentials",
    version_column: "credentials_key_version",
}];

/// One stored ciphertext.
#[derive(Debug, Clone)]
pub struct StoredCiphertext {
    pub row_id: String,
    pub envelope: Vec<u8>,
    pub key_version: u32,
}

impl Store {
    /// Ciphertexts of `field` per key version for a company: `(version, count)`.
    pub async fn ciphertext_counts(
        &self,
        field: &EncryptedField,
        tenant: &TenantId,
    ) -> Result<Vec<(u32, i64)>, StoreError> {
        let sql = format!(
            "SELECT {v} AS v, COUNT(*) AS n FROM {t} WHERE tenant_id = $1 GROUP BY {v} ORDER BY {v}",
            v = field.version_column,
            t = field.table
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let v: i64 = r.try_get("v")?;
                Ok((
                    u32::try_from(v).map_err(|_| StoreError::Corrupt("key version".into()))?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    /// Up to `limit` ciphertexts of `field` not under `active_version`, after `after_id`.
    pub async fn stale_ciphertexts(
        &self,
        field: &EncryptedField,
        tenant: &TenantId,
        active_version: u32,
        after_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredCiphertext>, StoreError> {
        let sql = format!(
            "SELECT {id} AS row_id, {c} AS envelope, {v} AS v FROM {t} \
             WHERE tenant_id = $1 AND {v} <> $2 AND {id} > $3 ORDER BY {id} LIMIT $4",
            id = field.id_column,
            c = field.column,
            v = field.version_column,
            t = field.table
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .bind(i64::from(active_version))
            .bind(after_id.to_owned())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ciphertext_from_row).collect()
    }

    /// Every ciphertext of `field` for a company, in id order, a page at a time.
    pub async fn ciphertexts_page(
        &self,
        field: &EncryptedField,
        tenant: &TenantId,
        after_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredCiphertext>, StoreError> {
        // Key versions start at 1 (a CHECK in the schema), so "not under version 0"
        // is every row.
        self.stale_ciphertexts(field, tenant, 0, after_id, limit)
            .await
    }

    /// Compare-and-swap: replaces a ciphertext only if it is still exactly `old`, so a
    /// live write that happened meanwhile is never overwritten. True if swapped.
    pub async fn swap_ciphertext(
        &self,
        field: &EncryptedField,
        tenant: &TenantId,
        row_id: &str,
        old: &[u8],
        new: &[u8],
        new_version: u32,
    ) -> Result<bool, StoreError> {
        let swap = CiphertextSwap {
            row_id: row_id.to_owned(),
            old: old.to_vec(),
            new: new.to_vec(),
        };
        Ok(self
            .swap_ciphertexts(field, tenant, &[swap], new_version)
            .await?
            == 1)
    }
}

/// One compare-and-swap of a batch.
#[derive(Debug, Clone)]
pub struct CiphertextSwap {
    pub row_id: String,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

impl Store {
    /// Compare-and-swap for a whole batch in one transaction (one commit, not one
    /// per row). Returns how many rows were swapped; rows changed meanwhile are
    /// left alone.
    pub async fn swap_ciphertexts(
        &self,
        field: &EncryptedField,
        tenant: &TenantId,
        swaps: &[CiphertextSwap],
        new_version: u32,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "UPDATE {t} SET {c} = $1, {v} = $2 WHERE {id} = $3 AND tenant_id = $4 AND {c} = $5",
            id = field.id_column,
            c = field.column,
            v = field.version_column,
            t = field.table
        );
        let mut tx = self.begin().await?;
        let mut n = 0;
        for s in swaps {
            n += sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(s.new.clone())
                .bind(i64::from(new_version))
                .bind(s.row_id.clone())
                .bind(tenant.as_str().to_owned())
                .bind(s.old.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
}

fn ciphertext_from_row(r: &sqlx::any::AnyRow) -> Result<StoredCiphertext, StoreError> {
    let v: i64 = r.try_get("v")?;
    Ok(StoredCiphertext {
        row_id: r.try_get("row_id")?,
        envelope: r.try_get("envelope")?,
        key_version: u32::try_from(v).map_err(|_| StoreError::Corrupt("key version".into()))?,
    })
}
