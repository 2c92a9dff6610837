//! Audit events in the formats SIEMs and GRC tools read: JSON Lines (the leaf
//! encoding itself), OCSF 1.3 (Authentication, Account Change, API Activity), ArcSight
//! CEF and CSV. Pure functions of one event; callers stream them.

use serde_json::{Value, json};

use crate::audit::StoredAuditEvent;

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

/// OCSF class and activity for an action.
pub fn ocsf_class(action: &str) -> (u32, &'static str, u32, &'static str) {
    const AUTHENTICATION: (u32, &str) = (3002, "Authentication");
    const ACCOUNT_CHANGE: (u32, &str) = (3001, "Account Change");
    const API_ACTIVITY: (u32, &str) = (6003, "API Activity");
    let (class, activity, activity_name) = match action {
        "auth.login"
        | "auth.login_failed"
        | "auth.reauthenticated"
        | "auth.reauth_failed"
        | "passkey.used"
        | "passkey.rejected"
        | "auth.sign_in_throttled" => (AUTHENTICATION, 1, "Logon"),
        "auth.password_locked" => (ACCOUNT_CHANGE, 9, "Lock"),
        "auth.password_unlocked" => (ACCOUNT_CHANGE, 99, "Other"),
        "passkey.registered" => (ACCOUNT_CHANGE, 10, "MFA Factor Enable"),
        "passkey.removed" => (ACCOUNT_CHANGE, 11, "MFA Factor Disable"),
        "auth.logout" | "session.revoked" | "user.sessions_revoked" => {
            (AUTHENTICATION, 2, "Logoff")
        }
        "user.created" => (ACCOUNT_CHANGE, 1, "Create"),
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
    (class.0, class.1, activity, activity_name)
}

fn ocsf(e: &StoredAuditEvent, leaf_index: Option<u64>) -> Value {
    let (class_uid, class_name, activity_id, activity_name) = ocsf_class(&e.action);
    let category_uid = class_uid / 1000;
    let success = e.outcome == "success";
    let mut v = json!({
        "category_uid": category_uid,
        "category_name": if category_uid == 3 { "Identity & Access Management" } else { "Application Activity" },
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": u64::from(class_uid) * 100 + u64::from(activity_id),
        "time": e.occurred_at.millis(),
        "severity_id": if success { 1 } else { 3 },
        "severity": if success { "Informational" } else { "Medium" },
        "status_id": if success { 1 } else { 2 },
        "status": if success { "Success" } else { "Failure" },
        "message": e.action,
        "metadata": {
            "version": "1.3.0",
            "uid": e.id.as_str(),
            "product": { "name": "Ward", "vendor_name": "Ward" },
            "log_name": "ward-audit",
            "tenant_uid": e.tenant_id.as_ref().map(|t| t.as_str()),
            "sequence": leaf_index,
            "correlation_uid": e.context.request_id,
        },
        "actor": {
            "user": { "uid": e.actor.id, "name": e.actor.label, "type": e.actor.kind.as_str() },
        },
        "src_endpoint": { "ip": e.context.ip },
        "http_request": { "user_agent": e.context.user_agent },
        "unmapped": { "action": e.action, "target_kind": e.target_kind, "target_id": e.target_id, "details": e.details },
    });
    match class_uid {
        3002 => {
            v["user"] = json!({ "uid": e.target_id.as_ref().or(e.actor.id.as_ref()), "name": e.actor.label });
            v["auth_protocol"] = json!("Other");
        }
        3001 => {
            v["user"] = json!({ "uid": e.target_id });
        }
        _ => {
            v["api"] = json!({ "operation": e.action, "request": { "uid": e.context.request_id } });
            v["resources"] = json!([{ "type": e.target_kind, "uid": e.target_id }]);
        }
    }
    v
}

/// CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension
fn cef(e: &StoredAuditEvent, leaf_index: Option<u64>) -> String {
    let severity = if e.outcome == "success" { 3 } else { 6 };
    let mut ext = vec![
        ("rt", e.occurred_at.millis().to_string()),
        ("externalId", e.id.as_str().to_owned()),
        ("act", e.action.clone()),
        ("outcome", e.outcome.clone()),
        ("suser", e.actor.label.clone()),
        ("suid", e.actor.id.clone().unwrap_or_default()),
        ("src", e.context.ip.clone()),
        ("requestClientApplication", e.context.user_agent.clone()),
        ("cs1Label", "tenant".to_owned()),
        (
            "cs1",
            e.tenant_id
                .as_ref()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
        ),
        ("cs2Label", "target".to_owned()),
        (
            "cs2",
            format!(
                "{}:{}",
                e.target_kind.as_deref().unwrap_or(""),
                e.target_id.as_deref().unwrap_or("")
            ),
        ),
        ("cs3Label", "details".to_owned()),
        ("cs3", e.details.to_string()),
    ];
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
        cef_header_escape(&e.action),
        cef_header_escape(&e.action),
        ext.join(" ")
    )
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
    use crate::audit::{Actor, ActorKind};
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

    #[test]
    fn ocsf_classes_follow_the_documented_mapping() {
        assert_eq!(ocsf_class("auth.login").0, 3002);
        assert_eq!(ocsf_class("auth.logout").2, 2);
        assert_eq!(ocsf_class("user.created").0, 3001);
        assert_eq!(
            ocsf_class("connection.deleted"),
            (6003, "API Activity", 4, "Delete")
        );
        let v = ocsf(&event("auth.login_failed", "a"), Some(7));
        assert_eq!(v["type_uid"], 300201);
        assert_eq!(v["metadata"]["sequence"], 7);
        for a in crate::audit::actions::ALL {
            let (class, _, activity, _) = ocsf_class(a);
            assert!([3001, 3002, 6003].contains(&class), "{a}");
            assert!(activity >= 1, "{a}");
        }
    }

    #[test]
    fn cef_escapes_separators_and_line_breaks() {
        let line = cef(&event("a|b", "x=y\\z"), Some(3));
        assert!(line.starts_with("CEF:0|Ward|Ward|"));
        assert!(line.contains("|a\\|b|a\\|b|3|"));
        assert!(line.contains("suser=x\\=y\\\\z"));
        assert!(!line.contains('\n'));
        assert!(line.contains("cn1=3"));
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
