//! The token endpoint: exchanging an authorization code, refreshing, and (for the device grant) polling.
//!
//! A [`TokenRequest`] is built for one grant; it carries the [`OutgoingRequest`] to send and what is
//! needed to judge the answer (the scope asked for, the refresh token in use). Hand the response to
//! [`TokenRequest::parse`] together with the instant the request was **sent**: `expires_in` counts from
//! the server's receipt, which is unknown, and the send time is the safe side of it.
//!
//! Parsing is strict where it protects the user and lenient where servers differ harmlessly:
//! `token_type` must be Bearer (any case), the access token must fit in an `Authorization` header, a
//! granted scope that dropped the Matrix device or API token is an error, and a refresh response without
//! a new refresh token keeps the old one (RFC 6749 §6). A token response body never appears in an
//! error, not even as an excerpt.
//!
//! Errors are classified the way a client acts on them, mirroring matrix-js-sdk's
//! `TokenRefreshLogoutError` / `TokenRefreshError` pair: [`TokenError::is_logout`] (sign in again) and
//! [`TokenError::is_transient`] (try again later).
//!
//! ```
//! use matrix_oidc_core::{Secret, Timestamp, TokenRequest, TokenSet};
//! let endpoint = "https://account.example.com/oauth2/token".parse().unwrap();
//! let old = TokenSet::new(Secret::new("old-access")).with_refresh_token(Some(Secret::new("old-refresh")));
//! let req = TokenRequest::refresh(&endpoint, "s6BhdRkqt3", &old).unwrap();
//! assert_eq!(
//!     req.request.request.body(),
//!     b"grant_type=refresh_token&refresh_token=old-refresh&client_id=s6BhdRkqt3"
//! );
//! let response = http::Response::builder()
//!     .status(200)
//!     .header("content-type", "application/json")
//!     .body(br#"{"access_token":"new-access","token_type":"bearer","expires_in":300}"#.to_vec())
//!     .unwrap();
//! let sent_at = Timestamp::from_unix_seconds(1_000);
//! let tokens = req.parse(&response, sent_at).unwrap();
//! assert_eq!(tokens.access_token.expose(), "new-access");
//! // No new refresh token: the old one stays.
//! assert_eq!(tokens.refresh_token.as_ref().map(|t| t.expose()), Some("old-refresh"));
//! assert_eq!(tokens.expires_at, Some(Timestamp::from_unix_seconds(1_300)));
//! ```

use crate::callback::AuthorizationCode;
use crate::error::{OAuthErrorBody, ResponseError};
use crate::http::{BuildError, OutgoingRequest, SecretAnswer, SecretAnswerError};
use crate::scope::{Scope, ScopeSummary, check_scope_str, device_id_of};
use crate::secret::Secret;
use crate::session::{PendingAuthorization, TokenSet};
use crate::time::Timestamp;
use crate::transport::TransportError;
use url::Url;

/// Which grant a token request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrantKind {
    /// `authorization_code`: finishing a login.
    AuthorizationCode,
    /// `refresh_token`: renewing the access token.
    RefreshToken,
    /// `urn:ietf:params:oauth:grant-type:device_code`: polling in the device grant.
    DeviceCode,
}

impl GrantKind {
    /// The `grant_type` value.
    pub fn grant_type(self) -> &'static str {
        match self {
            GrantKind::AuthorizationCode => "authorization_code",
            GrantKind::RefreshToken => "refresh_token",
            GrantKind::DeviceCode => crate::DEVICE_CODE_GRANT_TYPE,
        }
    }
}

impl std::fmt::Display for GrantKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.grant_type())
    }
}

/// Which refresh failures mean "the session is over".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LogoutPolicy {
    /// The Matrix specification's rule (also matrix-js-sdk's): any 4xx answer to a refresh, except
    /// 408 and 429 which say "later", logs the session out.
    #[default]
    AnyClientError,
    /// matrix-rust-sdk's stricter rule: only an `invalid_grant` error logs out; any other failure is
    /// treated as temporary.
    InvalidGrantOnly,
}

/// A token endpoint request failed, or its answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// A refresh was asked for but the session has no refresh token.
    #[error("cannot refresh: the session has no refresh token")]
    NoRefreshToken,
    /// The request could not be built.
    #[error("cannot build the {grant} token request: {source}")]
    Request {
        /// The grant.
        grant: GrantKind,
        /// Why.
        source: BuildError,
    },
    /// The server answered with an OAuth error (RFC 6749 §5.2, RFC 8628 §3.5).
    #[error("{endpoint} refused the {grant} grant with HTTP {status}: {error}")]
    Rejected {
        /// The grant.
        grant: GrantKind,
        /// The token endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The error body.
        error: OAuthErrorBody,
    },
    /// The answer is not a usable HTTP response (status, redirect, size, content type, JSON syntax).
    #[error("{grant} token request to {endpoint} failed: {source}")]
    Response {
        /// The grant.
        grant: GrantKind,
        /// The token endpoint.
        endpoint: String,
        /// What was wrong.
        source: ResponseError,
    },
    /// A field of the token response is missing or malformed.
    #[error("the token response from {endpoint} has an invalid '{field}': {reason}")]
    InvalidResponse {
        /// The grant.
        grant: GrantKind,
        /// The token endpoint.
        endpoint: String,
        /// The field.
        field: &'static str,
        /// What is wrong (never the field's value when it may be a secret).
        reason: String,
    },
    /// A token type other than Bearer.
    #[error("{endpoint} issued a {token_type:?} token; only Bearer tokens are supported")]
    UnsupportedTokenType {
        /// The grant.
        grant: GrantKind,
        /// The token endpoint.
        endpoint: String,
        /// The `token_type` received (cut to 64 bytes).
        token_type: String,
    },
    /// The granted scope lacks the device token that was requested: the tokens would not belong to the
    /// device the client holds keys for.
    #[error("{endpoint} granted scope {granted:?} without the requested device {device_id}")]
    DeviceScopeDropped {
        /// The grant.
        grant: GrantKind,
        /// The token endpoint.
        endpoint: String,
        /// The device id requested.
        device_id: String,
        /// The scope granted.
        granted: String,
    },
    /// The granted scope names another device than the one requested.
    #[error("{endpoint} granted device {granted} but device {requested} was requested")]
    DeviceIdChanged {
        /// The grant.
        grant: GrantKind,
        /// The token endpoint.
        endpoint: String,
        /// The device requested.
        requested: String,
        /// The device granted.
        granted: String,
    },
    /// The granted scope lacks the Client-Server API token that was requested.
    #[error("{endpoint} granted scope {granted:?} without the requested Client-Server API access")]
    ApiScopeDropped {
        /// The grant.
        grant: GrantKind,
        /// The token endpoint.
        endpoint: String,
        /// The scope granted.
        granted: String,
    },
    /// The transport could not deliver the request or read the answer.
    #[error("{grant} token request failed: {source}")]
    Transport {
        /// The grant.
        grant: GrantKind,
        /// What the transport reported.
        source: TransportError,
    },
}

impl TokenError {
    /// The grant the failed request used, when there was a request.
    pub fn grant(&self) -> Option<GrantKind> {
        match self {
            TokenError::NoRefreshToken => Some(GrantKind::RefreshToken),
            TokenError::Request { grant, .. }
            | TokenError::Rejected { grant, .. }
            | TokenError::Response { grant, .. }
            | TokenError::InvalidResponse { grant, .. }
            | TokenError::UnsupportedTokenType { grant, .. }
            | TokenError::DeviceScopeDropped { grant, .. }
            | TokenError::DeviceIdChanged { grant, .. }
            | TokenError::ApiScopeDropped { grant, .. }
            | TokenError::Transport { grant, .. } => Some(*grant),
        }
    }

    /// The HTTP status of the answer, when the error came from one.
    pub fn status(&self) -> Option<u16> {
        match self {
            TokenError::Rejected { status, .. } => Some(*status),
            TokenError::Response { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The OAuth error body, when the server sent one.
    pub fn oauth_error(&self) -> Option<&OAuthErrorBody> {
        match self {
            TokenError::Rejected { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: a transport failure, a 5xx, 408 or 429 answer.
    pub fn is_transient(&self) -> bool {
        match self {
            TokenError::Transport { .. } => true,
            _ => self
                .status()
                .is_some_and(|s| s >= 500 || s == 408 || s == 429),
        }
    }

    /// Whether the session is logged out and the user must sign in again, by the Matrix
    /// specification's rule ([`LogoutPolicy::AnyClientError`]). Only refresh failures log out.
    pub fn is_logout(&self) -> bool {
        self.is_logout_with(LogoutPolicy::AnyClientError)
    }

    /// [`is_logout`](Self::is_logout) under the given policy.
    pub fn is_logout_with(&self, policy: LogoutPolicy) -> bool {
        if matches!(self, TokenError::NoRefreshToken) {
            return true;
        }
        if self.grant() != Some(GrantKind::RefreshToken) {
            return false;
        }
        match policy {
            LogoutPolicy::AnyClientError => {
                matches!(
                    self,
                    TokenError::Rejected { .. } | TokenError::Response { .. }
                ) && self
                    .status()
                    .is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429)
            }
            LogoutPolicy::InvalidGrantOnly => self
                .oauth_error()
                .is_some_and(|e| e.error == "invalid_grant"),
        }
    }
}

/// One request to the token endpoint, with what is needed to judge its answer.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The request to send.
    pub request: OutgoingRequest,
    grant: GrantKind,
    endpoint: Url,
    requested_scope: Option<Scope>,
    previous_refresh_token: Option<Secret>,
}

impl TokenRequest {
    fn build(
        grant: GrantKind,
        endpoint: &Url,
        pairs: &[(&str, &str)],
        requested_scope: Option<Scope>,
        previous_refresh_token: Option<Secret>,
    ) -> Result<Self, TokenError> {
        let request = OutgoingRequest::post_form(endpoint, pairs.iter().copied())
            .map_err(|source| TokenError::Request { grant, source })?;
        Ok(Self {
            request,
            grant,
            endpoint: endpoint.clone(),
            requested_scope,
            previous_refresh_token,
        })
    }

    /// Exchanges the authorization `code` of `pending` (RFC 6749 §4.1.3 with the PKCE verifier, as a
    /// public client: `client_id` in the form, no client authentication).
    pub fn authorization_code(
        pending: &PendingAuthorization,
        code: &AuthorizationCode,
    ) -> Result<Self, TokenError> {
        Self::build(
            GrantKind::AuthorizationCode,
            &pending.token_endpoint,
            &[
                ("grant_type", GrantKind::AuthorizationCode.grant_type()),
                ("code", code.secret().expose()),
                ("redirect_uri", pending.redirect_uri.as_str()),
                ("client_id", &pending.client_id),
                ("code_verifier", pending.code_verifier.expose()),
            ],
            Some(pending.scope.clone()),
            None,
        )
    }

    /// Refreshes `tokens` (RFC 6749 §6). The granted scope of `tokens`, when known, is what the answer
    /// is checked against; if the answer carries no refresh token, the current one is kept.
    pub fn refresh(
        token_endpoint: &Url,
        client_id: &str,
        tokens: &TokenSet,
    ) -> Result<Self, TokenError> {
        let refresh_token = tokens
            .refresh_token
            .as_ref()
            .ok_or(TokenError::NoRefreshToken)?;
        Self::build(
            GrantKind::RefreshToken,
            token_endpoint,
            &[
                ("grant_type", GrantKind::RefreshToken.grant_type()),
                ("refresh_token", refresh_token.expose()),
                ("client_id", client_id),
            ],
            tokens.granted_scope(),
            Some(refresh_token.clone()),
        )
    }

    /// Polls for the tokens of a device authorization (RFC 8628 §3.4). Normally built by the device
    /// grant poller rather than directly.
    pub fn device_code(
        token_endpoint: &Url,
        client_id: &str,
        device_code: &Secret,
        requested_scope: Option<&Scope>,
    ) -> Result<Self, TokenError> {
        Self::build(
            GrantKind::DeviceCode,
            token_endpoint,
            &[
                ("grant_type", GrantKind::DeviceCode.grant_type()),
                ("device_code", device_code.expose()),
                ("client_id", client_id),
            ],
            requested_scope.cloned(),
            None,
        )
    }

    /// The grant.
    pub fn grant(&self) -> GrantKind {
        self.grant
    }

    /// The token endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The scope the answer is checked against.
    pub fn requested_scope(&self) -> Option<&Scope> {
        self.requested_scope.as_ref()
    }

    /// Wraps a transport failure for this request, so that it is classified like the other errors.
    pub fn transport_error(&self, source: TransportError) -> TokenError {
        TokenError::Transport {
            grant: self.grant,
            source,
        }
    }

    /// Reads the token endpoint's answer. `sent_at` is when the request was sent; the access token's
    /// expiry is `sent_at + expires_in`.
    pub fn parse<B: AsRef<[u8]>>(
        &self,
        response: &http::Response<B>,
        sent_at: Timestamp,
    ) -> Result<TokenSet, TokenError> {
        let grant = self.grant;
        let endpoint = || self.endpoint.to_string();
        let fail = |source| TokenError::Response {
            grant,
            endpoint: endpoint(),
            source,
        };
        let invalid = |field: &'static str, reason: &str| TokenError::InvalidResponse {
            grant,
            endpoint: endpoint(),
            field,
            reason: reason.to_owned(),
        };
        // Parsed to a generic value, never quoted: the values here are tokens.
        let answer_error = |e| match e {
            SecretAnswerError::Rejected { status, error } => TokenError::Rejected {
                grant,
                endpoint: endpoint(),
                status,
                error,
            },
            SecretAnswerError::Response(source) => fail(source),
            SecretAnswerError::Invalid { field, reason } => invalid(field, reason),
        };
        let answer = SecretAnswer::read(response, &self.request.expect, &TOKEN_FIELDS)
            .map_err(answer_error)?;
        let string = |field| answer.string(field).map_err(answer_error);

        let Some(access_token) = string("access_token")? else {
            // Some servers answer 200 with an error body; report it as the error it is.
            if let Some(error) = OAuthErrorBody::parse(response.body().as_ref()) {
                return Err(TokenError::Rejected {
                    grant,
                    endpoint: endpoint(),
                    status: 200,
                    error,
                });
            }
            return Err(invalid("access_token", "is missing"));
        };
        if !access_token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "access_token",
                "contains characters that cannot be sent in an Authorization header",
            ));
        }
        let token_type =
            string("token_type")?.ok_or_else(|| invalid("token_type", "is missing"))?;
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::UnsupportedTokenType {
                grant,
                endpoint: endpoint(),
                token_type: crate::error::truncate(token_type.to_owned(), 64),
            });
        }
        let expires_in = answer.seconds("expires_in").map_err(answer_error)?;
        let refresh_token = string("refresh_token")?
            .map(Secret::from)
            .or_else(|| self.previous_refresh_token.clone());
        let id_token = string("id_token")?.map(Secret::from);
        let scope = match string("scope")? {
            // The usual answer: exactly the scope asked for, token for token. It is the display
            // form of a valid `Scope` and grants what was requested, so there is nothing to check.
            Some(granted)
                if self
                    .requested_scope
                    .as_ref()
                    .is_some_and(|r| granted.split(' ').eq(r.tokens())) =>
            {
                Some(granted.to_owned())
            }
            Some(granted) => {
                // Checked as text: a `Scope` is built only to normalize a scope with repeats.
                let summary =
                    check_scope_str(granted).map_err(|e| invalid("scope", &e.to_string()))?;
                if let Some(requested) = &self.requested_scope {
                    self.check_scope(requested, granted, &summary)?;
                }
                Some(if summary.normalized {
                    granted.to_owned()
                } else {
                    normalized_scope(granted)
                })
            }
            // RFC 6749 §5.1: an absent scope means the requested one was granted.
            None => self.requested_scope.as_ref().map(Scope::to_string),
        };
        Ok(TokenSet::new(Secret::new(access_token))
            .with_refresh_token(refresh_token)
            .with_expires_at(expires_in.map(|d| sent_at + d))
            .with_issued_at(Some(sent_at))
            .with_scope(scope)
            .with_id_token(id_token))
    }

    /// Checks the granted scope (valid, per [`check_scope_str`]) against the requested one.
    fn check_scope(
        &self,
        requested: &Scope,
        granted: &str,
        summary: &ScopeSummary<'_>,
    ) -> Result<(), TokenError> {
        let grant = self.grant;
        let endpoint = || self.endpoint.to_string();
        if let Some(wanted) = requested.device_token().and_then(device_id_of) {
            match summary.device_id {
                None => {
                    return Err(TokenError::DeviceScopeDropped {
                        grant,
                        endpoint: endpoint(),
                        device_id: wanted.to_owned(),
                        granted: normalized_scope(granted),
                    });
                }
                Some(got) if got != wanted => {
                    return Err(TokenError::DeviceIdChanged {
                        grant,
                        endpoint: endpoint(),
                        requested: wanted.to_owned(),
                        granted: got.to_owned(),
                    });
                }
                Some(_) => {}
            }
        }
        if requested.has_matrix_api() && !summary.has_matrix_api {
            return Err(TokenError::ApiScopeDropped {
                grant,
                endpoint: endpoint(),
                granted: normalized_scope(granted),
            });
        }
        Ok(())
    }
}

/// The granted scope as [`Scope`] displays it (repeated tokens collapsed). Only called on a scope
/// [`check_scope_str`] accepted, which `Scope::parse` accepts too.
fn normalized_scope(granted: &str) -> String {
    Scope::parse(granted).map_or_else(|_| granted.to_owned(), |s| s.to_string())
}

/// The members of a token response this crate reads.
const TOKEN_FIELDS: [&str; 6] = [
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "id_token",
    "scope",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ResponseMode;
    use crate::{DeviceId, Timestamp};
    use std::time::Duration;

    const SCOPE: &str = "urn:matrix:client:api:* urn:matrix:client:device:AABBBCCCDDD";

    fn pending() -> PendingAuthorization {
        PendingAuthorization {
            state: "st".into(),
            issuer: Url::parse("https://account.example.com/").unwrap(),
            token_endpoint: Url::parse("https://account.example.com/oauth2/token").unwrap(),
            client_id: "s6BhdRkqt3".into(),
            redirect_uri: Url::parse("https://app.example.com/oauth2-callback").unwrap(),
            code_verifier: Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            nonce: None,
            device_id: Some(DeviceId::parse("AABBBCCCDDD").unwrap()),
            scope: Scope::parse(SCOPE).unwrap(),
            response_mode: ResponseMode::Fragment,
            require_iss: false,
            homeserver: None,
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn exchange() -> TokenRequest {
        TokenRequest::authorization_code(
            &pending(),
            &AuthorizationCode::new(Secret::new("iuB7Eiz9heengah1joh2ioy9ahChuP6R")),
        )
        .unwrap()
    }

    /// Found by the `token_response` fuzz target: a 503 whose body is a token answer (a misbehaving
    /// server or proxy) was excerpted, tokens included, into the error message.
    #[test]
    fn error_statuses_never_excerpt_tokens() {
        let body = r#"{"access_token":"mat_Xh7dQ2bqvT9Lk","token_type":"Bearer","expires_in":300,"renresh_token":"mar_Pq4Wz8Ln2Rt6","scope":"urn:matrix:client:api:* urn:matrix:cl(ent:device:AAABBBCCCD"}"#;
        for status in [500, 503, 400, 302] {
            let mut r = json(status, body);
            if status == 302 {
                r.headers_mut()
                    .insert("location", "https://x/".parse().unwrap());
            }
            let e = exchange().parse(&r, Timestamp::UNIX_EPOCH).unwrap_err();
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("mat_Xh7dQ2bqvT9Lk"), "{shown}");
            }
        }
        // Bodies without credentials are still excerpted, which is what makes errors useful.
        let e = exchange()
            .parse(
                &json(503, "<html>upstream down</html>"),
                Timestamp::UNIX_EPOCH,
            )
            .unwrap_err();
        assert!(e.to_string().contains("upstream down"), "{e}");
    }

    fn refresh() -> TokenRequest {
        let tokens = TokenSet::new(Secret::new("old-at"))
            .with_refresh_token(Some(Secret::new("old-rt")))
            .with_scope(Some(SCOPE.into()));
        TokenRequest::refresh(
            &Url::parse("https://account.example.com/oauth2/token").unwrap(),
            "s6BhdRkqt3",
            &tokens,
        )
        .unwrap()
    }

    const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

    #[test]
    fn code_exchange_request_is_a_public_client_form() {
        let r = exchange();
        let req = &r.request.request;
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri(), "https://account.example.com/oauth2/token");
        assert_eq!(
            req.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(req.headers()["accept"], "application/json");
        assert!(req.headers().get("authorization").is_none());
        let body: Vec<(String, String)> = form_urlencoded::parse(req.body())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let expected = [
            ("grant_type", "authorization_code"),
            ("code", "iuB7Eiz9heengah1joh2ioy9ahChuP6R"),
            ("redirect_uri", "https://app.example.com/oauth2-callback"),
            ("client_id", "s6BhdRkqt3"),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
        ];
        assert_eq!(
            body,
            expected
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        );
        assert!(!format!("{r:?}").contains("iuB7Eiz9"));
    }

    #[test]
    fn spec_sample_response() {
        let tokens = exchange()
            .parse(
                &json(
                    200,
                    r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":299,"refresh_token":"tGz3JOkF0XG5Qx2TlKWIA","scope":"urn:matrix:client:api:* urn:matrix:client:device:AABBBCCCDDD"}"#,
                ),
                T0,
            )
            .unwrap();
        assert_eq!(tokens.access_token.expose(), "2YotnFZFEjr1zCsicMWpAA");
        assert_eq!(
            tokens.refresh_token.as_ref().unwrap().expose(),
            "tGz3JOkF0XG5Qx2TlKWIA"
        );
        assert_eq!(tokens.expires_at, Some(T0 + Duration::from_secs(299)));
        assert_eq!(tokens.issued_at, Some(T0));
        assert_eq!(tokens.lifetime(), Some(Duration::from_secs(299)));
        assert_eq!(tokens.scope.as_deref(), Some(SCOPE));
    }

    #[test]
    fn lenient_where_harmless() {
        // Lower-case bearer, fractional expires_in, nulls, no scope (= requested), no refresh token.
        let t = exchange()
            .parse(
                &json(
                    200,
                    r#"{"access_token":"at","token_type":"bearer","expires_in":1.5,"refresh_token":null,"id_token":"h.p.s","extra":1}"#,
                ),
                T0,
            )
            .unwrap();
        assert_eq!(t.expires_at, Some(T0 + Duration::from_millis(1500)));
        assert_eq!(t.refresh_token, None);
        assert_eq!(t.scope.as_deref(), Some(SCOPE));
        assert_eq!(t.id_token.as_ref().map(Secret::expose), Some("h.p.s"));
        let t = exchange()
            .parse(
                &json(200, r#"{"access_token":"at","token_type":"BEARER"}"#),
                T0,
            )
            .unwrap();
        assert_eq!(t.expires_at, None);
    }

    #[test]
    fn refresh_keeps_or_rotates_the_refresh_token() {
        let r = refresh();
        assert_eq!(
            r.request.request.body(),
            b"grant_type=refresh_token&refresh_token=old-rt&client_id=s6BhdRkqt3"
        );
        let kept = r
            .parse(
                &json(
                    200,
                    r#"{"access_token":"at2","token_type":"Bearer","expires_in":300}"#,
                ),
                T0,
            )
            .unwrap();
        assert_eq!(kept.refresh_token.unwrap().expose(), "old-rt");
        assert_eq!(kept.scope.as_deref(), Some(SCOPE));
        let rotated = r
            .parse(
                &json(
                    200,
                    r#"{"access_token":"at2","token_type":"Bearer","refresh_token":"rt2"}"#,
                ),
                T0,
            )
            .unwrap();
        assert_eq!(rotated.refresh_token.unwrap().expose(), "rt2");
        assert_eq!(
            TokenRequest::refresh(
                &Url::parse("https://a.example/t").unwrap(),
                "c",
                &TokenSet::new(Secret::new("at"))
            )
            .unwrap_err(),
            TokenError::NoRefreshToken
        );
    }

    #[test]
    fn granted_scope_checks() {
        let r = exchange();
        let with_scope = |s: &str| {
            r.parse(
                &json(
                    200,
                    &format!(r#"{{"access_token":"at","token_type":"Bearer","scope":"{s}"}}"#),
                ),
                T0,
            )
        };
        assert!(matches!(
            with_scope("urn:matrix:client:api:*"),
            Err(TokenError::DeviceScopeDropped { ref device_id, .. }) if device_id == "AABBBCCCDDD"
        ));
        assert!(matches!(
            with_scope("urn:matrix:client:api:* urn:matrix:client:device:ZZZZZZZZZZ"),
            Err(TokenError::DeviceIdChanged { ref granted, .. }) if granted == "ZZZZZZZZZZ"
        ));
        assert!(matches!(
            with_scope("urn:matrix:client:device:AABBBCCCDDD"),
            Err(TokenError::ApiScopeDropped { .. })
        ));
        assert!(matches!(
            with_scope("a  b"),
            Err(TokenError::InvalidResponse { field: "scope", .. })
        ));
        // Extra tokens granted, or the device in the other flavor: fine.
        assert!(with_scope(&format!("{SCOPE} openid")).is_ok());
        assert!(
            with_scope("urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:AABBBCCCDDD")
                .is_ok()
        );
        // The granted scope is kept as the `Scope` displays it: repeats collapse, order stays; the
        // error reports that form too.
        let repeated = format!("openid {SCOPE} openid");
        assert_eq!(
            with_scope(&repeated).unwrap().scope.as_deref(),
            Some(format!("openid {SCOPE}").as_str())
        );
        assert_eq!(with_scope(SCOPE).unwrap().scope.as_deref(), Some(SCOPE));
        // The same tokens in another order are checked (and kept as sent).
        let reordered = "urn:matrix:client:device:AABBBCCCDDD urn:matrix:client:api:*";
        assert_eq!(
            with_scope(reordered).unwrap().scope.as_deref(),
            Some(reordered)
        );
        // A requested scope with a repeat would not be echoed as requested: parse keeps one.
        assert!(matches!(
            with_scope(&format!("{SCOPE} {SCOPE}")),
            Ok(t) if t.scope.as_deref() == Some(SCOPE)
        ));
        assert!(matches!(
            with_scope("openid urn:matrix:client:api:* openid"),
            Err(TokenError::DeviceScopeDropped { ref granted, .. }) if granted == "openid urn:matrix:client:api:*"
        ));
        // The same rules hold on refresh.
        assert!(matches!(
            refresh().parse(
                &json(200, r#"{"access_token":"at","token_type":"Bearer","scope":"urn:matrix:client:api:*"}"#),
                T0
            ),
            Err(TokenError::DeviceScopeDropped { grant: GrantKind::RefreshToken, .. })
        ));
    }

    #[test]
    fn invalid_bodies_name_the_field_and_never_show_tokens() {
        let r = exchange();
        let cases: &[(&str, &str)] = &[
            (r#"{"token_type":"Bearer"}"#, "access_token"),
            (
                r#"{"access_token":"","token_type":"Bearer"}"#,
                "access_token",
            ),
            (
                r#"{"access_token":7,"token_type":"Bearer"}"#,
                "access_token",
            ),
            (
                r#"{"access_token":"a b","token_type":"Bearer"}"#,
                "access_token",
            ),
            (r#"{"access_token":"secret-at"}"#, "token_type"),
            (
                r#"{"access_token":"secret-at","token_type":"Bearer","expires_in":-1}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"secret-at","token_type":"Bearer","expires_in":"300"}"#,
                "expires_in",
            ),
            (
                r#"{"access_token":"secret-at","token_type":"Bearer","refresh_token":5}"#,
                "refresh_token",
            ),
            (r#"["secret-at"]"#, "(body)"),
        ];
        for (body, field) in cases {
            let e = r.parse(&json(200, body), T0).unwrap_err();
            assert!(
                matches!(e, TokenError::InvalidResponse { field: f, .. } if f == *field),
                "{body}: {e}"
            );
            assert!(!e.to_string().contains("secret-at"), "{e}");
            assert!(!e.is_logout());
        }
        let e = r
            .parse(
                &json(200, r#"{"access_token":"secret-at","token_type":"mac"}"#),
                T0,
            )
            .unwrap_err();
        assert!(
            matches!(e, TokenError::UnsupportedTokenType { ref token_type, .. } if token_type == "mac")
        );
        let e = r
            .parse(&json(200, r#"{"access_token":"secret-at","#), T0)
            .unwrap_err();
        assert!(matches!(
            e,
            TokenError::Response {
                source: ResponseError::InvalidJson { .. },
                ..
            }
        ));
        assert!(!e.to_string().contains("secret-at"), "{e}");
        let e = r
            .parse(&json(201, r#"{"access_token":"secret-at"}"#), T0)
            .unwrap_err();
        assert!(!e.to_string().contains("secret-at"), "{e}");
        let e = r
            .parse(
                &http::Response::builder()
                    .status(200)
                    .header("content-type", "text/html")
                    .body(b"<html>".to_vec())
                    .unwrap(),
                T0,
            )
            .unwrap_err();
        assert!(matches!(
            e,
            TokenError::Response {
                source: ResponseError::NotJson { .. },
                ..
            }
        ));
    }

    #[test]
    fn error_classification_on_refresh() {
        let r = refresh();
        let js_invalid_grant = json(
            400,
            r#"{"error":"invalid_grant","error_description":"The provided access grant is invalid, expired, or revoked."}"#,
        );
        let e = r.parse(&js_invalid_grant, T0).unwrap_err();
        assert!(e.is_logout());
        assert!(e.is_logout_with(LogoutPolicy::InvalidGrantOnly));
        assert!(!e.is_transient());
        assert_eq!(e.oauth_error().unwrap().error, "invalid_grant");
        assert_eq!(e.status(), Some(400));

        let e = r
            .parse(&json(401, r#"{"error":"invalid_client"}"#), T0)
            .unwrap_err();
        assert!(e.is_logout(), "spec: any 4xx");
        assert!(!e.is_logout_with(LogoutPolicy::InvalidGrantOnly));

        let e = r
            .parse(&json(403, r#"{"errcode":"M_FORBIDDEN"}"#), T0)
            .unwrap_err();
        assert!(e.is_logout());

        for status in [500, 502, 503, 429, 408] {
            let e = r.parse(&json(status, "{}"), T0).unwrap_err();
            assert!(!e.is_logout(), "{status}");
            assert!(e.is_transient(), "{status}");
        }
        let e = r
            .parse(&json(503, r#"{"error":"temporarily_unavailable"}"#), T0)
            .unwrap_err();
        assert!(e.is_transient() && !e.is_logout());

        let e = r.transport_error(TransportError::Timeout {
            url: "https://account.example.com/oauth2/token".into(),
            timeout_ms: 30_000,
        });
        assert!(e.is_transient() && !e.is_logout());
        assert!(TokenError::NoRefreshToken.is_logout());

        // The same 400 on a code exchange is a failed login, not a logout.
        let e = exchange().parse(&js_invalid_grant, T0).unwrap_err();
        assert!(!e.is_logout());
        assert_eq!(e.grant(), Some(GrantKind::AuthorizationCode));

        // 200 with an error body is reported as that error.
        let e = r
            .parse(&json(200, r#"{"error":"invalid_grant"}"#), T0)
            .unwrap_err();
        assert!(e.is_logout_with(LogoutPolicy::InvalidGrantOnly));

        // A redirect is neither.
        let e = r
            .parse(
                &http::Response::builder()
                    .status(302)
                    .header("location", "https://elsewhere.example/")
                    .body(Vec::new())
                    .unwrap(),
                T0,
            )
            .unwrap_err();
        assert!(!e.is_logout() && !e.is_transient());
    }
}
