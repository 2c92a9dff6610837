//! The storage error type, and the one place that maps constraint violations to
//! domain conflicts.

/// A uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    EmailTaken,
    SlugTaken,
    ConnectionNameTaken,
    SinkNameTaken,
    ProviderNameTaken,
    RuleIdTaken,
    /// The external identity, or this account's link to the provider, exists.
    IdentityLinked,
    /// Another company holds this email domain verified.
    DomainTaken,
    AlreadyInitialized,
    Other,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database URL must start with sqlite:// or postgres://")]
    UnsupportedUrl,
    #[error("{0}")]
    Unavailable(String),
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("not found")]
    NotFound,
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error(
        "the database schema is at version {found}, newer than this Ward ({known}); upgrade Ward"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error(
        "migration {version} ({name}) is not the one applied to this database (its checksum changed): run the Ward release that created the database, never edited migration files"
    )]
    MigrationChanged { version: i64, name: &'static str },
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            // PostgreSQL names the constraint; SQLite names the columns.
            let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            let conflict = if text.contains("users_email_key") || text.contains("users.email") {
                Conflict::EmailTaken
            } else if text.contains("tenants_slug_key") || text.contains("tenants.slug") {
                Conflict::SlugTaken
            } else if text.contains("connections_tenant_name_key")
                || text.contains("connections.tenant_id")
            {
                Conflict::ConnectionNameTaken
            } else if text.contains("audit_sinks_name_key") || text.contains("audit_sinks.name") {
                Conflict::SinkNameTaken
            } else if text.contains("sso_providers_tenant_name_key")
                || text.contains("sso_providers.tenant_id")
            {
                Conflict::ProviderNameTaken
            } else if text.contains("rules_tenant_sigma_id_key") || text.contains("rules.tenant_id")
            {
                Conflict::RuleIdTaken
            } else if text.contains("external_identities") {
                Conflict::IdentityLinked
            } else if text.contains("tenant_domains") {
                Conflict::DomainTaken
            } else if text.contains("installation") {
                Conflict::AlreadyInitialized
            } else {
                Conflict::Other
            };
            return StoreError::Conflict(conflict);
        }
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Database(other),
        }
    }
}
