//! The route table: every route and what it requires. The permission matrix itself
//! is `ward_core::rbac`; this table names, per route, which permission applies.
//! `docs/permissions.md` is rendered from both (a test keeps it current), and the
//! route × role test walks this table against the running server.

use ward_core::{Permission, Role};

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// A signed-in principal holding this permission: a session or an API token.
    Requires(Permission),
    /// A signed-in browser session (cookie) holding this permission; an API token
    /// is refused (400 `no_session` or 403 `session_required`). Sign-out,
    /// re-authentication, passkey registration, password changes, minting tokens
    /// and linking an identity provider belong to a person at a browser.
    SessionOnly(Permission),
    /// Only a bearer token of the `metrics` scope: the operator's
    /// (`metrics.token_file`, every series) or an Admin's API token created with
    /// `metrics: true` (its company's series). No session or other token.
    MetricsToken,
}

#[derive(Debug, Clone, Copy)]
pub struct RouteAccess {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// Extra rule beyond the role, stated for the docs.
    pub note: &'static str,
    /// Security-sensitive (`Principal::require_sensitive`, at least for some
    /// requests): a session needs a recent re-authentication, a token the
    /// `sensitive` capability.
    pub sensitive: bool,
}

impl RouteAccess {
    /// Marks the route security-sensitive.
    const fn sensitive(self) -> Self {
        Self {
            sensitive: true,
            ..self
        }
    }

    /// Which credentials the route accepts, in words (the permissions doc and
    /// each operation's description in the OpenAPI document).
    pub fn credentials(&self) -> &'static str {
        match (self.access, self.sensitive) {
            (Public, _) => "none",
            (MetricsToken, _) => "a bearer token of the `metrics` scope",
            (Requires(_), false) => "a session or an API token",
            (Requires(_), true) => {
                "a session re-authenticated recently, or an API token with the `sensitive` capability"
            }
            (SessionOnly(_), false) => "a browser session (cookie) only",
            (SessionOnly(_), true) => "a browser session (cookie) re-authenticated recently",
        }
    }
}

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    note: &'static str,
) -> RouteAccess {
    RouteAccess {
        method,
        path,
        access,
        note,
        sensitive: false,
    }
}

use Access::{MetricsToken, Public, Requires, SessionOnly};
use Permission as P;

pub const ROUTES: &[RouteAccess] = &[
    route(
        "POST",
        "/api/v1/auth/login",
        Public,
        "rate limited per IP; failures throttled per account and IP",
    ),
    route(
        "POST",
        "/api/v1/auth/logout",
        SessionOnly(P::ReadOwnAccount),
        "",
    ),
    route(
        "POST",
        "/api/v1/auth/passkey/start",
        Public,
        "rate limited per IP like sign-ins",
    ),
    route(
        "POST",
        "/api/v1/auth/passkey/finish",
        Public,
        "the ceremony cookie from /start; refusals audited",
    ),
    route(
        "POST",
        "/api/v1/auth/second-factor",
        Public,
        "the ceremony cookie from a correct password; refusals audited",
    ),
    route(
        "POST",
        "/api/v1/auth/reauth",
        SessionOnly(P::ReadOwnAccount),
        "wrong passwords throttled like sign-ins",
    ),
    route(
        "POST",
        "/api/v1/auth/reauth/passkey/start",
        SessionOnly(P::ReadOwnAccount),
        "",
    ),
    route(
        "POST",
        "/api/v1/auth/reauth/passkey/finish",
        SessionOnly(P::ReadOwnAccount),
        "the ceremony must be this session's",
    ),
    route(
        "GET",
        "/api/v1/passkeys",
        Requires(P::ReadOwnAccount),
        "own passkeys only",
    ),
    route(
        "POST",
        "/api/v1/passkeys",
        SessionOnly(P::ReadOwnAccount),
        "reachable before MFA is met, to enroll",
    ),
    route(
        "POST",
        "/api/v1/passkeys/registration",
        SessionOnly(P::ReadOwnAccount),
        "",
    ),
    route(
        "DELETE",
        "/api/v1/passkeys/{id}",
        Requires(P::ReadOwnAccount),
        "own passkeys only; the last one is kept while MFA is required",
    ),
    route(
        "GET",
        "/api/v1/company/mfa-policy",
        Requires(P::ReadUsers),
        "own company only",
    ),
    route(
        "PUT",
        "/api/v1/company/mfa-policy",
        Requires(P::ManageSettings),
        "",
    )
    .sensitive(),
    route(
        "GET",
        "/api/v1/sso/providers",
        Requires(P::ManageSettings),
        "own company only; client secrets never returned",
    ),
    route(
        "POST",
        "/api/v1/sso/providers",
        Requires(P::ManageSettings),
        "the secret is sealed with the settings key",
    )
    .sensitive(),
    route(
        "PATCH",
        "/api/v1/sso/providers/{id}",
        Requires(P::ManageSettings),
        "own company only",
    )
    .sensitive(),
    route(
        "DELETE",
        "/api/v1/sso/providers/{id}",
        Requires(P::ManageSettings),
        "own company only",
    )
    .sensitive(),
    route(
        "GET",
        "/api/v1/company/domains",
        Requires(P::ManageSettings),
        "own company only",
    ),
    route(
        "POST",
        "/api/v1/company/domains",
        Requires(P::ManageSettings),
        "with MFA where the company requires it",
    )
    .sensitive(),
    route(
        "DELETE",
        "/api/v1/company/domains/{domain}",
        Requires(P::ManageSettings),
        "own company only",
    )
    .sensitive(),
    route(
        "POST",
        "/api/v1/company/domains/{domain}/verify",
        Requires(P::ManageSettings),
        "own company only; a DNS TXT lookup through the configured resolver",
    )
    .sensitive(),
    route(
        "GET",
        "/api/v1/me/sso-links",
        Requires(P::ReadOwnAccount),
        "own account only",
    ),
    route(
        "POST",
        "/api/v1/me/sso-links/{provider_id}",
        SessionOnly(P::ReadOwnAccount),
        "the owner, in a password or passkey session; own company's providers only",
    )
    .sensitive(),
    route(
        "DELETE",
        "/api/v1/me/sso-links/{provider_id}",
        Requires(P::ReadOwnAccount),
        "own account only",
    ),
    route(
        "GET",
        "/api/v1/rules",
        Requires(P::ReadWorkObjects),
        "own company only",
    ),
    route(
        "POST",
        "/api/v1/rules",
        Requires(P::WriteWorkObjects),
        "validated first; nothing is written when invalid",
    ),
    route(
        "GET",
        "/api/v1/rules/{id}",
        Requires(P::ReadWorkObjects),
        "own company only",
    ),
    route(
        "PUT",
        "/api/v1/rules/{id}",
        Requires(P::WriteWorkObjects),
        "own company only; a changed text is a new immutable version, back to draft",
    ),
    route(
        "GET",
        "/api/v1/rules/{id}/versions",
        Requires(P::ReadWorkObjects),
        "own company only",
    ),
    route(
        "GET",
        "/api/v1/rules/{id}/diff",
        Requires(P::ReadWorkObjects),
        "own company only; `?from=A&to=B`",
    ),
    route(
        "GET",
        "/api/v1/rules/{id}/tests",
        Requires(P::ReadWorkObjects),
        "own company only",
    ),
    route(
        "PUT",
        "/api/v1/rules/{id}/tests",
        Requires(P::WriteWorkObjects),
        "own company only; at most 200 tests, events must be objects",
    ),
    route(
        "POST",
        "/api/v1/rules/{id}/tests/run",
        Requires(P::WriteWorkObjects),
        "own company only; the run is recorded and audited",
    ),
    route(
        "GET",
        "/api/v1/rules/{id}/tests/runs",
        Requires(P::ReadWorkObjects),
        "own company only",
    ),
    route(
        "DELETE",
        "/api/v1/rules/{id}",
        Requires(P::WriteWorkObjects),
        "own company only; versions and reviews are kept as the record",
    ),
    route(
        "POST",
        "/api/v1/rules/{id}/submit",
        Requires(P::WriteWorkObjects),
        "own company only; the tests are run and must pass, one must expect a match",
    ),
    route(
        "POST",
        "/api/v1/rules/{id}/approve",
        Requires(P::ApproveChanges),
        "own company only; never by an author of the change; the version seen must be current",
    ),
    route(
        "POST",
        "/api/v1/rules/{id}/reject",
        Requires(P::ApproveChanges),
        "own company only; never by an author of the change; a reason is required",
    ),
    route(
        "GET",
        "/api/v1/rules/{id}/review",
        Requires(P::ReadWorkObjects),
        "own company only",
    ),
    route(
        "GET",
        "/api/v1/reviews",
        Requires(P::ReadWorkObjects),
        "own company only",
    ),
    route(
        "GET",
        "/api/v1/company/review-policy",
        Requires(P::ReadWorkObjects),
        "own company only",
    ),
    route(
        "PUT",
        "/api/v1/company/review-policy",
        Requires(P::ManageSettings),
        "own company only; open reviews keep the number they were submitted under",
    ),
    route(
        "POST",
        "/api/v1/rules/import",
        Requires(P::WriteWorkObjects),
        "a zip of Sigma files; all or nothing unless `?partial=true`",
    ),
    route(
        "GET",
        "/api/v1/rules/export",
        Requires(P::ReadWorkObjects),
        "own company only; a zip of Sigma files with their tests",
    ),
    route("GET", "/api/v1/me", Requires(P::ReadOwnAccount), ""),
    route(
        "POST",
        "/api/v1/me/password",
        SessionOnly(P::ReadOwnAccount),
        "revokes all sessions",
    ),
    route(
        "GET",
        "/api/v1/users",
        Requires(P::ReadUsers),
        "own company only",
    ),
    route(
        "POST",
        "/api/v1/users",
        Requires(P::ManageUsers),
        "role never above the caller's; sensitive when the role is Admin",
    )
    .sensitive(),
    route(
        "GET",
        "/api/v1/users/{id}",
        Requires(P::ReadUsers),
        "own company only",
    ),
    route(
        "PATCH",
        "/api/v1/users/{id}",
        Requires(P::ManageUsers),
        "role never above the caller's; keeps one Admin; sensitive when the role or status changes",
    )
    .sensitive(),
    route(
        "DELETE",
        "/api/v1/users/{id}",
        Requires(P::ManageUsers),
        "disables; keeps one Admin",
    )
    .sensitive(),
    route(
        "DELETE",
        "/api/v1/users/{id}/sessions",
        Requires(P::ManageUsers),
        "",
    ),
    route(
        "GET",
        "/api/v1/sessions",
        Requires(P::ManageOwnSessions),
        "own sessions only",
    ),
    route(
        "DELETE",
        "/api/v1/sessions/{id}",
        Requires(P::ManageOwnSessions),
        "own sessions only",
    ),
    route(
        "GET",
        "/api/v1/tokens",
        Requires(P::ManageOwnTokens),
        "own tokens only",
    ),
    route(
        "POST",
        "/api/v1/tokens",
        SessionOnly(P::ManageOwnTokens),
        "scope never above the caller's role; sensitive for a `sensitive` token",
    )
    .sensitive(),
    route(
        "DELETE",
        "/api/v1/tokens/{id}",
        Requires(P::ManageOwnTokens),
        "own tokens only",
    ),
    route(
        "GET",
        "/api/v1/audit/events",
        Requires(P::ReadAuditLog),
        "own company only",
    ),
    route(
        "GET",
        "/api/v1/audit/checkpoint",
        Requires(P::ReadAuditLog),
        "installation-wide tree: sizes and hashes only",
    ),
    route(
        "GET",
        "/api/v1/audit/proof/inclusion",
        Requires(P::ReadAuditLog),
        "installation-wide tree: hashes only",
    ),
    route(
        "GET",
        "/api/v1/audit/proof/consistency",
        Requires(P::ReadAuditLog),
        "installation-wide tree: hashes only",
    ),
    route(
        "GET",
        "/api/v1/audit/export",
        Requires(P::ReadAuditLog),
        "own company's events; others' as hashes (proofs format); audited",
    ),
    route(
        "GET",
        "/api/v1/connections",
        Requires(P::ReadConnections),
        "metadata only; credentials are never returned",
    ),
    route(
        "POST",
        "/api/v1/connections",
        Requires(P::ManageConnections),
        "credentials encrypted under the company key",
    ),
    route(
        "GET",
        "/api/v1/connections/{id}",
        Requires(P::ReadConnections),
        "metadata only",
    ),
    route(
        "PATCH",
        "/api/v1/connections/{id}",
        Requires(P::ManageConnections),
        "a new scheme, host or port needs the credentials in the same request",
    ),
    route(
        "DELETE",
        "/api/v1/connections/{id}",
        Requires(P::ManageConnections),
        "",
    ),
    route(
        "POST",
        "/api/v1/connections/{id}/test",
        Requires(P::ManageConnections),
        "decrypts credentials; audited; through the egress policy, answers a reason class only",
    ),
    route("GET", "/api/v1/keys/status", Requires(P::ReadKeyStatus), ""),
    route("POST", "/api/v1/keys/rotate", Requires(P::ManageKeys), "").sensitive(),
    route("PUT", "/api/v1/keys/policy", Requires(P::ManageKeys), "").sensitive(),
    route("GET", "/healthz", Public, ""),
    route("GET", "/readyz", Public, ""),
    route(
        "GET",
        "/metrics",
        MetricsToken,
        "the operator's `metrics.token_file` token (every series) or an Admin's token created with `metrics: true` (its company's series only; it opens nothing else); without a token on `metrics.listen`, a separate address to firewall",
    ),
    route("GET", "/openapi.json", Public, ""),
];

/// Renders `docs/permissions.md`.
pub fn render_permissions_doc() -> String {
    let mut out = String::from(
        "# Permissions\n\n\
         <!-- Generated from ward_core::rbac and ward_server::access::ROUTES by the test \
         `permissions_doc_is_current`; run it with UPDATE_DOCS=1 to rewrite. Do not edit by hand. -->\n\n\
         Ward has three roles per company. **Admin** can do everything within their company. \
         **User** creates and edits work objects (rules, cases) and may approve other people's \
         changes, but manages no users, settings or keys. **Viewer** reads everything, including \
         the audit trail (the role for auditors), and changes nothing.\n\n\
         A principal is a signed-in user (session cookie) or an API token. A token acts with the \
         lesser of its scope and its owner's current role. Every object belongs to one company; \
         an id from another company answers 404, exactly like a missing one.\n\n\
         **Separation of duties**: the author of a change can never approve it, whatever their \
         role (`ward_core::rbac::check_separation_of_duties`); approvals additionally require \
         `approve_changes`.\n\n## Permission matrix\n\n| permission | meaning | admin | user | viewer |\n|---|---|---|---|---|\n",
    );
    for p in Permission::ALL {
        let mark = |r: Role| if r.allows(p) { "yes" } else { "—" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            p.name(),
            p.describe(),
            mark(Role::Admin),
            mark(Role::User),
            mark(Role::Viewer)
        ));
    }
    out.push_str("\n## Routes\n\nThe credentials column is also each operation's `security` in the OpenAPI document; a *sensitive* route needs a recent re-authentication (with a second factor where the company requires MFA) or a token minted with `\"sensitive\": true`.\n\n| method | path | requires | credentials | admin | user | viewer | notes |\n|---|---|---|---|---|---|---|---|\n");
    for r in ROUTES {
        let (req, marks) = match r.access {
            Public => ("public".to_owned(), ["yes", "yes", "yes"]),
            MetricsToken => ("the `metrics` token".to_owned(), ["—", "—", "—"]),
            Requires(p) | SessionOnly(p) => {
                let m = |role: Role| if role.allows(p) { "yes" } else { "—" };
                (
                    format!("`{}`", p.name()),
                    [m(Role::Admin), m(Role::User), m(Role::Viewer)],
                )
            }
        };
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} |\n",
            r.method,
            r.path,
            req,
            r.credentials(),
            marks[0],
            marks[1],
            marks[2],
            r.note
        ));
    }
    out
}
