//! Reading the company's audit trail.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ward_core::{Permission, Timestamp};
use ward_store::AuditFilter;

use crate::extract::{ApiQuery, Principal};
use crate::views::{AuditEventView, AuditPage, AuditQuery};
use crate::{ApiError, AppState};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;

/// The company's audit events, newest first, filtered and paginated.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem)),
    security(("session_cookie" = []), ("bearer" = [])))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    principal.require(Permission::ReadAuditLog)?;
    let bad = |d: &str| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", d.to_owned());
    let time = |s: &Option<String>, name: &str| -> Result<Option<Timestamp>, ApiError> {
        s.as_deref()
            .map(|t| {
                Timestamp::parse_rfc3339(t)
                    .ok_or_else(|| bad(&format!("{name} must be an RFC 3339 time")))
            })
            .transpose()
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad("limit must be between 1 and 500"));
    }
    let filter = AuditFilter {
        tenant_id: Some(principal.tenant_id.clone()),
        action: q.action.clone(),
        actor_id: q.actor.clone(),
        since: time(&q.since, "since")?,
        until: time(&q.until, "until")?,
        before_seq: q.before,
        limit,
    };
    let events = state.store().list_audit(&filter).await?;
    let next_before = if events.len() == limit as usize {
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Json(AuditPage {
        events: events.into_iter().map(AuditEventView::from).collect(),
        next_before,
    }))
}
