//! The account page: profile, re-authentication, password, passkeys, sessions
//! and API tokens. Every form posts to a handler that calls the API's own.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Section};
use super::{after_post, clear_flash, read_flash};
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::routes::{account as api_account, passkeys as api_passkeys, sessions, tokens};
use crate::views::{ChangePasswordRequest, CreateTokenRequest, PasskeyView, ReauthRequest};
use crate::{ApiError, AppState};

fn when(t: &str) -> &str {
    // RFC 3339 to the minute reads well enough and needs no client script.
    t.get(..16).unwrap_or(t)
}

fn unavailable(e: &ApiError) -> Markup {
    html! { p.muted { (e.detail) } }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    principal: Principal,
) -> Result<Response, ApiError> {
    let flash = read_flash(&headers);
    let passkeys = state
        .store()
        .list_passkeys(&principal.tenant_id, &principal.user_id)
        .await?;
    let passkeys: Vec<PasskeyView> = passkeys.iter().map(PasskeyView::from).collect();
    let sessions = sessions::list_sessions(State(state.clone()), principal.clone()).await;
    let tokens = tokens::list_tokens(State(state.clone()), principal.clone()).await;
    let Json(links) =
        crate::routes::sso::list_links(State(state.clone()), principal.clone()).await?;
    let providers = state
        .store()
        .list_sso_providers(Some(&principal.tenant_id))
        .await?;
    let unlinked: Vec<_> = providers
        .iter()
        .map(|p| &p.provider)
        .filter(|p| p.enabled && !links.links.iter().any(|l| l.provider_id == p.id.as_str()))
        .collect();
    let recent = principal
        .authenticated_at
        .is_some_and(|t| state.settings.reauth.is_recent(t, state.now()));
    let body = html! {
        @if !principal.mfa_satisfied {
            section.panel role="alert" {
                h2 { "Multi-factor sign-in required" }
                p { "Your company requires a passkey. Register one below, then verify with it to unlock the rest of Ward." }
                @if !passkeys.is_empty() {
                    p { button type="button" data-passkey-reauth { "Verify with my passkey" } }
                }
            }
        }
        div #passkey-error.flash.error role="alert" tabindex="-1" hidden {}
        section.panel aria-labelledby="profile" {
            h2 #profile { "Profile" }
            p { (principal.user.display_name) " · " (principal.email) " · role " strong { (principal.role.as_str()) } }
        }
        section.panel aria-labelledby="verify" {
            h2 #verify { "Confirm it is you" }
            @if recent {
                p { "You signed in or confirmed recently: sensitive actions are allowed." }
            } @else {
                p { "Sensitive actions (roles, keys, sign-in settings) need a recent confirmation." }
            }
            form method="post" action="/account/reauth" class="inline-fields" {
                div {
                    label for="reauth-password" { "Password" }
                    input #reauth-password type="password" name="password" autocomplete="current-password" required;
                }
                div { button type="submit" { "Confirm with password" } }
            }
            @if !passkeys.is_empty() {
                p { button.secondary type="button" data-passkey-reauth { "Confirm with a passkey" } }
            }
        }
        section.panel aria-labelledby="passkeys" {
            h2 #passkeys { "Passkeys" }
            @if passkeys.is_empty() {
                p.muted { "No passkeys yet." }
            } @else {
                table {
                    thead { tr { th { "Name" } th { "Added" } th { "Last used" } th { span.skip { "Actions" } } } }
                    tbody {
                        @for p in &passkeys {
                            tr {
                                td { (p.name) }
                                td { (when(&p.created_at)) }
                                td { (p.last_used_at.as_deref().map_or("never", when)) }
                                td {
                                    form method="post" action=(format!("/account/passkeys/{}/remove", p.id)) {
                                        button.danger type="submit" aria-label=(format!("Remove passkey {}", p.name)) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form data-passkey-register class="inline-fields" {
                div {
                    label for="passkey-name" { "New passkey name" }
                    input #passkey-name type="text" name="name" required maxlength="100" placeholder="e.g. laptop";
                }
                div { button type="submit" { "Register a passkey" } }
            }
        }
        section.panel aria-labelledby="sso-links" {
            h2 #sso-links { "Single sign-on" }
            p.muted { "A provider signs you in only once you link it here, from a password or passkey session. Every Admin of your company sees each link." }
            @if !links.links.is_empty() {
                ul {
                    @for l in &links.links {
                        li { "Linked to " strong { (l.provider) } " (" (l.linked_by) ", " (when(&l.created_at)) ")" }
                    }
                }
            }
            @for p in &unlinked {
                form method="post" action=(format!("/account/sso-links/{}", p.id)) {
                    button type="submit" { "Link " (p.name) " to my account" }
                }
            }
        }
        section.panel aria-labelledby="password" {
            h2 #password { "Change password" }
            p.muted { "Changing your password signs out all your sessions, this one included." }
            form method="post" action="/account/password" {
                label for="current_password" { "Current password" }
                input #current_password type="password" name="current_password" autocomplete="current-password" required;
                label for="new_password" { "New password" }
                input #new_password type="password" name="new_password" autocomplete="new-password" required minlength="12";
                label {
                    input type="checkbox" name="revoke_tokens" value="true" checked;
                    " Also revoke my API tokens (uncheck to keep automation running)"
                }
                p { button type="submit" { "Change password" } }
            }
        }
        section.panel aria-labelledby="sessions" {
            h2 #sessions { "Active sessions" }
            @match &sessions {
                Ok(Json(list)) => {
                    table {
                        thead { tr { th { "Signed in" } th { "How" } th { "From" } th { "Last seen" } th { span.skip { "Actions" } } } }
                        tbody {
                            @for s in &list.sessions {
                                tr {
                                    td { (when(&s.created_at)) }
                                    td { (s.auth_method) }
                                    td { (s.ip) br; span.muted { (s.user_agent.chars().take(60).collect::<String>()) } }
                                    td { (when(&s.last_seen_at)) }
                                    td {
                                        @if s.current {
                                            "this session"
                                        } @else {
                                            form method="post" action=(format!("/account/sessions/{}/revoke", s.id)) {
                                                button.danger type="submit" data-session=(s.id) { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Err(e) => { (unavailable(e)) }
            }
        }
        section.panel aria-labelledby="tokens" {
            h2 #tokens { "API tokens" }
            @match &tokens {
                Ok(Json(list)) => {
                    @if list.tokens.is_empty() {
                        p.muted { "No API tokens." }
                    } @else {
                        table {
                            thead { tr { th { "Name" } th { "Scope" } th { "Expires" } th { "Last used" } th { span.skip { "Actions" } } } }
                            tbody {
                                @for t in &list.tokens {
                                    tr {
                                        td { (t.name) }
                                        td { (t.scope) }
                                        td { (when(&t.expires_at)) }
                                        td { (t.last_used_at.as_deref().map_or("never", when)) }
                                        td {
                                            @if t.revoked_at.is_some() {
                                                "revoked"
                                            } @else {
                                                form method="post" action=(format!("/account/tokens/{}/revoke", t.id)) {
                                                    button.danger type="submit" { "Revoke" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form method="post" action="/account/tokens" class="inline-fields" {
                        div {
                            label for="token-name" { "Token name" }
                            input #token-name type="text" name="name" required maxlength="100";
                        }
                        div {
                            label for="token-scope" { "Scope" }
                            select #token-scope name="scope" {
                                @for r in ward_core::Role::ALL {
                                    @if r.is_at_most(principal.role) {
                                        option value=(r.as_str()) selected[r == principal.role] { (r.as_str()) }
                                    }
                                }
                            }
                        }
                        div {
                            label {
                                input type="checkbox" name="sensitive" value="true";
                                " Sensitive: may change security settings, lives one hour (needs a recent confirmation)"
                            }
                        }
                        div { button type="submit" { "Create token" } }
                    }
                }
                Err(e) => { (unavailable(e)) }
            }
        }
    };
    let mut r = layout::page(
        "Account",
        &principal,
        Section::Account,
        flash.as_ref(),
        body,
    )
    .into_response();
    if flash.is_some() {
        r.headers_mut().append(header::SET_COOKIE, clear_flash());
    }
    Ok(r)
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    current_password: String,
    new_password: String,
    /// A checkbox: present when ticked (it is by default).
    revoke_tokens: Option<String>,
}

pub(crate) async fn change_password(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Form(f): Form<PasswordForm>,
) -> Response {
    let req = ChangePasswordRequest {
        current_password: f.current_password,
        new_password: f.new_password,
        revoke_tokens: Some(f.revoke_tokens.is_some()),
    };
    let result = api_account::change_password(state, meta, principal, ApiJson(req)).await;
    let to = if result.is_ok() { "/login" } else { "/account" };
    after_post(
        to,
        result,
        "Password changed. Sign in again with the new password.",
    )
}

#[derive(Deserialize)]
pub(crate) struct ReauthForm {
    password: String,
}

pub(crate) async fn reauth(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Form(f): Form<ReauthForm>,
) -> Response {
    let req = ReauthRequest {
        password: f.password,
    };
    let result = api_passkeys::reauth_with_password(state, meta, principal, ApiJson(req)).await;
    after_post(
        "/account",
        result,
        "Confirmed. Sensitive actions are allowed for a while.",
    )
}

pub(crate) async fn revoke_session(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    id: Path<String>,
) -> Response {
    let result = sessions::revoke_session(state, meta, principal, id).await;
    after_post("/account", result, "Session revoked.")
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    name: String,
    scope: Option<String>,
    /// A checkbox: present when ticked.
    sensitive: Option<String>,
}

pub(crate) async fn create_token(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Form(f): Form<TokenForm>,
) -> Response {
    let req = CreateTokenRequest {
        name: f.name,
        scope: f.scope,
        expires_in_days: None,
        sensitive: Some(f.sensitive.is_some()),
        metrics: None,
    };
    let p = principal.clone();
    match tokens::create_token(state, meta, principal, ApiJson(req)).await {
        Ok((_, Json(created))) => {
            let body = html! {
                section.panel {
                    p { "Copy this token now: it is shown once and cannot be recovered." }
                    p.secret #token-secret { (created.secret) }
                    p { "Name " strong { (created.token.name) } ", scope " (created.token.scope) ", expires " (when(&created.token.expires_at)) "." }
                    p { a href="/account" { "Back to your account" } }
                }
            };
            layout::page("API token created", &p, Section::Account, None, body).into_response()
        }
        Err(e) => after_post::<()>("/account", Err(e), ""),
    }
}

pub(crate) async fn revoke_token(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    id: Path<String>,
) -> Response {
    let result = tokens::revoke_token(state, meta, principal, id).await;
    after_post("/account", result, "Token revoked.")
}

pub(crate) async fn remove_passkey(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    id: Path<String>,
) -> Response {
    let result = api_passkeys::remove_passkey(state, meta, principal, id).await;
    after_post("/account", result, "Passkey removed.")
}

/// Confirms a link: the ceremony starts here (a POST, so it cannot be forged
/// from another site), and the page shows where the browser goes next — a link,
/// because the page's CSP keeps form submissions on this site.
pub(crate) async fn start_sso_link(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    match crate::routes::sso::begin_link(&state, &meta, &principal, &id).await {
        Ok((url, cookie)) => {
            let body = html! {
                section.panel {
                    p { "Sign in at your identity provider to link it to " strong { (principal.email) } ". Every Admin of your company will see this link." }
                    p { a.button href=(url) { "Continue to the identity provider" } }
                    p { a href="/account" { "Cancel" } }
                }
            };
            let mut r = layout::page(
                "Link single sign-on",
                &principal,
                Section::Account,
                None,
                body,
            )
            .into_response();
            r.headers_mut().append(header::SET_COOKIE, cookie);
            r
        }
        Err(e) => after_post("/account", Err::<(), _>(e), ""),
    }
}
