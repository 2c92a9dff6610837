//! The schema as the database itself reports it after the migrations: every
//! table and column with its type class and nullability, on either backend.
//! Tests compare it with the lists that must follow it (the backup snapshot's
//! tables and columns) and the two backends with each other, so a migration
//! that forgets one of them fails a test instead of silently losing data.

use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// A column's storage class, the one type mapping between the backends:
/// SQLite `INTEGER` is PostgreSQL `BIGINT` (or `INTEGER`), `TEXT` is `TEXT`,
/// `BLOB` is `BYTEA`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ColumnClass {
    Integer,
    Text,
    Bytes,
    /// A type outside the mapping (always a mistake in a migration).
    Other(String),
}

impl ColumnClass {
    fn of(declared: &str) -> Self {
        match declared.to_ascii_lowercase().as_str() {
            "integer" | "bigint" => ColumnClass::Integer,
            "text" => ColumnClass::Text,
            "blob" | "bytea" => ColumnClass::Bytes,
            other => ColumnClass::Other(other.to_owned()),
        }
    }
}

/// One column of one table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaColumn {
    pub table: String,
    pub column: String,
    pub class: ColumnClass,
    /// NOT NULL, or part of the primary key.
    pub not_null: bool,
}

impl Store {
    /// Every column of every table of Ward's schema, sorted by table and column.
    pub async fn schema_columns(&self) -> Result<Vec<SchemaColumn>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT m.name AS tbl, p.name AS col, p.type AS ty, \
                 CASE WHEN p.\"notnull\" = 1 OR p.pk > 0 THEN 1 ELSE 0 END AS nn \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
            }
            Backend::Postgres => {
                "SELECT c.table_name::text AS tbl, c.column_name::text AS col, \
                 c.data_type::text AS ty, \
                 CASE WHEN c.is_nullable::text = 'NO' THEN 1 ELSE 0 END::bigint AS nn \
                 FROM information_schema.columns c \
                 JOIN information_schema.tables t \
                   ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
                 WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
            }
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(SchemaColumn {
                    table: r.try_get("tbl")?,
                    column: r.try_get("col")?,
                    class: ColumnClass::of(&r.try_get::<String, _>("ty")?),
                    not_null: r.try_get::<i64, _>("nn")? != 0,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort();
        Ok(out)
    }
}
