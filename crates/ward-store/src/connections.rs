//! SIEM connections. The credentials column only ever holds an envelope.

use sqlx::{AssertSqlSafe, Row};
use ward_core::connection::{Connection, ConnectionKind};
use ward_core::{AuditEvent, TenantId, Timestamp};

use crate::audit::insert_audit;
use crate::{Store, StoreError};

const COLUMNS: &str = "id, tenant_id, name, kind, base_url, credential_fields, credentials_changed_at, \
     created_at, updated_at";

/// The encrypted credentials of one connection.
#[derive(Debug, Clone)]
pub struct SealedCredentials {
    pub envelope: Vec<u8>,
    pub key_version: u32,
    pub fields: Vec<String>,
}

fn connection_from_row(r: &sqlx::any::AnyRow) -> Result<Connection, StoreError> {
    let kind: String = r.try_get("kind")?;
    let fields: String = r.try_get("credential_fields")?;
    Ok(Connection {
        id: r.try_get("id")?,
        tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
        name: r.try_get("name")?,
        kind: ConnectionKind::parse(&kind)
            .map_err(|_| StoreError::Corrupt(format!("connection kind {kind}")))?,
        base_url: r.try_get("base_url")?,
        credential_fields: fields
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect(),
        credentials_changed_at: Timestamp::from_millis(r.try_get("credentials_changed_at")?),
        created_at: Timestamp::from_millis(r.try_get("created_at")?),
        updated_at: Timestamp::from_millis(r.try_get("updated_at")?),
    })
}

impl Store {
    pub async fn create_connection(
        &self,
        c: &Connection,
        creds: &SealedCredentials,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO connections (id, tenant_id, name, kind, base_url, credentials, credentials_key_version, \
             credential_fields, credentials_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.id.clone())
        .bind(c.tenant_id.as_str().to_owned())
        .bind(c.name.clone())
        .bind(c.kind.as_str())
        .bind(c.base_url.clone())
        .bind(creds.envelope.clone())
        .bind(i64::from(creds.key_version))
        .bind(creds.fields.join(","))
        .bind(c.credentials_changed_at.millis())
        .bind(c.created_at.millis())
        .bind(c.updated_at.millis())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_connections(&self, tenant: &TenantId) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM connections WHERE tenant_id = $1 ORDER BY name"
        )))
        .bind(tenant.as_str().to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connection_from_row).collect()
    }

    pub async fn find_connection(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<Connection>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM connections WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant.as_str().to_owned())
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(connection_from_row).transpose()
    }

    /// The sealed credentials, for a use that is audited by the caller.
    pub async fn connection_credentials(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<SealedCredentials>, StoreError> {
        let row = sqlx::query(
            "SELECT credentials, credentials_key_version, credential_fields FROM connections \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.as_str().to_owned())
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let v: i64 = r.try_get("credentials_key_version")?;
            let fields: String = r.try_get("credential_fields")?;
            Ok(SealedCredentials {
                envelope: r.try_get("credentials")?,
                key_version: u32::try_from(v)
                    .map_err(|_| StoreError::Corrupt("key version".into()))?,
                fields: fields
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .transpose()
    }

    /// Updates metadata and, when given, replaces the credentials. False if absent.
    pub async fn update_connection(
        &self,
        c: &Connection,
        creds: Option<&SealedCredentials>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE connections SET name = $1, base_url = $2, updated_at = $3 WHERE tenant_id = $4 AND id = $5",
        )
        .bind(c.name.clone())
        .bind(c.base_url.clone())
        .bind(c.updated_at.millis())
        .bind(c.tenant_id.as_str().to_owned())
        .bind(c.id.clone())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        if let Some(creds) = creds {
            sqlx::query(
                "UPDATE connections SET credentials = $1, credentials_key_version = $2, credential_fields = $3, \
                 credentials_changed_at = $4 WHERE tenant_id = $5 AND id = $6",
            )
            .bind(creds.envelope.clone())
            .bind(i64::from(creds.key_version))
            .bind(creds.fields.join(","))
            .bind(c.credentials_changed_at.millis())
            .bind(c.tenant_id.as_str().to_owned())
            .bind(c.id.clone())
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delete_connection(
        &self,
        tenant: &TenantId,
        id: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM connections WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str().to_owned())
            .bind(id.to_owned())
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

    /// Records an audit event for a read of credentials for use.
    pub async fn record_credential_use(&self, audit: &AuditEvent) -> Result<(), StoreError> {
        self.record_audit(audit).await
    }
}
