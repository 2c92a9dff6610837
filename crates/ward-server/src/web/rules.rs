//! Detection rule pages: the list with filters, the editor with inline
//! validation errors, tests and their results, version history with diffs, the
//! review queue and the review page (approve or reject). Every form calls the
//! API handler, so the rules (validation, separation of duties) and the audit
//! events are the API's own.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::{Markup, html};
use serde::Deserialize;
use ward_core::Permission;
use ward_core::rule::RuleFilter;
use ward_rules::{Limits, Severity, validate};

use super::layout::{self, Section};
use super::{Flash, after_post, clear_flash, read_flash, redirect_with};
use crate::extract::{ApiJson, ApiQuery, Principal, RequestMeta};
use crate::routes::rule_reviews::{self as api_reviews, RejectRequest, ReviewStepRequest};
use crate::routes::rules::{self as api_rules, DiffQuery};
use crate::views::{RuleRequest, RuleTestsBody, SaveRuleRequest, TestRunView};
use crate::{ApiError, AppState};

fn finish(page: Markup, had_flash: bool) -> Response {
    let mut r = page.into_response();
    if had_flash {
        r.headers_mut().append(header::SET_COOKIE, clear_flash());
    }
    r
}

const STATUSES: [&str; 4] = ["draft", "in_review", "approved", "rejected"];

pub(crate) async fn list(
    state: State<AppState>,
    headers: HeaderMap,
    principal: Principal,
    ApiQuery(query): ApiQuery<api_rules::RuleListQuery>,
) -> Result<Response, ApiError> {
    let flash = read_flash(&headers);
    let filter = RuleFilter::from(query.clone());
    let Json(list) = api_rules::list_rules(state, principal.clone(), ApiQuery(query)).await?;
    let val = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = html! {
        @if principal.role.allows(Permission::WriteWorkObjects) {
            p.actions {
                a.button href="/rules/new" { "New rule" }
                a.button href="/rules/export" { "Export as zip" }
            }
        }
        form method="get" action="/rules" class="inline-fields" aria-label="Filter rules" {
            div {
                label for="f-status" { "Status" }
                select #f-status name="status" {
                    option value="" { "any" }
                    @for s in STATUSES { option value=(s) selected[filter.status.as_deref() == Some(s)] { (s) } }
                }
            }
            div { label for="f-level" { "Level" } input #f-level type="text" name="level" value=(val(&filter.level)); }
            div { label for="f-tag" { "Tag" } input #f-tag type="text" name="tag" value=(val(&filter.tag)) placeholder="attack.t1059"; }
            div { label for="f-author" { "Author" } input #f-author type="text" name="author" value=(val(&filter.author)); }
            div { label for="f-logsource" { "Logsource" } input #f-logsource type="text" name="logsource" value=(val(&filter.logsource)) placeholder="windows/process_creation"; }
            div { button type="submit" { "Filter" } }
        }
        p.muted { (list.rules.len()) " rule(s)" }
        table {
            thead { tr { th { "Title" } th { "Status" } th { "Level" } th { "Logsource" } th { "Version" } th { "Author" } } }
            tbody {
                @for r in &list.rules {
                    tr {
                        td { a href=(format!("/rules/{}", r.id)) { (r.title) } }
                        td.status { (r.status) }
                        td { (r.level.clone().unwrap_or_default()) }
                        td { (r.logsource) }
                        td { (r.current_version) @if let Some(a) = r.approved_version { span.muted { " (approved: " (a.to_string()) ")" } } }
                        td { (r.author) }
                    }
                }
            }
        }
    };
    let page = layout::page("Rules", &principal, Section::Rules, flash.as_ref(), body);
    Ok(finish(page, flash.is_some()))
}

/// The editor form, with the validation problems of the text shown beside it.
fn editor(action: &str, content: &str, base_version: Option<u32>, problems: &[String]) -> Markup {
    html! {
        @if !problems.is_empty() {
            div.flash.error role="alert" {
                p { "The rule is not valid Sigma:" }
                ul.errors { @for p in problems { li { (p) } } }
            }
        }
        form method="post" action=(action) {
            label for="content" { "Sigma YAML" }
            textarea.code #content name="content" rows="24" spellcheck="false" required { (content) }
            @if let Some(v) = base_version { input type="hidden" name="base_version" value=(v); }
            label for="note" { "Change note" }
            input #note type="text" name="note" maxlength="500";
            p { button type="submit" { "Save" } }
        }
    }
}

/// `line L, column C: ` when the position is known.
fn at(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

/// Every error of a text as `line:column: message`, when it is invalid.
fn problems_of(content: &str) -> Vec<String> {
    let v = validate(content.as_bytes(), Limits::default());
    v.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}{} [{}]", at(d.line, d.column), d.message, d.code))
        .collect()
}

const TEMPLATE: &str = "title: \nid: \nstatus: experimental\ndescription: \nauthor: \nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    selection:\n        Image|endswith: '\\\\example.exe'\n    condition: selection\nlevel: medium\ntags:\n    - attack.execution\n";

pub(crate) async fn new_page(principal: Principal) -> Result<Response, ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let body = editor("/rules", TEMPLATE, None, &[]);
    Ok(layout::page("New rule", &principal, Section::Rules, None, body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct EditForm {
    content: String,
    note: Option<String>,
    base_version: Option<u32>,
}

pub(crate) async fn create(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Form(f): Form<EditForm>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let problems = problems_of(&f.content);
    if !problems.is_empty() {
        return Ok(invalid_editor(
            &principal, "New rule", "/rules", &f, &problems,
        ));
    }
    let req = RuleRequest {
        content: f.content.clone(),
        note: f.note.clone(),
    };
    match api_rules::create_rule(state, meta, principal.clone(), ApiJson(req)).await {
        Ok((_, Json(v))) => Ok(redirect_with(
            &format!("/rules/{}", v.rule.id),
            Flash {
                error: false,
                text: "Rule created (version 1, draft).".to_owned(),
            },
        )),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Err(e),
        Err(e) => Ok(invalid_editor(
            &principal,
            "New rule",
            "/rules",
            &f,
            &[e.detail],
        )),
    }
}

fn invalid_editor(
    p: &Principal,
    title: &str,
    action: &str,
    f: &EditForm,
    problems: &[String],
) -> Response {
    let body = editor(action, &f.content, f.base_version, problems);
    let mut r = layout::page(title, p, Section::Rules, None, body).into_response();
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

pub(crate) async fn save(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    Form(f): Form<EditForm>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let action = format!("/rules/{id}");
    let problems = problems_of(&f.content);
    if !problems.is_empty() {
        return Ok(invalid_editor(
            &principal,
            "Edit rule",
            &action,
            &f,
            &problems,
        ));
    }
    let req = SaveRuleRequest {
        content: f.content.clone(),
        note: f.note.clone(),
        base_version: f.base_version.unwrap_or_default(),
    };
    match api_rules::save_rule(state, meta, principal.clone(), Path(id), ApiJson(req)).await {
        Ok(Json(v)) => Ok(redirect_with(
            &action,
            Flash {
                error: false,
                text: format!("Saved as version {}.", v.rule.current_version),
            },
        )),
        Err(e) if e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::NOT_FOUND => {
            Err(e)
        }
        Err(e) => Ok(invalid_editor(
            &principal,
            "Edit rule",
            &action,
            &f,
            &[e.detail],
        )),
    }
}

fn run_table(run: &TestRunView) -> Markup {
    html! {
        p {
            "Version " (run.version) " by " (run.run_by) " at " (run.run_at) ": "
            strong { (run.passed) " passed, " (run.failed) " failed" }
        }
        table {
            thead { tr { th { "Test" } th { "Expected" } th { "Matched" } th { "Result" } } }
            tbody {
                @for r in &run.results {
                    tr {
                        td { (r["name"].as_str().unwrap_or_default()) }
                        td { (r["expect"].as_str().unwrap_or_default()) }
                        td { @if r["matched"].as_bool() == Some(true) { "yes" } @else { "no" } }
                        td { @if r["passed"].as_bool() == Some(true) { "pass" } @else { strong { "FAIL" } } }
                    }
                }
            }
        }
    }
}

pub(crate) async fn show(
    state: State<AppState>,
    headers: HeaderMap,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let flash = read_flash(&headers);
    let Json(rule) =
        api_rules::get_rule(state.clone(), principal.clone(), Path(id.clone())).await?;
    let Json(versions) =
        api_rules::list_versions(state.clone(), principal.clone(), Path(id.clone())).await?;
    let Json(tests) =
        api_rules::get_tests(state.clone(), principal.clone(), Path(id.clone())).await?;
    let Json(runs) =
        api_rules::list_test_runs(state.clone(), principal.clone(), Path(id.clone())).await?;
    let tests_json = serde_json::to_string_pretty(&serde_json::json!({ "tests": tests.tests }))
        .map_err(|_| ApiError::internal())?;
    let writer = principal.role.allows(Permission::WriteWorkObjects);
    let r = &rule.rule;
    let body = html! {
        p {
            span.status { (r.status) } " · version " (r.current_version)
            @if let Some(a) = r.approved_version { " · approved version " (a.to_string()) }
            " · " (r.logsource) " · level " (r.level.clone().unwrap_or_default())
        }
        p.actions {
            a.button href=(format!("/rules/{id}/review")) { "Review" }
            @if writer && r.status == "draft" {
                form method="post" action=(format!("/rules/{id}/submit")) {
                    input type="hidden" name="version" value=(r.current_version);
                    button type="submit" { "Submit for review" }
                }
            }
        }
        @if !rule.diagnostics.is_empty() {
            h2 { "Findings" }
            ul { @for d in &rule.diagnostics { li { (d.severity) ": " (at(d.line, d.column)) (d.message) } } }
        }
        h2 { "Rule" }
        @if writer {
            (editor(&format!("/rules/{id}"), &rule.content, Some(r.current_version), &[]))
        } @else {
            pre.code { (rule.content) }
        }
        h2 { "Tests" }
        @if writer {
            form method="post" action=(format!("/rules/{id}/tests")) {
                label for="tests" { "Test cases (JSON: name, expect match or no_match, event)" }
                textarea.code #tests name="tests" rows="12" spellcheck="false" { (tests_json) }
                p { button.secondary type="submit" { "Save tests" } }
            }
            form method="post" action=(format!("/rules/{id}/tests/run")) {
                button type="submit" { "Run tests" }
            }
        } @else {
            pre.code { (tests_json) }
        }
        @if let Some(run) = runs.runs.first() {
            h3 { "Latest run" }
            (run_table(run))
        }
        h2 { "History" }
        table {
            thead { tr { th { "Version" } th { "Author" } th { "When" } th { "Note" } th { "Diff" } } }
            tbody {
                @for v in &versions.versions {
                    tr {
                        td { (v.version) }
                        td { (v.author) }
                        td { (v.created_at) }
                        td { (v.note) }
                        td { @if v.version > 1 { a href=(format!("/rules/{id}/diff?from={}&to={}", v.version - 1, v.version)) { "changes" } } }
                    }
                }
            }
        }
        @if writer {
            h2 { "Delete" }
            form method="post" action=(format!("/rules/{id}/delete")) {
                button.danger type="submit" { "Delete this rule" }
            }
        }
    };
    let page = layout::page(&r.title, &principal, Section::Rules, flash.as_ref(), body);
    Ok(finish(page, flash.is_some()))
}

/// A unified diff with added and removed lines marked.
fn diff_block(diff: &str) -> Markup {
    html! {
        @if diff.is_empty() {
            p.muted { "No changes." }
        } @else {
            pre.code {
                @for line in diff.lines() {
                    @if line.starts_with('+') && !line.starts_with("+++") {
                        span.diff-add { (line) } "\n"
                    } @else if line.starts_with('-') && !line.starts_with("---") {
                        span.diff-del { (line) } "\n"
                    } @else {
                        (line) "\n"
                    }
                }
            }
        }
    }
}

pub(crate) async fn diff(
    state: State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    q: ApiQuery<DiffQuery>,
) -> Result<Response, ApiError> {
    let Json(d) = api_rules::diff_versions(state, principal.clone(), Path(id.clone()), q).await?;
    let body = html! {
        p { a href=(format!("/rules/{id}")) { "Back to the rule" } }
        (diff_block(&d.diff))
    };
    let title = format!("Version {} to {}", d.from, d.to);
    Ok(layout::page(&title, &principal, Section::Rules, None, body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct TestsForm {
    tests: String,
}

pub(crate) async fn save_tests(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    Form(f): Form<TestsForm>,
) -> Response {
    let to = format!("/rules/{id}");
    let body: Result<RuleTestsBody, ApiError> = serde_json::from_str(&f.tests).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!(
                "tests: not the expected JSON ({})",
                crate::problem::scrub_serde_message(&e.to_string())
            ),
        )
    });
    let result = match body {
        Ok(b) => api_rules::set_tests(state, meta, principal, Path(id), ApiJson(b)).await,
        Err(e) => Err(e),
    };
    after_post(&to, result, "Tests saved.")
}

pub(crate) async fn run_tests(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    let to = format!("/rules/{id}");
    let result = api_rules::run_tests(state, meta, principal, Path(id)).await;
    let done = match &result {
        Ok(Json(r)) => format!("Tests ran: {} passed, {} failed.", r.passed, r.failed),
        Err(_) => String::new(),
    };
    after_post(&to, result, &done)
}

#[derive(Deserialize)]
pub(crate) struct StepForm {
    version: u32,
    reason: Option<String>,
}

pub(crate) async fn submit(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    Form(f): Form<StepForm>,
) -> Response {
    let to = format!("/rules/{id}");
    let req = ReviewStepRequest { version: f.version };
    let result = api_reviews::submit_rule(state, meta, principal, Path(id), ApiJson(req)).await;
    after_post(&to, result, "Submitted for review: the tests passed.")
}

pub(crate) async fn approve(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    Form(f): Form<StepForm>,
) -> Response {
    let to = format!("/rules/{id}/review");
    let req = ReviewStepRequest { version: f.version };
    let result = api_reviews::approve_rule(state, meta, principal, Path(id), ApiJson(req)).await;
    let done = match &result {
        Ok(Json(v)) if v.rule.status == "approved" => "Approved.",
        _ => "Approval recorded; more approvals are needed.",
    };
    after_post(&to, result, done)
}

pub(crate) async fn reject(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
    Form(f): Form<StepForm>,
) -> Response {
    let to = format!("/rules/{id}/review");
    let req = RejectRequest {
        version: f.version,
        reason: f.reason.unwrap_or_default(),
    };
    let result = api_reviews::reject_rule(state, meta, principal, Path(id), ApiJson(req)).await;
    after_post(&to, result, "Rejected; the author has your reason.")
}

pub(crate) async fn delete(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    match api_rules::delete_rule(state, meta, principal, Path(id.clone())).await {
        Ok(_) => redirect_with(
            "/rules",
            Flash {
                error: false,
                text: "Rule deleted.".to_owned(),
            },
        ),
        Err(e) => after_post::<()>(&format!("/rules/{id}"), Err(e), ""),
    }
}

pub(crate) async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let flash = read_flash(&headers);
    let rule_id = ward_core::RuleId::parse(&id).ok_or_else(ApiError::not_found)?;
    let v = api_reviews::review_view(&state, &principal, &rule_id).await?;
    let open = v.reviews.first().filter(|r| r.state == "open");
    let body = html! {
        p { a href=(format!("/rules/{id}")) { "Back to the rule" } }
        p { span.status { (v.rule.status) } " · version " (v.rule.current_version) " by " (v.rule.author) }
        @if let Some(r) = v.reviews.first() {
            section.panel {
                p {
                    "Review of version " (r.version) " submitted by " (r.submitted_by) " at " (r.submitted_at)
                    ": " strong { (r.state) } " · approvals " (r.approvals.len()) " of " (r.required_approvals)
                }
                @if !r.approvals.is_empty() {
                    ul { @for a in &r.approvals { li { (a.approver) " at " (a.approved_at) } } }
                }
                @if let Some(reason) = &r.reason {
                    p { "Rejected by " (r.closed_by.clone().unwrap_or_default()) ": " (reason) }
                }
            }
        } @else {
            p.muted { "Not submitted for review yet." }
        }
        @if let Some(r) = open {
            @if v.can_review {
                div.actions {
                    form method="post" action=(format!("/rules/{id}/approve")) {
                        input type="hidden" name="version" value=(r.version);
                        button type="submit" { "Approve version " (r.version) }
                    }
                    form method="post" action=(format!("/rules/{id}/reject")) {
                        input type="hidden" name="version" value=(r.version);
                        label for="reason" { "Reason for rejecting" }
                        input #reason type="text" name="reason" maxlength="1000" required;
                        button.danger type="submit" { "Reject" }
                    }
                }
            } @else {
                p.muted { "You cannot act on this review: authors of a change never approve it, and each reviewer approves once." }
            }
        }
        h2 { @match v.diff_from { Some(a) => { "Changes since approved version " (a) }, None => { "The whole rule (nothing approved yet)" } } }
        (diff_block(&v.diff))
        h2 { "Test results" }
        @match &v.test_run { Some(run) => { (run_table(run)) }, None => { p.muted { "No test run yet." } } }
    };
    let title = format!("Review: {}", v.rule.title);
    let page = layout::page(&title, &principal, Section::Reviews, flash.as_ref(), body);
    Ok(finish(page, flash.is_some()))
}

pub(crate) async fn queue(
    state: State<AppState>,
    headers: HeaderMap,
    principal: Principal,
) -> Result<Response, ApiError> {
    let flash = read_flash(&headers);
    let Json(q) = api_reviews::review_queue(state, principal.clone()).await?;
    let body = html! {
        @if q.reviews.is_empty() {
            p.muted { "Nothing is waiting for review." }
        } @else {
            table {
                thead { tr { th { "Rule" } th { "Version" } th { "Submitted by" } th { "Approvals" } th { "You" } } }
                tbody {
                    @for item in &q.reviews {
                        tr {
                            td { a href=(format!("/rules/{}/review", item.rule.id)) { (item.rule.title) } }
                            td { (item.review.version) }
                            td { (item.review.submitted_by) }
                            td { (item.review.approvals.len()) " of " (item.review.required_approvals) }
                            td { @if item.can_review { "may review" } @else { span.muted { "cannot review" } } }
                        }
                    }
                }
            }
        }
    };
    let page = layout::page(
        "Review queue",
        &principal,
        Section::Reviews,
        flash.as_ref(),
        body,
    );
    Ok(finish(page, flash.is_some()))
}

/// The export as a download from the pages (same handler, same audit event).
pub(crate) async fn export(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
) -> Result<Response, ApiError> {
    crate::routes::rule_bundle::export_rules(state, meta, principal).await
}
