//! Detection as code in bulk: import a zip of Sigma files (with tests beside
//! them) and export the company's rules as such a zip. An import is all or
//! nothing unless `?partial=true`; every file gets its own result.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;
use ward_core::audit::actions;
use ward_core::rule::{RuleHeader, RuleVersion};
use ward_core::{AuditEvent, Permission, RuleId};
use ward_rules::bundle::{BundleLimits, BundledRule, file_stem_for, read_bundle, write_bundle};
use ward_rules::{Limits, RuleTest, content_hash, parse_rule_tests, validate};
use ward_store::{Conflict, ImportItem, StoreError};

use super::event;
use super::rules::new_rule;
use crate::extract::{ApiQuery, Principal, RequestMeta};
use crate::{ApiError, AppState};

/// Largest import body (compressed). SigmaHQ's 3,100 rules zip to about 3 MiB.
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportQuery {
    /// Import the valid files even when others fail.
    #[serde(default)]
    pub partial: bool,
}

/// One file's result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportedFile {
    pub path: String,
    /// `created`, `updated` (a new version), `tests_updated`, `unchanged`,
    /// `error`, or `skipped` (valid, but not written because another file failed).
    pub outcome: String,
    pub rule_id: Option<String>,
    pub version: Option<u32>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub files: Vec<ImportedFile>,
}

/// A file checked and ready to write.
struct Planned {
    index: usize,
    item: ImportItem,
}

/// Imports a zip of Sigma rules. A rule whose Sigma `id` the company already
/// has becomes that rule's next version (a draft again) when its text changed;
/// any other rule is created. `RULE.tests.yml|yaml|json` beside a rule are its
/// tests.
#[utoipa::path(post, path = "/api/v1/rules/import", tag = "rules", params(ImportQuery),
    request_body(content = inline(crate::openapi::schemas::ZipArchive), content_type = "application/zip",
        description = "A zip of Sigma files (any content type is read as one)"),
    responses((status = 200, body = ImportReport),
        (status = 403, body = crate::Problem),
        (status = 413, body = crate::Problem),
        (status = 422, body = crate::Problem, description = "`invalid_bundle`, or `import_failed` with per-file `files` (nothing written)")))]
pub(crate) async fn import_rules(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteWorkObjects)?;
    let bytes = axum::body::to_bytes(body, MAX_IMPORT_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("an import is at most {MAX_IMPORT_BYTES} bytes"),
            )
        })?;
    let existing: HashMap<String, ward_store::RuleWithText> = state
        .store()
        .rules_with_text(&principal.tenant_id)
        .await?
        .into_iter()
        .filter_map(|r| r.rule.sigma_id.clone().map(|id| (id, r)))
        .collect();
    // Unzipping and validating thousands of rules is CPU work: off the runtime.
    let checked = tokio::task::spawn_blocking(move || check_bundle(&bytes))
        .await
        .map_err(|_| ApiError::internal())??;
    let now = state.now();
    let mut files: Vec<ImportedFile> = Vec::with_capacity(checked.len());
    let mut planned: Vec<Planned> = Vec::new();
    for (index, c) in checked.into_iter().enumerate() {
        let mut file = ImportedFile {
            path: c.path.clone(),
            outcome: "error".to_owned(),
            rule_id: None,
            version: None,
            errors: c.errors,
        };
        if let (true, Some(head), Some(content)) = (file.errors.is_empty(), c.head, c.content) {
            let e = |action, target: &RuleId, details| {
                event(
                    &state,
                    &meta,
                    Some(&principal.tenant_id),
                    principal.actor(),
                    action,
                )
                .map(|e| e.target("rule", target.to_string()).details(details))
            };
            let hash = content_hash(&content);
            let prior = head.sigma_id.as_ref().and_then(|id| existing.get(id));
            let item = match prior {
                None => {
                    let rule = new_rule(&state, &principal, head, now)?;
                    let version = first_version(&rule.id, &principal, content, hash, now, &c.path);
                    file.outcome = "created".to_owned();
                    let audit = e(
                        actions::RULE_IMPORTED,
                        &rule.id,
                        json!({ "path": c.path,
                        "version": 1, "sigma_id": rule.sigma_id, "content_hash": version.content_hash }),
                    )?;
                    Some(ImportItem::Create {
                        tests: c.tests,
                        rule,
                        version,
                        audit,
                    })
                }
                Some(p) if p.content_hash != hash => {
                    let mut version =
                        first_version(&p.rule.id, &principal, content, hash, now, &c.path);
                    version.version = p.rule.current_version + 1;
                    file.outcome = "updated".to_owned();
                    let audit = e(
                        actions::RULE_IMPORTED,
                        &p.rule.id,
                        json!({ "path": c.path,
                        "version": version.version, "sigma_id": head.sigma_id, "content_hash": version.content_hash }),
                    )?;
                    Some(ImportItem::NewVersion {
                        tests: c.tests,
                        version,
                        head,
                        audit,
                    })
                }
                Some(p) => {
                    file.rule_id = Some(p.rule.id.to_string());
                    file.version = Some(p.rule.current_version);
                    match c.tests {
                        Some(t) if Some(&t) != p.tests.as_ref() => {
                            file.outcome = "tests_updated".to_owned();
                            let audit = e(
                                actions::RULE_TESTS_CHANGED,
                                &p.rule.id,
                                json!({ "path": c.path, "imported": true }),
                            )?;
                            Some(ImportItem::Tests {
                                rule_id: p.rule.id.clone(),
                                tests: t,
                                by: principal.user_id.clone(),
                                at: now,
                                audit,
                            })
                        }
                        _ => {
                            file.outcome = "unchanged".to_owned();
                            None
                        }
                    }
                }
            };
            if let Some(item) = item {
                let (id, v) = match &item {
                    ImportItem::Create { rule, version, .. } => (rule.id.clone(), version.version),
                    ImportItem::NewVersion { version, .. } => {
                        (version.rule_id.clone(), version.version)
                    }
                    ImportItem::Tests { rule_id, .. } => {
                        (rule_id.clone(), file.version.unwrap_or(1))
                    }
                };
                file.rule_id = Some(id.to_string());
                file.version = Some(v);
                planned.push(Planned { index, item });
            }
        }
        files.push(file);
    }
    let failed_files = files.iter().filter(|f| f.outcome == "error").count();
    if failed_files > 0 && !q.partial {
        for f in files.iter_mut().filter(|f| f.outcome != "error") {
            f.outcome = "skipped".to_owned();
        }
        return Ok(import_failed(
            format!(
                "{failed_files} file(s) are not valid; nothing was imported (use ?partial=true to import the others)"
            ),
            files,
        ));
    }
    if q.partial {
        for p in &planned {
            if let Err((_, e)) = state
                .store()
                .import_rules(&principal.tenant_id, std::slice::from_ref(&p.item))
                .await
            {
                mark_failed(&mut files[p.index], &e)?;
            }
        }
    } else {
        let items: Vec<ImportItem> = planned.iter().map(|p| p.item.clone()).collect();
        if let Err((i, e)) = state
            .store()
            .import_rules(&principal.tenant_id, &items)
            .await
        {
            let Some(p) = planned.get(i) else {
                return Err(e.into());
            };
            mark_failed(&mut files[p.index], &e)?;
            for f in files.iter_mut().filter(|f| f.outcome != "error") {
                f.outcome = "skipped".to_owned();
            }
            return Ok(import_failed(
                "a file conflicts with the company's rules; nothing was imported".to_owned(),
                files,
            ));
        }
    }
    let count = |o: &str| files.iter().filter(|f| f.outcome == o).count();
    let report = ImportReport {
        created: count("created"),
        updated: count("updated") + count("tests_updated"),
        unchanged: count("unchanged"),
        failed: count("error"),
        files,
    };
    Ok(axum::Json(report).into_response())
}

/// Turns a storage error for one file into its result (a conflict is the
/// file's fault; anything else is the server's).
fn mark_failed(file: &mut ImportedFile, e: &StoreError) -> Result<(), ApiError> {
    let reason = match e {
        StoreError::Conflict(Conflict::RuleIdTaken) => {
            "duplicate_rule_id: the company already has a rule with this Sigma id"
        }
        StoreError::Conflict(_) => "stale_version: the rule changed during the import",
        _ => return Err(ApiError::internal()),
    };
    file.outcome = "error".to_owned();
    file.rule_id = None;
    file.version = None;
    file.errors.push(reason.to_owned());
    Ok(())
}

fn import_failed(detail: String, files: Vec<ImportedFile>) -> Response {
    let body = json!({
        "type": "urn:ward:problem:import_failed",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": detail,
        "code": "import_failed",
        "files": files,
    });
    let mut r = (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

fn first_version(
    rule: &RuleId,
    p: &Principal,
    content: String,
    hash: String,
    now: ward_core::Timestamp,
    path: &str,
) -> RuleVersion {
    RuleVersion {
        rule_id: rule.clone(),
        version: 1,
        content,
        content_hash: hash,
        author_id: p.user_id.clone(),
        author_label: p.email.clone(),
        note: format!(
            "imported from {}",
            path.chars().take(400).collect::<String>()
        ),
        created_at: now,
    }
}

/// One file after checking.
struct CheckedFile {
    path: String,
    errors: Vec<String>,
    head: Option<RuleHeader>,
    content: Option<String>,
    /// The tests as stored (JSON), when a tests file sits beside the rule.
    tests: Option<String>,
}

/// Unzips and validates every rule and tests file (pure CPU work).
fn check_bundle(bytes: &[u8]) -> Result<Vec<CheckedFile>, ApiError> {
    let rules = read_bundle(bytes, BundleLimits::default()).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_bundle",
            e.to_string(),
        )
    })?;
    if rules.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_bundle",
            "the archive holds no .yml or .yaml rule files",
        ));
    }
    let mut seen: HashSet<String> = HashSet::new();
    Ok(rules
        .into_iter()
        .map(|r| {
            let mut c = check_file(r);
            if let Some(id) = c.head.as_ref().and_then(|h| h.sigma_id.clone())
                && !seen.insert(id.clone())
            {
                c.errors.push(format!(
                    "duplicate_rule_id: another file in the archive has id {id}"
                ));
            }
            c
        })
        .collect())
}

fn check_file(r: BundledRule) -> CheckedFile {
    let mut out = CheckedFile {
        path: r.path,
        errors: Vec::new(),
        head: None,
        content: None,
        tests: None,
    };
    let v = validate(&r.content, Limits::default());
    if !v.is_valid() {
        out.errors = v.errors().take(20).map(ToString::to_string).collect();
        return out;
    }
    let [doc] = v.documents.as_slice() else {
        out.errors
            .push("a rule file holds one Sigma document".to_owned());
        return out;
    };
    out.head = Some(RuleHeader {
        title: doc.title.clone(),
        sigma_id: doc.id.clone(),
        level: doc.level.clone(),
        tags: doc.tags.clone(),
        logsource: doc.logsource.clone(),
    });
    // Valid UTF-8: `validate` refuses anything else.
    out.content = String::from_utf8(r.content).ok();
    if let (Some(path), Some(bytes)) = (r.tests_path, r.tests) {
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|_| "not UTF-8".to_owned())
            .and_then(parse_rule_tests);
        match parsed {
            Ok(tests) if tests.len() > super::rules::MAX_TESTS => {
                out.errors
                    .push(format!("{path}: at most {} tests", super::rules::MAX_TESTS));
            }
            Ok(mut tests) => {
                // The same names as `PUT /rules/{id}/tests` accepts.
                let names: Result<(), _> = tests.iter_mut().try_for_each(|t| {
                    t.name = ward_core::text::checked_name("tests", &t.name, 200)?;
                    Ok::<(), ward_core::InvalidField>(())
                });
                match names {
                    Ok(()) => out.tests = serde_json::to_string(&tests).ok(),
                    Err(e) => out.errors.push(format!("{path}: {e}")),
                }
            }
            Err(e) => out.errors.push(format!("{path}: {e}")),
        }
    }
    out
}

/// Exports the company's rules as a zip: `<product>/<title>.yml` per rule, its
/// current text, with `<title>.tests.json` beside it when it has tests.
#[utoipa::path(get, path = "/api/v1/rules/export", tag = "rules",
    responses((status = 200, content_type = "application/zip", body = inline(crate::openapi::schemas::ZipArchive))))]
pub(crate) async fn export_rules(
    State(state): State<AppState>,
    meta: RequestMeta,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require(Permission::ReadWorkObjects)?;
    let rules = state.store().rules_with_text(&principal.tenant_id).await?;
    let mut used: HashSet<String> = HashSet::new();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(rules.len() * 2);
    for r in &rules {
        let product = r
            .rule
            .logsource
            .split('/')
            .next()
            .filter(|p| !p.is_empty())
            .map_or_else(|| "other".to_owned(), file_stem_for);
        let base = format!("{product}/{}", file_stem_for(&r.rule.title));
        let mut stem = base.clone();
        let mut n = 2;
        while !used.insert(stem.clone()) {
            stem = format!("{base}_{n}");
            n += 1;
        }
        entries.push((format!("{stem}.yml"), r.content.clone().into_bytes()));
        if let Some(tests) = &r.tests {
            let tests: Vec<RuleTest> =
                serde_json::from_str(tests).map_err(|_| ApiError::internal())?;
            let body = serde_json::to_vec_pretty(&json!({ "tests": tests }))
                .map_err(|_| ApiError::internal())?;
            entries.push((format!("{stem}.tests.json"), body));
        }
    }
    let zip = tokio::task::spawn_blocking(move || {
        write_bundle(entries.iter().map(|(p, c)| (p.as_str(), c.as_slice())))
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|_| ApiError::internal())?;
    let e: AuditEvent = event(
        &state,
        &meta,
        Some(&principal.tenant_id),
        principal.actor(),
        actions::RULES_EXPORTED,
    )?
    .target("tenant", principal.tenant_id.to_string())
    .details(json!({ "rules": rules.len(), "bytes": zip.len() }));
    state.store().record_audit(&e).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"ward-rules.zip\""),
            ),
        ],
        zip,
    )
        .into_response())
}
