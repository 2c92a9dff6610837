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
use crate::routes::{
    audit as api_audit, passkeys as api_passkeys, sso as api_sso, users as api_users,
};
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

/// The company's recent identity events the Security page shows every Admin.
async fn identity_notices(
    state: &AppState,
    tenant: &ward_core::TenantId,
) -> Result<Vec<ward_core::audit::StoredAuditEvent>, ApiError> {
    use ward_core::audit::actions as a;
    let filter = ward_store::AuditFilter {
        tenant_id: Some(tenant.clone()),
        any_action: [
            a::SSO_PROVIDER_CREATED,
            a::SSO_PROVIDER_UPDATED,
            a::SSO_PROVIDER_DELETED,
            a::SSO_IDENTITY_LINKED,
            a::SSO_IDENTITY_UNLINKED,
            a::DOMAIN_VERIFIED,
        ]
        .map(str::to_owned)
        .to_vec(),
        limit: 20,
        ..Default::default()
    };
    Ok(state.store().list_audit(&filter).await?)
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
    let providers = api_sso::list_providers(State(state.clone()), principal.clone()).await;
    let notices = identity_notices(&state, &principal.tenant_id).await?;
    let body = html! {
        section.panel aria-labelledby="identity-notices" {
            h2 #identity-notices { "Sign-in changes" }
            p.muted { "Every change to an identity provider and every account an SSO sign-in linked or created, newest first. Whoever controls a provider can sign in as anyone linked to it." }
            @if notices.is_empty() {
                p.muted { "None yet." }
            } @else {
                table {
                    thead { tr { th { "When" } th { "What" } th { "By" } th { "Provider" } } }
                    tbody {
                        @for n in &notices {
                            tr {
                                td { (n.occurred_at.to_rfc3339().get(..16).unwrap_or_default()) }
                                td { (n.action) }
                                td { (n.actor.label) }
                                td { (n.details.get("provider").or_else(|| n.details.get("name")).and_then(|v| v.as_str()).unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
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
        section.panel aria-labelledby="sso" {
            h2 #sso { "Single sign-on (OpenID Connect)" }
            @match &providers {
                Ok(Json(list)) => {
                    @if list.providers.is_empty() {
                        p.muted { "No identity providers yet." }
                    }
                    @for p in &list.providers {
                        div.provider {
                            h3 { (p.name) @if !p.enabled { " (turned off)" } }
                            table {
                                tbody {
                                    tr { th scope="row" { "Issuer" } td { (p.issuer) } }
                                    tr { th scope="row" { "Client id" } td { (p.client_id) " · secret " (if p.client_secret_set { "stored" } else { "none (public client)" }) } }
                                    tr { th scope="row" { "Email domains" } td { (p.allowed_domains.join(", ")) } }
                                    tr { th scope="row" { "Provisioning" } td { (if p.jit_provisioning { "accounts created at first sign-in" } else { "existing accounts only" }) } }
                                    tr { th scope="row" { "Roles from groups" } td {
                                        @for m in &p.role_mappings { (m.group) " → " (m.role.as_str()) "; " }
                                        "otherwise " (p.default_role.as_deref().unwrap_or("refused"))
                                    } }
                                    tr { th scope="row" { "Redirect URI" } td { code { (p.redirect_uri) } } }
                                    tr { th scope="row" { "Sign-in link" } td { a href=(p.sign_in_url) { (p.sign_in_url) } } }
                                }
                            }
                            form method="post" action=(format!("/admin/security/sso/{}", p.id)) {
                                input type="hidden" name="enabled" value=(if p.enabled { "false" } else { "true" });
                                button.secondary type="submit" { (if p.enabled { "Turn off" } else { "Turn on" }) }
                            }
                            " "
                            form method="post" action=(format!("/admin/security/sso/{}/delete", p.id)) {
                                button.danger type="submit" aria-label=(format!("Delete provider {}", p.name)) { "Delete" }
                            }
                        }
                    }
                    h3 { "Add a provider" }
                    p.muted { "Presets for Okta, Microsoft Entra ID and Google Workspace are in docs/sign-in.md." }
                    form method="post" action="/admin/security/sso" {
                        label for="sso-name" { "Name (shown to users)" }
                        input #sso-name type="text" name="name" required maxlength="100";
                        label for="sso-issuer" { "Issuer URL" }
                        input #sso-issuer type="text" name="issuer" required placeholder="https://acme.okta.com";
                        label for="sso-client-id" { "Client id" }
                        input #sso-client-id type="text" name="client_id" required;
                        label for="sso-client-secret" { "Client secret" }
                        input #sso-client-secret type="password" name="client_secret" autocomplete="off";
                        label for="sso-scopes" { "Scopes (besides openid)" }
                        input #sso-scopes type="text" name="scopes" value="email profile";
                        label for="sso-domains" { "Allowed email domains (comma-separated)" }
                        input #sso-domains type="text" name="allowed_domains" required;
                        label for="sso-groups-claim" { "Groups claim" }
                        input #sso-groups-claim type="text" name="groups_claim" value="groups";
                        label for="sso-mappings" { "Group → role, one per line (group=role)" }
                        textarea #sso-mappings name="role_mappings" rows="3" placeholder="soc-leads=admin" {}
                        label for="sso-default-role" { "Role when no group matches" }
                        select #sso-default-role name="default_role" {
                            option value="none" { "refuse the sign-in" }
                            @for r in ward_core::Role::ALL { option value=(r.as_str()) { (r.as_str()) } }
                        }
                        div {
                            input #sso-jit type="checkbox" name="jit_provisioning" value="true";
                            label.choice for="sso-jit" { "Create accounts at first sign-in (just-in-time provisioning)" }
                        }
                        p { button type="submit" { "Add provider" } }
                    }
                }
                Err(e) => { p.muted { (e.detail) } }
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

#[derive(Deserialize)]
pub(crate) struct ProviderForm {
    name: String,
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    scopes: Option<String>,
    allowed_domains: String,
    groups_claim: Option<String>,
    role_mappings: Option<String>,
    default_role: Option<String>,
    jit_provisioning: Option<bool>,
}

fn words(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `group=role` lines; a bad line is reported as a field error.
fn mappings(text: &str) -> Result<Vec<ward_core::sso::RoleMapping>, ApiError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (group, role) = l.rsplit_once('=').ok_or_else(|| {
                ApiError::invalid_field(ward_core::InvalidField::new(
                    "role_mappings",
                    format!("{l:?} is not group=role"),
                ))
            })?;
            Ok(ward_core::sso::RoleMapping {
                group: group.trim().to_owned(),
                role: ward_core::Role::parse(role)?,
            })
        })
        .collect()
}

pub(crate) async fn create_provider(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Form(f): Form<ProviderForm>,
) -> Response {
    let role_mappings = match mappings(f.role_mappings.as_deref().unwrap_or_default()) {
        Ok(m) => m,
        Err(e) => return after_post::<()>("/admin/security", Err(e), ""),
    };
    let req = crate::views::SsoProviderRequest {
        name: f.name,
        issuer: f.issuer,
        client_id: f.client_id,
        client_secret: f.client_secret.filter(|s| !s.is_empty()),
        scopes: f.scopes.map(|s| words(&s)),
        groups_claim: f.groups_claim.filter(|s| !s.trim().is_empty()),
        role_mappings: Some(role_mappings),
        default_role: f.default_role,
        allowed_domains: words(&f.allowed_domains),
        jit_provisioning: Some(f.jit_provisioning.unwrap_or(false)),
        mfa_acr_values: None,
    };
    let result = api_sso::create_provider(state, meta, principal, ApiJson(req)).await;
    after_post("/admin/security", result, "Identity provider added.")
}

#[derive(Deserialize)]
pub(crate) struct ProviderToggle {
    enabled: bool,
}

pub(crate) async fn update_provider(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    id: Path<String>,
    Form(f): Form<ProviderToggle>,
) -> Response {
    let req = crate::views::UpdateSsoProviderRequest {
        name: None,
        issuer: None,
        client_id: None,
        client_secret: None,
        scopes: None,
        groups_claim: None,
        role_mappings: None,
        default_role: None,
        allowed_domains: None,
        jit_provisioning: None,
        mfa_acr_values: None,
        enabled: Some(f.enabled),
    };
    let result = api_sso::update_provider(state, meta, principal, id, ApiJson(req)).await;
    after_post("/admin/security", result, "Identity provider updated.")
}

pub(crate) async fn delete_provider(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    id: Path<String>,
) -> Response {
    let result = api_sso::delete_provider(state, meta, principal, id).await;
    after_post("/admin/security", result, "Identity provider deleted.")
}
