//! Refuses request paths whose segments decode to control characters or to bytes
//! that are not UTF-8, before any route sees them. No identifier or page name
//! holds such a character, and letting one through reached places that cannot
//! carry it: axum's `Path` answered invalid UTF-8 with a plain-text 400, and a
//! page that redirects back to `/rules/{id}` built a `Location` header holding
//! CR LF, which axum's `Redirect` turns into a plain-text 500. One check here
//! answers every route alike, with problem details.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use crate::ApiError;

/// Middleware: a path that is not clean text answers 400 `invalid_path`.
pub(crate) async fn refuse_unclean_paths(req: Request, next: Next) -> Response {
    if !is_clean_path(req.uri().path()) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "the request path holds a control character or bytes that are not UTF-8",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether the percent-decoded path is UTF-8 without control characters (C0,
/// DEL and C1: all of `char::is_control`).
fn is_clean_path(path: &str) -> bool {
    match percent_decode_str(path).decode_utf8() {
        Ok(text) => !text.chars().any(char::is_control),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_clean_path;

    #[test]
    fn check() {
        for ok in [
            "/api/v1/rules/rul_abc/tests/run",
            "/rules/%C3%A9t%C3%A9",
            "/a%20b",
            "/%25",
        ] {
            assert!(is_clean_path(ok), "{ok}");
        }
        for bad in [
            "/api/v1/rules/%0d%0aX/tests/run",
            "/rules/%00",
            "/rules/%7f",
            "/rules/%ff",
            "/rules/%c2%85",
            "/rules/a%09b",
        ] {
            assert!(!is_clean_path(bad), "{bad}");
        }
    }
}
