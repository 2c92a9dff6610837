//! The signed-in user's own account.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use ward_core::audit::actions;
use ward_core::password_policy::check_new_password;
use ward_core::throttle::{Attempt, Source};
use ward_core::{Email, Permission};
use ward_crypto::PhcString;
use zeroize::Zeroizing;

use super::auth::{SignInRefusal, audit_escalations, check_password, hash_off_runtime};
use super::event;
use crate::extract::{ApiJson, AuthVia, Principal, RequestMeta};
use crate::views::{ChangePasswordRequest, MeView, UserView};
use crate::{ApiError, AppState};

/// Who am I: the user, how this request authenticated, and the role it acts with.
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = MeView), (status = 401, body = crate::Problem)))]
pub(crate) async fn me(principal: Principal) -> Result<Json<MeView>, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    // The user was read together with the session, in the same query.
    let user = &principal.user;
    let (by, session_id, token_id) = match &principal.via {
        AuthVia::Session(id) => ("session", Some(id.to_string()), None),
        AuthVia::Token { id, .. } => ("token", None, Some(id.to_string())),
    };
    Ok(Json(MeView {
        user: UserView::from(user),
        authenticated_by: by.to_owned(),
        session_id,
        token_id,
        effective_role: principal.role.as_str().to_owned(),
        mfa_satisfied: principal.mfa_satisfied,
    }))
}

/// Change one's own password. Every session of the user, this one included, is
/// revoked: sign in again with the new password. API tokens are revoked too
/// unless `revoke_tokens` is false.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "account", request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed; all sessions revoked"),
        (status = 403, body = crate::Problem, description = "`wrong_password` or `session_required`"),
        (status = 422, body = crate::Problem, description = "`invalid_field` (password policy)")))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ReadOwnAccount)?;
    let current = Zeroizing::new(req.current_password);
    let new = Zeroizing::new(req.new_password);
    let revoke_tokens = req.revoke_tokens.unwrap_or(true);
    if principal.session_id().is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "session_required",
            "change a password from a signed-in session",
        ));
    }
    let email = Email::from_stored(principal.email.clone());
    let creds = state
        .store()
        .find_user_by_email(&email)
        .await?
        .ok_or_else(ApiError::not_found)?;
    check_new_password(&new, email.as_str())?;
    let stored = creds.password_hash.map(PhcString::from_stored);
    if !checked_current_password(
        &state,
        &meta,
        &principal,
        current,
        stored,
        actions::USER_PASSWORD_RESET,
    )
    .await?
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password is incorrect",
        ));
    }
    let hash = hash_off_runtime(&state, new).await?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::USER_PASSWORD_RESET,
    )?
    .target("user", principal.user_id.to_string())
    .details(json!({ "by": "self", "sessions_revoked": true, "tokens_revoked": revoke_tokens }));
    state
        .store()
        .set_password_revoking(
            &principal.user_id,
            hash.as_str(),
            state.now(),
            revoke_tokens,
            &e,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a signed-in user's password (to change it, or to re-authenticate).
/// Guessing it here is guessing the sign-in password: the attempt counts against
/// the same per-account limit as sign-ins, before the (slow) check, and a success
/// takes it back. A wrong or throttled attempt is audited as `failure_action`.
pub(crate) async fn checked_current_password(
    state: &AppState,
    meta: &RequestMeta,
    principal: &Principal,
    password: Zeroizing<String>,
    stored: Option<PhcString>,
    failure_action: &'static str,
) -> Result<bool, ApiError> {
    let account_key = principal.email.to_lowercase();
    let source = Source::of(meta.client_ip);
    let now = state.now();
    let (locked, escalations) = {
        let mut pairs = state
            .sign_in_failures
            .lock()
            .map_err(|_| ApiError::internal())?;
        match pairs.check(&account_key, source, now) {
            Attempt::Allowed => (None, pairs.record_failure(&account_key, source, now)),
            Attempt::SourceDelayed { retry_after_secs } => {
                (Some(SignInRefusal::Throttled(retry_after_secs)), Vec::new())
            }
            Attempt::AccountLocked { retry_after_secs } => (
                Some(SignInRefusal::PasswordLocked(retry_after_secs)),
                Vec::new(),
            ),
        }
    };
    let refused = |reason: &str| -> Result<_, ApiError> {
        Ok(event(
            state,
            meta,
            Some(&principal.tenant_id),
            principal.actor(),
            failure_action,
        )?
        .target("user", principal.user_id.to_string())
        .failed()
        .details(json!({ "reason": reason })))
    };
    if let Some(refusal) = locked {
        state
            .store()
            .record_audit(&refused(refusal.reason())?)
            .await?;
        return Err(refusal.into_error());
    }
    let correct = check_password(state, password, stored).await?;
    if correct {
        state
            .sign_in_failures
            .lock()
            .map_err(|_| ApiError::internal())?
            .record_success(&account_key, source);
    } else {
        state
            .store()
            .record_audit(&refused("wrong_current_password")?)
            .await?;
        let mut escalations = escalations;
        escalations.extend(
            state
                .sign_in_failures
                .lock()
                .map_err(|_| ApiError::internal())?
                .record_wrong_password(&account_key, now),
        );
        audit_escalations(
            state,
            meta,
            Some((&principal.tenant_id, &principal.user_id)),
            &principal.email,
            source,
            &escalations,
        )
        .await?;
    }
    Ok(correct)
}
