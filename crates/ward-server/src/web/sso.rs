//! Single sign-on in the browser: identifier-first (the email's domain picks
//! the company's provider), the redirect to the provider, and the callback.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use ward_core::{Email, SsoProviderId};

use super::{Flash, layout, redirect_with};
use crate::extract::RequestMeta;
use crate::routes::auth::session_cookie_for;
use crate::sso::Finished;
use crate::{ApiError, AppState};

fn to_login(e: ApiError) -> Response {
    redirect_with(
        "/login",
        Flash {
            error: true,
            text: e.detail,
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct SsoForm {
    email: String,
}

/// The providers whose allowed domains include the email's.
pub(crate) async fn choose(State(state): State<AppState>, Form(f): Form<SsoForm>) -> Response {
    let Ok(email) = Email::parse(&f.email) else {
        return to_login(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "enter your work email address",
        ));
    };
    let providers = match state.store().list_sso_providers(None).await {
        Ok(p) => p,
        Err(e) => return to_login(e.into()),
    };
    let matching: Vec<_> = providers
        .into_iter()
        .filter(|p| p.provider.enabled && p.provider.allows_email(&email))
        .collect();
    if matching.is_empty() {
        return to_login(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "no_sso",
            "single sign-on is not set up for this email domain; sign in with your password or a passkey",
        ));
    }
    // A link, not a redirect: the page's CSP (`form-action 'self'`) forbids a
    // form submission from ending at another site, and the link shows users
    // where they are being sent before they go.
    layout::bare(
        "Continue with single sign-on",
        None,
        html! {
            p { "You will sign in at your company's identity provider and come back here." }
            ul {
                @for p in &matching {
                    li { a.button href=(format!("/sso/{}", p.provider.id)) { "Sign in with " (p.provider.name) } }
                }
            }
            p { a href="/login" { "Back" } }
        },
    )
    .into_response()
}

async fn start_with(
    state: &AppState,
    meta: &RequestMeta,
    p: &ward_store::StoredSsoProvider,
) -> Response {
    match crate::sso::start(state, meta, p, None).await {
        Ok((url, cookie)) => {
            let mut r = Redirect::to(&url).into_response();
            r.headers_mut().append(header::SET_COOKIE, cookie);
            r
        }
        // A 429 stays a 429 (with Retry-After), so clients and tests can tell.
        Err(e) if e.status == axum::http::StatusCode::TOO_MANY_REQUESTS => e.into_response(),
        Err(e) => to_login(e),
    }
}

/// `/sso/{id}`: a bookmarkable start for one provider.
pub(crate) async fn start(
    State(state): State<AppState>,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> Response {
    let found = match SsoProviderId::parse(&id) {
        Some(id) => state.store().find_sso_provider(&id).await,
        None => Ok(None),
    };
    match found {
        Ok(Some(p)) => start_with(&state, &meta, &p).await,
        Ok(None) => ApiError::not_found().into_response(),
        Err(e) => to_login(e.into()),
    }
}

pub(crate) async fn callback(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Query(cb): Query<crate::sso::Callback>,
) -> Response {
    match crate::sso::finish(&state, &meta, &headers, cb).await {
        Ok(Finished::SignedIn(done)) => match session_cookie_for(&state, &done.1) {
            Ok(cookie) => {
                let mut r = Redirect::to("/account").into_response();
                r.headers_mut().append(header::SET_COOKIE, cookie);
                r
            }
            Err(e) => e.into_response(),
        },
        Ok(Finished::Linked { provider }) => redirect_with(
            "/account",
            Flash {
                error: false,
                text: format!(
                    "Your account is now linked to {provider}: you can sign in through it. Every Admin of your company can see this link."
                ),
            },
        ),
        Err(e) if e.code == "link_refused" || e.code == "identity_linked" => redirect_with(
            "/account",
            Flash {
                error: true,
                text: e.detail,
            },
        ),
        Err(e) => to_login(e),
    }
}
