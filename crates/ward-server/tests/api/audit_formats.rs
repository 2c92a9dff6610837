//! The audit exports are true to their formats: an export holding every action,
//! in every shape Ward writes events in (signed-in users, API tokens, the
//! command line, anonymous callers, background jobs), is OCSF that the
//! official 1.3.0 schema accepts (checked by `peers/ocsf_validate.py` with
//! PyPI `ocsf-json-schema` and `jsonschema`) and CEF whose fields hold only
//! what their CEF types allow.

use std::net::IpAddr;
use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_core::audit::{ActorKind, actions};
use ward_core::audit_format::ExportFormat;
use ward_core::{Actor, AuditEvent, EventId, RequestContext, Role, TenantId, Timestamp};
use ward_server::Keys;
use ward_server::audit_export::{ExportRequest, run_export};
use ward_store::{AuditFilter, on_both_backends};

use crate::harness::{Auth, TestApp, integrated, random16, spawn_app};

on_both_backends!(every_action_exports_as_valid_ocsf_and_cef);

async fn every_action_exports_as_valid_ocsf_and_cef(backend: ward_store::Backend) {
    let app = spawn_app(backend).await;
    let acme = app.tenant("acme").await;
    let admin = app.member(&acme, "admin@acme.example", Role::Admin).await;

    // Real requests first: a refused sign-in, a token and a call made with it,
    // a sign-out.
    let r = app
        .send_json(
            Method::POST,
            "/api/v1/auth/login",
            &Auth::None,
            json!({"email": "admin@acme.example", "password": "wrong"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let token = Auth::Bearer(app.token(&admin, None).await);
    let r = app.get("/api/v1/audit/export?format=jsonl", &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let user = app.member(&acme, "user@acme.example", Role::User).await;
    let r = app
        .send_json(Method::POST, "/api/v1/auth/logout", &user.auth, json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Then every action, in each shape.
    for action in actions::ALL {
        for shape in Shape::ALL {
            let e = shape.event(action, &acme, &admin.id);
            app.store.record_audit(&e).await.expect("record");
        }
    }
    integrated(&app).await;

    // The company's export over HTTP, and the operator's (every company and
    // none) as `ward audit export` runs it.
    let company_ocsf = http_export(&app, &admin.auth, "ocsf").await;
    let company_cef = http_export(&app, &admin.auth, "cef").await;
    let all_ocsf = operator_export(&app, ExportFormat::Ocsf).await;
    let all_cef = operator_export(&app, ExportFormat::Cef).await;

    let events: Vec<Value> = all_ocsf
        .lines()
        .map(|l| serde_json::from_str(l).expect("OCSF line is JSON"))
        .collect();
    for action in actions::ALL {
        assert!(
            events
                .iter()
                .any(|v| v["metadata"]["event_code"] == *action),
            "the export lacks {action}"
        );
    }
    assert!(
        events.len() >= actions::ALL.len() * Shape::ALL.len(),
        "{} events",
        events.len()
    );
    recommended_attributes_are_there(&events);
    for line in company_cef.lines().chain(all_cef.lines()) {
        check_cef(line);
    }
    validate_ocsf(&[("company", &company_ocsf), ("operator", &all_ocsf)]);
}

/// The recommended OCSF attributes Ward knows, on every event that has them.
fn recommended_attributes_are_there(events: &[Value]) {
    for v in events {
        let action = v["metadata"]["event_code"].as_str().expect("event_code");
        assert_eq!(
            v["metadata"]["product"]["version"],
            env!("CARGO_PKG_VERSION"),
            "{action}"
        );
        assert!(v["actor"]["user"]["type_id"].is_u64(), "{action}");
        match v["class_uid"].as_u64() {
            Some(3002) => {
                assert!(v["service"]["name"].is_string(), "{action}: service");
                let method_known = action != "auth.logout"
                    && action != "session.revoked"
                    && action != "user.sessions_revoked";
                if method_known {
                    assert!(v["auth_protocol_id"].is_u64(), "{action}: auth_protocol_id");
                }
                if method_known && action != "auth.sso_failed" {
                    assert!(v["is_mfa"].is_boolean(), "{action}: is_mfa");
                }
                if v["unmapped"]["target_kind"] == "session" {
                    assert_eq!(
                        v["session"]["uid"], v["unmapped"]["target_id"],
                        "{action}: session"
                    );
                }
            }
            Some(6003) => {
                assert!(v["api"]["response"].is_object(), "{action}: api.response");
            }
            _ => {}
        }
    }
}

/// Who acts, from where: the shapes of Ward's events.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// A signed-in person in a browser.
    Browser,
    /// An API token from an IPv6 address, with a long user agent.
    Token,
    /// The operator at the command line: source `local`.
    Cli,
    /// Someone not signed in; refused.
    Anonymous,
    /// Ward itself (the forwarder): no company, no request id.
    Job,
}

impl Shape {
    const ALL: [Shape; 5] = [
        Shape::Browser,
        Shape::Token,
        Shape::Cli,
        Shape::Anonymous,
        Shape::Job,
    ];

    fn event(self, action: &'static str, tenant: &TenantId, user_id: &str) -> AuditEvent {
        let request_id: String = random16().iter().map(|b| format!("{b:02x}")).collect();
        let (actor, context, tenant) = match self {
            Shape::Browser => (
                Actor {
                    kind: ActorKind::User,
                    id: Some(user_id.to_owned()),
                    label: "admin@acme.example".into(),
                },
                RequestContext {
                    ip: "203.0.113.7".into(),
                    user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0".into(),
                    request_id,
                },
                Some(tenant.clone()),
            ),
            Shape::Token => (
                Actor {
                    kind: ActorKind::ApiToken,
                    id: Some("tok_0123456789abcdef".into()),
                    label: "token \"ci|=deploy\" of admin@acme.example".into(),
                },
                RequestContext {
                    ip: "2001:db8::7".into(),
                    // Past CEF's 1,023 characters for requestClientApplication.
                    user_agent: format!("agent/{}", "x".repeat(1500)),
                    request_id,
                },
                Some(tenant.clone()),
            ),
            Shape::Cli => (
                Actor::system("cli"),
                RequestContext::cli(request_id),
                Some(tenant.clone()),
            ),
            Shape::Anonymous => (
                Actor::anonymous(),
                RequestContext {
                    ip: "::ffff:198.51.100.23".into(),
                    user_agent: "curl/8.5.0".into(),
                    request_id,
                },
                None,
            ),
            Shape::Job => (
                Actor::system("ward"),
                RequestContext {
                    ip: "local".into(),
                    user_agent: "ward-forwarder".into(),
                    request_id: String::new(),
                },
                None,
            ),
        };
        let mut e = AuditEvent::new(
            EventId::from_random(random16()),
            Timestamp::from_millis(1_800_000_000_000),
            tenant,
            actor,
            context,
            action,
        );
        let (target, details) = target_and_details(action, self, user_id);
        if let Some((kind, id)) = target {
            e = e.target(kind, id);
        }
        e = e.details(details);
        if matches!(self, Shape::Anonymous) || FAILURES.contains(&action) {
            e = e.failed();
        }
        e
    }
}

/// Actions Ward writes only as failures.
const FAILURES: &[&str] = &[
    actions::AUTH_LOGIN_FAILED,
    actions::AUTH_REAUTH_FAILED,
    actions::AUTH_SIGN_IN_THROTTLED,
    actions::AUTH_PASSWORD_LOCKED,
    actions::AUTH_SSO_FAILED,
    actions::PASSKEY_REJECTED,
    actions::DOMAIN_VERIFICATION_FAILED,
    actions::AUDIT_SINK_FAILING,
];

/// What each action is about and says, as Ward writes it (docs/audit.md); the
/// shape picks among the variants (sign-in methods, with or without a target).
fn target_and_details(
    action: &str,
    shape: Shape,
    user_id: &str,
) -> (Option<(&'static str, String)>, Value) {
    let session = Some(("session", "ses_0123".to_owned()));
    let user = Some(("user", user_id.to_owned()));
    let email = "admin@acme.example";
    match action {
        actions::AUTH_LOGIN => {
            let details = match shape {
                Shape::Browser => json!({"method": "password", "password_rehashed": true}),
                Shape::Token => json!({"method": "passkey", "password_rehashed": false}),
                Shape::Cli => json!({"method": "password+passkey", "password_rehashed": false}),
                Shape::Anonymous => {
                    json!({"method": "oidc", "provider": "Okta", "idp_mfa": true, "provisioned": true})
                }
                Shape::Job => json!({"method": "oidc", "provider": "Okta", "idp_mfa": false}),
            };
            (session, details)
        }
        actions::AUTH_LOGIN_FAILED => {
            let target = matches!(shape, Shape::Browser | Shape::Cli)
                .then_some(user)
                .flatten();
            (
                target,
                json!({"email": "Someone@Acme.example ", "reason": "wrong_password"}),
            )
        }
        actions::AUTH_REAUTHENTICATED => {
            let method = if matches!(shape, Shape::Token) {
                "passkey"
            } else {
                "password"
            };
            (session, json!({"method": method}))
        }
        actions::AUTH_REAUTH_FAILED => (user, json!({"reason": "wrong_current_password"})),
        actions::AUTH_LOGOUT | actions::SESSION_REVOKED => (session, json!({})),
        actions::AUTH_SIGN_IN_THROTTLED => (
            user,
            json!({"email": email, "source": "203.0.113.0", "failures": 5, "delay_secs": 1}),
        ),
        actions::AUTH_PASSWORD_LOCKED => {
            let target = (!matches!(shape, Shape::Anonymous))
                .then_some(user)
                .flatten();
            (
                target,
                json!({"email": email, "failures": 20, "lock_secs": 900}),
            )
        }
        actions::AUTH_PASSWORD_UNLOCKED => (user, json!({"by": "passkey"})),
        actions::AUTH_SSO_FAILED => {
            let email = matches!(shape, Shape::Browser).then_some(email);
            (
                Some(("sso_provider", "sso_1".to_owned())),
                json!({"provider": "Okta", "reason": "state_mismatch", "email": email}),
            )
        }
        actions::PASSKEY_USED => (
            Some(("passkey", "pk_1".to_owned())),
            json!({"ceremony": "sign_in", "name": "YubiKey 5"}),
        ),
        actions::PASSKEY_REJECTED => (
            None,
            json!({"ceremony": "second_factor", "reason": "counter_regressed"}),
        ),
        actions::PASSKEY_REGISTERED | actions::PASSKEY_REMOVED => (
            Some(("passkey", "pk_1".to_owned())),
            json!({"name": "YubiKey 5"}),
        ),
        actions::USER_CREATED => (user, json!({"email": email, "role": "admin"})),
        actions::USER_PASSWORD_RESET => {
            let by = if matches!(shape, Shape::Cli) {
                "operator"
            } else {
                "self"
            };
            (user, json!({"by": by}))
        }
        a if a.starts_with("user.") => (user, json!({"disabled": true})),
        actions::INSTALLATION_INITIALIZED | actions::BACKUP_CREATED => {
            (None, json!({"rows": 12, "bytes": 4096}))
        }
        actions::AUDIT_SINK_FAILING => (
            None,
            json!({"sink": "soc", "since": "2027-01-15T08:00:00Z",
                   "error": "connection refused", "lag": 42}),
        ),
        actions::AUDIT_EXPORTED => (
            None,
            json!({"format": "ocsf", "since": null, "until": null, "actor": null,
                   "action": null, "from": null, "to": null}),
        ),
        _ => {
            let kind = match action.split('.').next() {
                Some("token") => "api_token",
                Some("key" | "reencryption") => "tenant_key",
                Some("connection") => "connection",
                Some("audit") => "audit_sink",
                Some("sso") => "sso_provider",
                Some("rule" | "rules") => "rule",
                _ => "tenant",
            };
            // Details past CEF's 4,000 characters for a custom string.
            let note = if matches!(shape, Shape::Job) {
                "n".repeat(5000)
            } else {
                "=|\\ note".to_owned()
            };
            (
                Some((kind, "obj_0123".to_owned())),
                json!({"name": "x", "version": 2, "note": note}),
            )
        }
    }
}

async fn http_export(app: &TestApp, auth: &Auth, format: &str) -> String {
    let r = app
        .get(&format!("/api/v1/audit/export?format={format}"), auth)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{format}");
    r.text().await.expect("body")
}

/// The export `ward audit export` writes without `--tenant`: every event.
async fn operator_export(app: &TestApp, format: ExportFormat) -> String {
    let keys = Keys::derive(&app.master, &app.salt, 1, None);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
    let store = app.store.clone();
    let request = ExportRequest::Events {
        format,
        filter: AuditFilter::default(),
    };
    let job = tokio::spawn(async move {
        run_export(&store, &keys.audit, request, Timestamp::from_millis(0), tx).await
    });
    let mut out = String::new();
    while let Some(line) = rx.recv().await {
        out.push_str(&line);
    }
    job.await.expect("join").expect("export");
    out
}

/// Runs the schema validator on each export. Without python3 or its packages
/// the check is skipped with a note, except in CI, where it must run.
fn validate_ocsf(exports: &[(&str, &str)]) {
    let dir = std::env::temp_dir();
    let name: String = random16().iter().map(|b| format!("{b:02x}")).collect();
    let paths: Vec<_> = exports
        .iter()
        .map(|(which, ocsf)| {
            let path = dir.join(format!("ward-ocsf-{name}-{which}.jsonl"));
            std::fs::write(&path, ocsf).expect("write export");
            path
        })
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/peers/ocsf_validate.py");
    let run = std::process::Command::new("python3")
        .arg(&script)
        .args(&paths)
        .output();
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    let missing = match &run {
        Err(e) => Some(format!("python3 did not run: {e}")),
        Ok(out) if out.status.code() == Some(77) => {
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(_) => None,
    };
    if let Some(why) = missing {
        assert!(
            std::env::var_os("CI").is_none(),
            "OCSF validation is required in CI (.ci/run installs ocsf-json-schema and jsonschema): {why}"
        );
        eprintln!("skipping OCSF schema validation: {why}");
        return;
    }
    let out = run.expect("ran");
    let report = String::from_utf8_lossy(&out.stdout);
    for line in report.lines().filter(|l| l.contains("events valid")) {
        eprintln!("{line}");
    }
    assert!(
        out.status.success(),
        "the export is not valid OCSF 1.3.0:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The CEF type of each extension key Ward writes ("Implementing ArcSight
/// CEF", revision 25).
enum CefType {
    Ip,
    /// Milliseconds since the epoch (one of the forms CEF's time stamp takes).
    Millis,
    Long,
    Text(usize),
}

fn cef_type(key: &str) -> Option<CefType> {
    Some(match key {
        "src" => CefType::Ip,
        "rt" => CefType::Millis,
        "cn1" => CefType::Long,
        "externalId" => CefType::Text(40),
        "act" | "outcome" => CefType::Text(63),
        "suser"
        | "suid"
        | "reason"
        | "requestClientApplication"
        | "cs1Label"
        | "cs2Label"
        | "cs3Label"
        | "cn1Label" => CefType::Text(1023),
        "cs1" | "cs2" | "cs3" => CefType::Text(4000),
        _ => return None,
    })
}

/// One CEF line: seven header fields, then `key=value` pairs whose values
/// hold only what the key's type allows.
fn check_cef(line: &str) {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if fields.len() < 7 => field.extend(chars.next()),
            '|' if fields.len() < 7 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    assert_eq!(fields.len(), 7, "{line}");
    assert_eq!(fields[0], "CEF:0");
    assert!(fields[4].chars().count() <= 1023 && fields[5].chars().count() <= 512);
    let severity: u8 = fields[6].parse().expect("severity is an integer");
    assert!(severity <= 10);
    for (key, value) in cef_extension(&field) {
        let ty = cef_type(&key).unwrap_or_else(|| panic!("unknown CEF key {key}: {line}"));
        assert!(!value.is_empty(), "{key} is empty: {line}");
        match ty {
            CefType::Ip => assert!(value.parse::<IpAddr>().is_ok(), "{key}={value}"),
            CefType::Millis | CefType::Long => {
                assert!(value.parse::<i64>().is_ok(), "{key}={value}")
            }
            CefType::Text(max) => assert!(
                value.chars().count() <= max,
                "{key} holds {} characters, CEF allows {max}",
                value.chars().count()
            ),
        }
    }
}

/// The extension's pairs, unescaped: a key starts after an unescaped space
/// and ends at the first unescaped `=`.
fn cef_extension(ext: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut token = String::new();
    let mut chars = ext.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => token.push('\n'),
                Some('r') => token.push('\r'),
                Some(other) => token.push(other),
                None => {}
            },
            '=' => {
                // The key is the last word of what came before.
                let (before, key) = match token.rsplit_once(' ') {
                    Some((b, k)) => (b.to_owned(), k.to_owned()),
                    None => (String::new(), std::mem::take(&mut token)),
                };
                if let Some(last) = pairs.last_mut() {
                    last.1 = before;
                }
                pairs.push((key, String::new()));
                token.clear();
            }
            c => token.push(c),
        }
    }
    if let Some(last) = pairs.last_mut() {
        last.1 = token;
    }
    pairs
}
