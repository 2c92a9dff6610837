//! Errors as RFC 9457 problem details (`application/problem+json`) with a stable
//! `code`. The one place where domain and storage errors become HTTP statuses, and
//! where internals stop: a 500 says "internal error" and nothing else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use ward_core::InvalidField;
use ward_store::{Conflict, StoreError};

/// Every stable `code` a problem body carries, in the order docs/api.md lists
/// them: the enum of the OpenAPI `Problem` schema. A problem rendered with a code
/// missing here fails in debug builds (every test), and a test keeps docs/api.md
/// in step.
pub const PROBLEM_CODES: &[&str] = &[
    "malformed_json",
    "invalid_query",
    "no_session",
    "proof_out_of_range",
    "passkey_refused",
    "sso_failed",
    "no_sso",
    "invalid_path",
    "unauthenticated",
    "reauth_failed",
    "invalid_credentials",
    "session_invalid",
    "token_invalid",
    "metrics_token_required",
    "forbidden",
    "role_escalation",
    "session_required",
    "wrong_password",
    "csrf_rejected",
    "mfa_required",
    "reauthentication_required",
    "separation_of_duties",
    "sensitive_capability_required",
    "link_refused",
    "not_found",
    "method_not_allowed",
    "conflict",
    "identity_linked",
    "domain_taken",
    "email_taken",
    "last_admin",
    "last_factor",
    "would_lock_out",
    "no_passkey",
    "name_taken",
    "duplicate_rule_id",
    "stale_version",
    "no_tests",
    "no_positive_test",
    "tests_failing",
    "invalid_transition",
    "already_approved",
    "key_destroyed",
    "decryption_failed",
    "body_too_large",
    "unsupported_media_type",
    "invalid_body",
    "invalid_field",
    "invalid_credential",
    "domain_verification_failed",
    "domain_not_verified",
    "email_unavailable",
    "credentials_required",
    "invalid_rule",
    "invalid_bundle",
    "import_failed",
    "rate_limited",
    "login_throttled",
    "password_locked",
    "internal",
    "unavailable",
    "passkeys_unavailable",
];

/// The problem details body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:ward:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable error code (one of `PROBLEM_CODES`, the enum the
    /// OpenAPI document states).
    pub code: String,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error a handler returns.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<String>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow this",
        )
    }

    pub fn unauthenticated(code: &'static str, detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    /// A 500 whose response says nothing, logged once with where it was
    /// raised, so no internal error is silent (the caller's cause, when it
    /// has one worth keeping, is logged beside it by the caller).
    #[track_caller]
    pub fn internal() -> Self {
        let at = std::panic::Location::caller();
        tracing::error!(file = at.file(), line = at.line(), "internal error");
        Self::internal_logged()
    }

    /// A 500 for a cause already logged (e.g. a storage error).
    pub fn internal_logged() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    pub fn invalid_field(e: InvalidField) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            e.to_string(),
        );
        err.field = Some(e.field.to_owned());
        err
    }

    pub fn too_many(code: &'static str, detail: &str, retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, code, detail);
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }
}

impl From<InvalidField> for ApiError {
    fn from(e: InvalidField) -> Self {
        Self::invalid_field(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(Conflict::EmailTaken) => {
                let mut err = Self::new(
                    StatusCode::CONFLICT,
                    "email_taken",
                    "a user with this email already exists",
                );
                err.field = Some("email".to_owned());
                err
            }
            StoreError::Conflict(_) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "conflicts with existing data",
            ),
            StoreError::NotFound => Self::not_found(),
            StoreError::Unavailable(_) => {
                tracing::error!(error = %e, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable",
                )
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Self::internal_logged()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        debug_assert!(
            PROBLEM_CODES.contains(&self.code),
            "problem code {:?} is missing from problem::PROBLEM_CODES (and docs/api.md)",
            self.code
        );
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = Problem {
            kind: format!("urn:ward:problem:{}", self.code),
            title,
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            field: self.field,
        };
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = (self.status, json).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Serde's messages quote the offending value (`invalid type: string "…"`), which
/// may be a password sent in the wrong field. Keep the field path and the expected
/// type; drop the value.
pub(crate) fn scrub_serde_message(msg: &str) -> String {
    for marker in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(start) = msg.find(marker) {
            let head = &msg[..start];
            let expected = msg[start..]
                .find(", expected")
                .map(|i| &msg[start + i + 2..])
                .unwrap_or("");
            let what = marker.trim_end_matches([':', ' ']);
            return format!("{head}{what} ({expected})").trim().to_owned();
        }
    }
    msg.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_values_keeps_paths() {
        let m =
            "password: invalid type: string \"hunter2hunter2\", expected u32 at line 1 column 30";
        let s = scrub_serde_message(m);
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.starts_with("password: invalid type (expected u32"), "{s}");
        assert_eq!(
            scrub_serde_message("unknown field `x`, expected `a`"),
            "unknown field `x`, expected `a`"
        );
    }
}
