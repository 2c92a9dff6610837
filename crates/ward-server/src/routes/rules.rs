//! Detection rules: create, list, read, save a new version, version history.
//! Every save is validated first (nothing is written when the rule is invalid)
//! and becomes an immutable version.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use ward_core::audit::actions;
use ward_core::rule::{Rule, RuleFilter, RuleHeader, RuleStatus, RuleVersion, check_change_note};
use ward_core::{Permission, RuleId};
use ward_rules::{Limits, Validation, content_hash, validate};
use ward_store::{Conflict, StoreError, VersionSaved};

use super::event;
use crate::extract::{ApiJson, Principal, RequestMeta};
use crate::views::{RuleList, RuleRequest, RuleVersionList, RuleView, SaveRuleRequest};
use crate::{ApiError, AppState};

/// Validates rule text; an invalid rule is a 422 naming every error with its
/// position, and one holding more than one document is refused too.
pub(crate) fn validated(content: &str) -> Result<(Validation, RuleHeader), ApiError> {
    let v = validate(content.as_bytes(), Limits::default());
    if !v.is_valid() {
        let errors: Vec<String> = v.errors().take(20).map(ToString::to_string).collect();
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rule",
            format!("the rule is not valid Sigma: {}", errors.join("; ")),
        );
        e.field = Some("content".to_owned());
        return Err(e);
    }
    let [doc] = v.documents.as_slice() else {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_rule",
            "a rule is one Sigma document; import files that hold several",
        );
        e.field = Some("content".to_owned());
        return Err(e);
    };
    let head = RuleHeader {
        title: doc.title.clone(),
        sigma_id: doc.id.clone(),
        level: doc.level.clone(),
        tags: doc.tags.clone(),
        logsource: doc.logsource.clone(),
    };
    Ok((v, head))
}

/// A new draft rule at version 1 in the principal's company.
pub(crate) fn new_rule(
    state: &AppState,
    principal: &Principal,
    head: RuleHeader,
    now: ward_core::Timestamp,
) -> Result<Rule, ApiError> {
    Ok(Rule {
        id: RuleId::from_random(state.random_id_bytes()?),
        tenant_id: principal.tenant_id.clone(),
        sigma_id: head.sigma_id,
        title: head.title,
        status: RuleStatus::Draft,
        current_version: 1,
        approved_version: None,
        level: head.level,
        tags: head.tags,
        logsource: head.logsource,
        author_label: principal.email.clone(),
        created_at: now,
        updated_at: now,
    })
}

pub(crate) fn id_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(Conflict::RuleIdTaken) => ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_rule_id",
            "the company already has a rule with this Sigma id",
        ),
        other => other.into(),
    }
}

/// Creates a rule from Sigma YAML (a draft at version 1).
#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", request_body = RuleRequest,
    responses((status = 201, body = RuleView), (status = 403, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`duplicate_rule_id`"),
        (status = 422, body = crate::Problem, description = "`invalid_rule`, every error with its line and column")))]
pub(crate) async fn create_rule(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiJson(req): ApiJson<RuleRequest>,
) -> Result<(StatusCode, Json<RuleView>), ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let note = check_change_note(req.note.as_deref())?;
    let (v, head) = validated(&req.content)?;
    let now = state.now();
    let rule = new_rule(&state, &principal, head, now)?;
    let version = RuleVersion {
        rule_id: rule.id.clone(),
        version: 1,
        content_hash: content_hash(&req.content),
        content: req.content,
        author_id: principal.user_id.clone(),
        author_label: principal.email.clone(),
        note,
        created_at: now,
    };
    let e = event(&state, &meta, Some(&rule.tenant_id), principal.actor(), actions::RULE_CREATED)?
        .target("rule", rule.id.to_string())
        .details(json!({ "title": rule.title, "sigma_id": rule.sigma_id, "version": 1, "content_hash": version.content_hash }));
    state
        .store()
        .create_rule(&rule, &version, &e)
        .await
        .map_err(id_taken)?;
    Ok((
        StatusCode::CREATED,
        Json(RuleView::new(&rule, &version, &v)),
    ))
}

/// The rule list's filter as the API reads it; every given criterion must hold
/// (`ward_core::rule::RuleFilter`).
#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleListQuery {
    /// `draft`, `in_review`, `approved` or `rejected`; empty means any.
    #[param(schema_with = crate::openapi::schemas::rule_status_filter)]
    status: Option<String>,
    /// The Sigma `level`, compared case-insensitively.
    level: Option<String>,
    /// One whole tag, compared case-insensitively.
    tag: Option<String>,
    /// Part of the current version's author.
    author: Option<String>,
    /// Part of `product/category/service`.
    logsource: Option<String>,
}

impl From<RuleListQuery> for RuleFilter {
    fn from(q: RuleListQuery) -> Self {
        RuleFilter {
            status: q.status,
            level: q.level,
            tag: q.tag,
            author: q.author,
            logsource: q.logsource,
        }
    }
}

/// The company's rules.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules", params(RuleListQuery),
    responses((status = 200, body = RuleList), (status = 422, body = crate::Problem, description = "`invalid_field`: an unknown `status`")))]
pub(crate) async fn list_rules(
    State(state): State<AppState>,
    principal: Principal,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<RuleListQuery>,
) -> Result<Json<RuleList>, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let filter = RuleFilter::from(query);
    if let Some(s) = filter.status.as_deref().filter(|s| !s.is_empty()) {
        RuleStatus::parse(s).ok_or_else(|| {
            ward_core::InvalidField::new("status", "must be draft, in_review, approved or rejected")
        })?;
    }
    let rules = state.store().list_rules(&principal.tenant_id).await?;
    Ok(Json(RuleList {
        rules: rules
            .iter()
            .filter(|r| filter.matches(r))
            .map(crate::views::RuleSummaryView::from)
            .collect(),
    }))
}

/// A rule with its current text and validation findings.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = RuleView), (status = 404, body = crate::Problem)))]
pub(crate) async fn get_rule(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<RuleView>, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    let rule = state
        .store()
        .find_rule(&principal.tenant_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let versions = state
        .store()
        .rule_versions(&principal.tenant_id, &id)
        .await?;
    let current = versions
        .into_iter()
        .find(|v| v.version == rule.current_version)
        .ok_or_else(|| ApiError::internal())?;
    let v = validate(current.content.as_bytes(), Limits::default());
    Ok(Json(RuleView::new(&rule, &current, &v)))
}

/// Saves a changed rule as a new version (a draft again). Unchanged text saves
/// nothing; a save based on an older version than the current one is refused.
#[utoipa::path(put, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = String, Path)), request_body = SaveRuleRequest,
    responses((status = 200, body = RuleView), (status = 404, body = crate::Problem),
        (status = 409, body = crate::Problem, description = "`stale_version` or `duplicate_rule_id`"),
        (status = 422, body = crate::Problem, description = "`invalid_rule`")))]
pub(crate) async fn save_rule(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SaveRuleRequest>,
) -> Result<Json<RuleView>, ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    let note = check_change_note(req.note.as_deref())?;
    let (v, head) = validated(&req.content)?;
    let rule = state
        .store()
        .find_rule(&principal.tenant_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let hash = content_hash(&req.content);
    let versions = state
        .store()
        .rule_versions(&principal.tenant_id, &id)
        .await?;
    let current = versions
        .into_iter()
        .find(|x| x.version == rule.current_version)
        .ok_or_else(|| ApiError::internal())?;
    let stale = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "stale_version",
            "the rule was changed since the version you edited; reload it and apply your change again",
        )
    };
    if req.base_version != rule.current_version {
        return Err(stale());
    }
    if current.content_hash == hash {
        return Ok(Json(RuleView::new(&rule, &current, &v)));
    }
    let version = RuleVersion {
        rule_id: id.clone(),
        version: rule.current_version + 1,
        content: req.content,
        content_hash: hash,
        author_id: principal.user_id.clone(),
        author_label: principal.email.clone(),
        note,
        created_at: state.now(),
    };
    let e = event(&state, &meta, Some(&principal.tenant_id), principal.actor(), actions::RULE_EDITED)?
        .target("rule", id.to_string())
        .details(json!({ "version": version.version, "content_hash": version.content_hash, "note": version.note }));
    match state
        .store()
        .save_rule_version(&principal.tenant_id, &version, &head, &e)
        .await
        .map_err(id_taken)?
    {
        VersionSaved::Saved => {}
        VersionSaved::NotFound => return Err(ApiError::not_found()),
        VersionSaved::Stale { .. } => return Err(stale()),
    }
    let rule = Rule {
        title: head.title,
        sigma_id: head.sigma_id,
        level: head.level,
        tags: head.tags,
        logsource: head.logsource,
        author_label: version.author_label.clone(),
        status: RuleStatus::Draft,
        current_version: version.version,
        updated_at: version.created_at,
        ..rule
    };
    Ok(Json(RuleView::new(&rule, &version, &v)))
}

/// Every version of a rule, newest first.
#[utoipa::path(get, path = "/api/v1/rules/{id}/versions", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = RuleVersionList), (status = 404, body = crate::Problem)))]
pub(crate) async fn list_versions(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<RuleVersionList>, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    let versions = state
        .store()
        .rule_versions(&principal.tenant_id, &id)
        .await?;
    if versions.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(Json(RuleVersionList {
        versions: versions
            .iter()
            .map(crate::views::RuleVersionView::from)
            .collect(),
    }))
}

/// `from` and `to` versions to compare.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffQuery {
    pub from: u32,
    pub to: u32,
}

/// The unified diff between two versions of a rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}/diff", tag = "rules", params(("id" = String, Path), DiffQuery),
    responses((status = 200, body = crate::views::RuleDiffView), (status = 404, body = crate::Problem, description = "no such rule or version")))]
pub(crate) async fn diff_versions(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<DiffQuery>,
) -> Result<Json<crate::views::RuleDiffView>, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    let versions = state
        .store()
        .rule_versions(&principal.tenant_id, &id)
        .await?;
    let find = |n: u32| {
        versions
            .iter()
            .find(|v| v.version == n)
            .ok_or_else(ApiError::not_found)
    };
    let (old, new) = (find(q.from)?, find(q.to)?);
    Ok(Json(crate::views::RuleDiffView {
        from: q.from,
        to: q.to,
        diff: ward_rules::unified_diff(
            &old.content,
            &new.content,
            &format!("version {}", q.from),
            &format!("version {}", q.to),
        ),
    }))
}

/// Most test cases one rule may carry.
pub(crate) const MAX_TESTS: usize = 200;

/// Replaces a rule's test cases. Each has a name, `expect` (`match` or
/// `no_match`) and an `event` object (flat JSON or EVTX JSON).
#[utoipa::path(put, path = "/api/v1/rules/{id}/tests", tag = "rules", params(("id" = String, Path)), request_body = crate::views::RuleTestsBody,
    responses((status = 200, body = crate::views::RuleTestsBody), (status = 404, body = crate::Problem), (status = 422, body = crate::Problem)))]
pub(crate) async fn set_tests(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<crate::views::RuleTestsBody>,
) -> Result<Json<crate::views::RuleTestsBody>, ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    if req.tests.len() > MAX_TESTS {
        return Err(
            ward_core::InvalidField::new("tests", format!("at most {MAX_TESTS} tests")).into(),
        );
    }
    let mut req = req;
    for (i, t) in req.tests.iter_mut().enumerate() {
        // Shown in test runs and reviews: stored in NFC, no hidden characters.
        t.name = ward_core::text::checked_name("tests", &t.name, 200)?;
        if !t.event.is_object() {
            return Err(ward_core::InvalidField::new(
                "tests",
                format!(
                    "test {} ({:?}): `event` must be a JSON object",
                    i + 1,
                    t.name
                ),
            )
            .into());
        }
    }
    let json = serde_json::to_string(&req.tests).map_err(|_| ApiError::internal())?;
    let positive = req
        .tests
        .iter()
        .filter(|t| t.expect == ward_rules::TestExpectation::Match)
        .count();
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::RULE_TESTS_CHANGED,
    )?
    .target("rule", id.to_string())
    .details(json!({ "tests": req.tests.len(), "positive": positive }));
    if !state
        .store()
        .set_rule_tests(
            &principal.tenant_id,
            &id,
            &json,
            &principal.user_id,
            state.now(),
            &e,
        )
        .await?
    {
        return Err(ApiError::not_found());
    }
    Ok(Json(req))
}

/// A rule's test cases.
#[utoipa::path(get, path = "/api/v1/rules/{id}/tests", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = crate::views::RuleTestsBody), (status = 404, body = crate::Problem)))]
pub(crate) async fn get_tests(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<crate::views::RuleTestsBody>, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    state
        .store()
        .find_rule(&principal.tenant_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let tests = match state.store().rule_tests(&principal.tenant_id, &id).await? {
        Some(j) => serde_json::from_str(&j).map_err(|_| ApiError::internal())?,
        None => Vec::new(),
    };
    Ok(Json(crate::views::RuleTestsBody { tests }))
}

/// Runs the rule's tests against its current version with the local Sigma
/// evaluator, and records the run (who, when, which version, each result).
#[utoipa::path(post, path = "/api/v1/rules/{id}/tests/run", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = crate::views::TestRunView), (status = 404, body = crate::Problem), (status = 409, body = crate::Problem, description = "`no_tests`")))]
pub(crate) async fn run_tests(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<crate::views::TestRunView>, ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    let rule = state
        .store()
        .find_rule(&principal.tenant_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let tests: Vec<ward_rules::RuleTest> =
        match state.store().rule_tests(&principal.tenant_id, &id).await? {
            Some(j) => serde_json::from_str(&j).map_err(|_| ApiError::internal())?,
            None => Vec::new(),
        };
    if tests.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_tests",
            "the rule has no tests; add some first",
        ));
    }
    let versions = state
        .store()
        .rule_versions(&principal.tenant_id, &id)
        .await?;
    let current = versions
        .iter()
        .find(|v| v.version == rule.current_version)
        .ok_or_else(|| ApiError::internal())?;
    let checked = validate(current.content.as_bytes(), Limits::default());
    let compiled = checked.rules.first().ok_or_else(|| ApiError::internal())?;
    let outcomes = ward_rules::run_rule_tests(compiled, &tests);
    let passed = u32::try_from(outcomes.iter().filter(|o| o.passed).count()).unwrap_or(u32::MAX);
    let failed = u32::try_from(outcomes.len()).unwrap_or(u32::MAX) - passed;
    let run = ward_store::StoredTestRun {
        id: ward_core::EventId::from_random(state.random_id_bytes()?).to_string(),
        version: rule.current_version,
        run_by: principal.email.clone(),
        run_at: state.now(),
        passed,
        failed,
        results: serde_json::to_string(&outcomes).map_err(|_| ApiError::internal())?,
    };
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::RULE_TESTS_RUN,
    )?
    .target("rule", id.to_string())
    .details(json!({ "version": run.version, "passed": passed, "failed": failed }));
    state.store().record_test_run(&id, &run, &e).await?;
    Ok(Json(crate::views::TestRunView::new(&run, outcomes)))
}

/// The latest test runs of a rule (at most 50), newest first.
#[utoipa::path(get, path = "/api/v1/rules/{id}/tests/runs", tag = "rules", params(("id" = String, Path)),
    responses((status = 200, body = crate::views::TestRunList), (status = 404, body = crate::Problem)))]
pub(crate) async fn list_test_runs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<crate::views::TestRunList>, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    state
        .store()
        .find_rule(&principal.tenant_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let runs = state
        .store()
        .test_runs(&principal.tenant_id, &id, 50)
        .await?;
    let runs = runs
        .iter()
        .map(|r| {
            let outcomes: serde_json::Value =
                serde_json::from_str(&r.results).map_err(|_| ApiError::internal())?;
            Ok(crate::views::TestRunView::new(r, outcomes))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(crate::views::TestRunList { runs }))
}

/// Deletes a rule: it leaves the lists and its Sigma id is free again; its
/// versions, tests, runs and reviews are kept as the record.
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::Problem), (status = 404, body = crate::Problem)))]
pub(crate) async fn delete_rule(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let id = RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    let rule = state
        .store()
        .find_rule(&principal.tenant_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let e = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::RULE_DELETED,
    )?
    .target("rule", id.to_string())
    .details(
        json!({ "title": rule.title, "sigma_id": rule.sigma_id, "version": rule.current_version }),
    );
    if !state
        .store()
        .delete_rule(&principal.tenant_id, &id, state.now(), &e)
        .await?
    {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}
