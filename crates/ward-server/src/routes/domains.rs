//! A company's email domains: claim one, prove control with a DNS TXT record,
//! remove it. At most one company holds a domain verified; SSO providers may
//! only name verified domains, and other companies cannot create addresses on
//! them. Every change is security-sensitive.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use ward_core::Permission;
use ward_core::audit::actions;
use ward_core::domain::{check_domain, txt_proves};
use ward_store::{Conflict, DomainClaim, StoreError};

use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::views::{ClaimDomainRequest, DomainList, DomainView};
use crate::{ApiError, AppState};

fn taken() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "domain_taken",
        "your company already claims this domain, or another company holds it verified",
    )
}

async fn find(state: &AppState, p: &Principal, domain: &str) -> Result<DomainClaim, ApiError> {
    let domain = check_domain(domain).map_err(|_| ApiError::not_found())?;
    state
        .store()
        .domain_claims(&p.tenant_id)
        .await?
        .into_iter()
        .find(|c| c.domain == domain)
        .ok_or_else(ApiError::not_found)
}

/// The company's domains and the TXT record that verifies each.
#[utoipa::path(get, path = "/api/v1/company/domains", tag = "company",
    responses((status = 200, body = DomainList)))]
pub(crate) async fn list_domains(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<DomainList>, ApiError> {
    principal.require(Permission::ManageSettings)?;
    let claims = state.store().domain_claims(&principal.tenant_id).await?;
    Ok(Json(DomainList {
        domains: claims.iter().map(DomainView::from).collect(),
    }))
}

/// Claims a domain (unverified): answers the TXT record to publish.
#[utoipa::path(post, path = "/api/v1/company/domains", tag = "company", request_body = ClaimDomainRequest,
    responses((status = 201, body = DomainView), (status = 409, body = crate::Problem, description = "`domain_taken`"),
        (status = 422, body = crate::Problem)))]
pub(crate) async fn claim_domain(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<ClaimDomainRequest>,
) -> Result<(StatusCode, Json<DomainView>), ApiError> {
    principal.require(Permission::ManageSettings)?;
    principal
        .require_sensitive(&state, &meta, "company.domain_add")
        .await?;
    let domain = check_domain(&req.domain)?;
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        state.random_id_bytes()?,
    );
    let claim = DomainClaim {
        tenant_id: principal.tenant_id.clone(),
        domain: domain.clone(),
        token,
        verified_at: None,
        verified_by: None,
        created_at: state.now(),
    };
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::DOMAIN_ADDED,
    )?
    .target("domain", domain.clone())
    .details(json!({ "domain": domain }));
    match state.store().add_domain_claim(&claim, &e).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(DomainView::from(&claim)))),
        Err(StoreError::Conflict(Conflict::DomainTaken)) => Err(taken()),
        Err(e) => Err(e.into()),
    }
}

/// Looks the domain's TXT records up and verifies the claim when one carries
/// `ward-verification=<token>`. A failed check is audited and changes nothing.
#[utoipa::path(post, path = "/api/v1/company/domains/{domain}/verify", tag = "company",
    params(("domain" = String, Path)),
    responses((status = 200, body = DomainView), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`domain_taken`: another company holds it verified"),
        (status = 422, body = crate::Problem, description = "`domain_verification_failed`")))]
pub(crate) async fn verify_domain(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(domain): Path<String>,
) -> Result<Json<DomainView>, ApiError> {
    principal.require(Permission::ManageSettings)?;
    principal
        .require_sensitive(&state, &meta, "company.domain_verify")
        .await?;
    let mut claim = find(&state, &principal, &domain).await?;
    if claim.verified_at.is_some() {
        return Ok(Json(DomainView::from(&claim)));
    }
    let found = crate::domain_verify::txt_records(state.settings.dns_resolver, &claim.domain).await;
    let proven = found
        .as_ref()
        .is_ok_and(|records| txt_proves(records, &claim.token));
    if !proven {
        let reason = match &found {
            Ok(_) => "no TXT record carries this company's verification value".to_owned(),
            Err(e) => e.to_string(),
        };
        let e = event(
            &state,
            &meta,
            Some(&principal.tenant_id),
            principal.actor(),
            actions::DOMAIN_VERIFICATION_FAILED,
        )?
        .failed()
        .target("domain", claim.domain.clone())
        .details(json!({ "domain": claim.domain, "reason": reason }));
        state.store().record_audit(&e).await?;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "domain_verification_failed",
            format!(
                "{reason}: publish the TXT record {} at {} and try again",
                ward_core::domain::verification_record(&claim.token),
                claim.domain
            ),
        ));
    }
    let now = state.now();
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::DOMAIN_VERIFIED,
    )?
    .target("domain", claim.domain.clone())
    .details(json!({ "domain": claim.domain, "method": "dns" }));
    match state
        .store()
        .verify_domain_claim(&principal.tenant_id, &claim.domain, now, "dns", &e)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::not_found()),
        Err(StoreError::Conflict(Conflict::DomainTaken)) => return Err(taken()),
        Err(e) => return Err(e.into()),
    }
    claim.verified_at = Some(now);
    claim.verified_by = Some("dns".to_owned());
    Ok(Json(DomainView::from(&claim)))
}

/// Removes a claim. Providers naming the domain keep it until edited, but the
/// domain is open to other companies again.
#[utoipa::path(delete, path = "/api/v1/company/domains/{domain}", tag = "company",
    params(("domain" = String, Path)),
    responses((status = 204), (status = 404, body = crate::Problem)))]
pub(crate) async fn remove_domain(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::ManageSettings)?;
    principal
        .require_sensitive(&state, &meta, "company.domain_remove")
        .await?;
    let claim = find(&state, &principal, &domain).await?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::DOMAIN_REMOVED,
    )?
    .target("domain", claim.domain.clone())
    .details(json!({ "domain": claim.domain }));
    if state
        .store()
        .remove_domain_claim(&principal.tenant_id, &claim.domain, &e)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
