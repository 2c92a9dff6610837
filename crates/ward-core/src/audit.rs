//! Audit events: who did what, to what, from where, with what outcome. Every state
//! change writes one in the same transaction as the change. Details never hold
//! secrets: only ids, names, roles and reasons go in.

use serde::Serialize;
use serde_json::Value;

use crate::{EventId, TenantId, Timestamp};

/// Every action name Ward emits. `docs/audit.md` lists them (a test checks).
pub mod actions {
    pub const INSTALLATION_INITIALIZED: &str = "installation.initialized";
    pub const TENANT_CREATED: &str = "tenant.created";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_UPDATED: &str = "user.updated";
    pub const USER_DISABLED: &str = "user.disabled";
    pub const USER_PASSWORD_RESET: &str = "user.password_reset";
    pub const USER_SESSIONS_REVOKED: &str = "user.sessions_revoked";
    pub const AUTH_LOGIN: &str = "auth.login";
    pub const AUTH_LOGIN_FAILED: &str = "auth.login_failed";
    pub const AUTH_LOGOUT: &str = "auth.logout";
    /// One source's failures on one account reached the point where delays start.
    pub const AUTH_SIGN_IN_THROTTLED: &str = "auth.sign_in_throttled";
    /// An account reached the ceiling of consecutive failures: password sign-in locked.
    pub const AUTH_PASSWORD_LOCKED: &str = "auth.password_locked";
    /// A passkey sign-in ended a password lock.
    pub const AUTH_PASSWORD_UNLOCKED: &str = "auth.password_unlocked";
    pub const SESSION_REVOKED: &str = "session.revoked";
    pub const TOKEN_CREATED: &str = "token.created";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const KEY_CREATED: &str = "key.created";
    pub const KEY_ROTATED: &str = "key.rotated";
    pub const KEY_DESTROYED: &str = "key.destroyed";
    pub const KEY_POLICY_CHANGED: &str = "key.policy_changed";
    pub const REENCRYPTION_STARTED: &str = "reencryption.started";
    pub const REENCRYPTION_FINISHED: &str = "reencryption.finished";
    pub const MASTER_ROTATION_STARTED: &str = "master.rotation_started";
    pub const MASTER_ROTATION_FINISHED: &str = "master.rotation_finished";
    pub const BACKUP_CREATED: &str = "backup.created";
    pub const BACKUP_RESTORED: &str = "backup.restored";
    pub const CONNECTION_CREATED: &str = "connection.created";
    pub const CONNECTION_UPDATED: &str = "connection.updated";
    pub const CONNECTION_DELETED: &str = "connection.deleted";
    pub const CONNECTION_CREDENTIALS_USED: &str = "connection.credentials_used";
    pub const AUDIT_EXPORTED: &str = "audit.exported";
    pub const AUDIT_SINK_CREATED: &str = "audit.sink_created";
    pub const AUDIT_SINK_REMOVED: &str = "audit.sink_removed";
    pub const AUDIT_SINK_FAILING: &str = "audit.sink_failing";
    pub const AUDIT_SINK_RECOVERED: &str = "audit.sink_recovered";
    pub const AUDIT_SIGNING_KEY_ROTATED: &str = "audit.signing_key_rotated";
    pub const PASSKEY_REGISTERED: &str = "passkey.registered";
    pub const PASSKEY_REMOVED: &str = "passkey.removed";
    pub const PASSKEY_USED: &str = "passkey.used";
    pub const PASSKEY_REJECTED: &str = "passkey.rejected";
    pub const AUTH_REAUTHENTICATED: &str = "auth.reauthenticated";
    pub const AUTH_REAUTH_FAILED: &str = "auth.reauth_failed";
    pub const MFA_POLICY_CHANGED: &str = "company.mfa_policy_changed";
    pub const AUTH_SSO_FAILED: &str = "auth.sso_failed";
    pub const SSO_PROVIDER_CREATED: &str = "sso.provider_created";
    pub const SSO_PROVIDER_UPDATED: &str = "sso.provider_updated";
    pub const SSO_PROVIDER_DELETED: &str = "sso.provider_deleted";
    pub const SSO_IDENTITY_LINKED: &str = "sso.identity_linked";
    pub const SSO_IDENTITY_UNLINKED: &str = "sso.identity_unlinked";
    pub const TOKEN_SENSITIVE_USED: &str = "token.sensitive_used";
    pub const TOKENS_REVOKED: &str = "user.tokens_revoked";
    pub const DOMAIN_ADDED: &str = "company.domain_added";
    pub const DOMAIN_VERIFIED: &str = "company.domain_verified";
    pub const DOMAIN_VERIFICATION_FAILED: &str = "company.domain_verification_failed";
    pub const DOMAIN_REMOVED: &str = "company.domain_removed";
    pub const RULE_CREATED: &str = "rule.created";
    pub const RULE_EDITED: &str = "rule.edited";
    pub const RULE_TESTS_CHANGED: &str = "rule.tests_changed";
    pub const RULE_TESTS_RUN: &str = "rule.tests_run";
    pub const RULE_DELETED: &str = "rule.deleted";
    pub const RULE_SUBMITTED: &str = "rule.submitted";
    pub const RULE_APPROVED: &str = "rule.approved";
    pub const RULE_REJECTED: &str = "rule.rejected";
    pub const RULE_IMPORTED: &str = "rule.imported";
    pub const RULES_EXPORTED: &str = "rules.exported";
    pub const REVIEW_POLICY_CHANGED: &str = "company.review_policy_changed";

    pub const ALL: &[&str] = &[
        INSTALLATION_INITIALIZED,
        TENANT_CREATED,
        USER_CREATED,
        USER_UPDATED,
        USER_DISABLED,
        USER_PASSWORD_RESET,
        USER_SESSIONS_REVOKED,
        AUTH_LOGIN,
        AUTH_LOGIN_FAILED,
        AUTH_LOGOUT,
        AUTH_SIGN_IN_THROTTLED,
        AUTH_PASSWORD_LOCKED,
        AUTH_PASSWORD_UNLOCKED,
        SESSION_REVOKED,
        TOKEN_CREATED,
        TOKEN_REVOKED,
        KEY_CREATED,
        KEY_ROTATED,
        KEY_DESTROYED,
        KEY_POLICY_CHANGED,
        REENCRYPTION_STARTED,
        REENCRYPTION_FINISHED,
        MASTER_ROTATION_STARTED,
        MASTER_ROTATION_FINISHED,
        BACKUP_CREATED,
        BACKUP_RESTORED,
        CONNECTION_CREATED,
        CONNECTION_UPDATED,
        CONNECTION_DELETED,
        CONNECTION_CREDENTIALS_USED,
        AUDIT_EXPORTED,
        AUDIT_SINK_CREATED,
        AUDIT_SINK_REMOVED,
        AUDIT_SINK_FAILING,
        AUDIT_SINK_RECOVERED,
        AUDIT_SIGNING_KEY_ROTATED,
        PASSKEY_REGISTERED,
        PASSKEY_REMOVED,
        PASSKEY_USED,
        PASSKEY_REJECTED,
        AUTH_REAUTHENTICATED,
        AUTH_REAUTH_FAILED,
        MFA_POLICY_CHANGED,
        AUTH_SSO_FAILED,
        SSO_PROVIDER_CREATED,
        SSO_PROVIDER_UPDATED,
        SSO_PROVIDER_DELETED,
        SSO_IDENTITY_LINKED,
        SSO_IDENTITY_UNLINKED,
        TOKEN_SENSITIVE_USED,
        TOKENS_REVOKED,
        DOMAIN_ADDED,
        DOMAIN_VERIFIED,
        DOMAIN_VERIFICATION_FAILED,
        DOMAIN_REMOVED,
        RULE_CREATED,
        RULE_EDITED,
        RULE_TESTS_CHANGED,
        RULE_TESTS_RUN,
        RULE_DELETED,
        RULE_SUBMITTED,
        RULE_APPROVED,
        RULE_REJECTED,
        RULE_IMPORTED,
        RULES_EXPORTED,
        REVIEW_POLICY_CHANGED,
    ];
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    ApiToken,
    /// The instance operator at the command line, or Ward itself.
    System,
    /// Someone not signed in (e.g. a failed sign-in).
    Anonymous,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiToken => "api_token",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => ActorKind::User,
            "api_token" => ActorKind::ApiToken,
            "system" => ActorKind::System,
            "anonymous" => ActorKind::Anonymous,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// User id, or token id for tokens (the owning user is in `label`'s account).
    pub id: Option<String>,
    /// A human-readable name: the email, `token <name> of <email>`, `cli`.
    pub label: String,
}

impl Actor {
    /// A signed-in person, named by their account.
    pub fn user(user: &crate::user::User) -> Self {
        Self {
            kind: ActorKind::User,
            id: Some(user.id.to_string()),
            label: user.email.as_str().to_owned(),
        }
    }

    pub fn system(label: &str) -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
            label: label.to_owned(),
        }
    }

    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            id: None,
            label: "anonymous".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Success,
    Failure,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
        }
    }
}

/// Where a request came from, attached to every event it causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestContext {
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
}

impl RequestContext {
    /// For changes made at the command line, not over HTTP.
    pub fn cli(request_id: String) -> Self {
        Self {
            ip: "local".to_owned(),
            user_agent: "ward-cli".to_owned(),
            request_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: EventId,
    pub occurred_at: Timestamp,
    pub tenant_id: Option<TenantId>,
    pub actor: Actor,
    pub context: RequestContext,
    pub action: &'static str,
    pub target_kind: Option<&'static str>,
    pub target_id: Option<String>,
    pub outcome: AuditOutcome,
    pub details: Value,
}

/// An event as read back (action is then an owned string).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAuditEvent {
    /// Insertion order, for pagination. Not the Merkle leaf index (a later layer).
    pub seq: i64,
    /// Position in the tamper-evident log, once the sequencer has integrated it.
    pub leaf_index: Option<u64>,
    pub id: EventId,
    pub occurred_at: Timestamp,
    pub tenant_id: Option<TenantId>,
    pub actor: Actor,
    pub context: RequestContext,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    pub details: Value,
}

impl AuditEvent {
    /// A successful event with no target and empty details; refine with the builders.
    pub fn new(
        id: EventId,
        occurred_at: Timestamp,
        tenant_id: Option<TenantId>,
        actor: Actor,
        context: RequestContext,
        action: &'static str,
    ) -> Self {
        Self {
            id,
            occurred_at,
            tenant_id,
            actor,
            context,
            action,
            target_kind: None,
            target_id: None,
            outcome: AuditOutcome::Success,
            details: Value::Object(serde_json::Map::new()),
        }
    }

    pub fn target(mut self, kind: &'static str, id: impl Into<String>) -> Self {
        self.target_kind = Some(kind);
        self.target_id = Some(id.into());
        self
    }

    pub fn failed(mut self) -> Self {
        self.outcome = AuditOutcome::Failure;
        self
    }

    /// Sets the details. Non-integer numbers become strings: the tamper-evident
    /// log's canonical encoding (RFC 8785, integers only) must accept every event.
    pub fn details(mut self, details: Value) -> Self {
        self.details = integers_only(details);
        self
    }
}

fn integers_only(value: Value) -> Value {
    match value {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => {
            Value::String(n.to_string())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(integers_only).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, integers_only(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The columns a Merkle leaf commits to, borrowed: from a `StoredAuditEvent`, or
/// straight from a database row where verification reads millions of them.
/// Text columns are their bytes: the leaf encoding escapes only ASCII bytes and
/// stays injective on any bytes (docs/audit.md, "Leaves and the canonical
/// encoding"), so a verifier can hash a column as read and needs no UTF-8 check:
/// a column that differs from the one committed cannot give the same leaf.
#[derive(Debug, Clone, Copy)]
pub struct LeafFields<'a> {
    pub id: &'a [u8],
    pub occurred_at: i64,
    pub tenant_id: Option<&'a [u8]>,
    pub actor_kind: &'a [u8],
    pub actor_id: Option<&'a [u8]>,
    pub actor_label: &'a [u8],
    pub ip: &'a [u8],
    pub user_agent: &'a [u8],
    pub request_id: &'a [u8],
    pub action: &'a [u8],
    pub target_kind: Option<&'a [u8]>,
    pub target_id: Option<&'a [u8]>,
    pub outcome: &'a [u8],
    pub details: LeafDetails<'a>,
}

/// An event's details as a leaf encoder receives them.
#[derive(Debug, Clone, Copy)]
pub enum LeafDetails<'a> {
    Parsed(&'a Value),
    /// The JSON text as stored, written into the leaf verbatim. Ward stores
    /// details canonically, so this is the committed text unless the column was
    /// changed; because the encoding stays injective whatever the text holds, a
    /// leaf that matches proves the text is the committed one.
    StoredText(&'a [u8]),
}

impl StoredAuditEvent {
    /// The event as the Merkle leaf commits to it (canonicalized with RFC 8785) and
    /// as exports carry it: every stored column but the read-order `seq`.
    pub fn leaf_fields(&self) -> LeafFields<'_> {
        LeafFields {
            id: self.id.as_str().as_bytes(),
            occurred_at: self.occurred_at.millis(),
            tenant_id: self.tenant_id.as_ref().map(|t| t.as_str().as_bytes()),
            actor_kind: self.actor.kind.as_str().as_bytes(),
            actor_id: self.actor.id.as_deref().map(str::as_bytes),
            actor_label: self.actor.label.as_bytes(),
            ip: self.context.ip.as_bytes(),
            user_agent: self.context.user_agent.as_bytes(),
            request_id: self.context.request_id.as_bytes(),
            action: self.action.as_bytes(),
            target_kind: self.target_kind.as_deref().map(str::as_bytes),
            target_id: self.target_id.as_deref().map(str::as_bytes),
            outcome: self.outcome.as_bytes(),
            details: LeafDetails::Parsed(&self.details),
        }
    }

    pub fn leaf_value(&self) -> Value {
        serde_json::json!({
            "id": self.id.as_str(),
            "occurred_at": self.occurred_at.millis(),
            "tenant_id": self.tenant_id.as_ref().map(|t| t.as_str()),
            "actor_kind": self.actor.kind.as_str(),
            "actor_id": self.actor.id,
            "actor_label": self.actor.label,
            "ip": self.context.ip,
            "user_agent": self.context.user_agent,
            "request_id": self.context.request_id,
            "action": self.action,
            "target_kind": self.target_kind,
            "target_id": self.target_id,
            "outcome": self.outcome,
            "details": self.details,
        })
    }
}

#[cfg(test)]
mod leaf_tests {
    use super::*;

    #[test]
    fn details_keep_integers_and_turn_fractions_into_strings() {
        let v = integers_only(serde_json::json!({"a": 1, "b": [2.5, {"c": -3}], "d": 1e300}));
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"][0], "2.5");
        assert_eq!(v["b"][1]["c"], -3);
        assert!(v["d"].is_string());
    }
}
