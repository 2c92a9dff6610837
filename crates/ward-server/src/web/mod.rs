//! The web interface: server-rendered pages (maud) under the strict CSP, static
//! assets with content-hashed names, flash messages, and HTML error pages. Pages
//! call the same handlers as the API, so a form and its API route cannot drift.

mod account;
mod admin;
mod assets;
mod layout;
mod rules;
mod signin;
mod sso;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::AppState;

pub(crate) use assets::{SCRIPT_PATH, STYLE_PATH};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/account") }))
        .route("/login", get(signin::page).post(signin::submit))
        .route("/logout", post(signin::logout))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/reauth", post(account::reauth))
        .route(
            "/account/sessions/{id}/revoke",
            post(account::revoke_session),
        )
        .route("/account/tokens", post(account::create_token))
        .route("/account/sso-links/{id}", post(account::start_sso_link))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route(
            "/account/passkeys/{id}/remove",
            post(account::remove_passkey),
        )
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}", post(admin::update_user))
        .route("/admin/security", get(admin::security))
        .route("/admin/security/mfa", post(admin::set_mfa_policy))
        .route("/audit", get(admin::audit))
        .route("/sso", post(sso::choose))
        .route("/sso/callback", get(sso::callback))
        .route("/sso/{id}", get(sso::start))
        .route("/admin/security/sso", post(admin::create_provider))
        .route("/admin/security/sso/{id}", post(admin::update_provider))
        .route(
            "/admin/security/sso/{id}/delete",
            post(admin::delete_provider),
        )
        .route("/rules", get(rules::list).post(rules::create))
        .route("/rules/new", get(rules::new_page))
        .route("/rules/export", get(rules::export))
        .route("/rules/{id}", get(rules::show).post(rules::save))
        .route("/rules/{id}/diff", get(rules::diff))
        .route("/rules/{id}/tests", post(rules::save_tests))
        .route("/rules/{id}/tests/run", post(rules::run_tests))
        .route("/rules/{id}/submit", post(rules::submit))
        .route("/rules/{id}/review", get(rules::review))
        .route("/rules/{id}/approve", post(rules::approve))
        .route("/rules/{id}/reject", post(rules::reject))
        .route("/rules/{id}/delete", post(rules::delete))
        .route("/reviews", get(rules::queue))
        .route("/static/{name}", get(assets::serve))
}

/// Whether a path belongs to the web interface (not the API, not operations).
fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/")
        || path == "/openapi.json"
        || path == "/healthz"
        || path == "/readyz"
        || path == "/metrics")
}

/// Errors on page paths become HTML pages that show the problem's title and
/// detail (already safe to show: problem details never carry internals), and a
/// page that needs a session sends the browser to the sign-in page instead.
pub(crate) async fn html_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    // Browsers ask for HTML; scripts and API clients keep problem details.
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let resp = next.run(req).await;
    if !is_page(&path) || !wants_html {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return resp;
    }
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED && method == Method::GET {
        return Redirect::to("/login").into_response();
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let text = |k: &str| {
        problem
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mut page = layout::error_page(status, &text("title"), &text("detail")).into_response();
    *page.status_mut() = status;
    for name in [header::RETRY_AFTER, header::SET_COOKIE] {
        if let Some(v) = parts.headers.get(&name) {
            page.headers_mut().insert(name, v.clone());
        }
    }
    page
}

/// A one-time message shown on the next page, carried in a short-lived cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    pub error: bool,
    pub text: String,
}

const FLASH_COOKIE: &str = "ward_flash";

fn flash_cookie(f: &Flash) -> HeaderValue {
    let kind = if f.error { "e" } else { "i" };
    // Browsers drop cookies above 4 KiB: keep the message well under it.
    let text: String = f.text.chars().take(500).collect();
    let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
    HeaderValue::from_str(&format!(
        "{FLASH_COOKIE}={kind}{encoded}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn read_flash(headers: &axum::http::HeaderMap) -> Option<Flash> {
    let raw = crate::extract::cookie_value(headers, FLASH_COOKIE)?;
    let (kind, rest) = raw.split_at_checked(1)?;
    let text: String = url::form_urlencoded::parse(format!("t={rest}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    Some(Flash {
        error: kind == "e",
        text: text.chars().take(500).collect(),
    })
}

pub(crate) fn clear_flash() -> HeaderValue {
    HeaderValue::from_static("ward_flash=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// Redirect after a form post (303, so the browser follows with GET), with a
/// message for the next page.
pub(crate) fn redirect_with(to: &str, flash: Flash) -> Response {
    let mut r = Redirect::to(to).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, flash_cookie(&flash));
    r
}

/// The outcome of a form post: done (with a message), or refused with the API's
/// own explanation.
pub(crate) fn after_post<T>(to: &str, result: Result<T, crate::ApiError>, done: &str) -> Response {
    match result {
        Ok(_) => redirect_with(
            to,
            Flash {
                error: false,
                text: done.to_owned(),
            },
        ),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Redirect::to("/login").into_response(),
        Err(e) => redirect_with(
            to,
            Flash {
                error: true,
                text: e.detail,
            },
        ),
    }
}
