//! Review and approval of detection rules: submit (tests run and must pass),
//! approve and reject (separation of duties, the company's number of
//! approvals), the review page's data, the review queue, and the company's
//! review policy. The workflow itself is `ward_core::rule_review`; these
//! handlers load its state, ask it, and store what it decided.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use ward_core::audit::actions;
use ward_core::rule::{Rule, RuleStatus, RuleVersion};
use ward_core::rule_review::{
    Approval, Draft, InReview, RejectRefused, ReviewPolicy, ReviewRefused, ReviewerControl,
    TestEvidence,
};
use ward_core::{Permission, RuleId, UserId};
use ward_rules::{Limits, TestExpectation, validate};
use ward_store::{NewReview, ReviewDecision, StoredReview, StoredTestRun};

use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::views::{RuleSummaryView, TestRunView};
use crate::{ApiError, AppState};

/// The version the caller looked at; a step on any other version is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewStepRequest {
    pub version: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    pub version: u32,
    /// Why, for the author: one line, at most 1,000 characters.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    pub approver: String,
    pub approved_at: String,
}

/// One review round.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub id: String,
    pub version: u32,
    /// `open`, `approved`, `rejected` or `voided` (the rule or its tests changed).
    pub state: String,
    pub submitted_by: String,
    pub submitted_at: String,
    pub required_approvals: u8,
    pub approvals: Vec<ApprovalView>,
    pub closed_by: Option<String>,
    pub closed_at: Option<String>,
    pub reason: Option<String>,
    pub test_run_id: String,
}

impl From<&StoredReview> for ReviewView {
    fn from(r: &StoredReview) -> Self {
        Self {
            id: r.id.clone(),
            version: r.version,
            state: r.state.clone(),
            submitted_by: r.submitted_label.clone(),
            submitted_at: r.submitted_at.to_rfc3339(),
            required_approvals: r.required,
            approvals: r
                .approvals
                .iter()
                .map(|a| ApprovalView {
                    approver: a.approver_label.clone(),
                    approved_at: a.approved_at.to_rfc3339(),
                })
                .collect(),
            closed_by: r.closed_by_label.clone(),
            closed_at: r.closed_at.map(|t| t.to_rfc3339()),
            reason: r.reason.clone(),
            test_run_id: r.test_run_id.clone(),
        }
    }
}

/// What a reviewer needs: the rule, its review rounds (newest first), the diff
/// against the last approved version, the test results the submission rests
/// on, and whether the caller may approve.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleReviewView {
    pub rule: RuleSummaryView,
    pub reviews: Vec<ReviewView>,
    /// The version the diff starts from: the last approved one (`null`: none
    /// yet, so the diff shows the whole rule).
    pub diff_from: Option<u32>,
    pub diff: String,
    pub test_run: Option<TestRunView>,
    /// Whether the caller may approve or reject the open review.
    pub can_review: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQueueItem {
    pub rule: RuleSummaryView,
    pub review: ReviewView,
    pub can_review: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQueue {
    pub reviews: Vec<ReviewQueueItem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewPolicyBody {
    /// Distinct approvals a rule needs (1 to 5).
    #[schema(minimum = 1, maximum = 5)]
    pub min_approvers: u32,
    /// Approvers' accounts must have existed before the change was submitted
    /// (default false).
    #[serde(default)]
    pub approvers_predate_change: bool,
}

/// The problem a refused workflow step answers with.
pub(crate) fn refused(r: &ReviewRefused) -> ApiError {
    let status = match r {
        ReviewRefused::Access(_) | ReviewRefused::ControlledByAuthor(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::CONFLICT,
    };
    ApiError::new(status, r.code(), r.to_string())
}

fn rejection_refused(r: RejectRefused) -> ApiError {
    match r {
        RejectRefused::Review(r) => refused(&r),
        RejectRefused::Reason(f) => f.into(),
    }
}

/// The open review as the workflow type, from what is stored.
fn in_review(r: &StoredReview) -> InReview {
    InReview::resume(
        r.version,
        r.authors.clone(),
        r.required,
        r.approvals.iter().map(|a| a.approver_id.clone()).collect(),
        r.submitted_at,
    )
}

/// Who stands behind the approver: the controllers of the identity provider
/// their session (or their token's minting session) came through, and who
/// made their account when.
async fn reviewer_control(state: &AppState, p: &Principal) -> Result<ReviewerControl, ApiError> {
    let provider_controllers = match p.sso_provider_id() {
        Some(id) => match state.store().find_sso_provider(id).await? {
            Some(stored) => stored.provider.controllers().cloned().collect(),
            // A removed provider's sessions were revoked with it.
            None => vec![],
        },
        None => vec![],
    };
    Ok(ReviewerControl {
        provider_controllers,
        account_created_by: state.store().user_creator(&p.tenant_id, &p.user_id).await?,
        account_created_at: p.user.created_at,
        policy: state.store().review_policy(&p.tenant_id).await?,
    })
}

/// Who wrote the change under review: every author of a version after the last
/// approved one.
fn change_authors(rule: &Rule, versions: &[RuleVersion]) -> Vec<UserId> {
    let since = rule.approved_version.unwrap_or(0);
    let mut authors: Vec<UserId> = Vec::new();
    for v in versions.iter().filter(|v| v.version > since) {
        if !authors.contains(&v.author_id) {
            authors.push(v.author_id.clone());
        }
    }
    authors
}

async fn find_rule(state: &AppState, p: &Principal, id: &str) -> Result<Rule, ApiError> {
    let id = RuleId::parse(id).ok_or_else(ApiError::not_found)?;
    state
        .store()
        .find_rule(&p.tenant_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// Submits the current version for review. The rule's tests are run on it
/// first (and the run recorded): all must pass and one must expect a match.
#[utoipa::path(post, path = "/api/v1/rules/{id}/submit", tag = "rules", params(("id" = String, Path)), request_body = ReviewStepRequest,
    responses((status = 200, body = RuleReviewView), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`no_tests`, `no_positive_test`, `tests_failing`, `stale_version` or `invalid_transition`")))]
pub(crate) async fn submit_rule(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReviewStepRequest>,
) -> Result<Json<RuleReviewView>, ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let rule = find_rule(&state, &principal, &id).await?;
    if rule.status != RuleStatus::Draft {
        return Err(refused(&ReviewRefused::WrongStatus {
            status: rule.status.as_str(),
            step: "submitted (edit it to start a new draft)",
        }));
    }
    if req.version != rule.current_version {
        return Err(refused(&ReviewRefused::StaleVersion {
            current: rule.current_version,
        }));
    }
    let versions = state
        .store()
        .rule_versions(&principal.tenant_id, &rule.id)
        .await?;
    let current = versions
        .iter()
        .find(|v| v.version == rule.current_version)
        .ok_or_else(|| ApiError::internal())?;
    let tests: Vec<ward_rules::RuleTest> = match state
        .store()
        .rule_tests(&principal.tenant_id, &rule.id)
        .await?
    {
        Some(j) => serde_json::from_str(&j).map_err(|_| ApiError::internal())?,
        None => Vec::new(),
    };
    let checked = validate(current.content.as_bytes(), Limits::default());
    let compiled = checked.rules.first().ok_or_else(|| ApiError::internal())?;
    let outcomes = ward_rules::run_rule_tests(compiled, &tests);
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let passed = count(outcomes.iter().filter(|o| o.passed).count());
    let evidence = TestEvidence {
        version: rule.current_version,
        passed,
        failed: count(outcomes.len()).saturating_sub(passed),
        positive: count(
            tests
                .iter()
                .filter(|t| t.expect == TestExpectation::Match)
                .count(),
        ),
    };
    let policy = state.store().review_policy(&principal.tenant_id).await?;
    let review = Draft::resume(rule.current_version)
        .submit(
            principal.role,
            policy,
            change_authors(&rule, &versions),
            &evidence,
            state.now(),
        )
        .map_err(|r| refused(&r))?;
    let now = state.now();
    let run = StoredTestRun {
        id: ward_core::EventId::from_random(state.random_id_bytes()?).to_string(),
        version: rule.current_version,
        run_by: principal.email.clone(),
        run_at: now,
        passed: evidence.passed,
        failed: evidence.failed,
        results: serde_json::to_string(&outcomes).map_err(|_| ApiError::internal())?,
    };
    let stored = NewReview {
        id: ward_core::EventId::from_random(state.random_id_bytes()?).to_string(),
        version: review.version(),
        submitted_by: principal.user_id.clone(),
        submitted_label: principal.email.clone(),
        submitted_at: now,
        authors: change_authors(&rule, &versions),
        required: review.required(),
    };
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::RULE_SUBMITTED,
    )?
    .target("rule", rule.id.to_string())
    .details(
        json!({ "version": stored.version, "tests_passed": evidence.passed,
        "required_approvals": stored.required, "review": stored.id }),
    );
    if !state
        .store()
        .submit_rule(&principal.tenant_id, &rule.id, &stored, &run, &e)
        .await?
    {
        return Err(refused(&ReviewRefused::StaleVersion {
            current: rule.current_version,
        }));
    }
    review_view(&state, &principal, &rule.id).await.map(Json)
}

/// Approves the open review of a rule. The last approval the company requires
/// makes the rule approved.
#[utoipa::path(post, path = "/api/v1/rules/{id}/approve", tag = "rules", params(("id" = String, Path)), request_body = ReviewStepRequest,
    responses((status = 200, body = RuleReviewView),
        (status = 403, body = crate::Problem, description = "`forbidden` or `separation_of_duties` (an author of the change)"),
        (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`stale_version`, `already_approved` or `invalid_transition`")))]
pub(crate) async fn approve_rule(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReviewStepRequest>,
) -> Result<Json<RuleReviewView>, ApiError> {
    principal.require(Permission::ApproveChanges)?;
    let rule_id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    let base = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::RULE_APPROVED,
    )?
    .target("rule", rule_id.to_string());
    let now = state.now();
    let control = reviewer_control(&state, &principal).await?;
    state
        .store()
        .decide_review(&principal.tenant_id, &rule_id, |rule, open| {
            let open = open.ok_or_else(|| {
                refused(&ReviewRefused::WrongStatus {
                    status: rule.status.as_str(),
                    step: "approved",
                })
            })?;
            let outcome = in_review(open)
                .approve(&principal.user_id, principal.role, req.version, &control)
                .map_err(|r| refused(&r))?;
            let (completes, given) = match &outcome {
                Approval::Pending(r) => (false, r.approvals().len()),
                Approval::Approved(a) => (true, a.approvers().len()),
            };
            let e = base.details(json!({ "version": open.version, "approvals": given,
                "required_approvals": open.required, "approved": completes, "review": open.id }));
            let d = ReviewDecision::Approve {
                approver_id: principal.user_id.clone(),
                approver_label: principal.email.clone(),
                at: now,
                completes,
            };
            Ok::<_, ApiError>((d, e, ()))
        })
        .await?
        .ok_or_else(ApiError::not_found)??;
    review_view(&state, &principal, &rule_id).await.map(Json)
}

/// Rejects the open review of a rule, with a reason for its author.
#[utoipa::path(post, path = "/api/v1/rules/{id}/reject", tag = "rules", params(("id" = String, Path)), request_body = RejectRequest,
    responses((status = 200, body = RuleReviewView),
        (status = 403, body = crate::Problem, description = "`forbidden` or `separation_of_duties`"),
        (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`stale_version` or `invalid_transition`"),
        (status = 422, body = crate::Problem, description = "`invalid_field`: the reason")))]
pub(crate) async fn reject_rule(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RejectRequest>,
) -> Result<Json<RuleReviewView>, ApiError> {
    principal.require(Permission::ApproveChanges)?;
    let rule_id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    let base = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::RULE_REJECTED,
    )?
    .target("rule", rule_id.to_string());
    let now = state.now();
    state
        .store()
        .decide_review(&principal.tenant_id, &rule_id, |rule, open| {
            let open = open.ok_or_else(|| {
                refused(&ReviewRefused::WrongStatus {
                    status: rule.status.as_str(),
                    step: "rejected",
                })
            })?;
            let rejected = in_review(open)
                .reject(&principal.user_id, principal.role, req.version, &req.reason)
                .map_err(rejection_refused)?;
            let e = base.details(json!({ "version": rejected.version(),
                "reason": rejected.reason(), "review": open.id }));
            let d = ReviewDecision::Reject {
                reviewer_label: principal.email.clone(),
                at: now,
                reason: rejected.reason().to_owned(),
            };
            Ok::<_, ApiError>((d, e, ()))
        })
        .await?
        .ok_or_else(ApiError::not_found)??;
    review_view(&state, &principal, &rule_id).await.map(Json)
}

/// The review page's data for a rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}/review", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = RuleReviewView), (status = 404, body = crate::Problem)))]
pub(crate) async fn get_review(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<RuleReviewView>, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let rule_id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    review_view(&state, &principal, &rule_id).await.map(Json)
}

/// Whether `p` may approve or reject `review` now.
fn may_review(p: &Principal, review: &StoredReview) -> bool {
    review.state == "open"
        && in_review(review).check_reviewer(&p.user_id, p.role).is_ok()
        && !review.approvals.iter().any(|a| a.approver_id == p.user_id)
}

pub(crate) async fn review_view(
    state: &AppState,
    p: &Principal,
    id: &RuleId,
) -> Result<RuleReviewView, ApiError> {
    let rule = state
        .store()
        .find_rule(&p.tenant_id, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let versions = state.store().rule_versions(&p.tenant_id, id).await?;
    let text = |n: Option<u32>| {
        n.and_then(|n| versions.iter().find(|v| v.version == n))
            .map(|v| v.content.as_str())
            .unwrap_or_default()
    };
    let from = rule.approved_version.filter(|&a| a != rule.current_version);
    let diff = ward_rules::unified_diff(
        text(from),
        text(Some(rule.current_version)),
        &from.map_or_else(
            || "nothing approved".to_owned(),
            |a| format!("version {a} (approved)"),
        ),
        &format!("version {}", rule.current_version),
    );
    let reviews = state.store().rule_reviews(&p.tenant_id, id).await?;
    let runs = state.store().test_runs(&p.tenant_id, id, 50).await?;
    let run = match reviews.first() {
        Some(r) => runs.iter().find(|x| x.id == r.test_run_id),
        None => runs.first(),
    };
    let test_run = run
        .map(|r| {
            let outcomes: serde_json::Value =
                serde_json::from_str(&r.results).map_err(|_| ApiError::internal())?;
            Ok::<_, ApiError>(TestRunView::new(r, outcomes))
        })
        .transpose()?;
    Ok(RuleReviewView {
        can_review: reviews.first().is_some_and(|r| may_review(p, r)),
        rule: RuleSummaryView::from(&rule),
        reviews: reviews.iter().map(ReviewView::from).collect(),
        diff_from: from,
        diff,
        test_run,
    })
}

/// The company's open reviews, oldest first, each saying whether the caller
/// may act on it.
#[utoipa::path(get, path = "/api/v1/reviews", tag = "rules",
    responses((status = 200, body = ReviewQueue)))]
pub(crate) async fn review_queue(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ReviewQueue>, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let open = state.store().open_reviews(&principal.tenant_id).await?;
    Ok(Json(ReviewQueue {
        reviews: open
            .iter()
            .map(|(rule, review)| ReviewQueueItem {
                rule: RuleSummaryView::from(rule),
                review: ReviewView::from(review),
                can_review: may_review(&principal, review),
            })
            .collect(),
    }))
}

/// How many approvals a rule needs in this company.
#[utoipa::path(get, path = "/api/v1/company/review-policy", tag = "rules",
    responses((status = 200, body = ReviewPolicyBody)))]
pub(crate) async fn get_review_policy(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ReviewPolicyBody>, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let p = state.store().review_policy(&principal.tenant_id).await?;
    Ok(Json(ReviewPolicyBody {
        min_approvers: u32::from(p.min_approvers()),
        approvers_predate_change: p.approvers_predate_change(),
    }))
}

/// Sets how many approvals a rule needs. Open reviews keep the number they
/// were submitted under.
#[utoipa::path(put, path = "/api/v1/company/review-policy", tag = "rules", request_body = ReviewPolicyBody,
    responses((status = 200, body = ReviewPolicyBody), (status = 403, body = crate::Problem), (status = 422, body = crate::Problem)))]
pub(crate) async fn set_review_policy(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<ReviewPolicyBody>,
) -> Result<Json<ReviewPolicyBody>, ApiError> {
    principal.require(Permission::ManageSettings)?;
    let policy = ReviewPolicy::new(req.min_approvers)?
        .with_approvers_predating(req.approvers_predate_change);
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::REVIEW_POLICY_CHANGED,
    )?
    .target("tenant", principal.tenant_id.to_string())
    .details(json!({ "min_approvers": policy.min_approvers(),
        "approvers_predate_change": policy.approvers_predate_change() }));
    state
        .store()
        .set_review_policy(&principal.tenant_id, policy, &e)
        .await?;
    Ok(Json(req))
}
