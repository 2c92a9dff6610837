//! A user's own API tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use ward_core::audit::actions;
use ward_core::rbac::check_grant;
use ward_core::token::{
    ApiToken, DEFAULT_TOKEN_LIFETIME_DAYS, MAX_TOKEN_LIFETIME_DAYS, SENSITIVE_TOKEN_LIFETIME_SECS,
};
use ward_core::{InvalidField, Permission, Role, TokenId};
use ward_crypto::ApiTokenSecret;

use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::views::{CreateTokenRequest, CreatedToken, TokenList, TokenView};
use crate::{ApiError, AppState};

/// The caller's API tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 401, body = crate::Problem)))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<TokenList>, ApiError> {
    principal.require(Permission::ManageOwnTokens)?;
    let tokens = state
        .store()
        .list_tokens(&principal.tenant_id, &principal.user_id)
        .await?;
    Ok(Json(TokenList {
        tokens: tokens.iter().map(TokenView::from).collect(),
    }))
}

/// Create an API token. Its secret is in this response and nowhere else. Tokens are
/// created from a signed-in session, not by other tokens, so a leaked token cannot
/// extend its own life.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken),
        (status = 403, body = crate::Problem, description = "`role_escalation` or `session_required`"),
        (status = 422, body = crate::Problem)))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    principal.require(Permission::ManageOwnTokens)?;
    if principal.session_id().is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "session_required",
            "create API tokens from a signed-in session",
        ));
    }
    // Shown in token lists and audit events: a name, not free text.
    let name = ward_core::text::checked_name("name", &req.name, 100)?;
    let scope = match &req.scope {
        Some(s) => Role::parse(s).map_err(|e| InvalidField::new("scope", e.reason))?,
        None => principal.role,
    };
    check_grant(principal.role, scope).map_err(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "role_escalation",
            "a token's scope cannot exceed your role",
        )
    })?;
    let sensitive = req.sensitive.unwrap_or(false);
    // The metrics scope reads the company's operational series: an Admin's
    // decision, and a token that can do nothing else (its role is Viewer and the
    // extractor refuses it on every other route).
    let metrics = req.metrics.unwrap_or(false);
    if metrics {
        principal.require(Permission::ManageSettings)?;
        if sensitive {
            return Err(
                InvalidField::new("metrics", "a metrics token cannot also be sensitive").into(),
            );
        }
    }
    let scope = if metrics { Role::Viewer } else { scope };
    let lifetime_secs = if sensitive {
        if req.expires_in_days.is_some() {
            return Err(InvalidField::new(
                "expires_in_days",
                "a sensitive token lives one hour; leave expires_in_days out",
            )
            .into());
        }
        principal
            .require_sensitive(&state, &meta, "token.mint_sensitive")
            .await?;
        SENSITIVE_TOKEN_LIFETIME_SECS
    } else {
        let days = req.expires_in_days.unwrap_or(DEFAULT_TOKEN_LIFETIME_DAYS);
        if !(1..=MAX_TOKEN_LIFETIME_DAYS).contains(&days) {
            return Err(InvalidField::new("expires_in_days", "must be between 1 and 366").into());
        }
        days * 86_400
    };
    let secret = ApiTokenSecret::generate(state.rng.as_ref()).map_err(|_| ApiError::internal())?;
    let digest = state.keys.api_tokens.digest(secret.expose());
    let now = state.now();
    let token = ApiToken {
        id: TokenId::from_random(state.random_id_bytes()?),
        tenant_id: principal.tenant_id.clone(),
        user_id: principal.user_id.clone(),
        name,
        scope,
        created_at: now,
        expires_at: now.plus_seconds(lifetime_secs),
        last_used_at: None,
        revoked_at: None,
        sensitive,
        sso_provider_id: principal.sso_provider_id().cloned(),
        metrics,
    };
    let e = event(&state, &meta, Some(&principal.tenant_id), principal.actor(), actions::TOKEN_CREATED)?
        .target("api_token", token.id.to_string())
        .details(json!({ "name": token.name, "scope": scope.as_str(), "expires_at": token.expires_at.to_rfc3339(), "sensitive": sensitive, "metrics": metrics }));
    state.store().create_token(&token, &digest.0, &e).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: TokenView::from(&token),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// Revoke one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = crate::Problem)))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ManageOwnTokens)?;
    let id = TokenId::parse(&id).ok_or_else(ApiError::not_found)?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::TOKEN_REVOKED,
    )?
    .target("api_token", id.to_string());
    if state
        .store()
        .revoke_token(
            &principal.tenant_id,
            &principal.user_id,
            &id,
            state.now(),
            &e,
        )
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
