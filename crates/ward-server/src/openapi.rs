//! The OpenAPI document as a contract. The handlers' annotations say what is
//! theirs (bodies, their own refusals); this module completes every operation,
//! from one place, with what they share: the credentials it accepts (from the
//! route table, `access::ROUTES`), the refusals that the extractors and the
//! middleware answer for it, problem details as `application/problem+json` with
//! the enum of stable codes, and the characters a path parameter may hold.

use serde_json::{Map, Value, json};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::access::{Access, ROUTES, RouteAccess};
use crate::problem::PROBLEM_CODES;

#[derive(OpenApi)]
#[openapi(
    info(title = "Ward API", description = "Ward's control-plane API. Errors are RFC 9457 problem details \
        (`application/problem+json`) with a stable `code`; each operation lists the statuses it answers \
        and the credentials it accepts. Unknown query parameters and body fields are refused."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Sign-in and sign-out"),
        (name = "account", description = "The caller's own account"),
        (name = "users", description = "A company's users (Admin)"),
        (name = "sessions", description = "The caller's sessions"),
        (name = "passkeys", description = "The caller's passkeys (WebAuthn)"),
        (name = "company", description = "Company settings: MFA policy"),
        (name = "rules", description = "Detection rules (Sigma) and their versions"),
        (name = "sso", description = "The company's OpenID Connect providers (Admin)"),
        (name = "tokens", description = "The caller's API tokens"),
        (name = "audit", description = "The company's audit trail"),
        (name = "connections", description = "SIEM connections; credentials are write-only"),
        (name = "keys", description = "The company's encryption keys"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("ward_session"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ward_...")
                    .build(),
            ),
        );
    }
}

/// The API's routes and the document that describes them, from one router so
/// they cannot drift apart.
pub(crate) fn api() -> (axum::Router<AppState>, Value) {
    let (router, api) = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(crate::routes::api_routes())
        .split_for_parts();
    (router, contract(&api))
}

/// The OpenAPI document for every API route, as `GET /openapi.json` serves it.
pub fn openapi() -> Value {
    api().1
}

/// A path parameter never holds a control character (C0, DEL, C1): the path
/// guard refuses those with 400 `invalid_path` before routing.
const PATH_PARAMETER_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

const PROBLEM_JSON: &str = "application/problem+json";

fn contract(api: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(api)
        .expect("utoipa's OpenAPI types serialize: every map in them has string keys");
    if let Some(code) = doc.pointer_mut("/components/schemas/Problem/properties/code") {
        code["enum"] = json!(PROBLEM_CODES);
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                let route = ROUTES
                    .iter()
                    .find(|r| r.path == path && r.method.eq_ignore_ascii_case(method));
                if let (Some(route), Some(op)) = (route, op.as_object_mut()) {
                    complete_operation(route, op);
                }
            }
        }
    }
    doc
}

/// Credentials, shared refusals, problem media type, path-parameter bounds.
fn complete_operation(route: &RouteAccess, op: &mut Map<String, Value>) {
    let bearer = json!({ "bearer": [] });
    let cookie = json!({ "session_cookie": [] });
    match route.access {
        Access::Public => {
            op.remove("security");
        }
        Access::Requires(_) => {
            op.insert("security".into(), json!([bearer, cookie]));
        }
        Access::SessionOnly(_) => {
            op.insert("security".into(), json!([cookie]));
        }
        Access::MetricsToken => {
            op.insert("security".into(), json!([bearer]));
        }
    }
    let credentials = format!("Credentials: {}.", route.credentials());
    let description = match op.get("description").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => format!("{d}\n\n{credentials}"),
        _ => credentials,
    };
    op.insert("description".into(), Value::String(description));

    let mut has_path_parameter = false;
    let mut has_query_parameter = false;
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params.iter_mut() {
            match p["in"].as_str() {
                Some("path") => {
                    has_path_parameter = true;
                    if p["schema"]["type"] == "string" {
                        p["schema"]["pattern"] = json!(PATH_PARAMETER_PATTERN);
                    }
                }
                Some("query") => has_query_parameter = true,
                _ => {}
            }
        }
    }
    let body_media = op
        .get("requestBody")
        .and_then(|b| b["content"].as_object())
        .map(|c| c.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    let json_body = body_media.iter().any(|m| m == "application/json");
    let changes_state = route.method != "GET";

    let mut shared: Vec<(&str, &str)> = vec![("429", "rate_limited"), ("500", "internal")];
    if has_path_parameter {
        shared.push(("400", "invalid_path"));
        shared.push(("404", "not_found"));
    }
    if has_query_parameter {
        shared.push(("400", "invalid_query"));
    }
    if json_body {
        shared.push(("400", "malformed_json"));
        shared.push(("415", "unsupported_media_type"));
        shared.push(("422", "invalid_body"));
    }
    if !body_media.is_empty() {
        shared.push(("413", "body_too_large"));
    }
    if changes_state {
        shared.push(("403", "csrf_rejected"));
    }
    if let Access::Requires(p) | Access::SessionOnly(p) = route.access {
        shared.extend([
            ("401", "unauthenticated"),
            ("401", "session_invalid"),
            ("401", "token_invalid"),
            ("403", "forbidden"),
            ("503", "unavailable"),
        ]);
        // Until a session meets the company's MFA policy it reaches only its own
        // account and sessions (`Principal::require`).
        if !matches!(
            p,
            ward_core::Permission::ReadOwnAccount | ward_core::Permission::ManageOwnSessions
        ) {
            shared.push(("403", "mfa_required"));
        }
        if route.sensitive {
            shared.push(("403", "reauthentication_required"));
            if matches!(route.access, Access::Requires(_)) {
                shared.push(("403", "sensitive_capability_required"));
            }
        }
    }

    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    for (status, code) in shared {
        let response = responses
            .entry(status)
            .or_insert_with(|| json!({ "description": "" }));
        let description = response["description"].as_str().unwrap_or_default();
        let mention = format!("`{code}`");
        if !description.contains(&mention) {
            response["description"] = Value::String(if description.is_empty() {
                mention
            } else {
                format!("{description}; {mention}")
            });
        }
    }
    for (status, response) in responses.iter_mut() {
        if status.starts_with('4') || status.starts_with('5') {
            as_problem(status, response);
        }
        if response["description"].as_str().is_none_or(str::is_empty) {
            response["description"] = json!("Success");
        }
    }
}

/// An error response is problem details, whatever the annotation wrote.
fn as_problem(status: &str, response: &mut Value) {
    response["content"] = json!({
        PROBLEM_JSON: { "schema": { "$ref": "#/components/schemas/Problem" } }
    });
    if response["description"].as_str().is_none_or(str::is_empty) {
        response["description"] = json!("Problem details");
    }
    if status == "429" {
        response["headers"] = json!({
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": { "type": "integer", "minimum": 1 }
            }
        });
    }
}

/// Schemas for fields a handler reads as text or raw JSON and checks itself,
/// named in `#[schema(schema_with = ...)]` beside the field: the document states
/// the values the handler accepts, and the handler still answers 422
/// `invalid_field` for anything else.
pub(crate) mod schemas {
    use utoipa::openapi::schema::{
        AdditionalProperties, ArrayBuilder, Object, ObjectBuilder, Schema, SchemaType, Type,
    };
    use utoipa::openapi::{Array, RefOr};

    fn text(nullable: bool) -> SchemaType {
        if nullable {
            SchemaType::from_iter([Type::String, Type::Null])
        } else {
            SchemaType::new(Type::String)
        }
    }

    /// A string that is one of `values` (or null, when `nullable`).
    fn one_of(values: &[&str], nullable: bool) -> Object {
        let mut allowed: Vec<serde_json::Value> = values.iter().map(|v| (*v).into()).collect();
        if nullable {
            allowed.push(serde_json::Value::Null);
        }
        ObjectBuilder::new()
            .schema_type(text(nullable))
            .enum_values(Some(allowed))
            .build()
    }

    const ROLES: &[&str] = &["admin", "user", "viewer"];

    pub(crate) fn role() -> Object {
        one_of(ROLES, false)
    }

    pub(crate) fn optional_role() -> Object {
        one_of(ROLES, true)
    }

    /// An SSO provider's role for unmapped users; `none` or empty refuses them.
    pub(crate) fn default_role() -> Object {
        one_of(&["admin", "user", "viewer", "none", ""], true)
    }

    pub(crate) fn mfa_policy() -> Object {
        one_of(&["none", "require_mfa", "require_passkey"], false)
    }

    pub(crate) fn connection_kind() -> Object {
        one_of(
            &[
                "splunk",
                "elastic",
                "sentinel",
                "crowdstrike",
                "generic-http",
            ],
            false,
        )
    }

    /// The rule list's `status` filter; empty means any.
    pub(crate) fn rule_status_filter() -> Object {
        one_of(&["draft", "in_review", "approved", "rejected", ""], false)
    }

    /// `ward_core::connection::Credentials`: which fields a kind needs is the
    /// handler's check.
    fn credentials_object(nullable: bool) -> Object {
        let mut b = ObjectBuilder::new()
            .schema_type(if nullable {
                SchemaType::from_iter([Type::Object, Type::Null])
            } else {
                SchemaType::new(Type::Object)
            })
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        for field in [
            "token",
            "username",
            "password",
            "client_id",
            "client_secret",
        ] {
            b = b.property(
                field,
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(ward_core::connection::MAX_CREDENTIAL_LEN))
                    .write_only(true),
            );
        }
        b.build()
    }

    pub(crate) fn credentials() -> Object {
        credentials_object(false)
    }

    pub(crate) fn optional_credentials() -> Object {
        credentials_object(true)
    }

    /// `ward_core::sso::RoleMapping` items.
    pub(crate) fn role_mappings() -> Array {
        let mapping = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("group", ObjectBuilder::new().schema_type(Type::String))
            .property("role", role())
            .required("group")
            .required("role")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        ArrayBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
            .items(RefOr::T(Schema::Object(mapping.build())))
            .build()
    }

    /// A zip archive as the body (rule import and export): described by its media
    /// type, as OpenAPI 3.1 does binary content, not as an array of numbers.
    pub(crate) struct ZipArchive;

    impl utoipa::PartialSchema for ZipArchive {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .content_media_type("application/zip")
                .into()
        }
    }

    impl utoipa::ToSchema for ZipArchive {}

    /// `ward_rules::RuleTest` items, at most `MAX_TESTS`.
    pub(crate) fn rule_tests() -> Array {
        let test = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("name", ObjectBuilder::new().schema_type(Type::String))
            .property("expect", one_of(&["match", "no_match"], false))
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some("The event, as JSON (flat or EVTX form)")),
            )
            .required("name")
            .required("expect")
            .required("event")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        ArrayBuilder::new()
            .items(RefOr::T(Schema::Object(test.build())))
            .max_items(Some(crate::routes::rules::MAX_TESTS))
            .build()
    }
}
