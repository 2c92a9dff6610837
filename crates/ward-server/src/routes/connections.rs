//! SIEM connections. Credentials are encrypted under the company's key before they
//! reach the database and are never returned; reading them for use is audited.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use ward_core::audit::actions;
use ward_core::connection::{
    Connection, ConnectionKind, Credentials, check_base_url, check_connection_name,
    credentials_bound_elsewhere, host_and_port,
};
use ward_core::{Permission, TenantId};
use ward_crypto::FieldContext;
use ward_store::{Conflict, SealedCredentials, StoreError};

use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::views::{
    ConnectionList, ConnectionTestResult, ConnectionView, CreateConnectionRequest,
    UpdateConnectionRequest,
};
use crate::{ApiError, AppState};
use ward_jobs::keyring::KeyError;

const ENTITY: &str = "connection";
const FIELD: &str = "credentials";

pub(crate) fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::Destroyed(_) | KeyError::Missing(_) => {
            ApiError::new(StatusCode::CONFLICT, "key_destroyed", e.to_string())
        }
        KeyError::Store(s) => s.into(),
        KeyError::Crypto(ward_crypto::CryptoError::Decrypt)
        | KeyError::Crypto(ward_crypto::CryptoError::EnvelopeTruncated)
        | KeyError::Crypto(ward_crypto::CryptoError::EnvelopeFormat(_))
        | KeyError::Crypto(ward_crypto::CryptoError::EnvelopeAlgorithm(_)) => {
            tracing::error!(error = %e, "a stored ciphertext failed authentication");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "decryption_failed",
                "a stored encrypted value failed authentication (altered, or moved from another record)",
            )
        }
        other => {
            tracing::error!(error = %other, "key operation failed");
            ApiError::internal()
        }
    }
}

fn conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(Conflict::ConnectionNameTaken) => {
            let mut err = ApiError::new(
                StatusCode::CONFLICT,
                "name_taken",
                "a connection with this name exists",
            );
            err.field = Some("name".to_owned());
            err
        }
        other => other.into(),
    }
}

async fn seal(
    state: &AppState,
    meta: &RequestMeta,
    principal: &Principal,
    id: &str,
    creds: &Credentials,
) -> Result<SealedCredentials, ApiError> {
    let tenant = principal.tenant_id.clone();
    let make =
        |action: &'static str| event(state, meta, Some(&tenant), principal.actor(), action).ok();
    let ctx = FieldContext {
        tenant_id: tenant.as_str(),
        entity: ENTITY,
        field: FIELD,
        row_id: id,
    };
    let (envelope, key_version) = state
        .keys
        .keyring
        .encrypt(
            state.store(),
            ctx,
            &tenant,
            &creds.to_plaintext(),
            state.now(),
            &make,
        )
        .await
        .map_err(key_error)?;
    Ok(SealedCredentials {
        envelope,
        key_version,
        fields: creds.fields_set().into_iter().map(str::to_owned).collect(),
    })
}

/// The company's connections (metadata only).
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections",
    responses((status = 200, body = ConnectionList)))]
pub(crate) async fn list_connections(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ConnectionList>, ApiError> {
    principal.require(Permission::ReadConnections)?;
    let list = state.store().list_connections(&principal.tenant_id).await?;
    Ok(Json(ConnectionList {
        connections: list.iter().map(ConnectionView::from).collect(),
    }))
}

/// Create a connection; credentials are encrypted before they are stored.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections", request_body = CreateConnectionRequest,
    responses((status = 201, body = ConnectionView), (status = 409, body = crate::Problem), (status = 422, body = crate::Problem)))]
pub(crate) async fn create_connection(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<CreateConnectionRequest>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    principal.require(Permission::ManageConnections)?;
    let name = check_connection_name(&req.name)?;
    let kind = ConnectionKind::parse(&req.kind)?;
    let base_url = check_base_url(&req.base_url)?;
    req.credentials.check_for(kind)?;
    let id = ward_core::ids::ConnectionId::from_random(state.random_id_bytes()?).to_string();
    let sealed = seal(&state, &meta, &principal, &id, &req.credentials).await?;
    let now = state.now();
    let c = Connection {
        id: id.clone(),
        tenant_id: principal.tenant_id.clone(),
        name,
        kind,
        base_url,
        credential_fields: sealed.fields.clone(),
        credentials_changed_at: now,
        created_at: now,
        updated_at: now,
    };
    let e = event(&state, &meta, Some(&principal.tenant_id), principal.actor(), actions::CONNECTION_CREATED)?
        .target("connection", id)
        .details(json!({ "name": c.name, "kind": kind.as_str(), "base_url": c.base_url, "credential_fields": c.credential_fields }));
    state
        .store()
        .create_connection(&c, &sealed, &e)
        .await
        .map_err(conflict)?;
    Ok((StatusCode::CREATED, Json(ConnectionView::from(&c))))
}

async fn find(state: &AppState, tenant: &TenantId, id: &str) -> Result<Connection, ApiError> {
    state
        .store()
        .find_connection(tenant, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// One connection (metadata only).
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = ConnectionView), (status = 404, body = crate::Problem)))]
pub(crate) async fn get_connection(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    principal.require(Permission::ReadConnections)?;
    Ok(Json(ConnectionView::from(
        &find(&state, &principal.tenant_id, &id).await?,
    )))
}

/// Change a connection's name or URL, or replace its credentials.
#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections", request_body = UpdateConnectionRequest,
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = ConnectionView), (status = 404, body = crate::Problem),
        (status = 422, body = crate::Problem, description = "`invalid_field`, or `credentials_required`: a new scheme, host or port without credentials")))]
pub(crate) async fn update_connection(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateConnectionRequest>,
) -> Result<Json<ConnectionView>, ApiError> {
    principal.require(Permission::ManageConnections)?;
    let mut c = find(&state, &principal.tenant_id, &id).await?;
    if let Some(n) = &req.name {
        c.name = check_connection_name(n)?;
    }
    if let Some(u) = &req.base_url {
        let new_url = check_base_url(u)?;
        // Stored credentials were given for one host; sending them to another
        // needs someone who knows them to say so by entering them again.
        if credentials_bound_elsewhere(&c.base_url, &new_url) && req.credentials.is_none() {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "credentials_required",
                "changing the connection's scheme, host or port needs its credentials in the same request",
            );
            e.field = Some("credentials".to_owned());
            return Err(e);
        }
        c.base_url = new_url;
    }
    let now = state.now();
    let sealed = match &req.credentials {
        Some(creds) => {
            creds.check_for(c.kind)?;
            let s = seal(&state, &meta, &principal, &id, creds).await?;
            c.credential_fields = s.fields.clone();
            c.credentials_changed_at = now;
            Some(s)
        }
        None => None,
    };
    c.updated_at = now;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::CONNECTION_UPDATED,
    )?
    .target("connection", id.clone())
    .details(json!({
        "name": req.name.as_ref().map(|_| &c.name),
        "base_url": req.base_url.as_ref().map(|_| &c.base_url),
        "credentials_replaced": sealed.is_some(),
        "credential_fields": sealed.as_ref().map(|s| &s.fields),
    }));
    if !state
        .store()
        .update_connection(&c, sealed.as_ref(), &e)
        .await
        .map_err(conflict)?
    {
        return Err(ApiError::not_found());
    }
    Ok(Json(ConnectionView::from(&c)))
}

/// Delete a connection and its encrypted credentials.
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = crate::Problem)))]
pub(crate) async fn delete_connection(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ManageConnections)?;
    let c = find(&state, &principal.tenant_id, &id).await?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::CONNECTION_DELETED,
    )?
    .target("connection", id.clone())
    .details(json!({ "name": c.name }));
    if state
        .store()
        .delete_connection(&principal.tenant_id, &id, &e)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Check that the connection's host answers (a TCP connection within 5 seconds,
/// through the egress policy). The answer is reachable or not, with a reason class
/// only: `refused_by_policy`, `dns_failed` or `unreachable` (refused, reset and
/// timed out alike), so the test cannot map ports. Decrypts the credentials as a
/// deployment would, and audits that use.
#[utoipa::path(post, path = "/api/v1/connections/{id}/test", tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = ConnectionTestResult), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`key_destroyed`")))]
pub(crate) async fn test_connection(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ConnectionTestResult>, ApiError> {
    principal.require(Permission::ManageConnections)?;
    let c = find(&state, &principal.tenant_id, &id).await?;
    let creds = use_credentials(&state, &meta, &principal, &c, "connection_test").await?;
    drop(creds);
    let attempt = match host_and_port(&c.base_url) {
        Some((host, port)) => {
            state
                .egress
                .connect_tcp(&host, port, Duration::from_secs(5))
                .await
        }
        None => Err(ward_jobs::egress::EgressError::BadDestination(
            "the base URL has no host",
        )),
    };
    Ok(Json(match attempt {
        Ok(_) => ConnectionTestResult {
            reachable: true,
            reason: None,
            detail: "the host accepted a connection".to_owned(),
        },
        Err(e) => {
            tracing::info!(connection = %c.id, error = %e, "connection test: not reachable");
            ConnectionTestResult {
                reachable: false,
                reason: Some(e.class().to_owned()),
                detail: match e.class() {
                    "refused_by_policy" => {
                        "this server may not connect to that address (egress policy)"
                    }
                    "dns_failed" => "the host name does not resolve",
                    "invalid_destination" => "the base URL names no host to connect to",
                    _ => "the host did not accept a connection",
                }
                .to_owned(),
            }
        }
    }))
}

/// Decrypts a connection's credentials for use, recording the use in the audit
/// trail first. The only way credentials leave the database in the clear.
pub(crate) async fn use_credentials(
    state: &AppState,
    meta: &RequestMeta,
    principal: &Principal,
    c: &Connection,
    purpose: &str,
) -> Result<Credentials, ApiError> {
    let sealed = state
        .store()
        .connection_credentials(&principal.tenant_id, &c.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let e = event(
        state,
        meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::CONNECTION_CREDENTIALS_USED,
    )?
    .target("connection", c.id.clone())
    .details(json!({ "purpose": purpose, "key_version": sealed.key_version }));
    state.store().record_credential_use(&e).await?;
    let ctx = FieldContext {
        tenant_id: principal.tenant_id.as_str(),
        entity: ENTITY,
        field: FIELD,
        row_id: &c.id,
    };
    let plain = state
        .keys
        .keyring
        .decrypt(state.store(), ctx, &principal.tenant_id, &sealed.envelope)
        .await
        .map_err(key_error)?;
    Credentials::from_plaintext(&plain).ok_or_else(|| ApiError::internal())
}
