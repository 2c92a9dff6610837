//! The company's encryption keys: status and progress, rotation, rotation policy.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use ward_core::audit::actions;
use ward_core::keys::{DEFAULT_ROTATION_DAYS, KeyState};
use ward_core::{InvalidField, Permission, TenantId};
use ward_store::ENCRYPTED_FIELDS;

use super::connections::key_error;
use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::views::{
    FieldProgress, KeyPolicyRequest, KeyStatus, KeyVersionView, RotatedKey, VersionCount,
};
use crate::{ApiError, AppState};

/// Key versions, ciphertexts per version for every encrypted field, and the
/// rotation schedule.
pub(crate) async fn key_status(state: &AppState, tenant: &TenantId) -> Result<KeyStatus, ApiError> {
    let versions = state.store().key_versions(tenant).await?;
    let active = versions
        .iter()
        .find(|k| k.info.state == KeyState::Active)
        .map(|k| k.info.version);
    let mut fields = Vec::new();
    for f in ENCRYPTED_FIELDS {
        let counts = state.store().ciphertext_counts(f, tenant).await?;
        let remaining: i64 = counts
            .iter()
            .filter(|(v, _)| Some(*v) != active)
            .map(|(_, n)| n)
            .sum();
        // A rate measured in the last minute by this instance's job, if any.
        let rate = state
            .reencryption_rates
            .lock()
            .ok()
            .and_then(|r| r.get(&(tenant.to_string(), f.entity, f.field)).copied())
            .filter(|(_, at)| state.now().seconds_since(*at) < 60 && remaining > 0)
            .map(|(r, _)| r);
        let eta_seconds = rate
            .filter(|r| *r > 0.0)
            .map(|r| (remaining as f64 / r).ceil() as u64);
        fields.push(FieldProgress {
            rate_per_second: rate,
            eta_seconds,
            entity: f.entity.to_owned(),
            field: f.field.to_owned(),
            by_version: counts
                .into_iter()
                .map(|(version, count)| VersionCount { version, count })
                .collect(),
            remaining,
        });
    }
    let interval = state
        .store()
        .rotation_interval_days(tenant)
        .await?
        .unwrap_or(DEFAULT_ROTATION_DAYS);
    let next = versions
        .iter()
        .find(|k| k.info.state == KeyState::Active)
        .map(|k| {
            k.info
                .created_at
                .plus_seconds(interval * 86_400)
                .to_rfc3339()
        });
    Ok(KeyStatus {
        active_version: active,
        versions: versions
            .iter()
            .map(|k| KeyVersionView {
                version: k.info.version,
                state: k.info.state.as_str().to_owned(),
                master_version: k.info.master_version,
                created_at: k.info.created_at.to_rfc3339(),
                retired_at: k.info.retired_at.map(|t| t.to_rfc3339()),
                destroyed_at: k.info.destroyed_at.map(|t| t.to_rfc3339()),
            })
            .collect(),
        fields,
        rotation_interval_days: interval,
        next_rotation_at: next,
    })
}

/// The company's key versions and re-encryption progress.
#[utoipa::path(get, path = "/api/v1/keys/status", tag = "keys",
    responses((status = 200, body = KeyStatus), (status = 403, body = crate::Problem)))]
pub(crate) async fn status(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<KeyStatus>, ApiError> {
    principal.require(Permission::ReadKeyStatus)?;
    Ok(Json(key_status(&state, &principal.tenant_id).await?))
}

/// Rotate the company key now: a new active version; the previous one becomes
/// decrypt-only until background re-encryption has moved every ciphertext off it.
#[utoipa::path(post, path = "/api/v1/keys/rotate", tag = "keys",
    responses((status = 200, body = RotatedKey), (status = 403, body = crate::Problem)))]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
) -> Result<Json<RotatedKey>, ApiError> {
    principal.require(Permission::ManageKeys)?;
    principal
        .require_sensitive(&state, &meta, "key.rotate")
        .await?;
    let tenant = principal.tenant_id.clone();
    let make =
        |action: &'static str| event(&state, &meta, Some(&tenant), principal.actor(), action).ok();
    let version = state
        .keys
        .keyring
        .rotate(state.store(), &tenant, state.now(), &make)
        .await
        .map_err(key_error)?;
    Ok(Json(RotatedKey { version }))
}

/// Set how often the company key rotates automatically.
#[utoipa::path(put, path = "/api/v1/keys/policy", tag = "keys", request_body = KeyPolicyRequest,
    responses((status = 204, description = "Saved"), (status = 422, body = crate::Problem)))]
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<KeyPolicyRequest>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ManageKeys)?;
    principal
        .require_sensitive(&state, &meta, "key.policy")
        .await?;
    if !(1..=3650).contains(&req.rotation_interval_days) {
        return Err(
            InvalidField::new("rotation_interval_days", "must be between 1 and 3650").into(),
        );
    }
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::KEY_POLICY_CHANGED,
    )?
    .target("tenant", principal.tenant_id.to_string())
    .details(json!({ "rotation_interval_days": req.rotation_interval_days }));
    state
        .store()
        .set_rotation_interval_days(&principal.tenant_id, req.rotation_interval_days, &e)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
