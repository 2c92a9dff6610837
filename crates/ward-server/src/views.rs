//! Wire types: what the API accepts and returns. Domain types stay free of HTTP and
//! OpenAPI concerns; these are converted from them at the edge.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use ward_core::audit::StoredAuditEvent;
use ward_core::session::Session;
use ward_core::token::ApiToken;
use ward_core::user::User;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub display_name: String,
    /// `admin`, `user` or `viewer`.
    pub role: String,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            tenant_id: u.tenant_id.to_string(),
            email: u.email.as_str().to_owned(),
            display_name: u.display_name.clone(),
            role: u.role.as_str().to_owned(),
            disabled: u.disabled,
            created_at: u.created_at.to_rfc3339(),
            updated_at: u.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// Request and response types that carry a password or token secret print it as
/// `[redacted]`, so no `{:?}` anywhere can leak it.
macro_rules! redacted_debug {
    ($ty:ident { $($shown:ident),* ; $($secret:ident),* }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($shown), &self.$shown))*
                    $(.field(stringify!($secret), &"[redacted]"))*
                    .finish()
            }
        }
    };
}

redacted_debug!(LoginRequest { email; password });
redacted_debug!(ChangePasswordRequest { ; current_password, new_password });
redacted_debug!(CreateUserRequest { email, display_name, role; password });
redacted_debug!(CreatedToken { token; secret });
redacted_debug!(ReauthRequest { ; password });

/// Answer to a correct password when a passkey must follow.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorChallenge {
    /// Always `passkey`.
    pub second_factor: &'static str,
    /// WebAuthn `PublicKeyCredentialRequestOptions` in JSON form (`{"publicKey": ...}`);
    /// answer with `POST /api/v1/auth/second-factor`.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// WebAuthn options in JSON form, for `navigator.credentials.create/get`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyOptions {
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// A browser's WebAuthn response (`PublicKeyCredential.toJSON()`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyResponse {
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPasskeyRequest {
    /// What the user calls it ("YubiKey 5", "laptop").
    pub name: String,
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<&ward_core::passkey::PasskeyRecord> for PasskeyView {
    fn from(p: &ward_core::passkey::PasskeyRecord) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            created_at: p.created_at.to_rfc3339(),
            last_used_at: p.last_used_at.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyView>,
}

/// Re-authentication by password (passkeys use the `/reauth/passkey` pair).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaPolicyView {
    /// `none`, `require_mfa` or `require_passkey`.
    #[schema(schema_with = crate::openapi::schemas::mfa_policy)]
    pub policy: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: UserView,
    pub session_id: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    pub user: UserView,
    /// `session` or `token`.
    pub authenticated_by: String,
    pub session_id: Option<String>,
    pub token_id: Option<String>,
    /// The role this request acts with (a token's scope may be lower than the user's role).
    pub effective_role: String,
    /// Whether this session meets the company's MFA policy; until it does, only
    /// the own account (to register a passkey) and own sessions are reachable.
    pub mfa_satisfied: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
    /// Revoke every API token too (default true: a password change is often a
    /// response to a compromise). `false` keeps automation running.
    pub revoke_tokens: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    pub display_name: Option<String>,
    /// `admin`, `user` or `viewer`.
    #[schema(schema_with = crate::openapi::schemas::role)]
    pub role: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub display_name: Option<String>,
    #[schema(schema_with = crate::openapi::schemas::optional_role)]
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub ip: String,
    pub user_agent: String,
    pub auth_method: String,
    /// Whether more than one factor was proven.
    pub multi_factor: bool,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl SessionView {
    pub fn new(s: &Session, current: bool) -> Self {
        Self {
            id: s.id.to_string(),
            created_at: s.created_at.to_rfc3339(),
            last_seen_at: s.last_seen_at.to_rfc3339(),
            expires_at: s.expires_at.to_rfc3339(),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            auth_method: s.auth_method.clone(),
            multi_factor: s.multi_factor,
            current,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedCount {
    pub revoked: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    /// `admin`, `user` or `viewer`; never above the creator's role. Defaults to it.
    #[schema(schema_with = crate::openapi::schemas::optional_role)]
    pub scope: Option<String>,
    /// 1 to 366; default 90. Not allowed with `sensitive` (those live one hour).
    #[schema(minimum = 1, maximum = 366)]
    pub expires_in_days: Option<i64>,
    /// The capability for security-sensitive actions (MFA policy, SSO
    /// providers, roles, keys, domains, review policy). Only from a session
    /// re-authenticated within the window (with a second factor where the company
    /// requires MFA); the token lives one hour.
    pub sensitive: Option<bool>,
    /// The `metrics` scope (Admins only): the token reads `GET /metrics`,
    /// filtered to the company's series, and nothing else.
    pub metrics: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Carries the capability for security-sensitive actions.
    pub sensitive: bool,
    /// The `metrics` scope: reads only `GET /metrics`.
    pub metrics: bool,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            scope: t.scope.as_str().to_owned(),
            created_at: t.created_at.to_rfc3339(),
            expires_at: t.expires_at.to_rfc3339(),
            last_used_at: t.last_used_at.map(|t| t.to_rfc3339()),
            revoked_at: t.revoked_at.map(|t| t.to_rfc3339()),
            sensitive: t.sensitive,
            metrics: t.metrics,
        }
    }
}

/// One of the company's email domains.
#[derive(Serialize, ToSchema)]
pub struct DomainView {
    pub domain: String,
    pub verified: bool,
    pub verified_at: Option<String>,
    /// `operator` or `dns`.
    pub verified_by: Option<String>,
    /// The TXT record to publish at the domain to verify it.
    pub txt_record: String,
}

impl From<&ward_store::DomainClaim> for DomainView {
    fn from(c: &ward_store::DomainClaim) -> Self {
        Self {
            domain: c.domain.clone(),
            verified: c.verified_at.is_some(),
            verified_at: c.verified_at.map(|t| t.to_rfc3339()),
            verified_by: c.verified_by.clone(),
            txt_record: ward_core::domain::verification_record(&c.token),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DomainList {
    pub domains: Vec<DomainView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimDomainRequest {
    /// A domain name; it names the domain in paths afterwards, so it holds no
    /// control character (the same pattern as every path parameter).
    #[schema(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub domain: String,
}

/// One of the caller's links to an identity provider.
#[derive(Serialize, ToSchema)]
pub struct SsoLinkView {
    pub provider_id: String,
    pub provider: String,
    /// `provisioning`, `owner` or `operator`.
    pub linked_by: String,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct SsoLinkList {
    pub links: Vec<SsoLinkView>,
}

/// Where to send the browser to finish a link.
#[derive(Serialize, ToSchema)]
pub struct SsoLinkStart {
    pub authorization_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub token: TokenView,
    /// The secret. Shown once, here; only a keyed digest is stored.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Exact action name, e.g. `auth.login_failed`.
    pub action: Option<String>,
    /// Actor id (a user id or token id).
    pub actor: Option<String>,
    /// RFC 3339; events at or after.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339; events before.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Cursor from `next_before` of the previous page.
    pub before: Option<i64>,
    /// 1 to 500; default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    /// Position in the tamper-evident log; absent until the sequencer integrates
    /// the event (within about a second).
    pub leaf_index: Option<u64>,
    pub id: String,
    pub occurred_at: String,
    pub tenant_id: Option<String>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<StoredAuditEvent> for AuditEventView {
    fn from(e: StoredAuditEvent) -> Self {
        Self {
            seq: e.seq,
            leaf_index: e.leaf_index,
            id: e.id.to_string(),
            occurred_at: e.occurred_at.to_rfc3339(),
            tenant_id: e.tenant_id.map(|t| t.to_string()),
            actor_kind: e.actor.kind.as_str().to_owned(),
            actor_id: e.actor.id,
            actor_label: e.actor.label,
            ip: e.context.ip,
            user_agent: e.context.user_agent,
            request_id: e.context.request_id,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            outcome: e.outcome,
            details: e.details,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `before` to get the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub name: String,
    /// `splunk`, `elastic`, `sentinel`, `crowdstrike` or `generic-http`.
    pub kind: String,
    pub base_url: String,
    /// Which credential fields are set. Their values are never returned.
    pub credential_fields: Vec<String>,
    pub credentials_changed_at: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&ward_core::connection::Connection> for ConnectionView {
    fn from(c: &ward_core::connection::Connection) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            kind: c.kind.as_str().to_owned(),
            base_url: c.base_url.clone(),
            credential_fields: c.credential_fields.clone(),
            credentials_changed_at: c.credentials_changed_at.to_rfc3339(),
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub connections: Vec<ConnectionView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectionRequest {
    pub name: String,
    #[schema(schema_with = crate::openapi::schemas::connection_kind)]
    pub kind: String,
    pub base_url: String,
    /// By kind: splunk `token`; elastic `token` or `username`+`password`; sentinel
    /// and crowdstrike `client_id`+`client_secret`; generic-http `token` or
    /// `username`+`password`. Write-only: never returned.
    #[schema(schema_with = crate::openapi::schemas::credentials)]
    pub credentials: ward_core::connection::Credentials,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectionRequest {
    pub name: Option<String>,
    pub base_url: Option<String>,
    /// Replaces all credentials when present (same shapes as on create).
    #[schema(schema_with = crate::openapi::schemas::optional_credentials)]
    pub credentials: Option<ward_core::connection::Credentials>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionTestResult {
    pub reachable: bool,
    /// When not reachable: `refused_by_policy`, `dns_failed`, `unreachable` or
    /// `invalid_destination`. A closed, filtered or silent port is `unreachable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyVersionView {
    pub version: u32,
    /// `active`, `decrypt_only` or `destroyed`.
    pub state: String,
    pub master_version: u32,
    pub created_at: String,
    pub retired_at: Option<String>,
    pub destroyed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProgress {
    pub entity: String,
    pub field: String,
    /// Ciphertexts per key version.
    pub by_version: Vec<VersionCount>,
    /// Ciphertexts not yet under the active version.
    pub remaining: i64,
    /// Re-encryption rate, when the job runs on the instance that answers.
    pub rate_per_second: Option<f64>,
    /// Seconds until `remaining` reaches zero at that rate.
    pub eta_seconds: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionCount {
    pub version: u32,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyStatus {
    pub active_version: Option<u32>,
    pub versions: Vec<KeyVersionView>,
    pub fields: Vec<FieldProgress>,
    pub rotation_interval_days: i64,
    pub next_rotation_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    pub version: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicyRequest {
    /// 1 to 3650 days.
    #[schema(minimum = 1, maximum = 3650)]
    pub rotation_interval_days: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    pub tree_size: u64,
    /// Hex SHA-256 root of the RFC 9162 tree.
    pub root_hash: String,
    pub issued_at: String,
    /// The signed note (C2SP checkpoint format), exactly as verified.
    pub note: String,
    /// The verifier key (`ward audit public-key` prints the same).
    pub public_key: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// Leaf index, below `size`.
    pub index: u64,
    /// Tree size the proof is for, at most the current tree size.
    pub size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProofView {
    pub index: u64,
    pub size: u64,
    /// Hex hashes, bottom to top (RFC 9162 §2.1.3).
    pub proof: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// Older tree size, at least 1.
    #[param(minimum = 1)]
    pub from: u64,
    /// Newer tree size, at least `from` and at most the current tree size.
    pub to: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProofView {
    pub from: u64,
    pub to: u64,
    /// Hex hashes (RFC 9162 §2.1.4).
    pub proof: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl`, `ocsf`, `cef`, `csv` or `proofs`.
    #[param(schema_with = export_format_schema)]
    pub format: String,
    /// Exact action name (not for `proofs`).
    pub action: Option<String>,
    /// Actor id (not for `proofs`).
    pub actor: Option<String>,
    /// RFC 3339; events at or after (not for `proofs`).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339; events before (not for `proofs`).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// First leaf index (`proofs` only; default 0).
    pub from: Option<u64>,
    /// Leaf index after the last (`proofs` only; default the tree size).
    pub to: Option<u64>,
}

/// The `format` parameter's values; the handler reads the text itself.
fn export_format_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["jsonl", "ocsf", "cef", "csv", "proofs"]))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_requests_and_responses_never_print() {
        let login = LoginRequest {
            email: "a@b.example".into(),
            password: "hunter2-secret".into(),
        };
        let change = ChangePasswordRequest {
            current_password: "old-secret".into(),
            new_password: "new-secret".into(),
            revoke_tokens: None,
        };
        let create = CreateUserRequest {
            email: "c@d.example".into(),
            display_name: None,
            role: "viewer".into(),
            password: "create-secret".into(),
        };
        let printed = format!("{login:?} {change:?} {create:?}");
        assert!(printed.contains("a@b.example"));
        for secret in [
            "hunter2-secret",
            "old-secret",
            "new-secret",
            "create-secret",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}

/// A new OpenID Connect provider. `client_secret` is write-only.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoProviderRequest {
    pub name: String,
    /// Issuer URL; discovery reads `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Besides `openid`; default `["email", "profile"]`.
    pub scopes: Option<Vec<String>>,
    /// Default `groups`.
    pub groups_claim: Option<String>,
    /// `[{"group": "soc-leads", "role": "admin"}, ...]`
    #[schema(schema_with = crate::openapi::schemas::role_mappings)]
    pub role_mappings: Option<Vec<ward_core::sso::RoleMapping>>,
    /// Role of a provisioned user whose groups match no mapping: `admin`,
    /// `user`, `viewer`, or `none` (refuse them). Default none.
    #[schema(schema_with = crate::openapi::schemas::default_role)]
    pub default_role: Option<String>,
    pub allowed_domains: Vec<String>,
    /// Create accounts at first sign-in. Default false.
    pub jit_provisioning: Option<bool>,
    /// `acr` values that assert MFA.
    pub mfa_acr_values: Option<Vec<String>>,
}

redacted_debug!(SsoProviderRequest { name, issuer, client_id; client_secret });

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSsoProviderRequest {
    pub name: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// A new secret; an empty string removes it.
    pub client_secret: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub groups_claim: Option<String>,
    /// `[{"group": "soc-leads", "role": "admin"}, ...]`
    #[schema(schema_with = crate::openapi::schemas::role_mappings)]
    pub role_mappings: Option<Vec<ward_core::sso::RoleMapping>>,
    #[schema(schema_with = crate::openapi::schemas::default_role)]
    pub default_role: Option<String>,
    pub allowed_domains: Option<Vec<String>>,
    pub jit_provisioning: Option<bool>,
    pub mfa_acr_values: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

redacted_debug!(UpdateSsoProviderRequest { name, issuer, client_id, enabled; client_secret });

#[derive(Debug, Serialize, ToSchema)]
pub struct SsoProviderView {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// Whether a client secret is stored (it is never returned).
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    #[schema(value_type = Vec<Object>)]
    pub role_mappings: Vec<ward_core::sso::RoleMapping>,
    pub default_role: Option<String>,
    pub allowed_domains: Vec<String>,
    pub jit_provisioning: bool,
    pub mfa_acr_values: Vec<String>,
    pub enabled: bool,
    /// Register this redirect URI at the provider.
    pub redirect_uri: String,
    /// Where users start signing in with this provider.
    pub sign_in_url: String,
}

impl SsoProviderView {
    pub fn new(p: &ward_core::sso::SsoProvider, secret_set: bool, public_url: &str) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            client_secret_set: secret_set,
            scopes: p.scopes.clone(),
            groups_claim: p.groups_claim.clone(),
            role_mappings: p.role_mappings.clone(),
            default_role: p.default_role.map(|r| r.as_str().to_owned()),
            allowed_domains: p.allowed_domains.clone(),
            jit_provisioning: p.jit_provisioning,
            mfa_acr_values: p.mfa_acr_values.clone(),
            enabled: p.enabled,
            redirect_uri: format!("{public_url}/sso/callback"),
            sign_in_url: format!("{public_url}/sso/{}", p.id),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SsoProviderList {
    pub providers: Vec<SsoProviderView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    /// The Sigma YAML.
    pub content: String,
    /// A change note for the version.
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveRuleRequest {
    pub content: String,
    pub note: Option<String>,
    /// The version the edit started from; a save on top of a newer one is refused.
    pub base_version: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiagnosticView {
    /// `error` or `warning`.
    pub severity: String,
    pub code: String,
    pub message: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSummaryView {
    pub id: String,
    pub sigma_id: Option<String>,
    pub title: String,
    /// `draft`, `in_review`, `approved` or `rejected`.
    pub status: String,
    pub current_version: u32,
    /// The newest version approved through review.
    pub approved_version: Option<u32>,
    pub level: Option<String>,
    pub tags: Vec<String>,
    /// `product/category/service` of the current version.
    pub logsource: String,
    /// Who wrote the current version.
    pub author: String,
    pub updated_at: String,
}

impl From<&ward_core::rule::Rule> for RuleSummaryView {
    fn from(r: &ward_core::rule::Rule) -> Self {
        Self {
            id: r.id.to_string(),
            sigma_id: r.sigma_id.clone(),
            title: r.title.clone(),
            status: r.status.as_str().to_owned(),
            current_version: r.current_version,
            approved_version: r.approved_version,
            level: r.level.clone(),
            tags: r.tags.clone(),
            logsource: r.logsource.clone(),
            author: r.author_label.clone(),
            updated_at: r.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    pub rules: Vec<RuleSummaryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    #[serde(flatten)]
    pub rule: RuleSummaryView,
    pub content: String,
    pub content_hash: String,
    /// Lint findings (warnings) on the current text.
    pub diagnostics: Vec<DiagnosticView>,
}

impl RuleView {
    pub fn new(
        r: &ward_core::rule::Rule,
        v: &ward_core::rule::RuleVersion,
        checked: &ward_rules::Validation,
    ) -> Self {
        Self {
            rule: RuleSummaryView::from(r),
            content: v.content.clone(),
            content_hash: v.content_hash.clone(),
            diagnostics: checked
                .diagnostics
                .iter()
                .map(|d| DiagnosticView {
                    severity: match d.severity {
                        ward_rules::Severity::Error => "error".to_owned(),
                        ward_rules::Severity::Warning => "warning".to_owned(),
                    },
                    code: d.code.clone(),
                    message: d.message.clone(),
                    line: d.line,
                    column: d.column,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleVersionView {
    pub version: u32,
    pub content_hash: String,
    pub author_id: String,
    pub author: String,
    pub note: String,
    pub created_at: String,
    pub content: String,
}

impl From<&ward_core::rule::RuleVersion> for RuleVersionView {
    fn from(v: &ward_core::rule::RuleVersion) -> Self {
        Self {
            version: v.version,
            content_hash: v.content_hash.clone(),
            author_id: v.author_id.to_string(),
            author: v.author_label.clone(),
            note: v.note.clone(),
            created_at: v.created_at.to_rfc3339(),
            content: v.content.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleVersionList {
    pub versions: Vec<RuleVersionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleDiffView {
    pub from: u32,
    pub to: u32,
    /// Unified diff (`--- version A`, `+++ version B`); empty when equal.
    pub diff: String,
}

/// A rule's test cases: `{"tests": [{"name", "expect": "match"|"no_match", "event": {...}}]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTestsBody {
    #[schema(schema_with = crate::openapi::schemas::rule_tests)]
    pub tests: Vec<ward_rules::RuleTest>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestRunView {
    pub id: String,
    pub version: u32,
    pub run_by: String,
    pub run_at: String,
    pub passed: u32,
    pub failed: u32,
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<serde_json::Value>,
}

impl TestRunView {
    pub fn new(run: &ward_store::StoredTestRun, outcomes: impl serde::Serialize) -> Self {
        let results = match serde_json::to_value(outcomes) {
            Ok(serde_json::Value::Array(a)) => a,
            _ => Vec::new(),
        };
        Self {
            id: run.id.clone(),
            version: run.version,
            run_by: run.run_by.clone(),
            run_at: run.run_at.to_rfc3339(),
            passed: run.passed,
            failed: run.failed,
            results,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestRunList {
    pub runs: Vec<TestRunView>,
}
