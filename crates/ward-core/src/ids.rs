//! Typed identifiers. Each is a UUID (v4, from random bytes passed in) so ids never
//! cross a boundary as bare strings and one kind cannot stand in for another.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random id from 16 random bytes.
            pub fn from_random(bytes: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().to_string())
            }

            /// Parses a canonical UUID; anything else is `None` (then: 404, not 500).
            pub fn parse(text: &str) -> Option<Self> {
                let id = uuid::Uuid::try_parse(text).ok()?;
                Some(Self(id.hyphenated().to_string()))
            }

            /// Trusted constructor for values read back from the store.
            pub fn from_stored(text: String) -> Self {
                Self(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A company using Ward.
    TenantId
);
id_type!(
    /// A user, who belongs to exactly one tenant.
    UserId
);
id_type!(
    /// A server-side session.
    SessionId
);
id_type!(
    /// An API token (its id, not its secret).
    TokenId
);
id_type!(
    /// An audit event.
    EventId
);
id_type!(
    /// A SIEM connection.
    ConnectionId
);
id_type!(
    /// A registered passkey (Ward's id, not the authenticator's credential id).
    PasskeyId
);
id_type!(
    /// A detection rule (Ward's id; the Sigma `id` is the rule's own).
    RuleId
);
id_type!(
    /// A company's OpenID Connect identity provider.
    SsoProviderId
);
id_type!(
    /// A sign-in ceremony in progress (WebAuthn challenge, OpenID Connect state).
    CeremonyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_uuids() {
        let id = UserId::from_random([7u8; 16]);
        assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(UserId::parse(&id.as_str().to_uppercase()), Some(id));
        assert_eq!(UserId::parse("1"), None);
        assert_eq!(UserId::parse("../etc/passwd"), None);
    }
}
