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

/// Prometheus metrics in the text exposition format, for a bearer token of the
/// `metrics` scope: the operator's (`metrics.token_file`) reads every series; a
/// company's API token created with `metrics: true` reads the series without a
/// company label and its own company's, never another company's. No session and
/// no other token reads them. `metrics.listen` serves them without a token on a
/// separate address.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = crate::Problem, description = "`metrics_token_required`: no bearer token"),
        (status = 403, body = crate::Problem, description = "`forbidden`: a token or session without the `metrics` scope, or no metrics token configured")))]
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
    let presented = presented.trim();
    if let Some(token) = &state.settings.metrics_token
        && token.matches(presented)
    {
        return Ok(crate::metrics::exposition(None));
    }
    // A company's API token with the metrics scope: its company's series only.
    if ward_crypto::ApiTokenSecret::is_well_formed(presented) {
        let digest = state.keys.api_tokens.digest(presented);
        if let Some(found) = state.store().token_by_digest(&digest.0).await?
            && found.token.metrics
            && found.token.is_usable(state.now())
            && !found.owner.disabled
        {
            return Ok(crate::metrics::exposition(Some(
                found.token.tenant_id.as_str(),
            )));
        }
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "this token does not carry the metrics scope (an Admin's token created with \
         `metrics: true`, or the operator's metrics.token_file)",
    ))
}
