//! Tenants: a tenant is a company. Everything else belongs to exactly one.

use serde::Serialize;

use crate::{InvalidField, TenantId, Timestamp};

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// A short handle for the CLI (`--tenant acme`): lower-case letters, digits, `-`.
    pub slug: String,
    pub created_at: Timestamp,
}

pub fn check_tenant_name(name: &str) -> Result<String, InvalidField> {
    crate::text::checked_name("name", name, 200)
}

pub fn check_slug(slug: &str) -> Result<String, InvalidField> {
    let s = slug.trim();
    let ok = (2..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(InvalidField::new(
            "slug",
            "must be 2-63 lower-case letters, digits or '-', not starting or ending with '-'",
        ))
    }
}

/// Derives a slug from a company name ("Acme Corp." → "acme-corp").
pub fn slug_from_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    trimmed
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug_from_name("Acme Corp."), "acme-corp");
        assert_eq!(
            slug_from_name("  Globex  International "),
            "globex-international"
        );
        assert!(check_slug("acme").is_ok());
        assert!(check_slug("Acme").is_err());
        assert!(check_slug("-acme").is_err());
        assert!(check_slug("a").is_err());
    }
}
