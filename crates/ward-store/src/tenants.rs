//! Tenants (companies).

use ward_core::AuditEvent;
use ward_core::tenant::Tenant;

use crate::audit::insert_audit;
use crate::{Store, StoreError, rows};

impl Store {
    pub async fn create_tenant(&self, t: &Tenant, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO tenants (id, name, slug, created_at) VALUES ($1, $2, $3, $4)")
            .bind(t.id.as_str().to_owned())
            .bind(t.name.clone())
            .bind(t.slug.clone())
            .bind(t.created_at.millis())
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows =
            sqlx::query("SELECT id, name, slug, created_at FROM tenants ORDER BY created_at, slug")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(rows::tenant).collect()
    }

    /// Finds a tenant by slug or id (the CLI accepts either).
    pub async fn find_tenant(&self, slug_or_id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, slug, created_at FROM tenants WHERE slug = $1 OR id = $1",
        )
        .bind(slug_or_id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rows::tenant).transpose()
    }
}
