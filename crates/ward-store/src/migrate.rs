//! Versioned schema migrations, one SQL file per backend per version, each applied
//! in its own transaction together with its row in `schema_migrations`.

use sqlx::Row;

use crate::{Backend, Store, StoreError};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every migration, in order. Append only: never edit one that has shipped.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("migrations/0001_foundation.sqlite.sql"),
        postgres: include_str!("migrations/0001_foundation.postgres.sql"),
    },
    Migration {
        version: 2,
        name: "tenant_keys_connections",
        sqlite: include_str!("migrations/0002_tenant_keys_connections.sqlite.sql"),
        postgres: include_str!("migrations/0002_tenant_keys_connections.postgres.sql"),
    },
    Migration {
        version: 3,
        name: "connection_order_index",
        sqlite: include_str!("migrations/0003_connection_order_index.sqlite.sql"),
        postgres: include_str!("migrations/0003_connection_order_index.postgres.sql"),
    },
    Migration {
        version: 4,
        name: "audit_log",
        sqlite: include_str!("migrations/0004_audit_log.sqlite.sql"),
        postgres: include_str!("migrations/0004_audit_log.postgres.sql"),
    },
    Migration {
        version: 5,
        name: "sign_in",
        sqlite: include_str!("migrations/0005_sign_in.sqlite.sql"),
        postgres: include_str!("migrations/0005_sign_in.postgres.sql"),
    },
    Migration {
        version: 6,
        name: "sso",
        sqlite: include_str!("migrations/0006_sso.sqlite.sql"),
        postgres: include_str!("migrations/0006_sso.postgres.sql"),
    },
    Migration {
        version: 7,
        name: "rules",
        sqlite: include_str!("migrations/0007_rules.sqlite.sql"),
        postgres: include_str!("migrations/0007_rules.postgres.sql"),
    },
    Migration {
        version: 8,
        name: "rule_tests",
        sqlite: include_str!("migrations/0008_rule_tests.sqlite.sql"),
        postgres: include_str!("migrations/0008_rule_tests.postgres.sql"),
    },
    Migration {
        version: 9,
        name: "rule_reviews",
        sqlite: include_str!("migrations/0009_rule_reviews.sqlite.sql"),
        postgres: include_str!("migrations/0009_rule_reviews.postgres.sql"),
    },
    Migration {
        version: 10,
        name: "identity_binding",
        sqlite: include_str!("migrations/0010_identity_binding.sqlite.sql"),
        postgres: include_str!("migrations/0010_identity_binding.postgres.sql"),
    },
    Migration {
        version: 11,
        name: "sso_ceremony_source",
        sqlite: include_str!("migrations/0011_sso_ceremony_source.sqlite.sql"),
        postgres: include_str!("migrations/0011_sso_ceremony_source.postgres.sql"),
    },
    Migration {
        version: 12,
        name: "metrics_tokens",
        sqlite: include_str!("migrations/0012_metrics_tokens.sqlite.sql"),
        postgres: include_str!("migrations/0012_metrics_tokens.postgres.sql"),
    },
    Migration {
        version: 13,
        name: "job_queue",
        sqlite: include_str!("migrations/0013_job_queue.sqlite.sql"),
        postgres: include_str!("migrations/0013_job_queue.postgres.sql"),
    },
];

/// An arbitrary constant naming Ward's migration lock among PostgreSQL advisory locks,
/// so several instances starting at once migrate one at a time.
const MIGRATION_LOCK_ID: i64 = 0x5741_5244_0001;

impl Store {
    /// The newest applied migration, or `None` on an empty database.
    pub async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        let exists_sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
            }
        };
        let n: i64 = sqlx::query(exists_sql)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        if n == 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT MAX(version) AS v FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("v")?)
    }

    /// Applies every pending migration; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if let Some(found) = self.schema_version().await?
            && found > known
        {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        let create = match self.backend {
            Backend::Sqlite => {
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL, checksum TEXT)"
            }
            Backend::Postgres => {
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL, checksum TEXT)"
            }
        };
        let has_checksum = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) AS n FROM pragma_table_info('schema_migrations') WHERE name = 'checksum'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = 'schema_migrations' AND column_name = 'checksum'"
            }
        };
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            let mut tx = self.begin().await?;
            if self.backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK_ID)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(create).execute(&mut *tx).await?;
            // Databases from before checksums were kept get the column here.
            let n: i64 = sqlx::query(has_checksum)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
            if n == 0 {
                sqlx::query("ALTER TABLE schema_migrations ADD COLUMN checksum TEXT")
                    .execute(&mut *tx)
                    .await?;
            }
            let sql = match self.backend {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            let checksum = checksum(sql);
            let done = sqlx::query("SELECT checksum FROM schema_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = done {
                match row.try_get::<Option<String>, _>("checksum")? {
                    Some(stored) if stored != checksum => {
                        return Err(StoreError::MigrationChanged {
                            version: m.version,
                            name: m.name,
                        });
                    }
                    Some(_) => tx.rollback().await?,
                    // Applied before checksums were kept: what this release
                    // ships is taken as what was applied, once.
                    None => {
                        sqlx::query(
                            "UPDATE schema_migrations SET checksum = $1 WHERE version = $2",
                        )
                        .bind(checksum)
                        .bind(m.version)
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                    }
                }
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at, checksum) VALUES ($1, $2, $3, $4)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(now_millis())
            .bind(checksum)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
            applied.push(m.version);
        }
        Ok(applied)
    }
}

/// SHA-256 of a migration's text as applied, hex: a plain fingerprint (nothing
/// secret), so an edited migration file is noticed at start.
fn checksum(sql: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(sql.as_bytes()))
}

/// Wall-clock time for the migration bookkeeping column only; domain times are
/// always passed in.
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
