//! Error pieces shared by every area: what a server said, and what was wrong with a response.
//!
//! Each area (discovery, registration, token, …) has its own `#[non_exhaustive]` error enum; those enums
//! embed [`ResponseError`] for the problems every JSON endpoint can have, and [`OAuthErrorBody`] when the
//! server answered with an RFC 6749 §5.2 error.

use serde::{Deserialize, Serialize};

/// How many bytes of an unparseable body an error keeps.
pub const EXCERPT_LIMIT: usize = 256;

/// The longest `error`, `error_description` or `error_uri` string kept from a server (longer ones are cut).
pub const OAUTH_FIELD_LIMIT: usize = 1024;

/// A short, printable excerpt of a body that could not be used, for error messages and logs.
///
/// At most [`EXCERPT_LIMIT`] bytes, decoded lossily, with control characters escaped. Bodies that may
/// carry secrets (token responses) are never excerpted: see [`BodyExcerpt::withheld`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyExcerpt {
    text: String,
    total_len: usize,
    withheld: bool,
}

impl BodyExcerpt {
    /// An excerpt of `body`.
    pub fn new(body: &[u8]) -> Self {
        let cut = &body[..body.len().min(EXCERPT_LIMIT)];
        let text: String = String::from_utf8_lossy(cut)
            .chars()
            .flat_map(char::escape_debug)
            .collect();
        Self {
            text,
            total_len: body.len(),
            withheld: false,
        }
    }

    /// Records only the size of `body`: for responses that may contain tokens.
    pub fn withheld(body: &[u8]) -> Self {
        Self {
            text: String::new(),
            total_len: body.len(),
            withheld: true,
        }
    }

    /// The excerpt text (empty when withheld).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The size of the whole body in bytes.
    pub fn total_len(&self) -> usize {
        self.total_len
    }
}

impl std::fmt::Display for BodyExcerpt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.withheld {
            write!(f, "<{} bytes withheld: may hold tokens>", self.total_len)
        } else if self.total_len > EXCERPT_LIMIT {
            write!(f, "\"{}…\" ({} bytes in all)", self.text, self.total_len)
        } else {
            write!(f, "\"{}\"", self.text)
        }
    }
}

/// An OAuth 2.0 error response (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8628 §3.5, RFC 7009 §2.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    /// The error code, such as `invalid_grant`.
    pub error: String,
    /// Human-readable text from the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page about the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl OAuthErrorBody {
    /// Parses an OAuth error body, if `body` is one (a JSON object with a string `error`).
    ///
    /// Over-long fields are cut to [`OAUTH_FIELD_LIMIT`] bytes so a hostile server cannot make
    /// errors arbitrarily large.
    pub fn parse(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Raw {
            error: String,
            #[serde(default)]
            error_description: Option<serde_json::Value>,
            #[serde(default)]
            error_uri: Option<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_slice(body).ok()?;
        let as_str = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => Some(truncate(s, OAUTH_FIELD_LIMIT)),
            _ => None,
        };
        Some(Self {
            error: truncate(raw.error, OAUTH_FIELD_LIMIT),
            error_description: as_str(raw.error_description),
            error_uri: as_str(raw.error_uri),
        })
    }

    /// Builds an error body from form-encoded pairs (a callback URL), if an `error` pair is present.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        let mut out = Self {
            error: String::new(),
            error_description: None,
            error_uri: None,
        };
        let mut seen = false;
        for (k, v) in pairs {
            match k {
                "error" => {
                    out.error = truncate(v.to_owned(), OAUTH_FIELD_LIMIT);
                    seen = true;
                }
                "error_description" => {
                    out.error_description = Some(truncate(v.to_owned(), OAUTH_FIELD_LIMIT))
                }
                "error_uri" => out.error_uri = Some(truncate(v.to_owned(), OAUTH_FIELD_LIMIT)),
                _ => {}
            }
        }
        seen.then_some(out)
    }
}

impl std::fmt::Display for OAuthErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error.escape_debug())?;
        if let Some(d) = &self.error_description {
            write!(f, ": {}", d.escape_debug())?;
        }
        if let Some(u) = &self.error_uri {
            write!(f, " (see {})", u.escape_debug())?;
        }
        Ok(())
    }
}

/// A Matrix standard error response (`{"errcode": "M_…", "error": "…"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixErrorBody {
    /// The error code, such as `M_UNRECOGNIZED` or `M_UNKNOWN_TOKEN`.
    pub errcode: String,
    /// Human-readable text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set on `M_UNKNOWN_TOKEN`: whether the client may re-login keeping its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_logout: Option<bool>,
}

impl MatrixErrorBody {
    /// Parses a Matrix error body, if `body` is one.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let mut b: Self = serde_json::from_slice(body).ok()?;
        b.errcode = truncate(b.errcode, OAUTH_FIELD_LIMIT);
        b.error = b.error.map(|e| truncate(e, OAUTH_FIELD_LIMIT));
        Some(b)
    }
}

impl std::fmt::Display for MatrixErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.errcode.escape_debug())?;
        if let Some(e) = &self.error {
            write!(f, ": {}", e.escape_debug())?;
        }
        Ok(())
    }
}

/// What was wrong with an HTTP response, before or while reading its JSON.
///
/// The area errors wrap this together with the URL that was requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The body is larger than the request allowed.
    #[error("the response body is {actual} bytes, over the limit of {limit}")]
    BodyTooLarge {
        /// The limit the request set.
        limit: usize,
        /// The size received.
        actual: usize,
    },
    /// The server answered with a redirect, which is never followed.
    #[error("the server answered {status} redirecting to {location:?}; redirects are not followed")]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// A status the endpoint does not define, with no recognizable error body.
    #[error("unexpected HTTP status {status}, body {body}")]
    UnexpectedStatus {
        /// The status received.
        status: u16,
        /// An excerpt of the body.
        body: BodyExcerpt,
    },
    /// The server answered with an OAuth error body.
    #[error("the server answered HTTP {status} with OAuth error {error}")]
    OAuth {
        /// The status received.
        status: u16,
        /// The error body.
        error: OAuthErrorBody,
    },
    /// The server answered with a Matrix error body.
    #[error("the server answered HTTP {status} with Matrix error {error}")]
    Matrix {
        /// The status received.
        status: u16,
        /// The error body.
        error: MatrixErrorBody,
    },
    /// JSON was expected but the `Content-Type` says otherwise.
    #[error("expected a JSON response but Content-Type is {found:?}")]
    NotJson {
        /// The `Content-Type` header received, if any.
        found: Option<String>,
    },
    /// The body is not the JSON the endpoint defines.
    #[error("the response is not valid JSON for this endpoint ({reason}); body {body}")]
    InvalidJson {
        /// What the JSON parser said.
        reason: String,
        /// An excerpt of the body.
        body: BodyExcerpt,
    },
}

impl ResponseError {
    /// The OAuth error body, when the server sent one.
    pub fn oauth_error(&self) -> Option<&OAuthErrorBody> {
        match self {
            ResponseError::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status of the response, when the error came with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ResponseError::Redirect { status, .. }
            | ResponseError::UnexpectedStatus { status, .. }
            | ResponseError::OAuth { status, .. }
            | ResponseError::Matrix { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Fields whose values are credentials in token and device authorization answers.
const TOKEN_FIELDS: [&[u8]; 4] = [
    b"access_token",
    b"refresh_token",
    b"id_token",
    b"device_code",
];

/// Whether `body` names a field that carries a credential, in JSON or form encoding. A byte search,
/// so that malformed or truncated bodies count too.
pub(crate) fn may_hold_tokens(body: &[u8]) -> bool {
    TOKEN_FIELDS
        .iter()
        .any(|field| body.windows(field.len()).any(|w| w == *field))
}

impl ResponseError {
    /// For endpoints that issue credentials: the same error with its body excerpt withheld when the
    /// body may carry one. A server or proxy that answers an error status with a token body must not
    /// get the token into an error message (and from there into logs).
    pub(crate) fn withhold_tokens(self, body: &[u8]) -> Self {
        match self {
            ResponseError::UnexpectedStatus { status, .. } if may_hold_tokens(body) => {
                ResponseError::UnexpectedStatus {
                    status,
                    body: BodyExcerpt::withheld(body),
                }
            }
            ResponseError::InvalidJson { reason, .. } if may_hold_tokens(body) => {
                ResponseError::InvalidJson {
                    reason,
                    body: BodyExcerpt::withheld(body),
                }
            }
            other => other,
        }
    }
}

pub(crate) fn truncate(mut s: String, limit: usize) -> String {
    if s.len() > limit {
        let mut cut = limit;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_error_body_parses_and_bounds() {
        let long = "x".repeat(5000);
        let body =
            format!(r#"{{"error":"invalid_grant","error_description":"{long}","error_uri":7}}"#);
        let e = OAuthErrorBody::parse(body.as_bytes()).unwrap();
        assert_eq!(e.error, "invalid_grant");
        assert_eq!(
            e.error_description.as_deref().map(str::len),
            Some(OAUTH_FIELD_LIMIT)
        );
        assert_eq!(e.error_uri, None);
        assert!(OAuthErrorBody::parse(b"{\"errcode\":\"M_UNKNOWN\"}").is_none());
        assert!(OAuthErrorBody::parse(b"<html>").is_none());
    }

    #[test]
    fn token_bodies_are_withheld_from_errors() {
        let body = br#"{"access_token":"mat_s3cr3t","token_type":"Bearer"}"#;
        let e = ResponseError::UnexpectedStatus {
            status: 503,
            body: BodyExcerpt::new(body),
        }
        .withhold_tokens(body);
        assert!(!e.to_string().contains("mat_s3cr3t"), "{e}");
        assert!(e.to_string().contains("withheld"), "{e}");
        let page = b"<html>502 Bad Gateway</html>";
        let e = ResponseError::UnexpectedStatus {
            status: 502,
            body: BodyExcerpt::new(page),
        }
        .withhold_tokens(page);
        assert!(e.to_string().contains("Bad Gateway"), "{e}");
        assert!(may_hold_tokens(b"refresh_token=abc&x=1"));
        assert!(!may_hold_tokens(b"{\"error\":\"invalid_grant\"}"));
    }

    #[test]
    fn excerpt_is_bounded_and_escaped() {
        let body = format!("line\nbreak{}", "y".repeat(1000));
        let e = BodyExcerpt::new(body.as_bytes());
        assert!(e.text().starts_with("line\\nbreak"));
        assert!(e.to_string().contains("bytes in all"));
        let w = BodyExcerpt::withheld(b"{\"access_token\":\"secret\"}");
        assert!(!w.to_string().contains("secret"));
    }
}
