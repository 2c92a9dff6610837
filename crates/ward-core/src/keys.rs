//! Tenant key versions and their life cycle: active → decrypt-only → destroyed.
//! Each state is explicit; which operations a state allows is decided here.

use serde::Serialize;

use crate::{TenantId, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Encrypts new writes and decrypts.
    Active,
    /// Decrypts existing ciphertexts only; re-encryption moves them off it.
    DecryptOnly,
    /// Wrapped key wiped: nothing it encrypted can be read again.
    Destroyed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::DecryptOnly => "decrypt_only",
            Self::Destroyed => "destroyed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => Self::Active,
            "decrypt_only" => Self::DecryptOnly,
            "destroyed" => Self::Destroyed,
            _ => return None,
        })
    }

    pub fn may_encrypt(self) -> bool {
        self == Self::Active
    }

    pub fn may_decrypt(self) -> bool {
        self != Self::Destroyed
    }
}

/// A key version's metadata (never the key).
#[derive(Debug, Clone, Serialize)]
pub struct KeyVersionInfo {
    pub tenant_id: TenantId,
    pub version: u32,
    pub state: KeyState,
    pub master_version: u32,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    pub destroyed_at: Option<Timestamp>,
}

/// Default automatic rotation interval.
pub const DEFAULT_ROTATION_DAYS: i64 = 90;

/// Whether the active key is due for scheduled rotation.
pub fn rotation_due(active_created: Timestamp, interval_days: i64, now: Timestamp) -> bool {
    now.seconds_since(active_created) >= interval_days.saturating_mul(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert!(KeyState::Active.may_encrypt() && KeyState::Active.may_decrypt());
        assert!(!KeyState::DecryptOnly.may_encrypt() && KeyState::DecryptOnly.may_decrypt());
        assert!(!KeyState::Destroyed.may_encrypt() && !KeyState::Destroyed.may_decrypt());
        let day = |d: i64| Timestamp::from_millis(d * 86_400_000);
        assert!(!rotation_due(day(0), 90, day(89)));
        assert!(rotation_due(day(0), 90, day(90)));
    }
}
