//! Email domains a company owns: the name's check, the DNS TXT record that proves
//! control, and the decision whether an address may be used in a company.

use crate::{InvalidField, TenantId};

/// The TXT record a company publishes at its domain to prove control.
pub fn verification_record(token: &str) -> String {
    format!("ward-verification={token}")
}

/// Whether any of a domain's TXT records (each the concatenation of its
/// strings) carries exactly the company's verification value.
pub fn txt_proves(records: &[String], token: &str) -> bool {
    let expected = verification_record(token);
    records.iter().any(|r| r.trim() == expected)
}

/// A lower-case host name with at least two labels (LDH labels, RFC 1035 §2.3.1).
pub fn check_domain(domain: &str) -> Result<String, InvalidField> {
    crate::sso::check_domains(&[domain.to_owned()])
        .map_err(|e| InvalidField::new("domain", e.reason))
        .and_then(|mut v| v.pop().ok_or_else(|| InvalidField::new("domain", "empty")))
}

/// Why an address may not be used in a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DomainRefused {
    /// Another company holds the address's domain verified. The refusal is the
    /// same whether or not the address exists there.
    #[error(
        "this email domain belongs to another company; use an address on one of your company's domains"
    )]
    OwnedElsewhere,
}

/// An address on a domain verified by another company cannot be created in
/// `tenant`; domains nobody holds stay open (existing installations keep
/// working until their operators verify their domains).
pub fn may_use_domain(tenant: &TenantId, owner: Option<&TenantId>) -> Result<(), DomainRefused> {
    match owner {
        Some(o) if o != tenant => Err(DomainRefused::OwnedElsewhere),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_records_and_ownership() {
        assert!(txt_proves(
            &["v=spf1 -all".into(), "ward-verification=abc".into()],
            "abc"
        ));
        assert!(!txt_proves(&["ward-verification=abcd".into()], "abc"));
        assert!(!txt_proves(&["ward-verification=ab".into()], "abc"));
        let a = TenantId::from_random([1; 16]);
        let b = TenantId::from_random([2; 16]);
        assert_eq!(may_use_domain(&a, None), Ok(()));
        assert_eq!(may_use_domain(&a, Some(&a)), Ok(()));
        assert_eq!(
            may_use_domain(&b, Some(&a)),
            Err(DomainRefused::OwnedElsewhere)
        );
        assert_eq!(
            check_domain("@Alpha.Example").as_deref(),
            Ok("alpha.example")
        );
        assert!(check_domain("alpha").is_err());
    }
}
