//! All of Ward's SQL: the schema and its migrations, and the repositories for
//! tenants, users, sessions, API tokens and the audit trail — the same queries on
//! SQLite (the embedded default) and PostgreSQL (production and scale-out).
//!
//! One code path serves both backends through sqlx's `Any` driver: the SQL here
//! sticks to the common dialect (`$n` parameters, BIGINT/INTEGER, TEXT, bytes).
//! Every method that changes state takes the audit event describing the change
//! and writes both in one transaction.
#![forbid(unsafe_code)]

mod audit;
mod audit_appender;
mod audit_direct;
mod audit_log;
mod audit_sinks;
mod connections;
mod domains;
pub mod encrypted;
mod error;
mod identities;
mod installation;
mod job_queue;
mod keys;
mod leases;
mod migrate;
mod passkeys;
mod pg_tls;
mod revoke;
mod rows;
mod rule_reviews;
mod rules;
mod schema;
mod sessions;
mod snapshot;
mod sqlite_btree;
mod sso;
mod tenants;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tokens;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use audit::AuditFilter;
pub use audit_direct::{DirectLeaf, DirectLogReader};
pub use audit_log::{LeafRecord, NewLeaf, StoredCheckpoint};
pub use audit_sinks::StoredSink;
pub use connections::SealedCredentials;
pub use domains::DomainClaim;
pub use encrypted::{CiphertextSwap, ENCRYPTED_FIELDS, EncryptedField, StoredCiphertext};
pub use error::{Conflict, StoreError};
pub use identities::ExternalIdentity;
pub use installation::InstallationRecord;
pub use job_queue::{JobLock, JobRecord, JobState, NewJob};
pub use keys::{KeyToRewrap, StoredKey};
pub use migrate::MIGRATIONS;
pub use passkeys::{PasskeyEffect, PasskeyRemoval, PasskeyUse, PasskeyUseRecord};
pub use rule_reviews::{
    ImportItem, NewReview, ReviewDecision, RuleWithText, StoredApproval, StoredReview,
};
pub use rules::{StoredTestRun, VersionSaved};
pub use schema::{ColumnClass, SchemaColumn};
pub use snapshot::{NOT_BACKED_UP, SnapshotCounts, backed_up_columns};
pub use sso::{SealedSecret, StoredSsoProvider};
pub use users::UpdateOutcome;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The database handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The database file of a SQLite store (`None` for PostgreSQL and in-memory
    /// SQLite), for the connections that bypass sqlx: the audit writer thread and
    /// the verifier's direct reads.
    sqlite_file: Option<std::path::PathBuf>,
    /// Group commit for standalone audit events, started on first use.
    appender: std::sync::Arc<std::sync::OnceLock<audit::GroupCommit>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone, Copy)]
pub struct ConnectSettings {
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl Default for ConnectSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl Store {
    /// Connects to `sqlite://PATH` or `postgres://...`. For SQLite the file is
    /// created if missing and put in WAL mode. A PostgreSQL URL's `sslmode` and
    /// `sslrootcert` are checked first (`pg_tls.rs`), and a refused certificate is
    /// reported as such.
    pub async fn connect(url: &str, settings: ConnectSettings) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(|_| StoreError::UnsupportedUrl)?;
        let tls = match backend {
            Backend::Postgres => {
                Some(pg_tls::PgTls::from_options(&options).map_err(StoreError::Unavailable)?)
            }
            Backend::Sqlite => None,
        };
        let describe = |e: &sqlx::Error| {
            tls.as_ref()
                .and_then(|tls| tls.describe(e))
                .unwrap_or_else(|| describe_connect_error(e))
        };
        // One direct attempt first: a pool only reports "timed out" however it failed,
        // and an operator needs to know whether the server refused or is unreachable.
        match tokio::time::timeout(
            settings.connect_timeout,
            <sqlx::AnyConnection as sqlx::Connection>::connect_with(&options),
        )
        .await
        .ok()
        {
            Some(Ok(conn)) => {
                let _ = sqlx::Connection::close(conn).await;
            }
            Some(Err(e)) => return Err(StoreError::Unavailable(describe(&e))),
            None => {
                return Err(StoreError::Unavailable(
                    "timed out connecting to the database".to_owned(),
                ));
            }
        }
        let mut pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time is SQLite's model; a few readers help WAL.
                Backend::Sqlite => settings.max_connections.min(4),
                Backend::Postgres => settings.max_connections,
            })
            .acquire_timeout(settings.connect_timeout);
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL: readers never block the writer. foreign_keys is off by
                    // default in SQLite. busy_timeout turns lock contention into a wait.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(describe(&e)))?;
        let sqlite_file = match backend {
            Backend::Sqlite => {
                let file: Option<String> =
                    sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                        .fetch_optional(&pool)
                        .await?;
                file.filter(|f| !f.is_empty()).map(std::path::PathBuf::from)
            }
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            backend,
            sqlite_file,
            appender: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Readiness: one round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction. On SQLite, `BEGIN IMMEDIATE` takes the write lock
    /// up front, so two writers queue on busy_timeout instead of deadlocking on a
    /// read-to-write upgrade.
    /// Makes changes to one company's users and sign-in factors take turns (SQLite's
    /// `BEGIN IMMEDIATE` already serializes writers; PostgreSQL locks the row).
    async fn lock_company(
        &self,
        tx: &mut Transaction<'static, Any>,
        tenant: &ward_core::TenantId,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE")
                .bind(tenant.as_str().to_owned())
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }
}

/// One line that says what went wrong connecting, without the URL (it may hold a
/// password).
fn describe_connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => format!("cannot reach the database server: {io}"),
        sqlx::Error::PoolTimedOut => "timed out connecting to the database".to_owned(),
        sqlx::Error::Database(db) => {
            format!("the database refused the connection: {}", db.message())
        }
        sqlx::Error::Configuration(_) => "the database URL is not valid".to_owned(),
        other => format!("cannot connect to the database: {other}"),
    }
}
