//! Reading the company's audit trail, its proofs and checkpoints, and exports.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use ward_audit::verify::hex;
use ward_core::audit::actions;
use ward_core::audit_format::ExportFormat;
use ward_core::{Permission, Timestamp};
use ward_store::AuditFilter;

use super::event;
use crate::audit_export::ExportRequest;
use crate::extract::{ApiQuery, Principal, RequestMeta};
use crate::views::{
    AuditEventView, AuditPage, AuditQuery, CheckpointView, ConsistencyProofView, ConsistencyQuery,
    ExportQuery, InclusionProofView, InclusionQuery,
};
use crate::{ApiError, AppState};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;

/// The company's audit events, newest first, filtered and paginated.
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem)))]
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
        after_seq: None,
        oldest_first: false,
        before_seq: q.before,
        limit,
        any_action: Vec::new(),
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

fn proof_error(e: ward_jobs::audit_log::ProofError) -> ApiError {
    match e {
        ward_jobs::audit_log::ProofError::OutOfRange(m) => {
            ApiError::new(StatusCode::BAD_REQUEST, "proof_out_of_range", m)
        }
        ward_jobs::audit_log::ProofError::Store(s) => s.into(),
    }
}

/// The newest signed checkpoint of the installation's audit tree, signing one now
/// if the tree has grown and the newest is more than five seconds old.
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = CheckpointView), (status = 403, body = crate::Problem)))]
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<CheckpointView>, ApiError> {
    principal.require(Permission::ReadAuditLog)?;
    // At most one new checkpoint every few seconds from this route.
    let c =
        ward_jobs::audit_log::recent_checkpoint(state.store(), &state.keys.audit, state.now(), 5)
            .await?;
    Ok(Json(CheckpointView {
        tree_size: c.tree_size,
        root_hash: hex(&c.root),
        issued_at: c.issued_at.to_rfc3339(),
        note: c.note,
        public_key: state.keys.audit.verifier().encode(),
    }))
}

/// RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves.
#[utoipa::path(get, path = "/api/v1/audit/proof/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, body = InclusionProofView), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem)))]
pub(crate) async fn inclusion(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ApiQuery<InclusionQuery>, ApiError>,
) -> Result<Json<InclusionProofView>, ApiError> {
    principal.require(Permission::ReadAuditLog)?;
    // The permission is checked before the query, so a caller without it learns nothing.
    let ApiQuery(q) = query?;
    let proof = ward_jobs::audit_log::inclusion_proof(state.store(), q.index, q.size)
        .await
        .map_err(proof_error)?;
    Ok(Json(InclusionProofView {
        index: q.index,
        size: q.size,
        proof: proof.iter().map(hex).collect(),
    }))
}

/// RFC 9162 consistency proof from the tree of `from` leaves to the tree of `to`.
#[utoipa::path(get, path = "/api/v1/audit/proof/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProofView), (status = 400, body = crate::Problem), (status = 403, body = crate::Problem)))]
pub(crate) async fn consistency(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ApiQuery<ConsistencyQuery>, ApiError>,
) -> Result<Json<ConsistencyProofView>, ApiError> {
    principal.require(Permission::ReadAuditLog)?;
    let ApiQuery(q) = query?;
    let proof = ward_jobs::audit_log::consistency_proof(state.store(), q.from, q.to)
        .await
        .map_err(proof_error)?;
    Ok(Json(ConsistencyProofView {
        from: q.from,
        to: q.to,
        proof: proof.iter().map(hex).collect(),
    }))
}

/// The company's audit events as a download, streamed: `jsonl`, `ocsf`, `cef`,
/// `csv`, or `proofs` (a verifiable export: a signed checkpoint, the company's
/// events with inclusion proofs, other companies' events as hashes).
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(ExportQuery),
    responses((status = 200, description = "The export, streamed: JSON Lines for `jsonl`, `ocsf` and `proofs`, CEF lines as text, CSV",
            content(("application/x-ndjson"), ("text/plain"), ("text/csv"))),
        (status = 400, body = crate::Problem, description = "`invalid_query` (filters of the other formats, or `from`/`to` outside `proofs`) or `proof_out_of_range`")))]
pub(crate) async fn export(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    query: Result<ApiQuery<ExportQuery>, ApiError>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadAuditLog)?;
    let ApiQuery(q) = query?;
    let bad = |d: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", d);
    let time = |s: &Option<String>, name: &str| -> Result<Option<Timestamp>, ApiError> {
        s.as_deref()
            .map(|t| {
                Timestamp::parse_rfc3339(t)
                    .ok_or_else(|| bad(format!("{name} must be an RFC 3339 time")))
            })
            .transpose()
    };
    let tenant = principal.tenant_id.clone();
    let (request, content_type, extension) = match q.format.as_str() {
        "proofs" => {
            if q.since.is_some() || q.until.is_some() || q.actor.is_some() || q.action.is_some() {
                return Err(bad(
                    "the proofs format selects leaves by from and to, not by time, actor or action"
                        .into(),
                ));
            }
            (
                ExportRequest::Verifiable {
                    tenant: Some(tenant.clone()),
                    from: q.from.unwrap_or(0),
                    to: q.to,
                },
                "application/x-ndjson",
                "jsonl",
            )
        }
        other => {
            let format = ExportFormat::parse(other)
                .ok_or_else(|| bad("format must be one of jsonl, ocsf, cef, csv, proofs".into()))?;
            if q.from.is_some() || q.to.is_some() {
                return Err(bad("from and to apply to the proofs format only".into()));
            }
            let filter = AuditFilter {
                tenant_id: Some(tenant.clone()),
                action: q.action.clone(),
                actor_id: q.actor.clone(),
                since: time(&q.since, "since")?,
                until: time(&q.until, "until")?,
                ..AuditFilter::default()
            };
            let ext = match format {
                ExportFormat::Jsonl | ExportFormat::Ocsf => "jsonl",
                ExportFormat::Cef => "cef",
                ExportFormat::Csv => "csv",
            };
            (
                ExportRequest::Events { format, filter },
                format.content_type(),
                ext,
            )
        }
    };
    crate::audit_export::check_range(state.store(), &request)
        .await
        .map_err(export_error)?;
    // The export itself is audited: who took which part of the log.
    let e = event(
        &state,
        &meta,
        Some(&tenant),
        principal.actor(),
        actions::AUDIT_EXPORTED,
    )?
    .details(
        json!({ "format": q.format, "since": q.since, "until": q.until,
                         "actor": q.actor, "action": q.action, "from": q.from, "to": q.to }),
    );
    state.store().record_audit(&e).await?;

    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    let worker = state.clone();
    let now = state.now();
    tokio::spawn(async move {
        let result =
            crate::audit_export::run_export(worker.store(), &worker.keys.audit, request, now, tx)
                .await;
        if let Err(e) = result
            && !matches!(e, crate::audit_export::ExportError::Closed)
        {
            // The stream ends early; the client sees a truncated file, which
            // `ward audit verify --export` refuses.
            tracing::error!(error = %e, "audit export failed");
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::io::Error>(line), rx))
    });
    let filename = format!("ward-audit-{}.{extension}", now.millis());
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn export_error(e: crate::audit_export::ExportError) -> ApiError {
    match e {
        crate::audit_export::ExportError::OutOfRange(m) => {
            ApiError::new(StatusCode::BAD_REQUEST, "proof_out_of_range", m)
        }
        crate::audit_export::ExportError::Store(s) => s.into(),
        crate::audit_export::ExportError::Closed => ApiError::internal(),
    }
}
