//! `GET /_matrix/client/v3/account/whoami`: which user and device an access token belongs to.
//!
//! The token response does not name the user, so after a code exchange or device grant the client asks
//! the homeserver. The answer is also how a client notices that a re-login produced another user or
//! device than the session it restored (matrix-rust-sdk's `SessionMismatch`).
//!
//! ```
//! use matrix_oidc_core::whoami::{WhoamiRequest, WhoamiError};
//! use matrix_oidc_core::Secret;
//! let homeserver = "https://matrix.example.com".parse().unwrap();
//! let req = WhoamiRequest::new(&homeserver, &Secret::new("mat_token")).unwrap();
//! assert_eq!(req.request.url(), "https://matrix.example.com/_matrix/client/v3/account/whoami");
//!
//! let expired = http::Response::builder().status(401).header("content-type", "application/json")
//!     .body(br#"{"errcode":"M_UNKNOWN_TOKEN","error":"Token expired","soft_logout":true}"#.to_vec())
//!     .unwrap();
//! assert!(matches!(req.parse(&expired), Err(WhoamiError::UnknownToken { soft_logout: true, .. })));
//! ```

use crate::device_id::DeviceId;
use crate::error::{MatrixErrorBody, ResponseError};
use crate::http::{BuildError, OutgoingRequest, check_json};
use crate::secret::Secret;
use crate::session::Session;
use crate::transport::TransportError;
use serde::Deserialize;
use url::Url;

/// `url` with `segments` appended to its path (keeping a base path such as `/matrix/`), without query
/// or fragment.
pub(crate) fn append_path(url: &Url, segments: &[&str]) -> Result<Url, BuildError> {
    let mut out = url.clone();
    out.set_query(None);
    out.set_fragment(None);
    out.path_segments_mut()
        .map_err(|()| BuildError {
            url: url.to_string(),
            reason: "the homeserver URL cannot have a path (it is not a base URL)".to_owned(),
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(out)
}

/// Why a `whoami` request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WhoamiError {
    /// The request could not be built.
    #[error("cannot build the whoami request: {0}")]
    Request(#[source] BuildError),
    /// `M_UNKNOWN_TOKEN`: the access token is expired or revoked. Refresh, then sign in again if that
    /// fails (keeping local state when `soft_logout`).
    #[error(
        "the homeserver does not recognize the access token ({error}; soft_logout: {soft_logout})"
    )]
    UnknownToken {
        /// The `soft_logout` flag (absent counts as false).
        soft_logout: bool,
        /// The error body.
        error: MatrixErrorBody,
    },
    /// Another Matrix error (`M_FORBIDDEN`, `M_LIMIT_EXCEEDED`, …).
    #[error("{url} answered HTTP {status} with {error}")]
    Matrix {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The error body.
        error: MatrixErrorBody,
    },
    /// Any other unusable answer.
    #[error("whoami request to {url} failed: {source}")]
    Response {
        /// The URL requested.
        url: String,
        /// What was wrong.
        source: ResponseError,
    },
    /// A field of the answer is missing or malformed.
    #[error("the whoami answer from {url} has an invalid '{field}': {reason}")]
    InvalidResponse {
        /// The URL requested.
        url: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The token belongs to another device than the one requested.
    #[error("the access token belongs to device {found:?}, not to the requested device {expected}")]
    DeviceMismatch {
        /// The device requested.
        expected: String,
        /// The device the homeserver named (none at all for some legacy tokens).
        found: Option<String>,
    },
    /// The token belongs to another user than the session's.
    #[error("the access token belongs to {found}, but the session is {expected}")]
    UserMismatch {
        /// The session's user.
        expected: String,
        /// The user the homeserver named.
        found: String,
    },
    /// The transport failed.
    #[error("whoami request failed: {0}")]
    Transport(#[source] TransportError),
}

/// The homeserver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Whoami {
    /// The full Matrix user id (`@alice:example.com`).
    pub user_id: String,
    /// The device the token belongs to.
    pub device_id: Option<String>,
    /// Whether the user is a guest.
    pub is_guest: bool,
}

impl Whoami {
    /// Checks that the token belongs to `expected` (the device of the requested scope).
    pub fn check_device(&self, expected: &DeviceId) -> Result<(), WhoamiError> {
        if self.device_id.as_deref() == Some(expected.as_str()) {
            Ok(())
        } else {
            Err(WhoamiError::DeviceMismatch {
                expected: expected.to_string(),
                found: self.device_id.clone(),
            })
        }
    }

    /// Records the user (and device, if the session has none yet) in `session`, after checking that a
    /// session which already names a user or device gets the same ones back.
    pub fn apply_to(&self, session: &mut Session) -> Result<(), WhoamiError> {
        if let Some(expected) = &session.user_id {
            if *expected != self.user_id {
                return Err(WhoamiError::UserMismatch {
                    expected: expected.clone(),
                    found: self.user_id.clone(),
                });
            }
        }
        match (&session.device_id, &self.device_id) {
            (Some(expected), found) if found.as_deref() != Some(expected.as_str()) => {
                return Err(WhoamiError::DeviceMismatch {
                    expected: expected.clone(),
                    found: found.clone(),
                });
            }
            (None, found) => session.device_id = found.clone(),
            _ => {}
        }
        session.user_id = Some(self.user_id.clone());
        Ok(())
    }
}

/// A `whoami` request.
#[derive(Debug, Clone)]
pub struct WhoamiRequest {
    /// The request to send (carries the access token).
    pub request: OutgoingRequest,
    url: String,
}

impl WhoamiRequest {
    /// `GET <homeserver>/_matrix/client/v3/account/whoami` with `access_token` as Bearer.
    pub fn new(homeserver: &Url, access_token: &Secret) -> Result<Self, WhoamiError> {
        let url = append_path(
            homeserver,
            &["_matrix", "client", "v3", "account", "whoami"],
        )
        .map_err(WhoamiError::Request)?;
        let request = OutgoingRequest::get_json(&url)
            .and_then(|r| r.with_bearer(access_token))
            .map_err(WhoamiError::Request)?;
        Ok(Self {
            request,
            url: url.to_string(),
        })
    }

    /// Reads the answer.
    pub fn parse<B: AsRef<[u8]>>(
        &self,
        response: &http::Response<B>,
    ) -> Result<Whoami, WhoamiError> {
        #[derive(Deserialize)]
        struct Raw {
            user_id: serde_json::Value,
            #[serde(default)]
            device_id: Option<serde_json::Value>,
            #[serde(default)]
            is_guest: Option<serde_json::Value>,
        }
        let url = || self.url.clone();
        let invalid = |field: &'static str, reason: &str| WhoamiError::InvalidResponse {
            url: url(),
            field,
            reason: reason.to_owned(),
        };
        let raw: Raw = check_json(response, &self.request.expect, &[200], false).map_err(
            |source| match source {
                ResponseError::Matrix { error, .. } if error.errcode == "M_UNKNOWN_TOKEN" => {
                    WhoamiError::UnknownToken {
                        soft_logout: error.soft_logout.unwrap_or(false),
                        error,
                    }
                }
                ResponseError::Matrix { status, error } => WhoamiError::Matrix {
                    url: url(),
                    status,
                    error,
                },
                source => WhoamiError::Response { url: url(), source },
            },
        )?;
        let serde_json::Value::String(user_id) = raw.user_id else {
            return Err(invalid("user_id", "is not a string"));
        };
        let valid_user = user_id
            .strip_prefix('@')
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(local, server)| !local.is_empty() && !server.is_empty())
            && user_id.len() <= 255
            && !user_id.chars().any(char::is_control);
        if !valid_user {
            return Err(invalid(
                "user_id",
                "is not a Matrix user id (@localpart:server)",
            ));
        }
        let device_id = match raw.device_id {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(d)) => Some(d),
            Some(_) => return Err(invalid("device_id", "is not a string")),
        };
        let is_guest = match raw.is_guest {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => b,
            Some(_) => return Err(invalid("is_guest", "is not a boolean")),
        };
        Ok(Whoami {
            user_id,
            device_id,
            is_guest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenSet;

    fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn req() -> WhoamiRequest {
        WhoamiRequest::new(
            &Url::parse("https://matrix.example.com/").unwrap(),
            &Secret::new("mat_secret"),
        )
        .unwrap()
    }

    #[test]
    fn request_shape_and_base_paths() {
        let r = req();
        assert_eq!(r.request.request.method(), http::Method::GET);
        assert_eq!(
            r.request.request.headers()["authorization"],
            "Bearer mat_secret"
        );
        assert!(r.request.request.headers()["authorization"].is_sensitive());
        assert!(!format!("{r:?}").contains("mat_secret"));
        for (base, expected) in [
            (
                "https://example.com/matrix",
                "https://example.com/matrix/_matrix/client/v3/account/whoami",
            ),
            (
                "https://example.com/matrix/",
                "https://example.com/matrix/_matrix/client/v3/account/whoami",
            ),
            (
                "https://example.com:8448/?x=1#f",
                "https://example.com:8448/_matrix/client/v3/account/whoami",
            ),
        ] {
            let r = WhoamiRequest::new(&Url::parse(base).unwrap(), &Secret::new("t")).unwrap();
            assert_eq!(r.request.url(), expected);
        }
        assert!(matches!(
            WhoamiRequest::new(&Url::parse("mailto:a@b").unwrap(), &Secret::new("t")),
            Err(WhoamiError::Request(_))
        ));
        assert!(matches!(
            WhoamiRequest::new(
                &Url::parse("https://a.example/").unwrap(),
                &Secret::new("bad\ntoken")
            ),
            Err(WhoamiError::Request(_))
        ));
    }

    #[test]
    fn parses_the_answer() {
        let w = req()
            .parse(&json(
                200,
                r#"{"user_id":"@alice:example.com","device_id":"AABBBCCCDDD","is_guest":false}"#,
            ))
            .unwrap();
        assert_eq!(w.user_id, "@alice:example.com");
        assert_eq!(w.device_id.as_deref(), Some("AABBBCCCDDD"));
        assert!(!w.is_guest);
        w.check_device(&DeviceId::parse("AABBBCCCDDD").unwrap())
            .unwrap();
        assert!(matches!(
            w.check_device(&DeviceId::parse("OTHERDEVICE").unwrap()),
            Err(WhoamiError::DeviceMismatch { .. })
        ));
        let w = req()
            .parse(&json(200, r#"{"user_id":"@bot:example.com"}"#))
            .unwrap();
        assert_eq!(w.device_id, None);
        for (body, field) in [
            (r#"{"user_id":5}"#, "user_id"),
            (r#"{"user_id":"alice"}"#, "user_id"),
            (r#"{"user_id":"@:x"}"#, "user_id"),
            (r#"{"user_id":"@a:x","device_id":1}"#, "device_id"),
            (r#"{"user_id":"@a:x","is_guest":"no"}"#, "is_guest"),
        ] {
            assert!(
                matches!(req().parse(&json(200, body)), Err(WhoamiError::InvalidResponse { field: f, .. }) if f == field),
                "{body}"
            );
        }
        assert!(matches!(
            req().parse(&json(200, "{}")),
            Err(WhoamiError::Response {
                source: ResponseError::InvalidJson { .. },
                ..
            })
        ));
    }

    #[test]
    fn unknown_token_is_its_own_error() {
        let e = req()
            .parse(&json(401, r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed.","soft_logout":false}"#))
            .unwrap_err();
        assert!(matches!(
            e,
            WhoamiError::UnknownToken {
                soft_logout: false,
                ..
            }
        ));
        let e = req()
            .parse(&json(401, r#"{"errcode":"M_UNKNOWN_TOKEN"}"#))
            .unwrap_err();
        assert!(matches!(
            e,
            WhoamiError::UnknownToken {
                soft_logout: false,
                ..
            }
        ));
        let e = req()
            .parse(&json(403, r#"{"errcode":"M_FORBIDDEN"}"#))
            .unwrap_err();
        assert!(matches!(e, WhoamiError::Matrix { status: 403, .. }));
        let e = req().parse(&json(502, "bad gateway")).unwrap_err();
        assert!(matches!(e, WhoamiError::Response { .. }));
    }

    #[test]
    fn apply_to_session_detects_mismatches() {
        let issuer = Url::parse("https://auth.example.com/").unwrap();
        let who = Whoami {
            user_id: "@alice:example.com".into(),
            device_id: Some("AABBBCCCDDD".into()),
            is_guest: false,
        };
        let mut s = Session::new(issuer.clone(), "c", TokenSet::new(Secret::new("t")));
        who.apply_to(&mut s).unwrap();
        assert_eq!(s.user_id.as_deref(), Some("@alice:example.com"));
        assert_eq!(s.device_id.as_deref(), Some("AABBBCCCDDD"));
        who.apply_to(&mut s).unwrap();
        let mut other_user = s.clone().with_user_id(Some("@bob:example.com".into()));
        assert!(matches!(
            who.apply_to(&mut other_user),
            Err(WhoamiError::UserMismatch { .. })
        ));
        let mut other_device = s.with_device_id(Some("ZZZZZZZZZZ".into()));
        assert!(matches!(
            who.apply_to(&mut other_device),
            Err(WhoamiError::DeviceMismatch { .. })
        ));
    }
}
