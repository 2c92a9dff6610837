//! Review rounds of detection rules (submit, approve, reject), rule deletion,
//! the company's review policy, and the bulk reads and writes of import and
//! export. Every change takes the rule's row first, so two reviewers acting at
//! once on PostgreSQL take turns (SQLite's `BEGIN IMMEDIATE` already does).

use sqlx::Row;
use sqlx::any::AnyRow;
use ward_core::rule::{Rule, RuleHeader, RuleVersion};
use ward_core::rule_review::ReviewPolicy;
use ward_core::{AuditEvent, RuleId, TenantId, Timestamp, UserId};

use crate::audit::insert_audit;
use crate::rules::{
    advance_current_version, insert_rule, insert_version, replace_tests,
    return_to_draft_if_in_review, rule_row, void_open_review,
};
use crate::{Backend, Store, StoreError, StoredTestRun};

/// One review round as stored.
#[derive(Debug, Clone)]
pub struct StoredReview {
    pub id: String,
    pub rule_id: RuleId,
    pub version: u32,
    /// `open`, `approved`, `rejected` or `voided`.
    pub state: String,
    pub submitted_by: UserId,
    pub submitted_label: String,
    pub submitted_at: Timestamp,
    /// Who wrote the change under review (they may not review it).
    pub authors: Vec<UserId>,
    pub required: u8,
    pub test_run_id: String,
    pub closed_by_label: Option<String>,
    pub closed_at: Option<Timestamp>,
    pub reason: Option<String>,
    pub approvals: Vec<StoredApproval>,
}

#[derive(Debug, Clone)]
pub struct StoredApproval {
    pub approver_id: UserId,
    pub approver_label: String,
    pub approved_at: Timestamp,
}

/// A new review round, opened by a submission.
#[derive(Debug, Clone)]
pub struct NewReview {
    pub id: String,
    pub version: u32,
    pub submitted_by: UserId,
    pub submitted_label: String,
    pub submitted_at: Timestamp,
    pub authors: Vec<UserId>,
    pub required: u8,
}

/// What a reviewer decided, as the store writes it.
#[derive(Debug, Clone)]
pub enum ReviewDecision {
    Approve {
        approver_id: UserId,
        approver_label: String,
        at: Timestamp,
        /// The last approval the review needed: the rule becomes approved.
        completes: bool,
    },
    Reject {
        reviewer_label: String,
        at: Timestamp,
        reason: String,
    },
}

/// A rule to import: a new rule, or a new version of one the company has.
#[derive(Debug, Clone)]
pub enum ImportItem {
    Create {
        rule: Rule,
        version: RuleVersion,
        /// The rule's tests as stored (JSON), if the import carried them.
        tests: Option<String>,
        audit: AuditEvent,
    },
    NewVersion {
        version: RuleVersion,
        head: RuleHeader,
        tests: Option<String>,
        audit: AuditEvent,
    },
    /// The text is unchanged; only the tests are new.
    Tests {
        rule_id: RuleId,
        tests: String,
        by: UserId,
        at: Timestamp,
        audit: AuditEvent,
    },
}

/// A rule with its current text and tests, for export and import matching.
#[derive(Debug, Clone)]
pub struct RuleWithText {
    pub rule: Rule,
    pub content: String,
    pub content_hash: String,
    pub tests: Option<String>,
}

const REVIEW_COLUMNS: &str = "id, rule_id, version, state, submitted_by, submitted_label, submitted_at, \
     authors, required, test_run_id, closed_by_label, closed_at, reason";

fn review_row(r: &AnyRow) -> Result<StoredReview, StoreError> {
    let authors: String = r.try_get("authors")?;
    let authors: Vec<String> = serde_json::from_str(&authors)
        .map_err(|_| StoreError::Corrupt("review authors".to_owned()))?;
    let small = |col: &str| -> Result<u32, StoreError> {
        u32::try_from(r.try_get::<i64, _>(col)?)
            .map_err(|_| StoreError::Corrupt(format!("{col} out of range")))
    };
    Ok(StoredReview {
        id: r.try_get("id")?,
        rule_id: RuleId::from_stored(r.try_get("rule_id")?),
        version: small("version")?,
        state: r.try_get("state")?,
        submitted_by: UserId::from_stored(r.try_get("submitted_by")?),
        submitted_label: r.try_get("submitted_label")?,
        submitted_at: Timestamp::from_millis(r.try_get("submitted_at")?),
        authors: authors.into_iter().map(UserId::from_stored).collect(),
        required: u8::try_from(small("required")?)
            .map_err(|_| StoreError::Corrupt("required out of range".to_owned()))?,
        test_run_id: r.try_get("test_run_id")?,
        closed_by_label: r.try_get("closed_by_label")?,
        closed_at: r
            .try_get::<Option<i64>, _>("closed_at")?
            .map(Timestamp::from_millis),
        reason: r.try_get("reason")?,
        approvals: Vec::new(),
    })
}

async fn approvals_of<'e, E>(executor: E, review: &str) -> Result<Vec<StoredApproval>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT approver_id, approver_label, approved_at FROM rule_approvals \
         WHERE review_id = $1 ORDER BY approved_at, approver_id",
    )
    .bind(review.to_owned())
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredApproval {
                approver_id: UserId::from_stored(r.try_get("approver_id")?),
                approver_label: r.try_get("approver_label")?,
                approved_at: Timestamp::from_millis(r.try_get("approved_at")?),
            })
        })
        .collect()
}

impl Store {
    /// The company's review policy (how many approvals a rule needs).
    pub async fn review_policy(&self, tenant: &TenantId) -> Result<ReviewPolicy, StoreError> {
        let r = sqlx::query(
            "SELECT rule_min_approvers, rule_approvers_predate FROM tenants WHERE id = $1",
        )
        .bind(tenant.as_str().to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        let n: i64 = r.try_get("rule_min_approvers")?;
        let predate: i64 = r.try_get("rule_approvers_predate")?;
        u32::try_from(n)
            .ok()
            .and_then(|n| ReviewPolicy::new(n).ok())
            .map(|p| p.with_approvers_predating(predate != 0))
            .ok_or_else(|| StoreError::Corrupt("rule_min_approvers".to_owned()))
    }

    pub async fn set_review_policy(
        &self,
        tenant: &TenantId,
        policy: ReviewPolicy,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE tenants SET rule_min_approvers = $1, rule_approvers_predate = $3 WHERE id = $2",
        )
        .bind(i64::from(policy.min_approvers()))
        .bind(tenant.as_str().to_owned())
        .bind(i64::from(policy.approvers_predate_change()))
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Opens a review of `review.version`, recording the test run it rests on,
    /// if the rule is still a draft at that version. `false`: it is not (someone
    /// saved or submitted meanwhile).
    pub async fn submit_rule(
        &self,
        tenant: &TenantId,
        rule: &RuleId,
        review: &NewReview,
        run: &StoredTestRun,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE rules SET status = 'in_review', updated_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND current_version = $4 AND status = 'draft' \
             AND deleted_at IS NULL",
        )
        .bind(review.submitted_at.millis())
        .bind(rule.as_str().to_owned())
        .bind(tenant.as_str().to_owned())
        .bind(i64::from(review.version))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        crate::rules::insert_test_run(&mut tx, rule, run).await?;
        let authors: Vec<&str> = review.authors.iter().map(UserId::as_str).collect();
        sqlx::query(
            "INSERT INTO rule_reviews (id, rule_id, version, state, submitted_by, submitted_label, \
             submitted_at, authors, required, test_run_id, round) \
             VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, \
             (SELECT COALESCE(MAX(round), 0) + 1 FROM rule_reviews WHERE rule_id = $2))",
        )
        .bind(review.id.clone())
        .bind(rule.as_str().to_owned())
        .bind(i64::from(review.version))
        .bind(review.submitted_by.as_str().to_owned())
        .bind(review.submitted_label.clone())
        .bind(review.submitted_at.millis())
        .bind(serde_json::to_string(&authors).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(i64::from(review.required))
        .bind(run.id.clone())
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Lets `decide` rule on the rule's open review (`None` if there is none)
    /// while the rule's row is held, then writes the decision with the audit
    /// event `decide` returns. `Ok(None)`: no such rule in the company.
    pub async fn decide_review<T, E>(
        &self,
        tenant: &TenantId,
        rule: &RuleId,
        decide: impl FnOnce(&Rule, Option<&StoredReview>) -> Result<(ReviewDecision, AuditEvent, T), E>,
    ) -> Result<Option<Result<T, E>>, StoreError> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM rules WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
                .bind(rule.as_str().to_owned())
                .bind(tenant.as_str().to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        }
        let sql = format!(
            "SELECT {} FROM rules WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
            crate::rules::RULE_COLUMNS
        );
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(rule.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let current = rule_row(&row)?;
        let sql = format!(
            "SELECT {REVIEW_COLUMNS} FROM rule_reviews WHERE rule_id = $1 AND state = 'open'"
        );
        let open = match sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(rule.as_str().to_owned())
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => {
                let mut review = review_row(&r)?;
                review.approvals = approvals_of(&mut *tx, &review.id).await?;
                Some(review)
            }
            None => None,
        };
        let (decision, audit, value) = match decide(&current, open.as_ref()) {
            Ok(d) => d,
            Err(e) => return Ok(Some(Err(e))),
        };
        let review =
            open.ok_or_else(|| StoreError::Corrupt("decision without review".to_owned()))?;
        match decision {
            ReviewDecision::Approve {
                approver_id,
                approver_label,
                at,
                completes,
            } => {
                sqlx::query(
                    "INSERT INTO rule_approvals (review_id, approver_id, approver_label, approved_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(review.id.clone())
                .bind(approver_id.as_str().to_owned())
                .bind(approver_label.clone())
                .bind(at.millis())
                .execute(&mut *tx)
                .await?;
                if completes {
                    sqlx::query(
                        "UPDATE rule_reviews SET state = 'approved', closed_by_label = $1, closed_at = $2 \
                         WHERE id = $3",
                    )
                    .bind(approver_label)
                    .bind(at.millis())
                    .bind(review.id.clone())
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE rules SET status = 'approved', approved_version = $1, updated_at = $2 \
                         WHERE id = $3",
                    )
                    .bind(i64::from(review.version))
                    .bind(at.millis())
                    .bind(rule.as_str().to_owned())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            ReviewDecision::Reject {
                reviewer_label,
                at,
                reason,
            } => {
                sqlx::query(
                    "UPDATE rule_reviews SET state = 'rejected', closed_by_label = $1, closed_at = $2, \
                     reason = $3 WHERE id = $4",
                )
                .bind(reviewer_label)
                .bind(at.millis())
                .bind(reason)
                .bind(review.id.clone())
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE rules SET status = 'rejected', updated_at = $1 WHERE id = $2")
                    .bind(at.millis())
                    .bind(rule.as_str().to_owned())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(Some(Ok(value)))
    }

    /// A rule's review rounds with their approvals, newest first.
    pub async fn rule_reviews(
        &self,
        tenant: &TenantId,
        rule: &RuleId,
    ) -> Result<Vec<StoredReview>, StoreError> {
        let sql = format!(
            "SELECT {REVIEW_COLUMNS} FROM rule_reviews x WHERE x.rule_id = $1 \
             AND EXISTS (SELECT 1 FROM rules r WHERE r.id = x.rule_id AND r.tenant_id = $2 AND r.deleted_at IS NULL) \
             ORDER BY x.round DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(rule.as_str().to_owned())
            .bind(tenant.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut review = review_row(r)?;
            review.approvals = approvals_of(&self.pool, &review.id).await?;
            out.push(review);
        }
        Ok(out)
    }

    /// The company's open reviews (the review queue), oldest first.
    pub async fn open_reviews(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(Rule, StoredReview)>, StoreError> {
        let cols: Vec<String> = REVIEW_COLUMNS
            .split(", ")
            .map(|c| format!("x.{c}"))
            .collect();
        let sql = format!(
            "SELECT {} FROM rule_reviews x JOIN rules r ON r.id = x.rule_id \
             WHERE r.tenant_id = $1 AND x.state = 'open' AND r.deleted_at IS NULL \
             ORDER BY x.submitted_at, x.id",
            cols.join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut review = review_row(r)?;
            review.approvals = approvals_of(&self.pool, &review.id).await?;
            if let Some(rule) = self.find_rule(tenant, &review.rule_id).await? {
                out.push((rule, review));
            }
        }
        Ok(out)
    }

    /// Deletes a rule: it leaves every list and its Sigma id becomes free; its
    /// versions, tests and reviews stay (they are the record). `false`: no such rule.
    pub async fn delete_rule(
        &self,
        tenant: &TenantId,
        rule: &RuleId,
        at: Timestamp,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE rules SET deleted_at = $1, sigma_id = NULL, updated_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND deleted_at IS NULL",
        )
        .bind(at.millis())
        .bind(rule.as_str().to_owned())
        .bind(tenant.as_str().to_owned())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        void_open_review(&mut tx, rule, at).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every rule of the company with its current text and tests, by title.
    pub async fn rules_with_text(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<RuleWithText>, StoreError> {
        let cols: Vec<String> = crate::rules::RULE_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect();
        let sql = format!(
            "SELECT {}, v.content, v.content_hash, t.tests FROM rules r \
             JOIN rule_versions v ON v.rule_id = r.id AND v.version = r.current_version \
             LEFT JOIN rule_tests t ON t.rule_id = r.id \
             WHERE r.tenant_id = $1 AND r.deleted_at IS NULL ORDER BY r.title, r.id",
            cols.join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str().to_owned())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RuleWithText {
                    rule: rule_row(r)?,
                    content: r.try_get("content")?,
                    content_hash: r.try_get("content_hash")?,
                    tests: r.try_get("tests")?,
                })
            })
            .collect()
    }

    /// Writes imported rules in one transaction: all of them, or (on the first
    /// failure, reported with its index) none.
    pub async fn import_rules(
        &self,
        tenant: &TenantId,
        items: &[ImportItem],
    ) -> Result<(), (usize, StoreError)> {
        let mut tx = self.begin().await.map_err(|e| (0, e))?;
        for (i, item) in items.iter().enumerate() {
            let step = async {
                match item {
                    ImportItem::Create {
                        rule,
                        version,
                        tests,
                        audit,
                    } => {
                        insert_rule(&mut tx, rule).await?;
                        insert_version(&mut tx, version).await?;
                        if let Some(t) = tests {
                            replace_tests(
                                &mut tx,
                                &rule.id,
                                t,
                                &version.author_id,
                                version.created_at,
                            )
                            .await?;
                        }
                        insert_audit(&mut tx, audit).await?;
                    }
                    ImportItem::Tests {
                        rule_id,
                        tests,
                        by,
                        at,
                        audit,
                    } => {
                        return_to_draft_if_in_review(&mut tx, rule_id, *at).await?;
                        replace_tests(&mut tx, rule_id, tests, by, *at).await?;
                        insert_audit(&mut tx, audit).await?;
                    }
                    ImportItem::NewVersion {
                        version,
                        head,
                        tests,
                        audit,
                    } => {
                        if !advance_current_version(&mut tx, tenant, version, head).await? {
                            return Err(StoreError::Conflict(crate::Conflict::Other));
                        }
                        void_open_review(&mut tx, &version.rule_id, version.created_at).await?;
                        insert_version(&mut tx, version).await?;
                        if let Some(t) = tests {
                            replace_tests(
                                &mut tx,
                                &version.rule_id,
                                t,
                                &version.author_id,
                                version.created_at,
                            )
                            .await?;
                        }
                        insert_audit(&mut tx, audit).await?;
                    }
                }
                Ok::<(), StoreError>(())
            };
            step.await.map_err(|e| (i, e))?;
        }
        tx.commit().await.map_err(|e| (items.len(), e.into()))?;
        Ok(())
    }
}
