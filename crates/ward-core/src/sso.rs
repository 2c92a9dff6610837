//! A company's OpenID Connect identity providers: what an Admin configures, its
//! validation, and the pure decisions made at each SSO sign-in (which emails are
//! allowed, which role a new user gets from their groups).

use serde::{Deserialize, Serialize};

use crate::{Email, InvalidField, Role, SsoProviderId, TenantId, Timestamp, UserId, checked_text};

/// A configured provider. The client secret is stored sealed, never here.
#[derive(Debug, Clone, Serialize)]
pub struct SsoProvider {
    pub id: SsoProviderId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The issuer; `/.well-known/openid-configuration` is read from it.
    pub issuer: String,
    pub client_id: String,
    /// Requested scopes besides `openid` (e.g. `email`, `profile`, `groups`).
    pub scopes: Vec<String>,
    /// The ID-token claim that lists the user's groups.
    pub groups_claim: String,
    /// Group → role, first match by role rank (Admin over User over Viewer).
    pub role_mappings: Vec<RoleMapping>,
    /// The role of a new user whose groups match no mapping; `None` refuses them.
    pub default_role: Option<Role>,
    /// Email domains that may sign in through this provider.
    pub allowed_domains: Vec<String>,
    /// Create an account at the first sign-in (just-in-time provisioning).
    pub jit_provisioning: bool,
    /// `acr` values that assert multi-factor authentication (besides `amr`).
    pub mfa_acr_values: Vec<String>,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The Admin who added the provider (`None` for providers older than this
    /// record). Whoever controls a provider can sign in as anyone linked to it,
    /// so separation of duties counts them.
    pub created_by: Option<UserId>,
    /// The Admin who last changed it.
    pub updated_by: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleMapping {
    pub group: String,
    pub role: Role,
}

impl SsoProvider {
    /// The Admins who control this provider's configuration.
    pub fn controllers(&self) -> impl Iterator<Item = &UserId> {
        self.created_by.iter().chain(self.updated_by.iter())
    }

    /// Whether this email may sign in through this provider.
    pub fn allows_email(&self, email: &Email) -> bool {
        let domain = email.as_str().rsplit_once('@').map_or("", |(_, d)| d);
        self.allowed_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// The role a new user gets: the highest role any of their groups maps to,
    /// else the default.
    pub fn role_for(&self, groups: &[String]) -> Option<Role> {
        let mapped = self
            .role_mappings
            .iter()
            .filter(|m| groups.iter().any(|g| g == &m.group))
            .map(|m| m.role)
            .reduce(|a, b| if a.is_at_most(b) { b } else { a });
        mapped.or(self.default_role)
    }
}

/// Whether a sign-in's email address is already an account somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailInUse {
    No,
    /// By an account of the provider's company that is not linked to this
    /// (provider, subject).
    InThisCompany,
    /// By another company's account, or on a domain another company owns.
    Elsewhere,
}

/// Where an SSO sign-in leads, decided from the (provider, subject) binding and
/// never from the email alone: a provider reaches only accounts linked to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInTarget {
    /// The account bound to (provider, subject).
    Linked(UserId),
    /// A new account, bound to (provider, subject) in the same transaction.
    Provision(Role),
    Refuse(SignInRefusal),
}

/// Why an SSO sign-in reaches no account. Each has a stable audit reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefusal {
    /// An account with this email exists in the company but its owner has not
    /// linked this provider (an Admin controlling a provider must not be able
    /// to sign in as a colleague).
    NotLinked,
    /// The address belongs elsewhere; the refusal does not say whether it exists.
    Unavailable,
    /// No account and provisioning is off.
    NoAccount,
    /// Provisioning is on but no group maps to a role and there is no default.
    NoRole,
}

impl SignInRefusal {
    pub fn reason(self) -> &'static str {
        match self {
            SignInRefusal::NotLinked => "account_not_linked",
            SignInRefusal::Unavailable => "account_unavailable",
            SignInRefusal::NoAccount => "no_account",
            SignInRefusal::NoRole => "no_role",
        }
    }
}

/// The sign-in decision: `linked` is the account bound to (provider, subject).
pub fn sign_in_target(
    p: &SsoProvider,
    linked: Option<&UserId>,
    email: EmailInUse,
    groups: &[String],
) -> SignInTarget {
    if let Some(user) = linked {
        return SignInTarget::Linked(user.clone());
    }
    match email {
        EmailInUse::InThisCompany => SignInTarget::Refuse(SignInRefusal::NotLinked),
        EmailInUse::Elsewhere => SignInTarget::Refuse(SignInRefusal::Unavailable),
        EmailInUse::No if !p.jit_provisioning => SignInTarget::Refuse(SignInRefusal::NoAccount),
        EmailInUse::No => match p.role_for(groups) {
            Some(role) => SignInTarget::Provision(role),
            None => SignInTarget::Refuse(SignInRefusal::NoRole),
        },
    }
}

pub fn check_provider_name(name: &str) -> Result<String, InvalidField> {
    checked_text("name", name, 100)
}

/// An issuer must be an `https` URL (plain `http` only on loopback, for local
/// providers and tests), without query or fragment.
pub fn check_issuer(issuer: &str) -> Result<String, InvalidField> {
    let v = issuer.trim().trim_end_matches('/');
    let invalid = || {
        InvalidField::new(
            "issuer",
            "must be an https URL (http only for localhost), without query or fragment",
        )
    };
    let rest = if let Some(r) = v.strip_prefix("https://") {
        r
    } else if let Some(r) = v.strip_prefix("http://") {
        let host = r.split(['/', ':']).next().unwrap_or_default();
        if !matches!(host, "localhost" | "127.0.0.1" | "[") && !r.starts_with("[::1]") {
            return Err(invalid());
        }
        r
    } else {
        return Err(invalid());
    };
    if rest.is_empty() || rest.contains(['?', '#', ' ']) || v.len() > 500 {
        return Err(invalid());
    }
    Ok(v.to_owned())
}

pub fn check_client_id(id: &str) -> Result<String, InvalidField> {
    checked_text("client_id", id, 300)
}

/// Scopes: space-separated tokens of visible ASCII (RFC 6749 §3.3).
pub fn check_scopes(scopes: &[String]) -> Result<Vec<String>, InvalidField> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        let s = s.trim();
        if s.is_empty()
            || s.len() > 100
            || !s
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(InvalidField::new(
                "scopes",
                "each scope is a token of visible ASCII",
            ));
        }
        if s != "openid" && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// Domains: at least one, lower-case host names.
pub fn check_domains(domains: &[String]) -> Result<Vec<String>, InvalidField> {
    let mut out = Vec::new();
    for d in domains {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.contains('.')
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(InvalidField::new(
                "allowed_domains",
                format!("{d:?} is not a domain name"),
            ));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    if out.is_empty() {
        return Err(InvalidField::new(
            "allowed_domains",
            "name at least one email domain that may sign in",
        ));
    }
    Ok(out)
}

pub fn check_claim_name(claim: &str) -> Result<String, InvalidField> {
    let c = checked_text("groups_claim", claim, 100)?;
    if c.contains(char::is_whitespace) {
        return Err(InvalidField::new("groups_claim", "must be one claim name"));
    }
    Ok(c)
}

pub fn check_mappings(m: &[RoleMapping]) -> Result<Vec<RoleMapping>, InvalidField> {
    m.iter()
        .map(|r| {
            Ok(RoleMapping {
                group: checked_text("role_mappings", &r.group, 200)?,
                role: r.role,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> SsoProvider {
        SsoProvider {
            id: SsoProviderId::from_random([1; 16]),
            tenant_id: TenantId::from_random([2; 16]),
            name: "okta".into(),
            issuer: "https://acme.okta.com".into(),
            client_id: "ward".into(),
            scopes: vec!["email".into()],
            groups_claim: "groups".into(),
            role_mappings: vec![
                RoleMapping {
                    group: "soc".into(),
                    role: Role::User,
                },
                RoleMapping {
                    group: "soc-leads".into(),
                    role: Role::Admin,
                },
            ],
            default_role: None,
            allowed_domains: vec!["acme.example".into()],
            jit_provisioning: true,
            mfa_acr_values: vec![],
            enabled: true,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            created_by: None,
            updated_by: None,
        }
    }

    #[test]
    fn roles_from_groups() {
        let p = provider();
        let g = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(p.role_for(&g(&["soc"])), Some(Role::User));
        assert_eq!(p.role_for(&g(&["soc", "soc-leads"])), Some(Role::Admin));
        assert_eq!(p.role_for(&g(&["finance"])), None);
        let mut q = p.clone();
        q.default_role = Some(Role::Viewer);
        assert_eq!(q.role_for(&[]), Some(Role::Viewer));
    }

    #[test]
    fn sign_in_reaches_only_linked_accounts() {
        let p = provider();
        let soc = vec!["soc".to_owned()];
        let colleague = UserId::from_random([7; 16]);
        // Bound by subject: whatever the email says.
        for email in [EmailInUse::No, EmailInUse::InThisCompany] {
            assert_eq!(
                sign_in_target(&p, Some(&colleague), email, &soc),
                SignInTarget::Linked(colleague.clone())
            );
        }
        // The attack: a provider asserting a colleague's email reaches nothing.
        assert_eq!(
            sign_in_target(&p, None, EmailInUse::InThisCompany, &soc),
            SignInTarget::Refuse(SignInRefusal::NotLinked)
        );
        assert_eq!(
            sign_in_target(&p, None, EmailInUse::Elsewhere, &soc),
            SignInTarget::Refuse(SignInRefusal::Unavailable)
        );
        assert_eq!(
            sign_in_target(&p, None, EmailInUse::No, &soc),
            SignInTarget::Provision(Role::User)
        );
        assert_eq!(
            sign_in_target(&p, None, EmailInUse::No, &[]),
            SignInTarget::Refuse(SignInRefusal::NoRole)
        );
        let closed = SsoProvider {
            jit_provisioning: false,
            ..p
        };
        assert_eq!(
            sign_in_target(&closed, None, EmailInUse::No, &soc),
            SignInTarget::Refuse(SignInRefusal::NoAccount)
        );
    }

    #[test]
    fn domains_and_issuers() {
        let p = provider();
        assert!(p.allows_email(&Email::parse("a@acme.example").expect("email")));
        assert!(p.allows_email(&Email::parse("a@ACME.example").expect("email")));
        assert!(!p.allows_email(&Email::parse("a@evil.example").expect("email")));
        assert!(!p.allows_email(&Email::parse("a@sub.acme.example").expect("email")));
        assert!(check_issuer("https://login.microsoftonline.com/t/v2.0").is_ok());
        assert!(check_issuer("http://localhost:9000").is_ok());
        assert!(check_issuer("http://idp.example").is_err());
        assert!(check_issuer("https://idp.example/?x=1").is_err());
        assert!(check_issuer("ftp://idp.example").is_err());
        assert!(check_domains(&[]).is_err());
        assert!(check_domains(&["acme".into()]).is_err());
        assert_eq!(
            check_domains(&["@Acme.Example".into()]).expect("ok"),
            vec!["acme.example"]
        );
        assert!(check_scopes(&["email profile".into()]).is_err());
        assert_eq!(
            check_scopes(&["openid".into(), "email".into()]).expect("ok"),
            vec!["email"]
        );
    }
}
