//! Password policy (NIST SP 800-63B §3.1.1.2): length 12 to 128 characters, any
//! characters allowed, no composition rules, and refusal of passwords found in a
//! list of commonly used ones — including a common password with digits or
//! punctuation tacked on, the most frequent way people "strengthen" one.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::InvalidField;

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Upper bound keeps Argon2 input (and request bodies) bounded; 800-63B asks for ≥ 64.
pub const MAX_PASSWORD_CHARS: usize = 128;

static COMMON_LIST: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_LIST
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    })
}

/// Checks a new password. `email` is the account's, which must not be the password.
pub fn check_new_password(password: &str, email: &str) -> Result<(), InvalidField> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(InvalidField::new(
            "password",
            "must be at least 12 characters",
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(InvalidField::new(
            "password",
            "must be at most 128 characters",
        ));
    }
    let lower = password.to_lowercase();
    let set = common_passwords();
    let base = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    let base = base.trim_start_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if set.contains(lower.as_str()) || (base.chars().count() >= 4 && set.contains(base)) {
        return Err(InvalidField::new(
            "password",
            "is too common; choose another",
        ));
    }
    let distinct: HashSet<char> = lower.chars().collect();
    if distinct.len() < 5 {
        return Err(InvalidField::new(
            "password",
            "has too few different characters",
        ));
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    if lower == email.to_lowercase() || (local.chars().count() >= 4 && lower == local) {
        return Err(InvalidField::new(
            "password",
            "must not be the email address",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str, want_ok: bool) {
        let got = check_new_password(password, "alice.smith@example.com");
        assert_eq!(got.is_ok(), want_ok, "{password:?}: {got:?}");
    }

    #[test]
    fn policy() {
        check("correct horse battery staple", true);
        check("Tr0ub4dor&3-plus-more", true);
        check("пароль-очень-длинный", true); // any characters
        check("short", false);
        check("elevenchars", false);
        check(&"x".repeat(129), false);
        check(&"ab".repeat(64), false); // 128 chars but 2 distinct
        check("qwerty123456", false); // in the list as is
        check("Password1234!", false); // common base + suffix
        check("iloveyou2024!!", false);
        check("aaaaaaaaaaaaaaaa", false);
        check("alice.smith@example.com", false);
        assert!(common_passwords().len() >= 9_000);
    }
}
