//! Audit forwarding sinks and their delivery cursors. A sink's cursor is the tree
//! size it has acknowledged: leaves below it were delivered, and the forwarder
//! resumes from it after any restart (at-least-once). Cursor and failure
//! bookkeeping is not itself audited (it would feed the log it forwards), but a
//! sink failing past the alert threshold, and recovering, is.

use sqlx::Row;
use ward_core::{AuditEvent, Timestamp};

use crate::audit::insert_audit;
use crate::{Store, StoreError};

#[derive(Clone, PartialEq, Eq)]
pub struct StoredSink {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// JSON: address or URL, CA file, batch size.
    pub config: String,
    /// Sealed with the "settings" purpose key; never leaves the process unsealed
    /// except to the sink itself.
    pub secret: Option<Vec<u8>>,
    pub secret_master_version: Option<u32>,
    pub created_at: Timestamp,
    pub delivered_size: u64,
    pub failing_since: Option<Timestamp>,
    pub alerted: bool,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for StoredSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSink")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("config", &self.config)
            .field("secret", &self.secret.as_ref().map(|_| "<sealed>"))
            .field("delivered_size", &self.delivered_size)
            .field("failing_since", &self.failing_since)
            .finish()
    }
}

const COLUMNS: &str = "id, name, kind, config, secret, secret_master_version, created_at, \
     delivered_size, failing_since, alerted, last_error";

fn sink_from_row(r: &sqlx::any::AnyRow) -> Result<StoredSink, StoreError> {
    Ok(StoredSink {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        config: r.try_get("config")?,
        secret: r.try_get("secret")?,
        secret_master_version: r
            .try_get::<Option<i64>, _>("secret_master_version")?
            .map(|v| v as u32),
        created_at: Timestamp::from_millis(r.try_get("created_at")?),
        delivered_size: r.try_get::<i64, _>("delivered_size")? as u64,
        failing_since: r
            .try_get::<Option<i64>, _>("failing_since")?
            .map(Timestamp::from_millis),
        alerted: r.try_get::<i64, _>("alerted")? != 0,
        last_error: r.try_get("last_error")?,
    })
}

impl Store {
    /// Adds a sink; it starts delivering from `delivered_size` (0: the whole log).
    pub async fn create_audit_sink(
        &self,
        s: &StoredSink,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO audit_sinks (id, name, kind, config, secret, secret_master_version, \
             created_at, delivered_size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(s.id.clone())
        .bind(s.name.clone())
        .bind(s.kind.clone())
        .bind(s.config.clone())
        .bind(s.secret.clone())
        .bind(s.secret_master_version.map(i64::from))
        .bind(s.created_at.millis())
        .bind(s.delivered_size as i64)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_audit_sinks(&self) -> Result<Vec<StoredSink>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_sinks ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(sink_from_row).collect()
    }

    pub async fn audit_sink(&self, id: &str) -> Result<Option<StoredSink>, StoreError> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_sinks WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(sink_from_row).transpose()
    }

    pub async fn remove_audit_sink(
        &self,
        name: &str,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM audit_sinks WHERE name = $1")
            .bind(name.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves the cursor from `from` to `to` after the sink acknowledged those
    /// leaves, clearing any failure. `recovered` is written in the same
    /// transaction when the sink had been reported failing. False if the cursor was
    /// not at `from` (another forwarder moved it).
    pub async fn advance_audit_sink(
        &self,
        id: &str,
        from: u64,
        to: u64,
        recovered: Option<&AuditEvent>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE audit_sinks SET delivered_size = $1, failing_since = NULL, alerted = 0, \
             last_error = NULL WHERE id = $2 AND delivered_size = $3",
        )
        .bind(to as i64)
        .bind(id.to_owned())
        .bind(from as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1
            && let Some(e) = recovered
        {
            insert_audit(&mut tx, e).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Records a failed delivery attempt (the first failure's time is kept).
    pub async fn audit_sink_failed(
        &self,
        id: &str,
        now: Timestamp,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE audit_sinks SET failing_since = COALESCE(failing_since, $1), last_error = $2 \
             WHERE id = $3",
        )
        .bind(now.millis())
        .bind(error.to_owned())
        .bind(id.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks the failing sink as alerted and writes the alert event, once.
    pub async fn audit_sink_alert(&self, id: &str, alert: &AuditEvent) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE audit_sinks SET alerted = 1 WHERE id = $1 AND alerted = 0")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            insert_audit(&mut tx, alert).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Replaces a sink's sealed secret if it is still `old` (master rotation).
    pub async fn reseal_audit_sink_secret(
        &self,
        id: &str,
        old: &[u8],
        new: &[u8],
        master_version: u32,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE audit_sinks SET secret = $1, secret_master_version = $2 WHERE id = $3 AND secret = $4",
        )
        .bind(new.to_vec())
        .bind(i64::from(master_version))
        .bind(id.to_owned())
        .bind(old.to_vec())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
