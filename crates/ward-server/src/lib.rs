//! Ward's HTTP server: the axum app (routes, extractors, middleware), its state,
//! and serving it over plain TCP or TLS (rustls).
//!
//! Handlers are thin: they authenticate, check the permission matrix, call the
//! store with the audit event for the change, and map errors to problem details.
#![forbid(unsafe_code)]

pub mod access;
mod app;
pub mod audit_export;
pub mod audit_verify;
pub mod audit_verify_parallel;
pub mod client_ip;
pub mod domain_verify;
mod extract;
pub mod metrics;
mod middleware;
mod openapi;
mod passkeys;
mod path_guard;
mod problem;
mod routes;
mod serve;
mod session_lookup;
mod settings;
pub mod sso;
mod sso_discovery;
mod state;
mod views;
mod web;

pub use app::build_app;
pub use openapi::openapi;
pub use problem::{ApiError, PROBLEM_CODES, Problem};
pub use serve::{ServeError, serve};
pub use settings::{
    LoginThrottleSettings, RateLimitSettings, ServerSettings, TlsFiles, WebAuthnSettings,
};
pub use state::{AppState, Inner, Keys};
pub use ward_jobs::{Clock, SystemClock};

/// Installs ring as the process's rustls provider (idempotent). Outbound HTTPS
/// (webhook and HEC sinks) and any HTTP client built without an explicit TLS
/// configuration need one; Ward never uses another provider.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
