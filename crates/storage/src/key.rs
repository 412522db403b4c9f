//! Names of stored sessions and their generations.

use matrix_oidc_core::Session;
use serde::{Deserialize, Serialize};

/// The name under which a [`Session`] is stored.
///
/// Either chosen by the application (`SessionKey::new("default")`, a profile name, an account id)
/// or derived from the session itself with [`SessionKey::for_session`]. Any string is fine: stores
/// never use it as a path (the file store names files by its SHA-256 hash).
///
/// ```
/// use matrix_oidc_storage::SessionKey;
/// let key = SessionKey::new("work-account");
/// assert_eq!(key.as_str(), "work-account");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionKey(String);

impl SessionKey {
    /// A key chosen by the application.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key of a signed-in user on one device: the homeserver (or, without one, the issuer),
    /// the user id and the device id, as a JSON array (unambiguous whatever the parts contain).
    ///
    /// Derive it once the session knows its user and device (after `whoami`): a key derived
    /// before that names a different entry.
    ///
    /// ```
    /// use matrix_oidc_core::{Secret, Session, TokenSet};
    /// use matrix_oidc_storage::SessionKey;
    /// let session = Session::new(
    ///     "https://auth.example.org/".parse().unwrap(),
    ///     "client-1",
    ///     TokenSet::new(Secret::new("access")),
    /// )
    /// .with_homeserver(Some("https://matrix.example.org/".parse().unwrap()))
    /// .with_user_id(Some("@alice:example.org".into()))
    /// .with_device_id(Some("ABCDEFGH".into()));
    /// assert_eq!(
    ///     SessionKey::for_session(&session).as_str(),
    ///     r#"["https://matrix.example.org/","@alice:example.org","ABCDEFGH"]"#
    /// );
    /// ```
    pub fn for_session(session: &Session) -> Self {
        use serde_json::Value;
        let server = session.homeserver.as_ref().unwrap_or(&session.issuer);
        let part = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| Value::from(s.as_str()));
        let parts = Value::Array(vec![
            Value::from(server.as_str()),
            part(&session.user_id),
            part(&session.device_id),
        ]);
        Self(parts.to_string())
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the key, returning the string.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Display for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SessionKey {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for SessionKey {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// The version of a stored session, for compare-and-swap saves.
///
/// Every successful save of a key yields a generation greater than any the key had before, even
/// across a delete and a new save, so a writer that read generation `g` and saves with
/// `expected = Some(g)` succeeds only if nobody saved or deleted the session in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Generation(u64);

impl Generation {
    /// The generation of a session's first save.
    pub const FIRST: Generation = Generation(1);

    /// A generation from its number (for store implementations and tests).
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The generation after this one.
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
