//! API tests against the real server on a real port, each on SQLite and on
//! PostgreSQL with a fresh database (one test binary, to keep link time down).

mod access;
mod auth;
mod hardening;
mod harness;
mod input;
mod tokens;
mod users;

/// Declares `sqlite::name` and `postgres::name` tests for async fns taking a backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(ward_store::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(ward_store::Backend::Postgres).await } )*
        }
    };
}
