//! A company's OpenID Connect providers (Admin, recent re-authentication for
//! changes). Client secrets are write-only: sealed on arrival, never returned.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use ward_core::audit::actions;
use ward_core::sso::{
    SsoProvider, check_claim_name, check_client_id, check_domains, check_issuer, check_mappings,
    check_provider_name, check_scopes,
};
use ward_core::{InvalidField, Permission, Role, SsoProviderId};
use ward_store::Conflict;

use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::sso::seal_client_secret;
use crate::views::{
    SsoLinkList, SsoLinkStart, SsoLinkView, SsoProviderList, SsoProviderRequest, SsoProviderView,
    UpdateSsoProviderRequest,
};
use crate::{ApiError, AppState};

fn name_taken(e: ward_store::StoreError) -> ApiError {
    match e {
        ward_store::StoreError::Conflict(Conflict::ProviderNameTaken) => ApiError::new(
            StatusCode::CONFLICT,
            "name_taken",
            "the company already has a provider with this name",
        ),
        other => other.into(),
    }
}

fn default_role(text: Option<&str>) -> Result<Option<Role>, InvalidField> {
    match text.map(str::trim) {
        None | Some("") | Some("none") => Ok(None),
        Some(r) => Role::parse(r)
            .map(Some)
            .map_err(|_| InvalidField::new("default_role", "must be admin, user, viewer or none")),
    }
}

/// A provider may only name email domains its company has verified: otherwise
/// one company could put itself on another's sign-in chooser and provision
/// accounts in its name.
async fn check_owned_domains(
    state: &AppState,
    tenant: &ward_core::TenantId,
    domains: &[String],
) -> Result<(), ApiError> {
    let claims = state.store().domain_claims(tenant).await?;
    for d in domains {
        let verified = claims
            .iter()
            .any(|c| &c.domain == d && c.verified_at.is_some());
        if !verified {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "domain_not_verified",
                format!(
                    "{d} is not a verified domain of your company: verify it first (ward tenant domain add/verify, or the DNS TXT record)"
                ),
            );
            e.field = Some("allowed_domains".to_owned());
            return Err(e);
        }
    }
    Ok(())
}

/// The company's providers.
#[utoipa::path(get, path = "/api/v1/sso/providers", tag = "sso",
    responses((status = 200, body = SsoProviderList), (status = 403, body = crate::Problem)))]
pub(crate) async fn list_providers(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<SsoProviderList>, ApiError> {
    principal.require(Permission::ManageSettings)?;
    let providers = state
        .store()
        .list_sso_providers(Some(&principal.tenant_id))
        .await?;
    Ok(Json(SsoProviderList {
        providers: providers
            .iter()
            .map(|p| {
                SsoProviderView::new(&p.provider, p.secret.is_some(), &state.settings.public_url)
            })
            .collect(),
    }))
}

/// Adds a provider (discovery is not contacted here; the first sign-in is).
#[utoipa::path(post, path = "/api/v1/sso/providers", tag = "sso", request_body = SsoProviderRequest,
    responses((status = 201, body = SsoProviderView), (status = 403, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`name_taken`"), (status = 422, body = crate::Problem)))]
pub(crate) async fn create_provider(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<SsoProviderRequest>,
) -> Result<(StatusCode, Json<SsoProviderView>), ApiError> {
    principal.require(Permission::ManageSettings)?;
    principal
        .require_sensitive(&state, &meta, "sso.provider_create")
        .await?;
    let now = state.now();
    let p = SsoProvider {
        id: SsoProviderId::from_random(state.random_id_bytes()?),
        tenant_id: principal.tenant_id.clone(),
        name: check_provider_name(&req.name)?,
        issuer: check_issuer(&req.issuer)?,
        client_id: check_client_id(&req.client_id)?,
        scopes: check_scopes(
            &req.scopes
                .unwrap_or_else(|| vec!["email".into(), "profile".into()]),
        )?,
        groups_claim: check_claim_name(req.groups_claim.as_deref().unwrap_or("groups"))?,
        role_mappings: check_mappings(&req.role_mappings.unwrap_or_default())?,
        default_role: default_role(req.default_role.as_deref())?,
        allowed_domains: check_domains(&req.allowed_domains)?,
        jit_provisioning: req.jit_provisioning.unwrap_or(false),
        mfa_acr_values: req.mfa_acr_values.unwrap_or_default(),
        enabled: true,
        created_at: now,
        updated_at: now,
        created_by: Some(principal.user_id.clone()),
        updated_by: Some(principal.user_id.clone()),
    };
    check_owned_domains(&state, &p.tenant_id, &p.allowed_domains).await?;
    let secret = match req.client_secret.as_deref() {
        Some(s) if !s.is_empty() => Some(seal_client_secret(&state, &p.id, s)?),
        _ => None,
    };
    let e = event(
        &state,
        &meta,
        Some(&p.tenant_id),
        principal.actor(),
        actions::SSO_PROVIDER_CREATED,
    )?
    .target("sso_provider", p.id.to_string())
    .details(json!({
        "name": p.name, "issuer": p.issuer, "client_id": p.client_id,
        "client_secret_set": secret.is_some(), "allowed_domains": p.allowed_domains,
        "jit_provisioning": p.jit_provisioning,
    }));
    state
        .store()
        .create_sso_provider(&p, secret.as_ref(), &e)
        .await
        .map_err(name_taken)?;
    Ok((
        StatusCode::CREATED,
        Json(SsoProviderView::new(
            &p,
            secret.is_some(),
            &state.settings.public_url,
        )),
    ))
}

/// Changes a provider; only the fields given. A new `client_secret` replaces the old.
#[utoipa::path(patch, path = "/api/v1/sso/providers/{id}", tag = "sso", request_body = UpdateSsoProviderRequest,
    params(("id" = String, Path)),
    responses((status = 200, body = SsoProviderView), (status = 404, body = crate::Problem), (status = 422, body = crate::Problem)))]
pub(crate) async fn update_provider(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateSsoProviderRequest>,
) -> Result<Json<SsoProviderView>, ApiError> {
    principal.require(Permission::ManageSettings)?;
    principal
        .require_sensitive(&state, &meta, "sso.provider_update")
        .await?;
    let id = SsoProviderId::parse(&id).ok_or_else(ApiError::not_found)?;
    let stored = state
        .store()
        .find_sso_provider(&id)
        .await?
        .filter(|p| p.provider.tenant_id == principal.tenant_id)
        .ok_or_else(ApiError::not_found)?;
    let mut p = stored.provider;
    if let Some(n) = &req.name {
        p.name = check_provider_name(n)?;
    }
    if let Some(i) = &req.issuer {
        p.issuer = check_issuer(i)?;
    }
    if let Some(c) = &req.client_id {
        p.client_id = check_client_id(c)?;
    }
    if let Some(s) = &req.scopes {
        p.scopes = check_scopes(s)?;
    }
    if let Some(g) = &req.groups_claim {
        p.groups_claim = check_claim_name(g)?;
    }
    if let Some(m) = &req.role_mappings {
        p.role_mappings = check_mappings(m)?;
    }
    if let Some(r) = &req.default_role {
        p.default_role = default_role(Some(r))?;
    }
    if let Some(d) = &req.allowed_domains {
        p.allowed_domains = check_domains(d)?;
        check_owned_domains(&state, &p.tenant_id, &p.allowed_domains).await?;
    }
    if let Some(j) = req.jit_provisioning {
        p.jit_provisioning = j;
    }
    if let Some(a) = &req.mfa_acr_values {
        p.mfa_acr_values = a.clone();
    }
    if let Some(e) = req.enabled {
        p.enabled = e;
    }
    p.updated_at = state.now();
    p.updated_by = Some(principal.user_id.clone());
    let secret = match req.client_secret.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(s) => Some(Some(seal_client_secret(&state, &p.id, s)?)),
    };
    let has_secret = match &secret {
        Some(s) => s.is_some(),
        None => stored.secret.is_some(),
    };
    let e = event(
        &state,
        &meta,
        Some(&p.tenant_id),
        principal.actor(),
        actions::SSO_PROVIDER_UPDATED,
    )?
    .target("sso_provider", p.id.to_string())
    .details(json!({
        "name": p.name, "issuer": p.issuer, "enabled": p.enabled,
        "client_secret_replaced": secret.is_some(), "allowed_domains": p.allowed_domains,
        "jit_provisioning": p.jit_provisioning,
    }));
    let done = state
        .store()
        .update_sso_provider(&p, secret.as_ref().map(Option::as_ref), &e)
        .await
        .map_err(name_taken)?;
    // The next sign-in discovers the changed provider afresh.
    state.oidc_discovery.invalidate(&p.id);
    if !done {
        return Err(ApiError::not_found());
    }
    Ok(Json(SsoProviderView::new(
        &p,
        has_secret,
        &state.settings.public_url,
    )))
}

/// Removes a provider. Users it provisioned keep their accounts.
#[utoipa::path(delete, path = "/api/v1/sso/providers/{id}", tag = "sso",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::Problem)))]
pub(crate) async fn delete_provider(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ManageSettings)?;
    principal
        .require_sensitive(&state, &meta, "sso.provider_delete")
        .await?;
    let id = SsoProviderId::parse(&id).ok_or_else(ApiError::not_found)?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::SSO_PROVIDER_DELETED,
    )?
    .target("sso_provider", id.to_string());
    state.oidc_discovery.invalidate(&id);
    if state
        .store()
        .delete_sso_provider(&principal.tenant_id, &id, state.now(), &e)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// The caller's links to identity providers.
#[utoipa::path(get, path = "/api/v1/me/sso-links", tag = "sso",
    responses((status = 200, body = SsoLinkList)))]
pub(crate) async fn list_links(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<SsoLinkList>, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    let links = state
        .store()
        .user_identities(&principal.tenant_id, &principal.user_id)
        .await?;
    let providers = state
        .store()
        .list_sso_providers(Some(&principal.tenant_id))
        .await?;
    let name = |id: &SsoProviderId| {
        providers
            .iter()
            .find(|p| &p.provider.id == id)
            .map(|p| p.provider.name.clone())
            .unwrap_or_default()
    };
    Ok(Json(SsoLinkList {
        links: links
            .iter()
            .map(|l| SsoLinkView {
                provider_id: l.provider_id.to_string(),
                provider: name(&l.provider_id),
                linked_by: l.linked_by.to_owned(),
                created_at: l.created_at.to_rfc3339(),
            })
            .collect(),
    }))
}

/// Starts linking a provider to the caller's account: the caller must be signed
/// in by password or passkey (not through a provider) and have re-authenticated
/// recently. Answers the provider's authorization URL and sets the ceremony
/// cookie; the provider's callback then binds (provider, subject) to this
/// account, audited and visible to every Admin.
#[utoipa::path(post, path = "/api/v1/me/sso-links/{provider_id}", tag = "sso",
    params(("provider_id" = String, Path)),
    responses((status = 200, body = SsoLinkStart), (status = 403, body = crate::Problem, description = "`session_required` or `reauthentication_required`"),
        (status = 404, body = crate::Problem)))]
pub(crate) async fn start_link(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(provider_id): Path<String>,
) -> Result<(axum::http::HeaderMap, Json<SsoLinkStart>), ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    let (url, cookie) = begin_link(&state, &meta, &principal, &provider_id).await?;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::SET_COOKIE, cookie);
    Ok((
        headers,
        Json(SsoLinkStart {
            authorization_url: url,
        }),
    ))
}

/// The shared start of a link (API and page): checks who asks, then the flow.
pub(crate) async fn begin_link(
    state: &AppState,
    meta: &RequestMeta,
    principal: &Principal,
    provider_id: &str,
) -> Result<(String, axum::http::HeaderValue), ApiError> {
    let Some(session) = principal.session_id() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "session_required",
            "link an identity provider from a signed-in session",
        ));
    };
    if matches!(
        principal.strength,
        Some((ward_core::mfa::AuthMethod::Oidc, _))
    ) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "session_required",
            "link an identity provider from a session signed in with your password or passkey",
        ));
    }
    principal
        .require_sensitive(state, meta, "sso.identity_link")
        .await?;
    let id = SsoProviderId::parse(provider_id).ok_or_else(ApiError::not_found)?;
    let provider = state
        .store()
        .find_sso_provider(&id)
        .await?
        .filter(|p| p.provider.tenant_id == principal.tenant_id)
        .ok_or_else(ApiError::not_found)?;
    crate::sso::start(state, meta, &provider, Some((session, &principal.user_id))).await
}

/// Removes the caller's link to a provider.
#[utoipa::path(delete, path = "/api/v1/me/sso-links/{provider_id}", tag = "sso",
    params(("provider_id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::Problem)))]
pub(crate) async fn unlink(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(provider_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    let id = SsoProviderId::parse(&provider_id).ok_or_else(ApiError::not_found)?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::SSO_IDENTITY_UNLINKED,
    )?
    .target("user", principal.user_id.to_string())
    .details(json!({ "provider_id": id.to_string() }));
    if state
        .store()
        .unlink_identity(&principal.tenant_id, &principal.user_id, &id, &e)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
