//! Secret strings (tokens, code verifiers, client secrets) that never leak through `Debug` or `Display`.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// A secret string: an access or refresh token, a PKCE code verifier, a client secret, a device code.
///
/// `Debug` prints `Secret(<redacted, N bytes>)`; there is no `Display`. The value is reachable only through
/// [`Secret::expose`], which makes every place that handles the raw secret easy to find. Equality is
/// constant-time, so comparing a secret against attacker-controlled input leaks nothing through timing.
/// Serde (de)serializes it as a plain string so that stores can persist it.
///
/// ```
/// use matrix_oidc_core::Secret;
/// let token = Secret::new("mat_abcdef");
/// assert_eq!(format!("{token:?}"), "Secret(<redacted, 10 bytes>)");
/// assert_eq!(token.expose(), "mat_abcdef");
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw secret. Call this only where the value is put on the wire or into a store.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Consumes the wrapper, returning the raw secret.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<redacted, {} bytes>)", self.0.len())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Compares two strings in time that depends only on their lengths, not on where they differ.
///
/// Used for `state` values and other secrets that come back from an untrusted party.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("super-secret-refresh-token");
        let printed = format!("{s:?} {:#?}", s);
        assert!(!printed.contains("super-secret"), "{printed}");
    }

    #[test]
    fn serde_round_trip_is_a_plain_string() {
        let s = Secret::new("abc");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"abc\"");
        let back: Secret = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
