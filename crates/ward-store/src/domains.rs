//! Email domains a company claims, and which company holds each verified. The
//! unique index on verified domains makes "one company per domain" a database
//! invariant, not a check that two requests could race past.

use sqlx::Row;
use ward_core::{AuditEvent, TenantId, Timestamp};

use crate::audit::insert_audit;
use crate::{Store, StoreError};

/// A company's claim on a domain, verified or not.
#[derive(Clone, PartialEq, Eq)]
pub struct DomainClaim {
    pub tenant_id: TenantId,
    pub domain: String,
    /// The value the DNS TXT record must carry (`ward-verification=<token>`);
    /// not a secret (it is published in DNS), but only meaningful to its company.
    pub token: String,
    pub verified_at: Option<Timestamp>,
    /// `operator` or `dns`.
    pub verified_by: Option<String>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for DomainClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainClaim")
            .field("tenant_id", &self.tenant_id)
            .field("domain", &self.domain)
            .field("verified_at", &self.verified_at)
            .finish_non_exhaustive()
    }
}

fn claim(r: &sqlx::any::AnyRow) -> Result<DomainClaim, StoreError> {
    Ok(DomainClaim {
        tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
        domain: r.try_get("domain")?,
        token: r.try_get("token")?,
        verified_at: r
            .try_get::<Option<i64>, _>("verified_at")?
            .map(Timestamp::from_millis),
        verified_by: r.try_get("verified_by")?,
        created_at: Timestamp::from_millis(r.try_get("created_at")?),
    })
}

const COLUMNS: &str = "tenant_id, domain, token, verified_at, verified_by, created_at";

impl Store {
    /// Records a claim. The company already claiming it is `Conflict::DomainTaken`.
    pub async fn add_domain_claim(
        &self,
        c: &DomainClaim,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO tenant_domains (tenant_id, domain, token, verified_at, verified_by, created_at) \
             VALUES ($1, $2, $3, NULL, NULL, $4)",
        )
        .bind(c.tenant_id.as_str().to_owned())
        .bind(c.domain.clone())
        .bind(c.token.clone())
        .bind(c.created_at.millis())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a claim verified. Another company holding the domain verified is
    /// `Conflict::DomainTaken`; `false` if this company has no such claim.
    pub async fn verify_domain_claim(
        &self,
        tenant: &TenantId,
        domain: &str,
        at: Timestamp,
        method: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE tenant_domains SET verified_at = $1, verified_by = $2 \
             WHERE tenant_id = $3 AND domain = $4",
        )
        .bind(at.millis())
        .bind(method.to_owned())
        .bind(tenant.as_str().to_owned())
        .bind(domain.to_owned())
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

    /// Removes a claim. False if there was none.
    pub async fn remove_domain_claim(
        &self,
        tenant: &TenantId,
        domain: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $1 AND domain = $2")
            .bind(tenant.as_str().to_owned())
            .bind(domain.to_owned())
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

    /// A company's claims, by domain.
    pub async fn domain_claims(&self, tenant: &TenantId) -> Result<Vec<DomainClaim>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM tenant_domains WHERE tenant_id = $1 ORDER BY domain");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(claim).collect()
    }

    /// The company holding `domain` verified, if any.
    pub async fn domain_owner(&self, domain: &str) -> Result<Option<TenantId>, StoreError> {
        let r = sqlx::query(
            "SELECT tenant_id FROM tenant_domains WHERE domain = $1 AND verified_at IS NOT NULL",
        )
        .bind(domain.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| r.try_get::<String, _>("tenant_id"))
            .transpose()?
            .map(TenantId::from_stored))
    }
}
