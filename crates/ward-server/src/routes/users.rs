//! A company Admin manages the company's users.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use ward_core::audit::actions;
use ward_core::password_policy::check_new_password;
use ward_core::rbac::check_grant;
use ward_core::user::{User, UserChange, check_display_name};
use ward_core::{Email, Permission, Role, UserId};
use ward_store::UpdateOutcome;
use zeroize::Zeroizing;

use super::auth::hash_off_runtime;
use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::views::{CreateUserRequest, RevokedCount, UpdateUserRequest, UserList, UserView};
use crate::{ApiError, AppState};

fn parse_id(id: &str) -> Result<UserId, ApiError> {
    UserId::parse(id).ok_or_else(ApiError::not_found)
}

fn escalation() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "role_escalation",
        "you cannot grant a role above your own",
    )
}

/// The company's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = UserList), (status = 401, body = crate::Problem), (status = 403, body = crate::Problem)))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<UserList>, ApiError> {
    principal.require(Permission::ReadUsers)?;
    let users = state.store().list_users(&principal.tenant_id).await?;
    Ok(Json(UserList {
        users: users.iter().map(UserView::from).collect(),
    }))
}

/// Create a user in the Admin's company.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = UserView),
        (status = 403, body = crate::Problem, description = "`role_escalation`"),
        (status = 409, body = crate::Problem, description = "`email_taken`"),
        (status = 422, body = crate::Problem, description = "`invalid_field` (the password policy among them) or `email_unavailable`")))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    principal.require(Permission::ManageUsers)?;
    let password = Zeroizing::new(req.password);
    let email = Email::parse(&req.email)?;
    let role = Role::parse(&req.role)?;
    check_grant(principal.role, role).map_err(|_| escalation())?;
    if role == Role::Admin {
        // A new Admin is a role change: the same bar as promoting someone.
        principal
            .require_sensitive(&state, &meta, "user.create_admin")
            .await?;
    }
    let owner = state.store().domain_owner(email.domain()).await?;
    ward_core::domain::may_use_domain(&principal.tenant_id, owner.as_ref())
        .map_err(|_| email_unavailable())?;
    let display_name = match &req.display_name {
        Some(n) => check_display_name(n)?,
        None => email
            .as_str()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    check_new_password(&password, email.as_str())?;
    let hash = hash_off_runtime(&state, password).await?;
    let now = state.now();
    let user = User {
        id: UserId::from_random(state.random_id_bytes()?),
        tenant_id: principal.tenant_id.clone(),
        email,
        display_name,
        role,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::USER_CREATED,
    )?
    .target("user", user.id.to_string())
    .details(json!({ "email": user.email.as_str(), "role": role.as_str() }));
    match state
        .store()
        .create_user_by(&user, Some(hash.as_str()), &principal.user_id, &e)
        .await
    {
        Ok(()) => {}
        Err(ward_store::StoreError::Conflict(ward_store::Conflict::EmailTaken)) => {
            // Only a colleague's address is named as taken; another company's
            // answers exactly like a domain another company owns.
            let existing = state.store().find_user_by_email(&user.email).await?;
            return Err(match existing {
                Some(c) if c.user.tenant_id == principal.tenant_id => ApiError::new(
                    StatusCode::CONFLICT,
                    "email_taken",
                    "a user with this email exists in your company",
                ),
                _ => email_unavailable(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// The one refusal for an address that cannot be used in this company, whether
/// its domain belongs to another company or the address exists there.
fn email_unavailable() -> ApiError {
    let mut e = ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "email_unavailable",
        "this email address cannot be used in your company; use an address on one of your company's domains",
    );
    e.field = Some("email".to_owned());
    e
}

/// One user of the company.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 404, body = crate::Problem)))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    principal.require(Permission::ReadUsers)?;
    let id = parse_id(&id)?;
    let user = state
        .store()
        .find_user(&principal.tenant_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(UserView::from(&user)))
}

/// Change a user's name, role or disabled state. Disabling revokes their sessions.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUserRequest,
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`last_admin`")))]
pub(crate) async fn update_user(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> Result<Json<UserView>, ApiError> {
    principal.require(Permission::ManageUsers)?;
    if req.role.is_some() || req.disabled.is_some() {
        principal
            .require_sensitive(&state, &meta, "user.role_or_status")
            .await?;
    }
    let id = parse_id(&id)?;
    let change = UserChange {
        display_name: req
            .display_name
            .as_deref()
            .map(check_display_name)
            .transpose()?,
        role: req.role.as_deref().map(Role::parse).transpose()?,
        disabled: req.disabled,
    };
    if let Some(role) = change.role {
        check_grant(principal.role, role).map_err(|_| escalation())?;
    }
    let action = if change.disabled == Some(true) {
        actions::USER_DISABLED
    } else {
        actions::USER_UPDATED
    };
    apply_change(&state, &meta, &principal, &id, change, action)
        .await
        .map(Json)
}

/// Disable a user (users are never erased here: the audit trail refers to them).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Disabled; sessions revoked"), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`last_admin`")))]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ManageUsers)?;
    principal
        .require_sensitive(&state, &meta, "user.disable")
        .await?;
    let id = parse_id(&id)?;
    let change = UserChange {
        disabled: Some(true),
        ..Default::default()
    };
    apply_change(
        &state,
        &meta,
        &principal,
        &id,
        change,
        actions::USER_DISABLED,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn apply_change(
    state: &AppState,
    meta: &RequestMeta,
    principal: &Principal,
    id: &UserId,
    change: UserChange,
    action: &'static str,
) -> Result<UserView, ApiError> {
    let details = json!({
        "display_name": change.display_name,
        "role": change.role.map(Role::as_str),
        "disabled": change.disabled,
    });
    let e = event(
        state,
        meta,
        Some(&principal.tenant_id),
        principal.actor(),
        action,
    )?
    .target("user", id.to_string())
    .details(details);
    match state
        .store()
        .update_user(&principal.tenant_id, id, &change, state.now(), &e)
        .await?
    {
        UpdateOutcome::Updated { after, .. } => Ok(UserView::from(after.as_ref())),
        UpdateOutcome::NotFound => Err(ApiError::not_found()),
        UpdateOutcome::LastAdmin => Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "the company must keep at least one enabled Admin",
        )),
    }
}

/// Revoke every session of a user (e.g. a lost laptop).
#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = RevokedCount), (status = 404, body = crate::Problem)))]
pub(crate) async fn revoke_user_sessions(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<RevokedCount>, ApiError> {
    principal.require(Permission::ManageUsers)?;
    let id = parse_id(&id)?;
    state
        .store()
        .find_user(&principal.tenant_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::USER_SESSIONS_REVOKED,
    )?
    .target("user", id.to_string());
    let revoked = state
        .store()
        .revoke_user_sessions(&id, state.now(), &e)
        .await?;
    Ok(Json(RevokedCount { revoked }))
}
