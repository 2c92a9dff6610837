//! Email addresses: the sign-in name, unique across the instance. Normalised to
//! lower case and NFC so `Alice@Example.com` and `alice@example.com` are one
//! account; invisible characters and look-alike scripts are refused in the local
//! part and in each domain label (`text::check_address_part`, UTS #39).

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

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
        // Lower case first, then NFC: lower-casing can leave a decomposed form.
        let normal: String = t.to_lowercase().nfc().collect();
        if normal.len() > MAX_EMAIL_LEN {
            return Err(InvalidField::new("email", "must be at most 254 characters"));
        }
        if let Some((local, domain)) = normal.rsplit_once('@') {
            crate::text::check_address_part("email", local, "local part")?;
            for label in domain.split('.') {
                crate::text::check_address_part("email", label, "domain")?;
            }
        }
        Ok(Self(normal))
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
        // NFC: a decomposed `é` is stored composed.
        ok("Rene\u{301}e@Example.com", "ren\u{e9}e@example.com");
        ok("иван@пример.example", "иван@пример.example");
        ok("müller@bücher.example", "müller@bücher.example");
        // Cyrillic `а` in a Latin domain label or local part.
        bad("cto@\u{430}lpha.example");
        bad("\u{441}to@alpha.example");
        // A Cyrillic label that reads as ASCII `ape`.
        bad("cto@\u{430}\u{440}\u{435}.example");
        // Invisible and bidirectional characters.
        for c in [
            '\u{200B}', '\u{200F}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{AD}',
        ] {
            bad(&format!("cto{c}@alpha.example"));
            bad(&format!("cto@al{c}pha.example"));
        }
    }
}
