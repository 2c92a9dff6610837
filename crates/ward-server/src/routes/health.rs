//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;

use crate::views::Health;
use crate::{ApiError, AppState};

/// Liveness: the process is serving.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Serving", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = crate::Problem)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store().ping().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable",
        )
    })?;
    Ok(Json(Health {
        status: "ready".to_owned(),
    }))
}

/// Prometheus metrics in the text exposition format, for the bearer token of the
/// `metrics` scope (`metrics.token_file`). They are the whole instance's and
/// name every company, so no session or company API token reads them;
/// `metrics.listen` serves them without a token on a separate address.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = crate::Problem, description = "`metrics_token_required`: no bearer token"),
        (status = 403, body = crate::Problem, description = "`forbidden`: a token or session without the `metrics` scope, or no metrics token configured")),
    security(("bearer" = [])))]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // A caller who presents no credential at all is asked for one (401); a
    // session or any other token is known but not allowed (403).
    let signed_in = headers.contains_key(header::COOKIE);
    let Some(presented) = bearer else {
        if signed_in {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "a session does not carry the metrics scope; use the metrics token",
            ));
        }
        return Err(ApiError::unauthenticated(
            "metrics_token_required",
            "metrics need Authorization: Bearer <the metrics token>",
        ));
    };
    match &state.settings.metrics_token {
        Some(token) if token.matches(presented.trim()) => Ok(crate::metrics::exposition()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token does not carry the metrics scope (metrics.token_file), \
             or none is configured; metrics.listen serves them on a separate address",
        )),
    }
}
