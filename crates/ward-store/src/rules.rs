//! Detection rules and their immutable versions, per company.

use sqlx::Row;
use sqlx::any::AnyRow;
use ward_core::rule::{Rule, RuleHeader, RuleStatus, RuleVersion};
use ward_core::{AuditEvent, RuleId, TenantId, Timestamp, UserId};

use crate::audit::insert_audit;
use crate::{Store, StoreError};

pub(crate) const RULE_COLUMNS: &str = "id, tenant_id, sigma_id, title, status, current_version, approved_version, \
     level, tags, logsource, author_label, created_at, updated_at";
const VERSION_COLUMNS: &str =
    "rule_id, version, content, content_hash, author_id, author_label, note, created_at";

fn version_number(r: &AnyRow, col: &str) -> Result<u32, StoreError> {
    u32::try_from(r.try_get::<i64, _>(col)?)
        .map_err(|_| StoreError::Corrupt(format!("{col} out of range")))
}

pub(crate) fn rule_row(r: &AnyRow) -> Result<Rule, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(Rule {
        id: RuleId::from_stored(r.try_get("id")?),
        tenant_id: TenantId::from_stored(r.try_get("tenant_id")?),
        sigma_id: r.try_get("sigma_id")?,
        title: r.try_get("title")?,
        status: RuleStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("rule status {status:?}")))?,
        current_version: version_number(r, "current_version")?,
        approved_version: r
            .try_get::<Option<i64>, _>("approved_version")?
            .map(|v| {
                u32::try_from(v).map_err(|_| StoreError::Corrupt("approved_version".to_owned()))
            })
            .transpose()?,
        level: r.try_get("level")?,
        tags: r
            .try_get::<String, _>("tags")?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        logsource: r.try_get("logsource")?,
        author_label: r.try_get("author_label")?,
        created_at: Timestamp::from_millis(r.try_get("created_at")?),
        updated_at: Timestamp::from_millis(r.try_get("updated_at")?),
    })
}

fn version(r: &AnyRow) -> Result<RuleVersion, StoreError> {
    Ok(RuleVersion {
        rule_id: RuleId::from_stored(r.try_get("rule_id")?),
        version: version_number(r, "version")?,
        content: r.try_get("content")?,
        content_hash: r.try_get("content_hash")?,
        author_id: UserId::from_stored(r.try_get("author_id")?),
        author_label: r.try_get("author_label")?,
        note: r.try_get("note")?,
        created_at: Timestamp::from_millis(r.try_get("created_at")?),
    })
}

pub(crate) async fn insert_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    v: &RuleVersion,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rule_versions (rule_id, version, content, content_hash, author_id, author_label, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(v.rule_id.as_str().to_owned())
    .bind(i64::from(v.version))
    .bind(v.content.clone())
    .bind(v.content_hash.clone())
    .bind(v.author_id.as_str().to_owned())
    .bind(v.author_label.clone())
    .bind(v.note.clone())
    .bind(v.created_at.millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn insert_rule(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    r: &Rule,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rules (id, tenant_id, sigma_id, title, status, current_version, created_at, updated_at, \
         level, tags, logsource, author_label) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(r.id.as_str().to_owned())
    .bind(r.tenant_id.as_str().to_owned())
    .bind(r.sigma_id.clone())
    .bind(r.title.clone())
    .bind(r.status.as_str())
    .bind(i64::from(r.current_version))
    .bind(r.created_at.millis())
    .bind(r.updated_at.millis())
    .bind(r.level.clone())
    .bind(r.tags.join(" "))
    .bind(r.logsource.clone())
    .bind(r.author_label.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn insert_test_run(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rule: &RuleId,
    run: &StoredTestRun,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rule_test_runs (id, rule_id, version, run_by, run_at, passed, failed, results) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(run.id.clone())
    .bind(rule.as_str().to_owned())
    .bind(i64::from(run.version))
    .bind(run.run_by.clone())
    .bind(run.run_at.millis())
    .bind(i64::from(run.passed))
    .bind(i64::from(run.failed))
    .bind(run.results.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the rule to `v` (from the version before it) as a draft with `head`;
/// `false` when the rule is not at the version before (or is gone).
pub(crate) async fn advance_current_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    tenant: &TenantId,
    v: &RuleVersion,
    head: &RuleHeader,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE rules SET current_version = $1, title = $2, sigma_id = $3, status = 'draft', updated_at = $4, \
         level = $5, tags = $6, logsource = $7, author_label = $8 \
         WHERE id = $9 AND tenant_id = $10 AND current_version = $11 AND deleted_at IS NULL",
    )
    .bind(i64::from(v.version))
    .bind(head.title.clone())
    .bind(head.sigma_id.clone())
    .bind(v.created_at.millis())
    .bind(head.level.clone())
    .bind(head.tags.join(" "))
    .bind(head.logsource.clone())
    .bind(v.author_label.clone())
    .bind(v.rule_id.as_str().to_owned())
    .bind(tenant.as_str().to_owned())
    .bind(i64::from(v.version.saturating_sub(1)))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Replaces a rule's tests (JSON).
pub(crate) async fn replace_tests(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rule: &RuleId,
    tests_json: &str,
    by: &UserId,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rule_tests WHERE rule_id = $1")
        .bind(rule.as_str().to_owned())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO rule_tests (rule_id, tests, updated_at, updated_by) VALUES ($1, $2, $3, $4)",
    )
    .bind(rule.as_str().to_owned())
    .bind(tests_json.to_owned())
    .bind(at.millis())
    .bind(by.as_str().to_owned())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends the rule's open review, if any (an edit of the rule or its tests);
/// whether there was one.
pub(crate) async fn void_open_review(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rule: &RuleId,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let n = sqlx::query(
        "UPDATE rule_reviews SET state = 'voided', closed_at = $1 WHERE rule_id = $2 AND state = 'open'",
    )
    .bind(at.millis())
    .bind(rule.as_str().to_owned())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// A change of a rule's tests ends its open review and makes it a draft again.
pub(crate) async fn return_to_draft_if_in_review(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rule: &RuleId,
    at: Timestamp,
) -> Result<(), StoreError> {
    if void_open_review(tx, rule, at).await? {
        sqlx::query("UPDATE rules SET status = 'draft', updated_at = $1 WHERE id = $2")
            .bind(at.millis())
            .bind(rule.as_str().to_owned())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The outcome of saving a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSaved {
    Saved,
    NotFound,
    /// Someone saved another version since the one the editor started from.
    Stale {
        current: u32,
    },
}

impl Store {
    /// Creates a rule with its first version.
    pub async fn create_rule(
        &self,
        r: &Rule,
        v: &RuleVersion,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_rule(&mut tx, r).await?;
        insert_version(&mut tx, v).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves `v` as the next version if the rule is still at `v.version - 1`;
    /// the rule returns to draft (any review of the old text no longer applies).
    pub async fn save_rule_version(
        &self,
        tenant: &TenantId,
        v: &RuleVersion,
        head: &RuleHeader,
        audit: &AuditEvent,
    ) -> Result<VersionSaved, StoreError> {
        let mut tx = self.begin().await?;
        if !advance_current_version(&mut tx, tenant, v, head).await? {
            let current =
                sqlx::query("SELECT current_version FROM rules WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL")
                    .bind(v.rule_id.as_str().to_owned())
                    .bind(tenant.as_str().to_owned())
                    .fetch_optional(&mut *tx)
                    .await?;
            return Ok(match current {
                Some(r) => VersionSaved::Stale {
                    current: version_number(&r, "current_version")?,
                },
                None => VersionSaved::NotFound,
            });
        }
        void_open_review(&mut tx, &v.rule_id, v.created_at).await?;
        insert_version(&mut tx, v).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(VersionSaved::Saved)
    }

    pub async fn list_rules(&self, tenant: &TenantId) -> Result<Vec<Rule>, StoreError> {
        let sql = format!(
            "SELECT {RULE_COLUMNS} FROM rules WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY title, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rule_row).collect()
    }

    pub async fn find_rule(
        &self,
        tenant: &TenantId,
        id: &RuleId,
    ) -> Result<Option<Rule>, StoreError> {
        let sql = format!(
            "SELECT {RULE_COLUMNS} FROM rules WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL"
        );
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(rule_row).transpose()
    }

    /// A rule's versions, newest first (the rule must be the company's).
    pub async fn rule_versions(
        &self,
        tenant: &TenantId,
        id: &RuleId,
    ) -> Result<Vec<RuleVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM rule_versions v WHERE v.rule_id = $1 \
             AND EXISTS (SELECT 1 FROM rules r WHERE r.id = v.rule_id AND r.tenant_id = $2 AND r.deleted_at IS NULL) \
             ORDER BY v.version DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(version).collect()
    }
}

/// A recorded test run.
#[derive(Debug, Clone)]
pub struct StoredTestRun {
    pub id: String,
    pub version: u32,
    pub run_by: String,
    pub run_at: Timestamp,
    pub passed: u32,
    pub failed: u32,
    /// JSON array of per-test outcomes.
    pub results: String,
}

impl Store {
    /// Replaces a rule's tests (JSON), if the rule is the company's.
    pub async fn set_rule_tests(
        &self,
        tenant: &TenantId,
        rule: &RuleId,
        tests_json: &str,
        by: &UserId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let exists = sqlx::query(
            "SELECT id FROM rules WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(rule.as_str().to_owned())
        .bind(tenant.as_str().to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !exists {
            return Ok(false);
        }
        // Reviewers approve a version together with the tests that prove it.
        return_to_draft_if_in_review(&mut tx, rule, at).await?;
        replace_tests(&mut tx, rule, tests_json, by, at).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A rule's tests as stored (JSON), if any.
    pub async fn rule_tests(
        &self,
        tenant: &TenantId,
        rule: &RuleId,
    ) -> Result<Option<String>, StoreError> {
        let r = sqlx::query(
            "SELECT t.tests FROM rule_tests t JOIN rules r ON r.id = t.rule_id \
             WHERE t.rule_id = $1 AND r.tenant_id = $2 AND r.deleted_at IS NULL",
        )
        .bind(rule.as_str().to_owned())
        .bind(tenant.as_str().to_owned())
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| r.try_get("tests").map_err(StoreError::from))
            .transpose()
    }

    /// Records a test run with its audit event.
    pub async fn record_test_run(
        &self,
        rule: &RuleId,
        run: &StoredTestRun,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_test_run(&mut tx, rule, run).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest runs of a rule's tests, newest first.
    pub async fn test_runs(
        &self,
        tenant: &TenantId,
        rule: &RuleId,
        limit: u32,
    ) -> Result<Vec<StoredTestRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT x.id, x.version, x.run_by, x.run_at, x.passed, x.failed, x.results \
             FROM rule_test_runs x JOIN rules r ON r.id = x.rule_id \
             WHERE x.rule_id = $1 AND r.tenant_id = $2 AND r.deleted_at IS NULL ORDER BY x.run_at DESC, x.id LIMIT $3",
        )
        .bind(rule.as_str().to_owned())
        .bind(tenant.as_str().to_owned())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredTestRun {
                    id: r.try_get("id")?,
                    version: version_number(r, "version")?,
                    run_by: r.try_get("run_by")?,
                    run_at: Timestamp::from_millis(r.try_get("run_at")?),
                    passed: version_number(r, "passed")?,
                    failed: version_number(r, "failed")?,
                    results: r.try_get("results")?,
                })
            })
            .collect()
    }
}
