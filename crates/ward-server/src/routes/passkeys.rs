//! Passkeys (register, list, remove), passwordless sign-in, the second factor,
//! re-authentication, and the company's MFA policy.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use ward_core::audit::actions;
use ward_core::mfa::MfaPolicy;
use ward_core::passkey::{CeremonyKind, check_passkey_name};
use ward_core::{PasskeyId, Permission};
use ward_crypto::PhcString;
use ward_store::PasskeyRemoval;
use zeroize::Zeroizing;

use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::passkeys::{AssertionFor, finish_assertion, finish_registration, start_assertion};
use crate::views::{
    LoginResponse, MfaPolicyView, PasskeyList, PasskeyOptions, PasskeyResponse, PasskeyView,
    ReauthRequest, RegisterPasskeyRequest,
};
use crate::{ApiError, AppState};

fn options_response(
    options: impl serde::Serialize,
    cookie: axum::http::HeaderValue,
) -> Result<Response, ApiError> {
    let options = serde_json::to_value(options).map_err(|_| ApiError::internal())?;
    let mut resp = Json(PasskeyOptions { options }).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp)
}

/// The caller's passkeys.
#[utoipa::path(get, path = "/api/v1/passkeys", tag = "passkeys",
    responses((status = 200, body = PasskeyList), (status = 401, body = crate::Problem)))]
pub(crate) async fn list_passkeys(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<PasskeyList>, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    let passkeys = state
        .store()
        .list_passkeys(&principal.tenant_id, &principal.user_id)
        .await?;
    Ok(Json(PasskeyList {
        passkeys: passkeys.iter().map(PasskeyView::from).collect(),
    }))
}

/// Starts registering a passkey (cookie sessions only): WebAuthn creation options.
#[utoipa::path(post, path = "/api/v1/passkeys/registration", tag = "passkeys",
    responses((status = 200, body = PasskeyOptions, description = "Creation options; `Set-Cookie` names the ceremony"),
        (status = 400, body = crate::Problem, description = "`no_session`: an API token"),
        (status = 503, body = crate::Problem, description = "`passkeys_unavailable`")))]
pub(crate) async fn start_registration(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    let session = require_session(&principal)?;
    let (options, cookie) =
        crate::passkeys::start_registration(&state, session, &principal.user).await?;
    options_response(options, cookie)
}

/// Finishes registering a passkey.
#[utoipa::path(post, path = "/api/v1/passkeys", tag = "passkeys", request_body = RegisterPasskeyRequest,
    responses((status = 201, body = PasskeyView),
        (status = 400, body = crate::Problem, description = "`passkey_refused` (audited; also without the ceremony cookie `/registration` set) or `no_session`"),
        (status = 422, body = crate::Problem, description = "`invalid_field` (the name) or `invalid_credential`"),
        (status = 503, body = crate::Problem, description = "`passkeys_unavailable`")))]
pub(crate) async fn register_passkey(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    principal: Principal,
    ApiJson(req): ApiJson<RegisterPasskeyRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    require_session(&principal)?;
    let name = check_passkey_name(&req.name)?;
    let record =
        finish_registration(&state, &meta, &headers, &principal, name, req.credential).await?;
    Ok((StatusCode::CREATED, Json(PasskeyView::from(&record))).into_response())
}

/// Removes one of the caller's passkeys. The last one is kept while the company
/// requires MFA.
#[utoipa::path(delete, path = "/api/v1/passkeys/{id}", tag = "passkeys",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem, description = "`last_factor`")))]
pub(crate) async fn remove_passkey(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    let id = PasskeyId::parse(&id).ok_or_else(ApiError::not_found)?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::PASSKEY_REMOVED,
    )?
    .target("passkey", id.to_string());
    match state
        .store()
        .remove_passkey(&principal.tenant_id, &principal.user_id, &id, &e)
        .await?
    {
        PasskeyRemoval::Removed => Ok(StatusCode::NO_CONTENT),
        PasskeyRemoval::NotFound => Err(ApiError::not_found()),
        PasskeyRemoval::LastFactor => Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_factor",
            "your company requires MFA and this is your last passkey: register another before removing it",
        )),
    }
}

/// Starts a passwordless sign-in with a discoverable passkey.
#[utoipa::path(post, path = "/api/v1/auth/passkey/start", tag = "auth",
    responses((status = 200, body = PasskeyOptions, description = "Request options; `Set-Cookie` names the ceremony"),
        (status = 503, body = crate::Problem, description = "`unavailable` or `passkeys_unavailable`")))]
pub(crate) async fn start_passkey_sign_in(
    State(state): State<AppState>,
    meta: RequestMeta,
) -> Result<Response, ApiError> {
    limit_sign_in(&state, &meta)?;
    let (options, cookie) =
        start_assertion(&state, CeremonyKind::PasskeySignIn, None, None).await?;
    options_response(options, cookie)
}

/// Finishes a passwordless sign-in; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/passkey/finish", tag = "auth", request_body = PasskeyResponse,
    responses((status = 200, body = LoginResponse, description = "Signed in; `Set-Cookie` carries the session"),
        (status = 400, body = crate::Problem, description = "`passkey_refused` (audited): also without the ceremony cookie `/start` set"),
        (status = 422, body = crate::Problem, description = "`invalid_credential`"),
        (status = 503, body = crate::Problem, description = "`unavailable` or `passkeys_unavailable`")))]
pub(crate) async fn finish_passkey_sign_in(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PasskeyResponse>,
) -> Result<Response, ApiError> {
    limit_sign_in(&state, &meta)?;
    let done = finish_assertion(
        &state,
        &meta,
        &headers,
        AssertionFor::SignIn,
        req.credential,
    )
    .await?;
    let session = done.session.ok_or_else(|| ApiError::internal())?;
    crate::metrics::record_login("success");
    super::auth::signed_in(&state, &done.user, &session)
}

/// Answers the passkey challenge that followed a correct password.
#[utoipa::path(post, path = "/api/v1/auth/second-factor", tag = "auth", request_body = PasskeyResponse,
    responses((status = 200, body = LoginResponse, description = "Signed in; `Set-Cookie` carries the session"),
        (status = 400, body = crate::Problem, description = "`passkey_refused` (audited): also without the ceremony cookie a correct password set"),
        (status = 422, body = crate::Problem, description = "`invalid_credential`"),
        (status = 503, body = crate::Problem, description = "`unavailable` or `passkeys_unavailable`")))]
pub(crate) async fn second_factor(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PasskeyResponse>,
) -> Result<Response, ApiError> {
    limit_sign_in(&state, &meta)?;
    let done = finish_assertion(
        &state,
        &meta,
        &headers,
        AssertionFor::SecondFactor,
        req.credential,
    )
    .await?;
    let session = done.session.ok_or_else(|| ApiError::internal())?;
    crate::metrics::record_login("success");
    super::auth::signed_in(&state, &done.user, &session)
}

/// Re-authenticates this session with the password.
#[utoipa::path(post, path = "/api/v1/auth/reauth", tag = "auth", request_body = ReauthRequest,
    responses((status = 204, description = "Re-authenticated"), (status = 400, body = crate::Problem, description = "`no_session`: an API token"),
        (status = 401, body = crate::Problem, description = "`reauth_failed` (audited)"),
        (status = 429, body = crate::Problem, description = "`login_throttled` or `password_locked`, with Retry-After")))]
pub(crate) async fn reauth_with_password(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<ReauthRequest>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    let session = require_session(&principal)?.clone();
    let password = Zeroizing::new(req.password);
    let creds = state
        .store()
        .find_user_by_email(&principal.user.email)
        .await?
        .ok_or_else(|| ApiError::internal())?;
    let stored = creds.password_hash.map(PhcString::from_stored);
    if !super::account::checked_current_password(
        &state,
        &meta,
        &principal,
        password,
        stored,
        actions::AUTH_REAUTH_FAILED,
    )
    .await?
    {
        return Err(ApiError::unauthenticated(
            "reauth_failed",
            "the password is incorrect",
        ));
    }
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::AUTH_REAUTHENTICATED,
    )?
    .target("session", session.to_string())
    .details(json!({ "method": "password" }));
    state
        .store()
        .reauthenticate_session(&session, state.now(), &e)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts re-authenticating this session with one of the caller's passkeys.
#[utoipa::path(post, path = "/api/v1/auth/reauth/passkey/start", tag = "auth",
    responses((status = 200, body = PasskeyOptions, description = "Request options; `Set-Cookie` names the ceremony"),
        (status = 400, body = crate::Problem, description = "`no_session`: an API token"),
        (status = 409, body = crate::Problem, description = "`no_passkey`"),
        (status = 503, body = crate::Problem, description = "`passkeys_unavailable`")))]
pub(crate) async fn start_passkey_reauth(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    let session = require_session(&principal)?;
    let (options, cookie) = start_assertion(
        &state,
        CeremonyKind::PasskeyReauth,
        Some(session),
        Some(&principal.user),
    )
    .await?;
    options_response(options, cookie)
}

/// Finishes a passkey re-authentication; the session becomes multi-factor.
#[utoipa::path(post, path = "/api/v1/auth/reauth/passkey/finish", tag = "auth", request_body = PasskeyResponse,
    responses((status = 204, description = "Re-authenticated"),
        (status = 400, body = crate::Problem, description = "`passkey_refused` (audited; also without the ceremony cookie `/start` set) or `no_session`"),
        (status = 422, body = crate::Problem, description = "`invalid_credential`"),
        (status = 503, body = crate::Problem, description = "`passkeys_unavailable`")))]
pub(crate) async fn finish_passkey_reauth(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    principal: Principal,
    ApiJson(req): ApiJson<PasskeyResponse>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    require_session(&principal)?;
    finish_assertion(
        &state,
        &meta,
        &headers,
        AssertionFor::Reauth(&principal),
        req.credential,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The company's MFA policy.
#[utoipa::path(get, path = "/api/v1/company/mfa-policy", tag = "company",
    responses((status = 200, body = MfaPolicyView), (status = 403, body = crate::Problem)))]
pub(crate) async fn get_mfa_policy(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<MfaPolicyView>, ApiError> {
    principal.require(Permission::ReadUsers)?;
    let policy = state.store().mfa_policy(&principal.tenant_id).await?;
    Ok(Json(MfaPolicyView {
        policy: policy.as_str().to_owned(),
    }))
}

/// Sets the company's MFA policy (Admin, recent re-authentication).
#[utoipa::path(put, path = "/api/v1/company/mfa-policy", tag = "company", request_body = MfaPolicyView,
    responses((status = 200, body = MfaPolicyView), (status = 409, body = crate::Problem, description = "`would_lock_out`: a policy the Admin's own session does not meet"),
        (status = 422, body = crate::Problem, description = "`invalid_field`")))]
pub(crate) async fn set_mfa_policy(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<MfaPolicyView>,
) -> Result<Json<MfaPolicyView>, ApiError> {
    principal.require(Permission::ManageSettings)?;
    principal
        .require_sensitive(&state, &meta, "company.mfa_policy")
        .await?;
    let policy = MfaPolicy::parse(&req.policy)?;
    // An Admin whose own session would not meet the new policy would shut
    // themselves out of the settings they just changed: verify first.
    if !principal.meets(policy) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "would_lock_out",
            "your own session does not meet this policy: register a passkey and confirm with it first",
        ));
    }
    change_mfa_policy(&state, &meta, &principal, policy).await?;
    Ok(Json(MfaPolicyView {
        policy: policy.as_str().to_owned(),
    }))
}

/// Sets the policy with its audit event (the API and the settings page).
pub(crate) async fn change_mfa_policy(
    state: &AppState,
    meta: &RequestMeta,
    principal: &Principal,
    policy: MfaPolicy,
) -> Result<(), ApiError> {
    let before = state.store().mfa_policy(&principal.tenant_id).await?;
    let e = event(
        state,
        meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::MFA_POLICY_CHANGED,
    )?
    .target("company", principal.tenant_id.to_string())
    .details(json!({ "from": before.as_str(), "to": policy.as_str() }));
    state
        .store()
        .set_mfa_policy(&principal.tenant_id, policy, &e)
        .await?;
    Ok(())
}

fn require_session(principal: &Principal) -> Result<&ward_core::SessionId, ApiError> {
    principal.session_id().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_session",
            "passkeys and re-authentication belong to a browser session, not an API token",
        )
    })
}

/// Passkey sign-in steps count against the per-IP sign-in rate, like passwords.
fn limit_sign_in(state: &AppState, meta: &RequestMeta) -> Result<(), ApiError> {
    if let Some(limiter) = &state.login_limiter
        && limiter.check_key(&meta.client_ip).is_err()
    {
        return Err(ApiError::too_many(
            "rate_limited",
            "too many sign-in attempts from this address",
            60,
        ));
    }
    Ok(())
}
