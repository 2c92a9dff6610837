//! Company administration pages: users and roles, sign-in security (MFA policy),
//! and the audit log viewer.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::html;
use serde::Deserialize;
use ward_core::Permission;
use ward_core::mfa::MfaPolicy;

use super::layout::{self, Section};
use super::{after_post, clear_flash, read_flash};
use crate::extract::{ApiJson, ApiQuery, Principal, RequestMeta};
use crate::routes::{audit as api_audit, passkeys as api_passkeys, users as api_users};
use crate::views::{AuditQuery, CreateUserRequest, UpdateUserRequest};
use crate::{ApiError, AppState};

fn with_flash_cleared(mut r: Response, had_flash: bool) -> Response {
    if had_flash {
        r.headers_mut().append(header::SET_COOKIE, clear_flash());
    }
    r
}

pub(crate) async fn users(
    state: State<AppState>,
    headers: HeaderMap,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageUsers)?;
    let flash = read_flash(&headers);
    let Json(list) = api_users::list_users(state, principal.clone()).await?;
    let body = html! {
        table {
            thead { tr { th { "Name" } th { "Email" } th { "Role" } th { "Status" } th { span.skip { "Actions" } } } }
            tbody {
                @for u in &list.users {
                    tr {
                        td { (u.display_name) }
                        td { (u.email) }
                        td {
                            form method="post" action=(format!("/admin/users/{}", u.id)) class="inline-fields" {
                                label.skip for=(format!("role-{}", u.id)) { "Role of " (u.email) }
                                select id=(format!("role-{}", u.id)) name="role" {
                                    @for r in ward_core::Role::ALL {
                                        option value=(r.as_str()) selected[r.as_str() == u.role] { (r.as_str()) }
                                    }
                                }
                                button.secondary type="submit" { "Change role" }
                            }
                        }
                        td { @if u.disabled { "disabled" } @else { "active" } }
                        td {
                            @if !u.disabled {
                                form method="post" action=(format!("/admin/users/{}", u.id)) {
                                    input type="hidden" name="disabled" value="true";
                                    button.danger type="submit" { "Disable" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a user" }
        form method="post" action="/admin/users" {
            label for="new-email" { "Email" }
            input #new-email type="email" name="email" required;
            label for="new-name" { "Display name" }
            input #new-name type="text" name="display_name";
            label for="new-role" { "Role" }
            select #new-role name="role" {
                @for r in ward_core::Role::ALL { option value=(r.as_str()) selected[r == ward_core::Role::User] { (r.as_str()) } }
            }
            label for="new-password" { "Initial password" }
            input #new-password type="password" name="password" autocomplete="new-password" required minlength="12";
            p { button type="submit" { "Add user" } }
        }
    };
    let r = layout::page("Users", &principal, Section::Users, flash.as_ref(), body).into_response();
    Ok(with_flash_cleared(r, flash.is_some()))
}

#[derive(Deserialize)]
pub(crate) struct NewUserForm {
    email: String,
    display_name: Option<String>,
    role: String,
    password: String,
}

pub(crate) async fn create_user(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Form(f): Form<NewUserForm>,
) -> Response {
    let req = CreateUserRequest {
        email: f.email,
        display_name: f.display_name.filter(|n| !n.trim().is_empty()),
        role: f.role,
        password: f.password,
    };
    let result = api_users::create_user(state, meta, principal, ApiJson(req)).await;
    after_post("/admin/users", result, "User added.")
}

#[derive(Deserialize)]
pub(crate) struct UserForm {
    role: Option<String>,
    disabled: Option<bool>,
}

pub(crate) async fn update_user(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    id: Path<String>,
    Form(f): Form<UserForm>,
) -> Response {
    let req = UpdateUserRequest {
        display_name: None,
        role: f.role,
        disabled: f.disabled,
    };
    let result = api_users::update_user(state, meta, principal, id, ApiJson(req)).await;
    after_post("/admin/users", result, "User updated.")
}

pub(crate) async fn security(
    State(state): State<AppState>,
    headers: HeaderMap,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require(Permission::ManageSettings)?;
    let flash = read_flash(&headers);
    let policy = state.store().mfa_policy(&principal.tenant_id).await?;
    let describe = |p: MfaPolicy| match p {
        MfaPolicy::None => "None: a password or single sign-on is enough",
        MfaPolicy::RequireMfa => "Require MFA: a passkey, or MFA asserted by the identity provider",
        MfaPolicy::RequirePasskey => "Require a passkey",
    };
    let body = html! {
        section.panel aria-labelledby="mfa" {
            h2 #mfa { "Multi-factor sign-in" }
            p { "Current policy: " strong #mfa-current { (policy.as_str()) } }
            p.muted { "Changing it needs a recent confirmation of your identity (Account → Confirm it is you). Users without a passkey are asked to register one at their next sign-in." }
            form method="post" action="/admin/security/mfa" {
                fieldset {
                    legend { "Policy" }
                    @for p in MfaPolicy::ALL {
                        div {
                            input type="radio" name="policy" id=(format!("mfa-{}", p.as_str())) value=(p.as_str()) checked[p == policy];
                            label for=(format!("mfa-{}", p.as_str())) .choice { (describe(p)) }
                        }
                    }
                }
                p { button type="submit" { "Save policy" } }
            }
        }
    };
    let r = layout::page(
        "Sign-in security",
        &principal,
        Section::Security,
        flash.as_ref(),
        body,
    )
    .into_response();
    Ok(with_flash_cleared(r, flash.is_some()))
}

#[derive(Deserialize)]
pub(crate) struct MfaForm {
    policy: String,
}

pub(crate) async fn set_mfa_policy(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Form(f): Form<MfaForm>,
) -> Response {
    let req = crate::views::MfaPolicyView { policy: f.policy };
    let result = api_passkeys::set_mfa_policy(state, meta, principal, ApiJson(req)).await;
    after_post("/admin/security", result, "MFA policy saved.")
}

/// The audit viewer: filters, newest first, paged by cursor, with export links
/// built from the same filters.
pub(crate) async fn audit(
    state: State<AppState>,
    headers: HeaderMap,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadAuditLog)?;
    let flash = read_flash(&headers);
    let filters: Vec<(&str, String)> = [
        ("action", q.action.clone()),
        ("actor", q.actor.clone()),
        ("since", q.since.clone()),
        ("until", q.until.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    let query = AuditQuery {
        action: q.action.filter(|v| !v.is_empty()),
        actor: q.actor.filter(|v| !v.is_empty()),
        since: q.since.filter(|v| !v.is_empty()),
        until: q.until.filter(|v| !v.is_empty()),
        before: q.before,
        limit: Some(q.limit.unwrap_or(50)),
    };
    let Json(page) = api_audit::list_events(state, principal.clone(), ApiQuery(query)).await?;
    let encoded = |extra: &[(&str, String)]| -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in filters.iter().chain(extra.iter()) {
            s.append_pair(k, v);
        }
        s.finish()
    };
    let value = |k: &str| {
        filters
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let body = html! {
        form method="get" action="/audit" class="inline-fields" role="search" {
            div { label for="f-action" { "Action" } input #f-action type="search" name="action" value=(value("action")) placeholder="auth.login"; }
            div { label for="f-actor" { "Actor id" } input #f-actor type="search" name="actor" value=(value("actor")); }
            div { label for="f-since" { "Since (RFC 3339)" } input #f-since type="text" name="since" value=(value("since")); }
            div { label for="f-until" { "Until (RFC 3339)" } input #f-until type="text" name="until" value=(value("until")); }
            div { button type="submit" { "Filter" } }
        }
        p {
            "Export these events: "
            @for format in ["csv", "jsonl", "ocsf", "cef"] {
                a href=(format!("/api/v1/audit/export?{}", encoded(&[("format", format.to_owned())]))) { (format) } " "
            }
        }
        table {
            thead { tr { th { "When" } th { "Action" } th { "Outcome" } th { "Actor" } th { "Target" } th { "From" } } }
            tbody {
                @for e in &page.events {
                    tr {
                        td { (e.occurred_at.get(..19).unwrap_or(&e.occurred_at)) }
                        td { code { (e.action) } }
                        td { (e.outcome) }
                        td { (e.actor_label) }
                        td { (e.target_kind.as_deref().unwrap_or("")) " " span.muted { (e.target_id.as_deref().unwrap_or("")) } }
                        td { (e.ip) }
                    }
                }
            }
        }
        @if page.events.is_empty() { p.muted { "No events match." } }
        @if let Some(next) = page.next_before {
            p { a href=(format!("/audit?{}", encoded(&[("before", next.to_string())]))) rel="next" { "Older events" } }
        }
    };
    let r = layout::page(
        "Audit log",
        &principal,
        Section::Audit,
        flash.as_ref(),
        body,
    )
    .into_response();
    Ok(with_flash_cleared(r, flash.is_some()))
}
