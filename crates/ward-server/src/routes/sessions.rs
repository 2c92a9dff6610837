//! A user's own sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ward_core::audit::actions;
use ward_core::{Permission, SessionId};

use super::event;
use crate::extract::{Principal, RequestMeta};
use crate::views::{SessionList, SessionView};
use crate::{ApiError, AppState};

/// The caller's live sessions.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions",
    responses((status = 200, body = SessionList), (status = 401, body = crate::Problem)))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<SessionList>, ApiError> {
    principal.require(Permission::ManageOwnSessions)?;
    let sessions = state
        .store()
        .list_sessions(&principal.tenant_id, &principal.user_id, state.now())
        .await?;
    let current = principal.session_id();
    Ok(Json(SessionList {
        sessions: sessions
            .iter()
            .filter(|s| {
                state.settings.session.state(s, state.now())
                    == ward_core::session::SessionState::Active
            })
            .map(|s| SessionView::new(s, Some(&s.id) == current))
            .collect(),
    }))
}

/// Revoke one of the caller's sessions.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = crate::Problem)))]
pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ManageOwnSessions)?;
    let id = SessionId::parse(&id).ok_or_else(ApiError::not_found)?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::SESSION_REVOKED,
    )?
    .target("session", id.to_string());
    if state
        .store()
        .revoke_session(
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
