//! The device authorization grant (RFC 8628; Matrix 1.18, MSC4341): signing in on a device without a
//! usable browser, by showing a code the user enters elsewhere.
//!
//! ```text
//!  DeviceAuthorizationRequest ──POST device_authorization_endpoint──▶ DeviceAuthorization
//!                                                                      (user_code, verification_uri,
//!                                                                       device_code, interval, expiry)
//!                                                                              │ .poller(now)
//!                                                                              ▼
//!   ┌─────────────────────────────── DevicePoller ─────────────────────────────────────────────┐
//!   │                                                                                           │
//!   │   Waiting{next_poll_at} ──poll(now ≥ next_poll_at)──▶ AwaitingResponse                     │
//!   │      ▲   │                                             │  handle_response(resp, now)       │
//!   │      │   │ poll(now < next) → Wait{until}              │  handle_transport_error(e, now)   │
//!   │      │   │                                             ▼                                   │
//!   │      │   │          authorization_pending ─── keep interval ────┐                         │
//!   │      │   │          slow_down ─────────────── interval += 5 s ──┤                         │
//!   │      │   │          5xx / 429 / transport ─── back off ─────────┤                         │
//!   │      └───┼──────────────────────────────────────────────────────┘                         │
//!   │          │ poll(now ≥ deadline) → Err(DeadlinePassed)                                      │
//!   │          ▼                                                                                 │
//!   │      Finished ◀── tokens (Ok(Authorized)) │ access_denied │ expired_token │ any other error │
//!   └───────────────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Poll outcomes are decided by the OAuth `error` string, never by the HTTP status: Matrix
//! Authentication Service answers `authorization_pending` with 403. An error string the grant does not
//! define is fatal (matrix-js-sdk retries those until the deadline; that only hides server bugs).
//!
//! The poller reads no clock: every call takes `now`, and [`PollAction::Wait`] says when to call
//! again.
//!
//! ```
//! use matrix_oidc_core::device_grant::{DeviceAuthorizationRequest, PollAction, PollStatus};
//! use matrix_oidc_core::{AuthorizationServerMetadata, DeviceId, Scope, Timestamp};
//! use std::time::Duration;
//!
//! let metadata: AuthorizationServerMetadata = serde_json::from_str(r#"{
//!     "issuer": "https://account.example.com/",
//!     "authorization_endpoint": "https://account.example.com/oauth2/auth",
//!     "token_endpoint": "https://account.example.com/oauth2/token",
//!     "device_authorization_endpoint": "https://account.example.com/oauth2/device",
//!     "grant_types_supported": ["authorization_code", "refresh_token",
//!                               "urn:ietf:params:oauth:grant-type:device_code"]
//! }"#).unwrap();
//! let scope = Scope::matrix(DeviceId::parse("AABBBCCCDDD").unwrap()).build().unwrap();
//! let start = DeviceAuthorizationRequest::new(&metadata, "s6BhdRkqt3", scope).unwrap();
//!
//! let json = |status, body: &str| http::Response::builder().status(status)
//!     .header("content-type", "application/json").body(body.as_bytes().to_vec()).unwrap();
//! let t0 = Timestamp::from_unix_seconds(1_000);
//! let auth = start.parse(&json(200, r#"{"device_code":"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS",
//!     "user_code":"WDJB-MJHT","verification_uri":"https://account.example.com/link",
//!     "expires_in":1800,"interval":5}"#), t0).unwrap();
//! assert_eq!(auth.user_code, "WDJB-MJHT");
//!
//! let mut poller = auth.poller(t0);
//! assert!(matches!(poller.poll(t0).unwrap(), PollAction::Wait { until } if until == t0 + Duration::from_secs(5)));
//! let t1 = t0 + Duration::from_secs(5);
//! let PollAction::Send(_request) = poller.poll(t1).unwrap() else { panic!() };
//! // Matrix Authentication Service says "pending" with a 403.
//! let status = poller.handle_response(&json(403, r#"{"error":"authorization_pending"}"#), t1).unwrap();
//! assert!(matches!(status, PollStatus::Pending { next_poll_at } if next_poll_at == t1 + Duration::from_secs(5)));
//! ```

mod authorization;
mod poller;

pub use authorization::{DEFAULT_INTERVAL, DeviceAuthorization, DeviceAuthorizationRequest};
pub use poller::{DevicePoller, MAX_BACKOFF, PollAction, PollStatus, SLOW_DOWN_STEP};

use crate::error::{OAuthErrorBody, ResponseError};
use crate::http::BuildError;
use crate::time::Timestamp;
use crate::token::TokenError;
use crate::transport::TransportError;

/// A device authorization grant failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceGrantError {
    /// The server does not offer the device grant.
    #[error("{issuer} does not offer the device authorization grant: {reason}")]
    NotSupported {
        /// The issuer.
        issuer: String,
        /// What is missing from its metadata.
        reason: &'static str,
    },
    /// The device authorization request could not be built.
    #[error("cannot build the device authorization request: {0}")]
    Request(#[source] BuildError),
    /// The device authorization endpoint refused with an OAuth error.
    #[error("{endpoint} refused the device authorization with HTTP {status}: {error}")]
    Rejected {
        /// The device authorization endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The error body.
        error: OAuthErrorBody,
    },
    /// The device authorization endpoint's answer is not usable HTTP/JSON.
    #[error("device authorization request to {endpoint} failed: {source}")]
    Response {
        /// The device authorization endpoint.
        endpoint: String,
        /// What was wrong.
        source: ResponseError,
    },
    /// A field of the device authorization response is missing or malformed.
    #[error("the device authorization response from {endpoint} has an invalid '{field}': {reason}")]
    InvalidResponse {
        /// The device authorization endpoint.
        endpoint: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The user refused (`access_denied`).
    #[error("the user denied the device authorization: {error}")]
    AccessDenied {
        /// The error body.
        error: OAuthErrorBody,
    },
    /// The server says the device code expired (`expired_token`).
    #[error("the device code expired: {error}")]
    ExpiredToken {
        /// The error body.
        error: OAuthErrorBody,
    },
    /// The local deadline (the device code's `expires_in`, or one set by the application) passed
    /// before the user finished.
    #[error("the device authorization was not completed before {deadline:?}")]
    DeadlinePassed {
        /// The deadline.
        deadline: Timestamp,
    },
    /// The token endpoint failed in a way polling cannot recover from (an error code the grant does
    /// not define, an invalid token response, a dropped device scope, …).
    #[error(transparent)]
    Token(TokenError),
    /// The transport failed on the device authorization request.
    #[error("device authorization request failed: {0}")]
    Transport(#[source] TransportError),
    /// `handle_response` was called without an outstanding poll request.
    #[error("no poll request is outstanding; call poll() and send its request first")]
    NotAwaitingResponse,
}

impl DeviceGrantError {
    /// Whether the user refused.
    pub fn is_denied(&self) -> bool {
        matches!(self, DeviceGrantError::AccessDenied { .. })
    }

    /// Whether the grant ran out of time (server-side `expired_token` or the local deadline).
    pub fn is_expired(&self) -> bool {
        matches!(
            self,
            DeviceGrantError::ExpiredToken { .. } | DeviceGrantError::DeadlinePassed { .. }
        )
    }
}
