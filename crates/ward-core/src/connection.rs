//! SIEM connections: where Ward deploys rules, and the credentials it uses there.
//! Credentials are write-only: they are encrypted before they are stored and no
//! response, log line or audit detail ever carries them.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{InvalidField, TenantId, Timestamp};

/// Which SIEM (or generic HTTP target) a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectionKind {
    #[serde(rename = "splunk")]
    Splunk,
    #[serde(rename = "elastic")]
    Elastic,
    #[serde(rename = "sentinel")]
    Sentinel,
    #[serde(rename = "crowdstrike")]
    Crowdstrike,
    #[serde(rename = "generic-http")]
    GenericHttp,
}

impl ConnectionKind {
    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        Ok(match text {
            "splunk" => Self::Splunk,
            "elastic" => Self::Elastic,
            "sentinel" => Self::Sentinel,
            "crowdstrike" => Self::Crowdstrike,
            "generic-http" => Self::GenericHttp,
            _ => {
                return Err(InvalidField::new(
                    "kind",
                    "must be one of splunk, elastic, sentinel, crowdstrike, generic-http",
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Splunk => "splunk",
            Self::Elastic => "elastic",
            Self::Sentinel => "sentinel",
            Self::Crowdstrike => "crowdstrike",
            Self::GenericHttp => "generic-http",
        }
    }

    /// The credential shapes this kind accepts (field names, in order).
    pub fn accepted_credentials(self) -> &'static [&'static [&'static str]] {
        match self {
            // Splunk: an HEC or REST bearer token.
            Self::Splunk => &[&["token"]],
            // Elastic: an API key, or basic auth.
            Self::Elastic => &[&["token"], &["username", "password"]],
            // Sentinel: an Entra ID app registration; CrowdStrike: an API client.
            Self::Sentinel | Self::Crowdstrike => &[&["client_id", "client_secret"]],
            Self::GenericHttp => &[&["token"], &["username", "password"]],
        }
    }
}

/// Credentials as submitted: a map of field name to secret value. Zeroized on
/// drop; `Debug` names the fields only.
#[derive(Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Zeroizing<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<Zeroizing<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Zeroizing<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Zeroizing<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}: [redacted])", self.fields_set())
    }
}

/// Longest credential value accepted (keys, JWT-ish tokens and passwords fit).
pub const MAX_CREDENTIAL_LEN: usize = 8192;

impl Credentials {
    /// Names of the fields that are set.
    pub fn fields_set(&self) -> Vec<&'static str> {
        [
            ("token", &self.token),
            ("username", &self.username),
            ("password", &self.password),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect()
    }

    /// Checks the set of fields against what `kind` accepts, and each value.
    pub fn check_for(&self, kind: ConnectionKind) -> Result<(), InvalidField> {
        let set = self.fields_set();
        if !kind.accepted_credentials().contains(&set.as_slice()) {
            let shapes: Vec<String> = kind
                .accepted_credentials()
                .iter()
                .map(|s| s.join(" + "))
                .collect();
            return Err(InvalidField::new(
                "credentials",
                format!(
                    "a {} connection takes {}",
                    kind.as_str(),
                    shapes.join(", or ")
                ),
            ));
        }
        for v in [
            &self.token,
            &self.username,
            &self.password,
            &self.client_id,
            &self.client_secret,
        ]
        .into_iter()
        .flatten()
        {
            if v.is_empty() || v.len() > MAX_CREDENTIAL_LEN || v.chars().any(char::is_control) {
                return Err(InvalidField::new(
                    "credentials",
                    "each value must be 1 to 8192 characters without control characters",
                ));
            }
        }
        Ok(())
    }

    /// The plaintext that is encrypted (JSON). Zeroized on drop.
    pub fn to_plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn from_plaintext(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A connection as stored (the credentials stay an encrypted envelope).
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub kind: ConnectionKind,
    pub base_url: String,
    pub credential_fields: Vec<String>,
    pub credentials_changed_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn check_connection_name(name: &str) -> Result<String, InvalidField> {
    crate::text::checked_name("name", name, 100)
}

/// An http(s) URL with a host, at most 2048 characters, no credentials in it (those
/// belong in the encrypted credentials, not in a plaintext column).
pub fn check_base_url(url: &str) -> Result<String, InvalidField> {
    let u = url.trim();
    let bad = |why: &str| InvalidField::new("base_url", why);
    if u.len() > 2048 {
        return Err(bad("must be at most 2048 characters"));
    }
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with https:// or http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty()
        || authority.contains(char::is_whitespace)
        || u.chars().any(char::is_control)
    {
        return Err(bad("must name a host"));
    }
    if authority.contains('@') {
        return Err(bad("must not contain credentials; put them in credentials"));
    }
    if let Some(why) = crate::egress::secret_in_url(u) {
        return Err(bad(&why));
    }
    Ok(u.to_owned())
}

/// Whether a new base URL points the stored credentials somewhere else: another
/// scheme, host (compared without case) or port. Then the credentials must be
/// entered again, or an Admin could send a colleague's SIEM token to their own host.
pub fn credentials_bound_elsewhere(old: &str, new: &str) -> bool {
    let place = |u: &str| {
        let scheme = u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        host_and_port(u).map(|(h, p)| (scheme, crate::egress::normalize_host(&h), p))
    };
    match (place(old), place(new)) {
        (Some(a), Some(b)) => a != b,
        _ => true,
    }
}

/// Host and port to check reachability of, from a checked base URL.
pub fn host_and_port(base_url: &str) -> Option<(String, u16)> {
    let (default_port, rest) = if let Some(r) = base_url.strip_prefix("https://") {
        (443, r)
    } else {
        (80, base_url.strip_prefix("http://")?)
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
        None => Some((authority.to_owned(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(json: &str) -> Credentials {
        serde_json::from_str(json).expect("credentials")
    }

    #[test]
    fn credential_shapes_by_kind() {
        assert!(
            creds(r#"{"token":"abc"}"#)
                .check_for(ConnectionKind::Splunk)
                .is_ok()
        );
        assert!(
            creds(r#"{"username":"u","password":"p"}"#)
                .check_for(ConnectionKind::Splunk)
                .is_err()
        );
        assert!(
            creds(r#"{"username":"u","password":"p"}"#)
                .check_for(ConnectionKind::Elastic)
                .is_ok()
        );
        assert!(
            creds(r#"{"client_id":"i","client_secret":"s"}"#)
                .check_for(ConnectionKind::Sentinel)
                .is_ok()
        );
        assert!(
            creds(r#"{"client_id":"i"}"#)
                .check_for(ConnectionKind::Crowdstrike)
                .is_err()
        );
        assert!(
            creds(r#"{"token":""}"#)
                .check_for(ConnectionKind::Splunk)
                .is_err()
        );
        assert!(serde_json::from_str::<Credentials>(r#"{"apikey":"x"}"#).is_err());
        let c = creds(r#"{"token":"super-secret"}"#);
        assert!(!format!("{c:?}").contains("super-secret"));
        assert_eq!(
            Credentials::from_plaintext(&c.to_plaintext()).map(|c| c.fields_set()),
            Some(vec!["token"])
        );
    }

    #[test]
    fn moving_a_connection_elsewhere_needs_its_credentials() {
        for (old, new, elsewhere) in [
            (
                "https://siem.example:8089",
                "https://siem.example:8089/api",
                false,
            ),
            ("https://siem.example", "https://SIEM.example:443/x", false),
            ("https://siem.example", "https://attacker.example", true),
            ("https://siem.example", "http://siem.example", true),
            ("https://siem.example", "https://siem.example:8443", true),
            (
                "https://siem.example",
                "https://siem.example.attacker.example",
                true,
            ),
        ] {
            assert_eq!(
                credentials_bound_elsewhere(old, new),
                elsewhere,
                "{old} -> {new}"
            );
        }
    }

    #[test]
    fn urls() {
        assert!(check_base_url("https://splunk.example:8089").is_ok());
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("https://").is_err());
        assert!(check_base_url("https://user:pw@host").is_err());
        assert!(check_base_url("https://host/api?token=abc").is_err());
        assert!(check_base_url("https://host/api?index=main").is_ok());
        assert_eq!(
            host_and_port("https://siem.example/api"),
            Some(("siem.example".into(), 443))
        );
        assert_eq!(
            host_and_port("http://127.0.0.1:9200"),
            Some(("127.0.0.1".into(), 9200))
        );
        assert_eq!(
            host_and_port("https://[::1]:8443/x"),
            Some(("::1".into(), 8443))
        );
    }
}
