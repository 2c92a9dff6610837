//! API tests against the real server on a real port, each on SQLite and on
//! PostgreSQL with a fresh database (one test binary, to keep link time down).

mod access;
mod audit_formats;
mod audit_log;
mod auth;
mod connections;
mod egress;
mod forwarding;
mod hardening;
mod harness;
mod hostile_input;
mod identity_attacks;
mod input;
mod lockout;
mod metrics_access;
mod oidc;
mod passkeys;
mod rule_reviews;
mod rules;
mod secrets_in_urls;
mod soft_authenticator;
mod tokens;
mod users;
