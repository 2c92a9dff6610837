//! Email addresses: the sign-in name, unique across the instance. Normalised to
//! lower case so `Alice@Example.com` and `alice@example.com` are one account.

use serde::Serialize;

use crate::InvalidField;

/// RFC 5321 §4.5.3.1.3 limits a path to 256 octets, so an address to 254.
pub const MAX_EMAIL_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, InvalidField> {
        let t = text.trim_matches(' ');
        if t.is_empty() {
            return Err(InvalidField::new("email", "must not be empty"));
        }
        if t.len() > MAX_EMAIL_LEN {
            return Err(InvalidField::new("email", "must be at most 254 characters"));
        }
        let Some((local, domain)) = t.rsplit_once('@') else {
            return Err(InvalidField::new(
                "email",
                "must be an address like name@example.com",
            ));
        };
        if local.is_empty()
            || domain.is_empty()
            || local.contains('@')
            || t.chars().any(|c| c.is_whitespace() || c.is_control())
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || !domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
        {
            return Err(InvalidField::new(
                "email",
                "must be an address like name@example.com",
            ));
        }
        Ok(Self(t.to_lowercase()))
    }

    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check() {
        let ok =
            |s: &str, want: &str| assert_eq!(Email::parse(s).map(|e| e.0), Ok(want.to_owned()));
        let bad = |s: &str| assert!(Email::parse(s).is_err(), "{s} should be refused");
        ok("Alice@Example.COM", "alice@example.com");
        ok("  bob@corp.example ", "bob@corp.example");
        ok("soc+alerts@localhost", "soc+alerts@localhost");
        bad("");
        bad("alice");
        bad("a@@b.com");
        bad("@b.com");
        bad("a@");
        bad("a b@c.com");
        bad("a@b..com");
        bad("a@b.com\n");
        bad(&format!("{}@example.com", "a".repeat(250)));
    }
}
