//! Consistent snapshots of every table, for encrypted backups: export in one
//! read transaction (SQLite WAL snapshot; PostgreSQL REPEATABLE READ), import into
//! an empty database in one write transaction. The format is JSON Lines, one row
//! per line, columns in the order below; bytes as hex.

use serde_json::{Value, json};
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use ward_core::AuditEvent;

use crate::audit::insert_audit;
use crate::{Backend, MIGRATIONS, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Text,
    Int,
    Bytes,
}

use Col::{Bytes, Int, Text};

/// Tables a backup deliberately leaves out, with why: `schema_migrations` is
/// the migrations' bookkeeping (the restoring Ward writes its own),
/// `job_leases` is who runs a job right now, `auth_ceremonies` are
/// single-use sign-in challenges that expire within minutes, and `job_queue` is
/// work in flight: a restored Ward must not replay half-done work against
/// systems that have moved on since (what finished work changed is in the
/// tables it changed).
pub const NOT_BACKED_UP: &[&str] = &[
    "schema_migrations",
    "job_leases",
    "auth_ceremonies",
    "job_queue",
];

/// Every table a backup holds with the columns it copies, by name (a test
/// checks this against the migrated schema on both backends).
pub fn backed_up_columns() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLES
        .iter()
        .flat_map(|(t, cols)| cols.iter().map(move |(c, _)| (*t, *c)))
}

/// Every table a backup holds, parents before children. Leases and the migration
/// bookkeeping are not data.
const TABLES: &[(&str, &[(&str, Col)])] = &[
    (
        "installation",
        &[
            ("id", Int),
            ("salt", Bytes),
            ("key_check", Bytes),
            ("created_at", Int),
            ("master_version", Int),
        ],
    ),
    (
        "tenants",
        &[
            ("id", Text),
            ("name", Text),
            ("slug", Text),
            ("created_at", Int),
            ("mfa_policy", Text),
            ("rule_min_approvers", Int),
            ("rule_approvers_predate", Int),
        ],
    ),
    (
        "tenant_domains",
        &[
            ("tenant_id", Text),
            ("domain", Text),
            ("token", Text),
            ("verified_at", Int),
            ("verified_by", Text),
            ("created_at", Int),
        ],
    ),
    (
        "users",
        &[
            ("id", Text),
            ("tenant_id", Text),
            ("email", Text),
            ("display_name", Text),
            ("role", Text),
            ("password_hash", Text),
            ("disabled", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("password_changed_at", Int),
            ("created_by", Text),
        ],
    ),
    (
        "sessions",
        &[
            ("id", Text),
            ("tenant_id", Text),
            ("user_id", Text),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
            ("ip", Text),
            ("user_agent", Text),
            ("auth_method", Text),
            ("multi_factor", Int),
            ("authenticated_at", Int),
            ("sso_provider_id", Text),
            ("reauth_multi_factor", Int),
        ],
    ),
    (
        "api_tokens",
        &[
            ("id", Text),
            ("tenant_id", Text),
            ("user_id", Text),
            ("name", Text),
            ("scope", Text),
            ("digest", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("last_used_at", Int),
            ("revoked_at", Int),
            ("sso_provider_id", Text),
            ("sensitive", Int),
            ("metrics", Int),
        ],
    ),
    (
        "audit_events",
        &[
            ("seq", Int),
            ("id", Text),
            ("occurred_at", Int),
            ("tenant_id", Text),
            ("actor_kind", Text),
            ("actor_id", Text),
            ("actor_label", Text),
            ("ip", Text),
            ("user_agent", Text),
            ("request_id", Text),
            ("action", Text),
            ("target_kind", Text),
            ("target_id", Text),
            ("outcome", Text),
            ("details", Text),
        ],
    ),
    (
        "tenant_keys",
        &[
            ("tenant_id", Text),
            ("version", Int),
            ("state", Text),
            ("wrapped_key", Bytes),
            ("master_version", Int),
            ("created_at", Int),
            ("retired_at", Int),
            ("destroyed_at", Int),
        ],
    ),
    (
        "connections",
        &[
            ("id", Text),
            ("tenant_id", Text),
            ("name", Text),
            ("kind", Text),
            ("base_url", Text),
            ("credentials", Bytes),
            ("credentials_key_version", Int),
            ("credential_fields", Text),
            ("credentials_changed_at", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    ),
    (
        "key_policies",
        &[("tenant_id", Text), ("rotation_interval_days", Int)],
    ),
    (
        "audit_leaves",
        &[
            ("leaf_index", Int),
            ("event_seq", Int),
            ("integrated_at", Int),
        ],
    ),
    (
        "audit_tree",
        &[("level", Int), ("node_index", Int), ("hash", Bytes)],
    ),
    (
        "audit_checkpoints",
        &[
            ("tree_size", Int),
            ("root_hash", Bytes),
            ("issued_at", Int),
            ("note", Text),
        ],
    ),
    (
        "audit_sinks",
        &[
            ("id", Text),
            ("name", Text),
            ("kind", Text),
            ("config", Text),
            ("secret", Bytes),
            ("secret_master_version", Int),
            ("created_at", Int),
            ("delivered_size", Int),
            ("failing_since", Int),
            ("alerted", Int),
            ("last_error", Text),
        ],
    ),
    (
        "passkeys",
        &[
            ("id", Text),
            ("tenant_id", Text),
            ("user_id", Text),
            ("name", Text),
            ("credential_id", Text),
            ("credential", Text),
            ("sign_count", Int),
            ("created_at", Int),
            ("last_used_at", Int),
        ],
    ),
    (
        "sso_providers",
        &[
            ("id", Text),
            ("tenant_id", Text),
            ("name", Text),
            ("issuer", Text),
            ("client_id", Text),
            ("client_secret", Bytes),
            ("secret_master_version", Int),
            ("config", Text),
            ("enabled", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("created_by", Text),
            ("updated_by", Text),
        ],
    ),
    (
        "external_identities",
        &[
            ("provider_id", Text),
            ("subject", Text),
            ("tenant_id", Text),
            ("user_id", Text),
            ("linked_by", Text),
            ("created_at", Int),
        ],
    ),
    (
        "rules",
        &[
            ("id", Text),
            ("tenant_id", Text),
            ("sigma_id", Text),
            ("title", Text),
            ("status", Text),
            ("current_version", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("approved_version", Int),
            ("level", Text),
            ("tags", Text),
            ("logsource", Text),
            ("author_label", Text),
            ("deleted_at", Int),
        ],
    ),
    (
        "rule_versions",
        &[
            ("rule_id", Text),
            ("version", Int),
            ("content", Text),
            ("content_hash", Text),
            ("author_id", Text),
            ("author_label", Text),
            ("note", Text),
            ("created_at", Int),
        ],
    ),
    (
        "rule_tests",
        &[
            ("rule_id", Text),
            ("tests", Text),
            ("updated_at", Int),
            ("updated_by", Text),
        ],
    ),
    (
        "rule_test_runs",
        &[
            ("id", Text),
            ("rule_id", Text),
            ("version", Int),
            ("run_by", Text),
            ("run_at", Int),
            ("passed", Int),
            ("failed", Int),
            ("results", Text),
        ],
    ),
    (
        "rule_reviews",
        &[
            ("id", Text),
            ("rule_id", Text),
            ("round", Int),
            ("version", Int),
            ("state", Text),
            ("submitted_by", Text),
            ("submitted_label", Text),
            ("submitted_at", Int),
            ("authors", Text),
            ("required", Int),
            ("test_run_id", Text),
            ("closed_by_label", Text),
            ("closed_at", Int),
            ("reason", Text),
        ],
    ),
    (
        "rule_approvals",
        &[
            ("review_id", Text),
            ("approver_id", Text),
            ("approver_label", Text),
            ("approved_at", Int),
        ],
    ),
];

/// Rows per table in a snapshot, for reporting.
#[derive(Debug, Default, Clone)]
pub struct SnapshotCounts(pub Vec<(String, u64)>);

impl Store {
    /// Exports every table in one consistent read.
    pub async fn export_snapshot(&self) -> Result<(Vec<u8>, SnapshotCounts), StoreError> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN").await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        };
        let version = MIGRATIONS.last().map_or(0, |m| m.version);
        let mut out =
            serde_json::to_vec(&json!({ "format": "ward-snapshot", "schema_version": version }))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        out.push(b'\n');
        let mut counts = Vec::new();
        for (table, cols) in TABLES {
            let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
            let sql = format!("SELECT {} FROM {table}", names.join(", "));
            let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
            for r in &rows {
                let mut values = Vec::with_capacity(cols.len());
                for (name, col) in cols.iter() {
                    values.push(match col {
                        Text => r
                            .try_get::<Option<String>, _>(*name)?
                            .map_or(Value::Null, Value::String),
                        Int => r
                            .try_get::<Option<i64>, _>(*name)?
                            .map_or(Value::Null, Value::from),
                        Bytes => r
                            .try_get::<Option<Vec<u8>>, _>(*name)?
                            .map_or(Value::Null, |b| Value::String(hex_encode(&b))),
                    });
                }
                let line = json!({ "t": table, "v": values });
                out.extend(
                    serde_json::to_vec(&line).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                );
                out.push(b'\n');
            }
            counts.push(((*table).to_owned(), rows.len() as u64));
        }
        tx.commit().await?;
        Ok((out, SnapshotCounts(counts)))
    }

    /// Whether the database holds no installation and no data (a restore target).
    pub async fn is_empty_installation(&self) -> Result<bool, StoreError> {
        if self.schema_version().await?.is_none() {
            return Ok(true);
        }
        let n: i64 = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM installation) + (SELECT COUNT(*) FROM tenants) AS n",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(n == 0)
    }

    /// Imports a snapshot into a migrated, empty database, with `audit` (the
    /// restore's own event) in the same transaction.
    pub async fn import_snapshot(
        &self,
        snapshot: &[u8],
        audit: &AuditEvent,
    ) -> Result<SnapshotCounts, StoreError> {
        let bad = |why: &str| StoreError::Corrupt(format!("snapshot: {why}"));
        let mut lines = snapshot.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        let head: Value = serde_json::from_slice(lines.next().ok_or_else(|| bad("empty"))?)
            .map_err(|_| bad("header"))?;
        let version = MIGRATIONS.last().map_or(0, |m| m.version);
        if head["format"] != "ward-snapshot" || head["schema_version"] != version {
            return Err(bad(&format!(
                "made by schema version {}, this Ward has {version}",
                head["schema_version"]
            )));
        }
        if !self.is_empty_installation().await? {
            return Err(StoreError::Conflict(crate::Conflict::AlreadyInitialized));
        }
        let mut tx = self.begin().await?;
        let mut counts: Vec<(String, u64)> =
            TABLES.iter().map(|(t, _)| ((*t).to_owned(), 0)).collect();
        for line in lines {
            let row: Value = serde_json::from_slice(line).map_err(|_| bad("row"))?;
            let table = row["t"].as_str().ok_or_else(|| bad("row without table"))?;
            let (idx, (name, cols)) = TABLES
                .iter()
                .enumerate()
                .find(|(_, (t, _))| *t == table)
                .ok_or_else(|| bad("unknown table"))?;
            let values = row["v"]
                .as_array()
                .ok_or_else(|| bad("row without values"))?;
            if values.len() != cols.len() {
                return Err(bad("wrong number of values"));
            }
            insert_row(&mut tx, self.backend, name, cols, values).await?;
            if let Some(c) = counts.get_mut(idx) {
                c.1 += 1;
            }
        }
        if self.backend == Backend::Postgres {
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('audit_events', 'seq'), COALESCE((SELECT MAX(seq) FROM audit_events), 0) + 1, false)",
            )
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(SnapshotCounts(counts))
    }
}

async fn insert_row(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    table: &str,
    cols: &[(&str, Col)],
    values: &[Value],
) -> Result<(), StoreError> {
    let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
    let params: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
    // audit_events.seq is an identity column on PostgreSQL; keep the original numbers.
    let overriding = if backend == Backend::Postgres && table == "audit_events" {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO {table} ({}){overriding} VALUES ({})",
        names.join(", "),
        params.join(", ")
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    let bad = || StoreError::Corrupt(format!("snapshot: bad value in {table}"));
    for ((_, col), v) in cols.iter().zip(values) {
        q = match col {
            Text => q.bind(match v {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                _ => return Err(bad()),
            }),
            Int => q.bind(match v {
                Value::Null => None,
                other => Some(other.as_i64().ok_or_else(bad)?),
            }),
            Bytes => q.bind(match v {
                Value::Null => None,
                Value::String(s) => Some(hex_decode(s).ok_or_else(bad)?),
                _ => return Err(bad()),
            }),
        };
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}
