//! Lists that check themselves: the backup snapshot against the migrated
//! schema, the two backends' schemas against each other, and applied
//! migrations against their checksums. Each fails when a migration forgets one.

use std::collections::BTreeSet;

use ward_store::testing::TestDatabase;
use ward_store::{
    Backend, ColumnClass, NOT_BACKED_UP, SchemaColumn, StoreError, backed_up_columns,
};

use super::fresh;

ward_store::on_both_backends!(
    every_table_and_column_is_backed_up_or_excluded,
    an_edited_migration_is_refused_at_start,
);

/// A new table or column a backup does not copy would be lost at restore.
async fn every_table_and_column_is_backed_up_or_excluded(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let schema = store.schema_columns().await.expect("schema");
    let in_schema: BTreeSet<(String, String)> = schema
        .iter()
        .filter(|c| !NOT_BACKED_UP.contains(&c.table.as_str()))
        .map(|c| (c.table.clone(), c.column.clone()))
        .collect();
    let in_backup: BTreeSet<(String, String)> = backed_up_columns()
        .map(|(t, c)| (t.to_owned(), c.to_owned()))
        .collect();
    let missing: Vec<_> = in_schema.difference(&in_backup).collect();
    assert!(
        missing.is_empty(),
        "columns a backup would lose (add them to snapshot.rs TABLES, or the table to NOT_BACKED_UP with why): {missing:?}"
    );
    let stale: Vec<_> = in_backup.difference(&in_schema).collect();
    assert!(
        stale.is_empty(),
        "the backup names columns the schema lacks: {stale:?}"
    );
    // Every excluded table exists (a renamed table would slip out of both lists).
    for t in NOT_BACKED_UP {
        assert!(
            schema.iter().any(|c| c.table == *t),
            "{t} is excluded but does not exist"
        );
    }
}

/// The same tables, columns, type classes and nullability on both backends.
#[tokio::test]
async fn sqlite_and_postgres_schemas_agree() {
    let (_a, sqlite) = fresh(Backend::Sqlite).await;
    let (_b, postgres) = fresh(Backend::Postgres).await;
    let a = sqlite.schema_columns().await.expect("sqlite schema");
    let b = postgres.schema_columns().await.expect("postgres schema");
    let odd: Vec<&SchemaColumn> = a
        .iter()
        .chain(b.iter())
        .filter(|c| matches!(c.class, ColumnClass::Other(_)))
        .collect();
    assert!(
        odd.is_empty(),
        "types outside the INTEGER/TEXT/BLOB mapping: {odd:?}"
    );
    let a: BTreeSet<_> = a.into_iter().collect();
    let b: BTreeSet<_> = b.into_iter().collect();
    let only_sqlite: Vec<_> = a.difference(&b).collect();
    let only_postgres: Vec<_> = b.difference(&a).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "the migrations disagree:\n only SQLite: {only_sqlite:?}\n only PostgreSQL: {only_postgres:?}"
    );
}

/// A migration edited after it was applied is refused with one clear error,
/// and a database from before checksums were kept gets them once.
async fn an_edited_migration_is_refused_at_start(backend: Backend) {
    let (db, store) = fresh(backend).await;
    let pool = raw(&db).await;
    sqlx::query("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 7")
        .execute(&pool)
        .await
        .expect("tamper");
    match store.migrate().await {
        Err(e @ StoreError::MigrationChanged { version: 7, .. }) => {
            assert!(e.to_string().contains("migration 7 (rules)"), "{e}");
        }
        other => panic!("expected MigrationChanged, got {other:?}"),
    }
    // As a database from before checksums: filled in once, then checked.
    sqlx::query("UPDATE schema_migrations SET checksum = NULL")
        .execute(&pool)
        .await
        .expect("forget");
    store.migrate().await.expect("backfill");
    let nulls: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations WHERE checksum IS NULL")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(nulls, 0);
    store.migrate().await.expect("unchanged migrations pass");
}

async fn raw(db: &TestDatabase) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&db.url).await.expect("raw pool")
}
