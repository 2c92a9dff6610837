//! Audit events in the formats SIEMs and GRC tools read: JSON Lines (the leaf
//! encoding itself), OCSF 1.3 (Authentication, Account Change, API Activity), ArcSight
//! CEF and CSV. Pure functions of one event; callers stream them.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::audit::{Actor, ActorKind, StoredAuditEvent};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Ocsf,
    Cef,
    Csv,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "jsonl" => Some(Self::Jsonl),
            "ocsf" => Some(Self::Ocsf),
            "cef" => Some(Self::Cef),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl | Self::Ocsf => "application/x-ndjson",
            Self::Cef => "text/plain; charset=utf-8",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// A first line, for formats that have one.
    pub fn header(self) -> Option<String> {
        match self {
            Self::Csv => Some(format!("{}\r\n", CSV_COLUMNS.join(","))),
            _ => None,
        }
    }

    /// One event, terminated by its line ending. `leaf_index` is the event's
    /// position in the tamper-evident log when it has one.
    pub fn line(self, e: &StoredAuditEvent, leaf_index: Option<u64>) -> String {
        match self {
            Self::Jsonl => {
                let mut v = e.leaf_value();
                if let Some(i) = leaf_index {
                    v["leaf_index"] = json!(i);
                }
                format!("{}\n", json_line_safe(v.to_string()))
            }
            Self::Ocsf => format!("{}\n", json_line_safe(ocsf(e, leaf_index).to_string())),
            Self::Cef => format!("{}\n", cef(e, leaf_index)),
            Self::Csv => csv_row(e, leaf_index),
        }
    }
}

/// Where an event sits in OCSF: its class and activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcsfClass {
    pub class_uid: u32,
    /// The class's caption in the schema.
    pub class_name: &'static str,
    pub activity_id: u32,
    /// The activity's caption in the schema ("Other" for 99).
    pub activity_caption: &'static str,
}

impl OcsfClass {
    pub fn category_uid(self) -> u32 {
        self.class_uid / 1000
    }

    pub fn type_uid(self) -> u64 {
        u64::from(self.class_uid) * 100 + u64::from(self.activity_id)
    }
}

/// The version of the OCSF schema the events follow (and are tested against).
pub const OCSF_VERSION: &str = "1.3.0";

/// OCSF class and activity for an action. `details` refines one case: a
/// password reset by its own user is a Password Change.
pub fn ocsf_class(action: &str, details: &Value) -> OcsfClass {
    const AUTHENTICATION: (u32, &str) = (3002, "Authentication");
    const ACCOUNT_CHANGE: (u32, &str) = (3001, "Account Change");
    const API_ACTIVITY: (u32, &str) = (6003, "API Activity");
    let ((class_uid, class_name), activity_id, activity_caption) = match action {
        "auth.login"
        | "auth.login_failed"
        | "auth.reauthenticated"
        | "auth.reauth_failed"
        | "passkey.used"
        | "passkey.rejected"
        | "auth.sso_failed"
        | "auth.sign_in_throttled" => (AUTHENTICATION, 1, "Logon"),
        "auth.logout" | "session.revoked" | "user.sessions_revoked" => {
            (AUTHENTICATION, 2, "Logoff")
        }
        "auth.password_locked" => (ACCOUNT_CHANGE, 9, "Lock"),
        "auth.password_unlocked" => (ACCOUNT_CHANGE, 99, "Other"),
        "passkey.registered" => (ACCOUNT_CHANGE, 10, "MFA Factor Enable"),
        "passkey.removed" => (ACCOUNT_CHANGE, 11, "MFA Factor Disable"),
        "user.created" => (ACCOUNT_CHANGE, 1, "Create"),
        "user.password_reset" if details["by"] == "self" => (ACCOUNT_CHANGE, 3, "Password Change"),
        "user.password_reset" => (ACCOUNT_CHANGE, 4, "Password Reset"),
        "user.disabled" => (ACCOUNT_CHANGE, 5, "Disable"),
        "user.updated" => (ACCOUNT_CHANGE, 99, "Other"),
        a if a.ends_with(".created") => (API_ACTIVITY, 1, "Create"),
        a if a.ends_with(".deleted") || a.ends_with(".removed") || a.ends_with(".destroyed") => {
            (API_ACTIVITY, 4, "Delete")
        }
        a if a.ends_with(".exported") || a.ends_with(".credentials_used") => {
            (API_ACTIVITY, 2, "Read")
        }
        a if a.ends_with(".updated")
            || a.ends_with(".edited")
            || a.ends_with(".rotated")
            || a.ends_with(".changed")
            || a.ends_with(".revoked") =>
        {
            (API_ACTIVITY, 3, "Update")
        }
        _ => (API_ACTIVITY, 99, "Other"),
    };
    OcsfClass {
        class_uid,
        class_name,
        activity_id,
        activity_caption,
    }
}

/// One event as OCSF 1.3.0. Attributes Ward does not know are absent, never
/// null: the schema types every attribute, and null is no string or integer.
fn ocsf(e: &StoredAuditEvent, leaf_index: Option<u64>) -> Value {
    let class = ocsf_class(&e.action, &e.details);
    let success = e.outcome == "success";
    let from_http = e.context.ip.parse::<IpAddr>().is_ok();
    let reason = e.details["reason"].as_str();
    let mut v = json!({
        "category_uid": class.category_uid(),
        "category_name": if class.category_uid() == 3 { "Identity & Access Management" } else { "Application Activity" },
        "class_uid": class.class_uid,
        "class_name": class.class_name,
        "activity_id": class.activity_id,
        // For 99 (Other) OCSF asks for the source's own word, not "Other".
        "activity_name": if class.activity_id == 99 { e.action.as_str() } else { class.activity_caption },
        "type_uid": class.type_uid(),
        "type_name": format!("{}: {}", class.class_name, class.activity_caption),
        "time": e.occurred_at.millis(),
        // Ward keeps UTC.
        "timezone_offset": 0,
        "severity_id": if success { 1 } else { 3 },
        "severity": if success { "Informational" } else { "Medium" },
        "status_id": if success { 1 } else { 2 },
        "status": if success { "Success" } else { "Failure" },
        "message": e.action,
        "metadata": ocsf_metadata(e, leaf_index),
        "actor": ocsf_actor(e, from_http),
        "src_endpoint": ocsf_src_endpoint(&e.context.ip),
        "unmapped": ocsf_unmapped(e),
    });
    if let Some(reason) = reason {
        v["status_detail"] = json!(reason);
    }
    if from_http && !e.context.user_agent.is_empty() {
        v["http_request"] = json!({ "user_agent": e.context.user_agent });
    }
    match class.class_uid {
        3002 => {
            v["user"] = ocsf_subject(e);
            // The class asks for the service or the destination; the service is Ward.
            v["service"] = json!({ "name": "Ward", "version": env!("CARGO_PKG_VERSION") });
            let method = sign_in_method(e);
            if let Some(m) = method {
                v["auth_protocol_id"] = json!(m.protocol_id);
                v["auth_protocol"] = json!(m.protocol);
            }
            let is_mfa = method.and_then(|m| m.is_mfa(&e.details));
            if let Some(mfa) = is_mfa {
                v["is_mfa"] = json!(mfa);
            }
            if let (Some("session"), Some(id)) = (e.target_kind.as_deref(), &e.target_id) {
                let mut session = json!({ "uid": id });
                if e.action == "auth.login" {
                    session["created_time"] = json!(e.occurred_at.millis());
                }
                if let Some(mfa) = is_mfa.filter(|_| e.action == "auth.login") {
                    session["is_mfa"] = json!(mfa);
                }
                v["session"] = session;
            }
        }
        3001 => {
            v["user"] = ocsf_subject(e);
        }
        _ => {
            let mut api = json!({ "operation": e.action });
            if !e.context.request_id.is_empty() {
                api["request"] = json!({ "uid": e.context.request_id });
            }
            let mut response = json!({ "message": e.outcome });
            if let Some(reason) = reason.filter(|_| !success) {
                response["error"] = json!(reason);
            }
            api["response"] = response;
            v["api"] = api;
            if let Some(id) = &e.target_id {
                let mut resource = json!({ "uid": id });
                if let Some(kind) = &e.target_kind {
                    resource["type"] = json!(kind);
                }
                v["resources"] = json!([resource]);
            }
        }
    }
    v
}

fn ocsf_metadata(e: &StoredAuditEvent, leaf_index: Option<u64>) -> Value {
    let mut m = json!({
        "version": OCSF_VERSION,
        "uid": e.id.as_str(),
        "event_code": e.action,
        "product": { "name": "Ward", "vendor_name": "Ward", "version": env!("CARGO_PKG_VERSION") },
        "log_name": "ward-audit",
        "log_provider": "Ward",
        "original_time": e.occurred_at.to_rfc3339(),
    });
    if let Some(t) = &e.tenant_id {
        m["tenant_uid"] = json!(t.as_str());
    }
    if let Some(i) = leaf_index {
        m["sequence"] = json!(i);
    }
    if !e.context.request_id.is_empty() {
        m["correlation_uid"] = json!(e.context.request_id);
    }
    m
}

/// Who acted. A request that did not come over HTTP (the command line, a
/// background job) names its program as the actor's application.
fn ocsf_actor(e: &StoredAuditEvent, from_http: bool) -> Value {
    let mut actor = json!({ "user": ocsf_actor_user(&e.actor) });
    if !from_http && !e.context.user_agent.is_empty() {
        actor["app_name"] = json!(e.context.user_agent);
    }
    actor
}

/// The actor as an OCSF user. `type_id` is the schema's enum (1 User, 3 System,
/// 0 Unknown) with its caption beside it; a token's id is the credential it
/// acted with, not a user id.
fn ocsf_actor_user(actor: &Actor) -> Value {
    let (type_id, type_name) = match actor.kind {
        ActorKind::User | ActorKind::ApiToken => (1, "User"),
        ActorKind::System => (3, "System"),
        ActorKind::Anonymous => (0, "Unknown"),
    };
    let mut user = json!({ "name": actor.label, "type_id": type_id, "type": type_name });
    match (actor.kind, &actor.id) {
        (ActorKind::ApiToken, Some(id)) => user["credential_uid"] = json!(id),
        (_, Some(id)) => user["uid"] = json!(id),
        (_, None) => {}
    }
    user
}

/// The account an Authentication or Account Change event is about: the target
/// when it is a user, else the signed-in actor, else the address someone typed.
fn ocsf_subject(e: &StoredAuditEvent) -> Value {
    let typed = e.details["email"].as_str().filter(|s| !s.is_empty());
    if let (Some("user"), Some(id)) = (e.target_kind.as_deref(), &e.target_id) {
        let mut user = json!({ "uid": id, "type_id": 1, "type": "User" });
        if let Some(email) = typed {
            user["name"] = json!(email);
        }
        return user;
    }
    match (e.actor.kind, typed) {
        (ActorKind::User | ActorKind::ApiToken, _) | (_, None) => ocsf_actor_user(&e.actor),
        (_, Some(email)) => json!({ "name": email }),
    }
}

/// The source: its address when it has one; the command line and background
/// jobs record `local`, which is a name, not an address. API Activity requires
/// a source, so a row with none at all (Ward writes none) is named `unknown`.
fn ocsf_src_endpoint(ip: &str) -> Value {
    match ip.parse::<IpAddr>() {
        Ok(addr) => json!({ "ip": addr.to_string() }),
        Err(_) if !ip.is_empty() => json!({ "name": ip }),
        Err(_) => json!({ "name": "unknown" }),
    }
}

fn ocsf_unmapped(e: &StoredAuditEvent) -> Value {
    let mut u = json!({ "action": e.action, "details": e.details });
    if let Some(kind) = &e.target_kind {
        u["target_kind"] = json!(kind);
    }
    if let Some(id) = &e.target_id {
        u["target_id"] = json!(id);
    }
    u
}

/// How someone signed in, as OCSF's `auth_protocol_id`. OCSF 1.3.0 has OpenID
/// (4) but nothing for passwords or WebAuthn, which are Other (99) with their
/// own name.
#[derive(Debug, Clone, Copy)]
struct SignInMethod {
    protocol_id: u32,
    protocol: &'static str,
    /// Whether it is multi-factor on its own; None where it depends on the
    /// identity provider (`idp_mfa` in the details).
    mfa: Option<bool>,
}

impl SignInMethod {
    fn is_mfa(self, details: &Value) -> Option<bool> {
        self.mfa.or_else(|| details["idp_mfa"].as_bool())
    }
}

fn sign_in_method(e: &StoredAuditEvent) -> Option<SignInMethod> {
    const PASSWORD: SignInMethod = SignInMethod {
        protocol_id: 99,
        protocol: "Password",
        mfa: Some(false),
    };
    // A passkey checks possession and, with user verification, a PIN or
    // biometric: Ward counts it as multi-factor (`mfa.rs`).
    const PASSKEY: SignInMethod = SignInMethod {
        protocol_id: 99,
        protocol: "WebAuthn",
        mfa: Some(true),
    };
    const PASSWORD_AND_PASSKEY: SignInMethod = SignInMethod {
        protocol_id: 99,
        protocol: "Password and WebAuthn",
        mfa: Some(true),
    };
    const OPENID: SignInMethod = SignInMethod {
        protocol_id: 4,
        protocol: "OpenID",
        mfa: None,
    };
    match e.action.as_str() {
        "auth.login" | "auth.reauthenticated" => match e.details["method"].as_str()? {
            "password" => Some(PASSWORD),
            "passkey" => Some(PASSKEY),
            "password+passkey" => Some(PASSWORD_AND_PASSKEY),
            "oidc" => Some(OPENID),
            _ => None,
        },
        // These come from the password form only.
        "auth.login_failed" | "auth.reauth_failed" | "auth.sign_in_throttled" => Some(PASSWORD),
        "passkey.used" | "passkey.rejected" => Some(PASSKEY),
        "auth.sso_failed" => Some(OPENID),
        _ => None,
    }
}

/// CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension
///
/// Each extension key holds only what its CEF type allows ("Implementing
/// ArcSight CEF", revision 25): `src` an IPv4 or IPv6 address (absent for the
/// command line and background jobs, whose source is `local`), `rt` a
/// timestamp in milliseconds, `cn1` a long, strings within their key's length.
/// A key with nothing to say is left out rather than sent empty.
fn cef(e: &StoredAuditEvent, leaf_index: Option<u64>) -> String {
    let severity = if e.outcome == "success" { 3 } else { 6 };
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", e.occurred_at.millis().to_string()),
        ("externalId", cef_fit(e.id.as_str(), 40)),
        ("act", cef_fit(&e.action, 63)),
        ("outcome", cef_fit(&e.outcome, 63)),
    ];
    if let Some(reason) = e.details["reason"].as_str() {
        ext.push(("reason", cef_fit(reason, 1023)));
    }
    ext.push(("suser", cef_fit(&e.actor.label, 1023)));
    if let Some(id) = &e.actor.id {
        ext.push(("suid", cef_fit(id, 1023)));
    }
    if let Ok(ip) = e.context.ip.parse::<IpAddr>() {
        ext.push(("src", ip.to_string()));
    }
    if !e.context.user_agent.is_empty() {
        ext.push((
            "requestClientApplication",
            cef_fit(&e.context.user_agent, 1023),
        ));
    }
    if let Some(t) = &e.tenant_id {
        ext.push(("cs1Label", "tenant".to_owned()));
        ext.push(("cs1", cef_fit(t.as_str(), 4000)));
    }
    if e.target_kind.is_some() || e.target_id.is_some() {
        ext.push(("cs2Label", "target".to_owned()));
        let target = format!(
            "{}:{}",
            e.target_kind.as_deref().unwrap_or(""),
            e.target_id.as_deref().unwrap_or("")
        );
        ext.push(("cs2", cef_fit(&target, 4000)));
    }
    // The details are JSON; past CEF's 4,000 characters they are cut (the
    // JSON Lines and verifiable exports carry them whole).
    ext.push(("cs3Label", "details".to_owned()));
    ext.push(("cs3", cef_fit(&e.details.to_string(), 4000)));
    if let Some(i) = leaf_index {
        ext.push(("cn1Label", "leafIndex".to_owned()));
        ext.push(("cn1", i.to_string()));
    }
    let ext: Vec<String> = ext
        .into_iter()
        .map(|(k, v)| format!("{k}={}", cef_extension_escape(&v)))
        .collect();
    format!(
        "CEF:0|Ward|Ward|{}|{}|{}|{severity}|{}",
        env!("CARGO_PKG_VERSION"),
        cef_header_escape(&cef_fit(&e.action, 1023)),
        cef_header_escape(&cef_fit(&e.action, 512)),
        ext.join(" ")
    )
}

/// At most `max` characters of `s` (CEF's lengths count characters of the
/// value before escaping).
fn cef_fit(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => s[..end].to_owned(),
        None => s.to_owned(),
    }
}

/// Characters that many readers take for the end of a line although they are
/// not CR or LF: NEL (U+0085), LINE SEPARATOR (U+2028), PARAGRAPH SEPARATOR
/// (U+2029). Unicode's line-breaking rules (UAX #14, class BK/NL) and tools such
/// as Python's `splitlines` or a SIEM's line reader split on them, so an event
/// holding one would be cut in two, the second half looking like a new record.
pub const UNICODE_LINE_BREAKS: [char; 3] = ['\u{0085}', '\u{2028}', '\u{2029}'];

/// JSON text with the Unicode line breaks written as `\uXXXX` escapes. They can
/// only occur inside JSON strings, where the escape means the same character,
/// so a JSON reader sees the same value and a line reader sees one line.
pub fn json_line_safe(json: String) -> String {
    if !json.contains(UNICODE_LINE_BREAKS) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 12);
    for c in json.chars() {
        if UNICODE_LINE_BREAKS.contains(&c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Header fields escape `\` and `|`; line breaks become spaces.
fn cef_header_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
        .replace(UNICODE_LINE_BREAKS, " ")
}

/// Extension values escape `\`, `=` and line breaks. CEF names only `\r` and
/// `\n`; the Unicode line breaks are written as JSON-style `\uXXXX` escapes
/// (after `\` is doubled, so they cannot be mistaken for a value's own text).
fn cef_extension_escape(s: &str) -> String {
    let s = s
        .replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\r', "\\r")
        .replace('\n', "\\n");
    unicode_line_breaks_escaped(&s)
}

/// `\u0085`, `\u2028` and `\u2029` in place of those characters.
fn unicode_line_breaks_escaped(s: &str) -> String {
    s.replace('\u{0085}', "\\u0085")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

const CSV_COLUMNS: &[&str] = &[
    "leaf_index",
    "occurred_at",
    "id",
    "tenant_id",
    "action",
    "outcome",
    "actor_kind",
    "actor_id",
    "actor_label",
    "ip",
    "user_agent",
    "request_id",
    "target_kind",
    "target_id",
    "details",
];

/// RFC 4180: every field quoted, quotes doubled, CRLF line ends. A field that
/// starts with `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not
/// run it as a formula (OWASP CSV injection). CR and LF never reach a field raw
/// (names refuse control characters, `details` is JSON text with them escaped);
/// the Unicode line breaks, which RFC 4180 does not protect from line readers,
/// are written as `\uXXXX` escapes for the same reason.
fn csv_row(e: &StoredAuditEvent, leaf_index: Option<u64>) -> String {
    let fields = [
        leaf_index.map(|i| i.to_string()).unwrap_or_default(),
        e.occurred_at.to_rfc3339(),
        e.id.as_str().to_owned(),
        e.tenant_id
            .as_ref()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        e.action.clone(),
        e.outcome.clone(),
        e.actor.kind.as_str().to_owned(),
        e.actor.id.clone().unwrap_or_default(),
        e.actor.label.clone(),
        e.context.ip.clone(),
        e.context.user_agent.clone(),
        e.context.request_id.clone(),
        e.target_kind.clone().unwrap_or_default(),
        e.target_id.clone().unwrap_or_default(),
        e.details.to_string(),
    ];
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            let f = if f.starts_with(['=', '+', '-', '@']) {
                format!("'{f}")
            } else {
                f.clone()
            };
            let f = unicode_line_breaks_escaped(&f);
            format!("\"{}\"", f.replace('"', "\"\""))
        })
        .collect();
    format!("{}\r\n", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventId, RequestContext, TenantId, Timestamp};

    fn event(action: &str, label: &str) -> StoredAuditEvent {
        StoredAuditEvent {
            seq: 1,
            leaf_index: None,
            id: EventId::from_stored("evt_1".into()),
            occurred_at: Timestamp::from_millis(1_790_000_000_000),
            tenant_id: Some(TenantId::from_stored("ten_1".into())),
            actor: Actor {
                kind: ActorKind::User,
                id: Some("usr_1".into()),
                label: label.into(),
            },
            context: RequestContext {
                ip: "192.0.2.1".into(),
                user_agent: "curl".into(),
                request_id: "req".into(),
            },
            action: action.into(),
            target_kind: Some("user".into()),
            target_id: Some("usr_2".into()),
            outcome: "success".into(),
            details: json!({"a": "b=c|d\nx"}),
        }
    }

    fn no_nulls(v: &Value, path: &str) {
        match v {
            Value::Null => panic!("{path} is null"),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, x)| no_nulls(x, &format!("{path}[{i}]"))),
            Value::Object(map) if path != ".unmapped" => map
                .iter()
                .for_each(|(k, x)| no_nulls(x, &format!("{path}.{k}"))),
            _ => {}
        }
    }

    #[test]
    fn ocsf_classes_follow_the_documented_mapping() {
        let none = Value::Null;
        let class = |a: &str| ocsf_class(a, &none);
        assert_eq!(class("auth.login").class_uid, 3002);
        assert_eq!(class("auth.sso_failed").class_uid, 3002);
        assert_eq!(class("auth.logout").activity_id, 2);
        assert_eq!(class("user.created").class_uid, 3001);
        assert_eq!(
            class("connection.deleted"),
            OcsfClass {
                class_uid: 6003,
                class_name: "API Activity",
                activity_id: 4,
                activity_caption: "Delete"
            }
        );
        assert_eq!(class("user.password_reset").activity_id, 4);
        assert_eq!(
            ocsf_class("user.password_reset", &json!({"by": "self"})).activity_caption,
            "Password Change"
        );
        let v = ocsf(&event("auth.login_failed", "a"), Some(7));
        assert_eq!(v["type_uid"], 300201);
        assert_eq!(v["type_name"], "Authentication: Logon");
        assert_eq!(v["metadata"]["sequence"], 7);
        for a in crate::audit::actions::ALL {
            let c = class(a);
            assert!([3001, 3002, 6003].contains(&c.class_uid), "{a}");
            assert!(c.activity_id >= 1, "{a}");
            let v = ocsf(&event(a, "a"), None);
            // Other (99) carries the action itself, as OCSF asks.
            let name = if c.activity_id == 99 {
                *a
            } else {
                c.activity_caption
            };
            assert_eq!(v["activity_name"], name, "{a}");
        }
    }

    #[test]
    fn ocsf_leaves_out_what_ward_does_not_know() {
        let mut e = event("key.rotated", "cli");
        e.actor = Actor::system("cli");
        e.context = RequestContext::cli("req-1".into());
        e.tenant_id = None;
        e.target_kind = None;
        e.target_id = None;
        let v = ocsf(&e, None);
        no_nulls(&v, "");
        assert_eq!(v["src_endpoint"], json!({ "name": "local" }));
        assert_eq!(v["actor"]["app_name"], "ward-cli");
        assert_eq!(v["actor"]["user"]["type_id"], 3);
        assert_eq!(v["actor"]["user"]["type"], "System");
        assert!(v.get("http_request").is_none() && v.get("resources").is_none());
        assert!(v["metadata"].get("tenant_uid").is_none());
        assert!(v["metadata"].get("sequence").is_none());
        assert_eq!(
            v["metadata"]["product"]["version"],
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(v["api"]["response"], json!({ "message": "success" }));

        // A job without a request id names no request.
        e.context.request_id = String::new();
        let v = ocsf(&e, None);
        no_nulls(&v, "");
        assert!(v["api"].get("request").is_none());
        assert!(v["metadata"].get("correlation_uid").is_none());
    }

    #[test]
    fn ocsf_resources_and_tokens_have_ids_of_their_own() {
        let mut e = event("connection.deleted", "token \"ci\" of a@example.com");
        e.actor.kind = ActorKind::ApiToken;
        e.actor.id = Some("tok_1".into());
        e.target_kind = Some("connection".into());
        e.target_id = Some("con_1".into());
        e.context.ip = "2001:db8::1".into();
        let v = ocsf(&e, Some(1));
        no_nulls(&v, "");
        assert_eq!(
            v["resources"],
            json!([{ "type": "connection", "uid": "con_1" }])
        );
        assert_eq!(v["actor"]["user"]["credential_uid"], "tok_1");
        assert!(v["actor"]["user"].get("uid").is_none());
        assert_eq!(v["src_endpoint"]["ip"], "2001:db8::1");
        assert_eq!(v["http_request"]["user_agent"], "curl");
        assert!(v["actor"].get("app_name").is_none());
    }

    #[test]
    fn ocsf_authentication_names_the_account_service_session_and_factors() {
        let mut e = event("auth.login", "a@example.com");
        e.target_kind = Some("session".into());
        e.target_id = Some("ses_1".into());
        e.details = json!({ "method": "password+passkey", "password_rehashed": false });
        let v = ocsf(&e, None);
        no_nulls(&v, "");
        // The account signing in, not the session it got.
        assert_eq!(v["user"]["uid"], "usr_1");
        assert_eq!(v["service"]["name"], "Ward");
        assert_eq!(v["session"]["uid"], "ses_1");
        assert_eq!(v["session"]["is_mfa"], true);
        assert_eq!(v["is_mfa"], true);
        assert_eq!(v["auth_protocol_id"], 99);
        assert_eq!(v["auth_protocol"], "Password and WebAuthn");

        e.details = json!({ "method": "oidc", "idp_mfa": false });
        let v = ocsf(&e, None);
        assert_eq!(
            (v["auth_protocol_id"].clone(), v["is_mfa"].clone()),
            (json!(4), json!(false))
        );

        // A refused sign-in for an unknown address: the address as typed.
        let mut e = event("auth.login_failed", "anonymous");
        e.actor = Actor::anonymous();
        e.outcome = "failure".into();
        e.target_kind = None;
        e.target_id = None;
        e.details = json!({ "email": "who@example.com", "reason": "unknown_user" });
        let v = ocsf(&e, None);
        no_nulls(&v, "");
        assert_eq!(v["user"], json!({ "name": "who@example.com" }));
        assert_eq!(v["status_detail"], "unknown_user");
        assert_eq!(v["is_mfa"], false);
        assert_eq!(v["actor"]["user"]["type_id"], 0);

        // SSO refusals may hold no address at all.
        let mut e = event("auth.sso_failed", "anonymous");
        e.actor = Actor::anonymous();
        e.target_kind = Some("sso_provider".into());
        e.details = json!({ "provider": "idp", "reason": "state_mismatch", "email": null });
        let v = ocsf(&e, None);
        no_nulls(&v, "");
        assert_eq!(v["user"]["name"], "anonymous");
        assert!(v.get("is_mfa").is_none());
    }

    #[test]
    fn cef_escapes_separators_and_line_breaks() {
        let line = cef(&event("a|b", "x=y\\z"), Some(3));
        assert!(line.starts_with("CEF:0|Ward|Ward|"));
        assert!(line.contains("|a\\|b|a\\|b|3|"));
        assert!(line.contains("suser=x\\=y\\\\z"));
        assert!(!line.contains('\n'));
        assert!(line.contains("cn1=3"));
        assert!(line.contains(" src=192.0.2.1 "));
    }

    #[test]
    fn cef_fields_hold_only_what_their_type_allows() {
        let mut e = event("key.rotated", "cli");
        e.actor = Actor::system("cli");
        e.context = RequestContext::cli("r".into());
        e.tenant_id = None;
        e.target_kind = None;
        e.target_id = None;
        e.details = json!({ "note": "é".repeat(5000) });
        let line = cef(&e, None);
        // `local` is no address: no `src` at all, and nothing sent empty.
        assert!(!line.contains("src="), "{line}");
        assert!(!line.contains("suid=") && !line.contains("cs1") && !line.contains("cs2"));
        let cs3 = line.split(" cs3=").nth(1).expect("cs3");
        assert_eq!(cs3.chars().count(), 4000);
        assert_eq!(cef_fit("ab", 1), "a");
        assert_eq!(cef_fit("éé", 5), "éé");
    }

    #[test]
    fn unicode_line_breaks_never_reach_a_line_raw() {
        for brk in UNICODE_LINE_BREAKS {
            let mut e = event(&format!("a{brk}b"), &format!("x{brk}y"));
            e.details = json!({ "note": format!("1{brk}2"), "k": "\r\n" });
            e.context.user_agent = format!("ua{brk}");
            for format in [
                ExportFormat::Jsonl,
                ExportFormat::Ocsf,
                ExportFormat::Cef,
                ExportFormat::Csv,
            ] {
                let line = format.line(&e, Some(1));
                let body = line.trim_end_matches(['\r', '\n']);
                assert!(
                    !body.contains(UNICODE_LINE_BREAKS) && !body.contains(['\r', '\n']),
                    "{format:?} keeps a line break: {line:?}"
                );
                assert_eq!(line.lines().count(), 1, "{format:?}");
            }
            // JSON readers get the same value back.
            let line = ExportFormat::Jsonl.line(&e, None);
            let v: Value = serde_json::from_str(&line).expect("json");
            assert_eq!(v["details"]["note"], format!("1{brk}2"));
            let cef = ExportFormat::Cef.line(&e, None);
            let code = format!("\\u{:04x}", u32::from(brk));
            assert!(cef.contains(&format!("suser=x{code}y")), "{cef}");
            let csv = ExportFormat::Csv.line(&e, None);
            assert!(csv.contains(&format!("\"x{code}y\"")), "{csv}");
        }
    }

    #[test]
    fn csv_quotes_everything_and_defuses_formulas() {
        let row = csv_row(&event("user.created", "=HYPERLINK(\"x\")"), None);
        assert!(row.ends_with("\r\n"));
        assert!(row.contains("\"'=HYPERLINK(\"\"x\"\")\""));
        assert_eq!(
            ExportFormat::Csv
                .header()
                .expect("header")
                .matches(',')
                .count(),
            CSV_COLUMNS.len() - 1
        );
    }
}
