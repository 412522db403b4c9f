//! The one error type of every store.

use crate::{Generation, SessionKey};

/// Why a store operation failed.
///
/// Messages name the file (or database and row) involved, never a token: documents are described
/// by their location, and JSON errors by their kind and position, not by the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A compare-and-swap save found a different generation than the caller expected: someone
    /// else saved (for instance a rotated refresh token) or deleted the session in between.
    ///
    /// Load the session again, and retry with what you find (or drop your now stale tokens).
    #[error("session {key} changed concurrently: {}", describe_conflict(*expected, *current))]
    Conflict {
        /// The session.
        key: SessionKey,
        /// The generation the caller expected (`None`: that the session did not exist).
        expected: Option<Generation>,
        /// The generation in the store (`None`: the session does not exist).
        current: Option<Generation>,
    },
    /// A pending authorization with the same `state` is already stored.
    ///
    /// States are random; a duplicate means a random source repeated itself or a request was
    /// stored twice. The stored entry is left as it was.
    #[error("a pending authorization with this state is already stored")]
    DuplicateState,
    /// A stored document cannot be read back: it is not valid JSON, misses a field, or belongs
    /// to another key. The document is left in place for inspection; nothing is deleted.
    #[error("{location} is corrupt: {reason}")]
    Corrupt {
        /// The file path, or the database and row.
        location: String,
        /// What is wrong, without the stored values.
        reason: String,
    },
    /// A stored document or database was written by a newer (or unknown) version of this crate.
    #[error("{location} has storage format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file path or database.
        location: String,
        /// The version found.
        found: u64,
        /// The version this build reads and writes.
        supported: u64,
    },
    /// The operating system refused a file operation.
    #[error("I/O error on {location}: {source}")]
    Io {
        /// The file or directory path.
        location: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The database refused an operation (locked for longer than the busy timeout, full disk,
    /// not a database).
    #[error("database error on {location}: {source}")]
    Database {
        /// The database path (or `:memory:`).
        location: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A value could not be encoded as JSON.
    #[error("cannot encode {what} as JSON: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

fn describe_conflict(expected: Option<Generation>, current: Option<Generation>) -> String {
    let expected = match expected {
        Some(g) => format!("expected generation {g}"),
        None => "expected no stored session".to_owned(),
    };
    match current {
        Some(g) => format!("{expected}, the store has generation {g}"),
        None => format!("{expected}, the session does not exist"),
    }
}

/// Describes a JSON decoding error by kind and position only.
///
/// serde's messages quote the offending value ("invalid type: string \"…\""), which for a
/// misplaced token would print the token; the position is enough to find it in the file.
#[cfg_attr(
    any(target_arch = "wasm32", not(any(feature = "file", feature = "sqlite"))),
    allow(dead_code)
)]
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Eof => "truncated JSON",
        serde_json::error::Category::Data => {
            let message = e.to_string();
            // "missing field `x`" names only the field, which helps and leaks nothing.
            if message.starts_with("missing field") {
                return message;
            }
            "a value of the wrong type or shape"
        }
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_do_not_quote_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: u64,
        }
        let e = serde_json::from_str::<T>(r#"{"n": "secret-token-value"}"#).unwrap_err();
        let d = describe_json_error(&e);
        assert!(!d.contains("secret-token-value"), "{d}");
        assert!(d.contains("line 1"), "{d}");

        let e = serde_json::from_str::<T>("{}").unwrap_err();
        assert_eq!(
            describe_json_error(&e),
            "missing field `n` at line 1 column 2"
        );

        let e = serde_json::from_str::<T>(r#"{"n": 1"#).unwrap_err();
        assert!(describe_json_error(&e).starts_with("truncated JSON"));
    }

    #[test]
    fn conflict_messages_say_what_was_expected_and_found() {
        let key = SessionKey::new("k");
        let e = StoreError::Conflict {
            key: key.clone(),
            expected: Some(Generation::new(3)),
            current: Some(Generation::new(4)),
        };
        assert_eq!(
            e.to_string(),
            "session k changed concurrently: expected generation 3, the store has generation 4"
        );
        let e = StoreError::Conflict {
            key,
            expected: Some(Generation::new(2)),
            current: None,
        };
        assert_eq!(
            e.to_string(),
            "session k changed concurrently: expected generation 2, the session does not exist"
        );
    }
}
