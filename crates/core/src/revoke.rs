//! Token revocation (RFC 7009; MSC4254): how an OAuth 2.0 session logs out.
//!
//! The server revokes the access *and* refresh token of the grant whatever token it is given, so one
//! request ends the session. Always send `client_id` (Matrix Authentication Service refuses the request
//! without it) and either the correct `token_type_hint` or none (MAS answers 200 *without revoking* when
//! the hint contradicts the token).
//!
//! ```
//! use matrix_oidc_core::revoke::{RevocationRequest, TokenTypeHint};
//! use matrix_oidc_core::Secret;
//! let endpoint = "https://account.example.com/oauth2/revoke".parse().unwrap();
//! let req = RevocationRequest::to_endpoint(
//!     &endpoint,
//!     "s6BhdRkqt3",
//!     &Secret::new("mat_ooreiPhei2wequu9fohkai3AeBaec9oo"),
//!     Some(TokenTypeHint::AccessToken),
//! ).unwrap();
//! assert_eq!(
//!     req.request.request.body(),
//!     b"token=mat_ooreiPhei2wequu9fohkai3AeBaec9oo&token_type_hint=access_token&client_id=s6BhdRkqt3"
//! );
//! // 200 with an empty body is success.
//! let ok = http::Response::builder().status(200).body(Vec::new()).unwrap();
//! assert!(req.parse(&ok).is_ok());
//! ```

use crate::error::{OAuthErrorBody, ResponseError};
use crate::http::{BuildError, Expectations, OutgoingRequest, check_envelope, error_from_response};
use crate::metadata::AuthorizationServerMetadata;
use crate::secret::Secret;
use crate::session::Session;
use crate::transport::TransportError;
use std::time::Duration;
use url::Url;

/// Bound on a revocation answer: success bodies are empty, error bodies small JSON.
pub const MAX_REVOCATION_BODY: usize = 64 * 1024;

/// Which kind of token is revoked (RFC 7009 §2.1 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenTypeHint {
    /// The protocol value.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// A revocation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The server's metadata has no `revocation_endpoint`.
    #[error("{issuer} has no revocation_endpoint")]
    NotSupported {
        /// The issuer.
        issuer: String,
    },
    /// The request could not be built.
    #[error("cannot build the revocation request: {0}")]
    Request(#[source] BuildError),
    /// The server refused with an OAuth error (`invalid_client`, `unauthorized_client`,
    /// `unsupported_token_type`, …).
    #[error("{endpoint} refused the revocation with HTTP {status}: {error}")]
    Rejected {
        /// The revocation endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The error body.
        error: OAuthErrorBody,
    },
    /// HTTP 503 (RFC 7009 §2.2.1): the token was not revoked; try again later.
    #[error("{endpoint} is temporarily unable to revoke (HTTP 503, retry after {retry_after:?})")]
    Unavailable {
        /// The revocation endpoint.
        endpoint: String,
        /// The `Retry-After` delay, when given in seconds.
        retry_after: Option<Duration>,
    },
    /// Any other unusable answer.
    #[error("revocation request to {endpoint} failed: {source}")]
    Response {
        /// The revocation endpoint.
        endpoint: String,
        /// What was wrong.
        source: ResponseError,
    },
    /// The transport failed.
    #[error("revocation request failed: {0}")]
    Transport(#[source] TransportError),
}

impl RevocationError {
    /// The OAuth error body, when the server sent one.
    pub fn oauth_error(&self) -> Option<&OAuthErrorBody> {
        match self {
            RevocationError::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (transport failure, 503 or another 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            RevocationError::Transport(_) | RevocationError::Unavailable { .. } => true,
            RevocationError::Rejected { status, .. } => *status >= 500 || *status == 429,
            RevocationError::Response { source, .. } => {
                source.status().is_some_and(|s| s >= 500 || s == 429)
            }
            _ => false,
        }
    }
}

/// One revocation request.
#[derive(Debug, Clone)]
pub struct RevocationRequest {
    /// The request to send.
    pub request: OutgoingRequest,
    endpoint: Url,
}

impl RevocationRequest {
    /// Revokes `token` at `metadata`'s revocation endpoint.
    pub fn new(
        metadata: &AuthorizationServerMetadata,
        client_id: &str,
        token: &Secret,
        hint: Option<TokenTypeHint>,
    ) -> Result<Self, RevocationError> {
        let endpoint =
            metadata
                .revocation_endpoint
                .as_ref()
                .ok_or_else(|| RevocationError::NotSupported {
                    issuer: metadata.issuer.to_string(),
                })?;
        Self::to_endpoint(endpoint, client_id, token, hint)
    }

    /// Revokes `token` at `endpoint`.
    pub fn to_endpoint(
        endpoint: &Url,
        client_id: &str,
        token: &Secret,
        hint: Option<TokenTypeHint>,
    ) -> Result<Self, RevocationError> {
        let mut pairs = vec![("token", token.expose())];
        if let Some(h) = hint {
            pairs.push(("token_type_hint", h.as_str()));
        }
        pairs.push(("client_id", client_id));
        // post_form sets `Accept: application/json` (error answers are JSON); the expectations are
        // relaxed afterwards because a successful answer is usually empty.
        let request = OutgoingRequest::post_form(endpoint, pairs)
            .map_err(RevocationError::Request)?
            .with_expectations(Expectations::any(MAX_REVOCATION_BODY));
        Ok(Self {
            request,
            endpoint: endpoint.clone(),
        })
    }

    /// Ends `session`: revokes its refresh token when it has one (with the matching hint), else its
    /// access token. The refresh token is preferred because it is the long-lived credential: revoking
    /// an already expired access token may succeed without ending anything.
    pub fn for_session(
        metadata: &AuthorizationServerMetadata,
        session: &Session,
    ) -> Result<Self, RevocationError> {
        match &session.tokens.refresh_token {
            Some(rt) => Self::new(
                metadata,
                &session.client_id,
                rt,
                Some(TokenTypeHint::RefreshToken),
            ),
            None => Self::new(
                metadata,
                &session.client_id,
                &session.tokens.access_token,
                Some(TokenTypeHint::AccessToken),
            ),
        }
    }

    /// The revocation endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Reads the answer: 200 (any body, usually empty) is success, and so is 204.
    pub fn parse<B: AsRef<[u8]>>(
        &self,
        response: &http::Response<B>,
    ) -> Result<(), RevocationError> {
        let endpoint = || self.endpoint.to_string();
        check_envelope(response, &self.request.expect).map_err(|source| {
            RevocationError::Response {
                endpoint: endpoint(),
                source,
            }
        })?;
        let status = response.status().as_u16();
        if status == 200 || status == 204 {
            return Ok(());
        }
        if status == 503 {
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(RevocationError::Unavailable {
                endpoint: endpoint(),
                retry_after,
            });
        }
        Err(match error_from_response(response) {
            ResponseError::OAuth { status, error } => RevocationError::Rejected {
                endpoint: endpoint(),
                status,
                error,
            },
            source => RevocationError::Response {
                endpoint: endpoint(),
                source,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenSet;

    fn endpoint() -> Url {
        Url::parse("https://account.example.com/oauth2/revoke").unwrap()
    }

    fn req() -> RevocationRequest {
        RevocationRequest::to_endpoint(
            &endpoint(),
            "s6BhdRkqt3",
            &Secret::new("mar_Pieyiev3aenahm4atah7aip3eiveizah"),
            Some(TokenTypeHint::RefreshToken),
        )
        .unwrap()
    }

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Vec<u8>> {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn msc4254_refresh_sample_and_no_hint() {
        let r = req();
        assert_eq!(
            r.request.request.body(),
            b"token=mar_Pieyiev3aenahm4atah7aip3eiveizah&token_type_hint=refresh_token&client_id=s6BhdRkqt3"
        );
        assert_eq!(r.request.request.method(), http::Method::POST);
        assert_eq!(
            r.request.request.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(r.request.request.headers()["accept"], "application/json");
        assert!(!format!("{r:?}").contains("mar_"));
        let r = RevocationRequest::to_endpoint(&endpoint(), "c", &Secret::new("t"), None).unwrap();
        assert_eq!(r.request.request.body(), b"token=t&client_id=c");
    }

    #[test]
    fn success_with_any_body() {
        let r = req();
        assert_eq!(r.parse(&resp(200, &[], "")), Ok(()));
        assert_eq!(
            r.parse(&resp(200, &[("content-type", "application/json")], "{}")),
            Ok(())
        );
        assert_eq!(
            r.parse(&resp(200, &[("content-type", "text/plain")], "ok")),
            Ok(())
        );
        assert_eq!(r.parse(&resp(204, &[], "")), Ok(()));
    }

    #[test]
    fn errors_are_typed() {
        let r = req();
        let e = r
            .parse(&resp(
                401,
                &[("content-type", "application/json")],
                r#"{"error":"invalid_client"}"#,
            ))
            .unwrap_err();
        assert_eq!(e.oauth_error().unwrap().error, "invalid_client");
        assert!(!e.is_transient());
        assert!(e.to_string().contains("HTTP 401"), "{e}");
        let e = r
            .parse(&resp(400, &[], r#"{"error":"unsupported_token_type"}"#))
            .unwrap_err();
        assert!(matches!(e, RevocationError::Rejected { status: 400, .. }));
        assert_eq!(
            r.parse(&resp(503, &[("retry-after", "120")], "")),
            Err(RevocationError::Unavailable {
                endpoint: endpoint().to_string(),
                retry_after: Some(Duration::from_secs(120))
            })
        );
        assert!(r.parse(&resp(503, &[], "")).unwrap_err().is_transient());
        let e = r.parse(&resp(500, &[], "<html>oops</html>")).unwrap_err();
        assert!(matches!(
            e,
            RevocationError::Response {
                source: ResponseError::UnexpectedStatus { status: 500, .. },
                ..
            }
        ));
        assert!(e.is_transient());
        let e = r
            .parse(&resp(307, &[("location", "https://x.example/")], ""))
            .unwrap_err();
        assert!(matches!(
            e,
            RevocationError::Response {
                source: ResponseError::Redirect { .. },
                ..
            }
        ));
        let big = "x".repeat(MAX_REVOCATION_BODY + 1);
        assert!(matches!(
            r.parse(&resp(200, &[], &big)),
            Err(RevocationError::Response {
                source: ResponseError::BodyTooLarge { .. },
                ..
            })
        ));
        assert!(
            RevocationError::Transport(TransportError::Connect {
                url: "u".into(),
                reason: "r".into()
            })
            .is_transient()
        );
    }

    #[test]
    fn from_metadata_and_session() {
        let md: AuthorizationServerMetadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://account.example.com/",
            "authorization_endpoint": "https://account.example.com/auth",
            "token_endpoint": "https://account.example.com/token",
            "revocation_endpoint": "https://account.example.com/oauth2/revoke",
        }))
        .unwrap();
        let session = Session::new(
            md.issuer.clone(),
            "cid",
            TokenSet::new(Secret::new("at")).with_refresh_token(Some(Secret::new("rt"))),
        );
        let r = RevocationRequest::for_session(&md, &session).unwrap();
        assert_eq!(
            r.request.request.body(),
            b"token=rt&token_type_hint=refresh_token&client_id=cid"
        );
        assert_eq!(r.endpoint(), &endpoint());
        let session = Session::new(md.issuer.clone(), "cid", TokenSet::new(Secret::new("at")));
        let r = RevocationRequest::for_session(&md, &session).unwrap();
        assert_eq!(
            r.request.request.body(),
            b"token=at&token_type_hint=access_token&client_id=cid"
        );
        let mut md = md;
        md.revocation_endpoint = None;
        assert!(matches!(
            RevocationRequest::for_session(&md, &session),
            Err(RevocationError::NotSupported { .. })
        ));
    }
}
