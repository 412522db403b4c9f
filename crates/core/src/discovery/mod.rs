//! Finding and validating an authorization server's metadata.
//!
//! Three ways in:
//!
//! * [`MatrixDiscovery`] — from a homeserver base URL, through the Matrix endpoints (stable and unstable
//!   `auth_metadata`, then the legacy `auth_issuer` and `/.well-known/matrix/client` chains).
//! * [`IssuerDiscovery`] — from an issuer, through OpenID Connect Discovery
//!   (`<issuer>/.well-known/openid-configuration`) and RFC 8414
//!   (`/.well-known/oauth-authorization-server<issuer path>`), for relying parties that are not Matrix
//!   clients.
//! * [`Discovered::from_document`] / [`Discovered::from_metadata`] — "bring your own metadata": a
//!   document the caller already has, validated the same way.
//!
//! Both state machines have the same shape and the same call-order contract:
//!
//! 1. `new(…)` checks the input URL and sends nothing.
//! 2. `start()` returns the first [`Step::Send`].
//! 3. Send that request with any HTTP client (honouring its [`Expectations`]), then
//!    pass the response — whatever its status — to `handle_response(&response, now)`, with `now` the
//!    time the response arrived. It returns the next [`Step`]: another request, or
//!    [`Step::Done`] with the [`Discovered`] metadata.
//! 4. Any `Err` ends the discovery; so does `Done`. Calling `handle_response` again afterwards, or
//!    before `start`, returns [`DiscoveryError::NoRequestPending`].
//!
//! Only one request is outstanding at a time, and a machine never reads a clock or draws randomness,
//! so a recorded exchange replays identically.
//!
//! ```
//! use matrix_oidc_core::discovery::{DiscoveryOptions, DiscoverySource, MatrixDiscovery, Step};
//! use matrix_oidc_core::{OutgoingRequest, Timestamp};
//! use url::Url;
//!
//! /// Your HTTP client goes here. This one answers like a homeserver that serves its metadata.
//! fn send(request: OutgoingRequest) -> http::Response<Vec<u8>> {
//!     let (status, body) = match request.request.uri().path() {
//!         "/_matrix/client/v1/auth_metadata" => (200, r#"{
//!             "issuer": "https://account.example.com/",
//!             "authorization_endpoint": "https://account.example.com/oauth2/auth",
//!             "token_endpoint": "https://account.example.com/oauth2/token",
//!             "revocation_endpoint": "https://account.example.com/oauth2/revoke",
//!             "registration_endpoint": "https://account.example.com/oauth2/clients/register",
//!             "response_types_supported": ["code"],
//!             "grant_types_supported": ["authorization_code", "refresh_token"],
//!             "response_modes_supported": ["query", "fragment"],
//!             "code_challenge_methods_supported": ["S256"]
//!         }"#),
//!         _ => (404, r#"{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}"#),
//!     };
//!     http::Response::builder()
//!         .status(status)
//!         .header("content-type", "application/json")
//!         .header("cache-control", "public, max-age=600")
//!         .body(body.as_bytes().to_vec())
//!         .unwrap()
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let homeserver = Url::parse("https://matrix.example.com")?;
//!     let mut discovery = MatrixDiscovery::new(&homeserver, DiscoveryOptions::default())?;
//!     let now = Timestamp::from_unix_seconds(1_750_000_000); // when each response arrived
//!     let mut step = discovery.start()?;
//!     let discovered = loop {
//!         match step {
//!             Step::Send(request) => step = discovery.handle_response(&send(request), now)?,
//!             Step::Done(discovered) => break discovered,
//!         }
//!     };
//!     assert_eq!(discovered.source, DiscoverySource::AuthMetadata);
//!     assert_eq!(discovered.fresh_until(), Some(now + std::time::Duration::from_secs(600)));
//!     println!("log in at {}", discovered.metadata.authorization_endpoint);
//!     Ok(())
//! }
//! ```

mod issuer;
mod matrix;

pub use issuer::{
    IssuerDiscovery, IssuerDiscoveryOptions, WellKnownDocument, oauth_authorization_server_url,
    openid_configuration_url,
};
pub use matrix::{
    AUTH_ISSUER_PATH, AUTH_METADATA_PATH, DiscoveryMethod, DiscoveryOptions, MatrixDiscovery,
    UNSTABLE_AUTH_METADATA_PATH, WELL_KNOWN_CLIENT_PATH,
};

use crate::cache::CacheHints;
use crate::error::{MatrixErrorBody, ResponseError};
use crate::http::{BuildError, Expectations, invalid_json, json_body};
use crate::metadata::{
    AuthorizationServerMetadata, DocumentError, MetadataError, ValidationOptions,
};
use crate::{OutgoingRequest, Timestamp};
use url::Url;

/// What a discovery state machine wants next.
// `Send` is the common case and is used at once; `Done` is boxed because metadata is large.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[must_use = "a Step::Send request must be sent and its response handed back"]
pub enum Step {
    /// Send this request and pass its response to `handle_response`.
    Send(OutgoingRequest),
    /// Discovery is complete.
    Done(Box<Discovered>),
}

/// Validated authorization server metadata, where it came from, and how long it may be reused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Discovered {
    /// The validated metadata.
    pub metadata: AuthorizationServerMetadata,
    /// Which discovery method produced it.
    pub source: DiscoverySource,
    /// The URL the metadata document was fetched from (`None` for caller-supplied metadata).
    pub url: Option<Url>,
    /// What the HTTP caching headers said; for the two-step chains, the earlier of both responses.
    pub cache: CacheHints,
}

impl Discovered {
    /// Until when the metadata may be reused without a refetch; `None` when the server gave no caching
    /// information (the caller applies its own default).
    pub fn fresh_until(&self) -> Option<Timestamp> {
        self.cache.fresh_until
    }

    /// Whether the metadata may still be used without a refetch at `now`.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        self.cache.is_fresh(now)
    }

    /// "Bring your own metadata": parses and validates a document the caller already holds. With
    /// `expected_issuer`, the document's issuer must equal it.
    pub fn from_document(
        json: &[u8],
        options: &ValidationOptions,
        expected_issuer: Option<&Url>,
    ) -> Result<Self, DiscoveryError> {
        let metadata = AuthorizationServerMetadata::from_json(json, options, expected_issuer)
            .map_err(|error| DiscoveryError::Metadata {
                url: "caller-supplied metadata".to_owned(),
                error,
            })?;
        Ok(Self::provided(metadata))
    }

    /// "Bring your own metadata" for an already-typed value, validated against `options`.
    pub fn from_metadata(
        metadata: AuthorizationServerMetadata,
        options: &ValidationOptions,
        expected_issuer: Option<&Url>,
    ) -> Result<Self, DiscoveryError> {
        metadata
            .validate(options, expected_issuer)
            .map_err(|error| DiscoveryError::Metadata {
                url: "caller-supplied metadata".to_owned(),
                error,
            })?;
        Ok(Self::provided(metadata))
    }

    fn provided(metadata: AuthorizationServerMetadata) -> Self {
        Self {
            metadata,
            source: DiscoverySource::Provided,
            url: None,
            cache: CacheHints::default(),
        }
    }
}

/// Which discovery method produced the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiscoverySource {
    /// `GET /_matrix/client/v1/auth_metadata` (Matrix v1.15+).
    AuthMetadata,
    /// `GET /_matrix/client/unstable/org.matrix.msc2965/auth_metadata`.
    UnstableAuthMetadata,
    /// `GET /_matrix/client/unstable/org.matrix.msc2965/auth_issuer`, then the issuer's
    /// `/.well-known/openid-configuration`.
    AuthIssuer,
    /// `/.well-known/matrix/client`'s `org.matrix.msc2965.authentication` block, then the issuer's
    /// `/.well-known/openid-configuration`.
    WellKnown,
    /// `<issuer>/.well-known/openid-configuration` (OpenID Connect Discovery).
    OpenIdConfiguration,
    /// `/.well-known/oauth-authorization-server<issuer path>` (RFC 8414).
    OAuthAuthorizationServer,
    /// Supplied by the caller.
    Provided,
}

/// One request of a discovery that answered "not here", kept for the final error message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// The URL requested.
    pub url: String,
    /// The status received.
    pub status: u16,
    /// The Matrix `errcode`, if the body was a Matrix error.
    pub errcode: Option<String>,
    /// Why the answer counted as "not here", when the status alone does not say (a `.well-known`
    /// document without an authentication block, or one that is not JSON).
    pub note: Option<&'static str>,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GET {} → {}", self.url, self.status)?;
        if let Some(code) = &self.errcode {
            write!(f, " {}", code.escape_debug())?;
        }
        if let Some(note) = self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

fn list_attempts(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(Attempt::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why discovery failed. Mirrors matrix-js-sdk's `OidcError` discovery cases: `NotSupported`,
/// `Misconfigured`, `OpSupport` (here [`DiscoveryError::Metadata`]) and `General` (the rest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The homeserver URL cannot be used.
    #[error("invalid homeserver URL {url}: {reason}")]
    InvalidHomeserverUrl {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// The issuer cannot be used (not https, has a query or fragment, not a URL).
    #[error("invalid issuer {issuer} from {source_url}: {reason}")]
    InvalidIssuer {
        /// The issuer.
        issuer: String,
        /// Where it came from (the caller, or the URL of the document that named it).
        source_url: String,
        /// Why.
        reason: String,
    },
    /// The homeserver does not offer the OAuth 2.0 API: every discovery endpoint answered "not here",
    /// and at least one of them with the Matrix spec's signal for it, `404 M_UNRECOGNIZED`.
    #[error("the homeserver does not support the OAuth 2.0 API ({})", list_attempts(.attempts))]
    NotSupported {
        /// Every request made and its answer.
        attempts: Vec<Attempt>,
    },
    /// No endpoint had metadata and none answered like a Matrix homeserver (no `M_UNRECOGNIZED`):
    /// possibly a wrong URL.
    #[error("no authorization server metadata found ({})", list_attempts(.attempts))]
    NoMetadata {
        /// Every request made and its answer.
        attempts: Vec<Attempt>,
    },
    /// A request failed in a way that is not "not here": a server error, a redirect, a body that is too
    /// large or not JSON.
    #[error("GET {url} failed: {error}")]
    Http {
        /// The URL requested.
        url: String,
        /// What was wrong.
        error: ResponseError,
    },
    /// A metadata document was fetched but is not valid.
    #[error("the authorization server metadata from {url} is invalid: {error}")]
    Metadata {
        /// Where it came from.
        url: String,
        /// What is wrong with it.
        error: MetadataError,
    },
    /// An `auth_issuer` answer or a `.well-known` authentication block is malformed.
    #[error("{url} is misconfigured: {reason}")]
    Misconfigured {
        /// The URL of the malformed document.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// `/.well-known/matrix/client` redirected too often, or to a URL the policy forbids.
    #[error("{url}: {reason}")]
    BadRedirect {
        /// The URL that redirected.
        url: String,
        /// Why the redirect was not followed.
        reason: String,
    },
    /// A request could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// `handle_response` was called while no request was outstanding (before `start`, or after the
    /// discovery ended).
    #[error(
        "no discovery request is outstanding: call start() first, and stop after Done or an error"
    )]
    NoRequestPending,
}

impl DiscoveryError {
    /// Whether the homeserver said it does not support the OAuth 2.0 API (so the legacy login API
    /// should be used).
    pub fn is_not_supported(&self) -> bool {
        matches!(self, DiscoveryError::NotSupported { .. })
    }

    /// Whether trying again later may succeed: a 5xx or 429 answer.
    pub fn is_retryable(&self) -> bool {
        match self {
            DiscoveryError::Http { error, .. } => error
                .status()
                .is_some_and(|s| s == 429 || (500..600).contains(&s)),
            _ => false,
        }
    }
}

/// How a Matrix endpoint's answer reads: there, or "not here" (move on).
pub(crate) enum Presence {
    NotHere(Attempt),
    Here,
}

/// 404 (any body) means the endpoint is not there; so does 405 with `M_UNRECOGNIZED`, which the
/// Matrix spec uses for a known path with an unsupported method.
pub(crate) fn presence<B: AsRef<[u8]>>(response: &http::Response<B>, url: &Url) -> Presence {
    let status = response.status().as_u16();
    let errcode = MatrixErrorBody::parse(response.body().as_ref()).map(|b| b.errcode);
    let not_here = status == 404 || (status == 405 && errcode.as_deref() == Some("M_UNRECOGNIZED"));
    if not_here {
        Presence::NotHere(Attempt {
            url: url.to_string(),
            status,
            errcode,
            note: None,
        })
    } else {
        Presence::Here
    }
}

/// Reads a metadata document response: status 200, JSON, valid under `validation`, issuer as expected.
pub(crate) fn read_metadata<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    url: &Url,
    expect: &Expectations,
    validation: &ValidationOptions,
    expected_issuer: Option<&Url>,
    now: Timestamp,
) -> Result<(AuthorizationServerMetadata, CacheHints), DiscoveryError> {
    let http_error = |error| DiscoveryError::Http {
        url: url.to_string(),
        error,
    };
    let body = json_body(response, expect, &[200]).map_err(http_error)?;
    // What `check_json` then `from_json_value` would say, without a `serde_json::Value` in between.
    let metadata = AuthorizationServerMetadata::from_document(body, validation, expected_issuer)
        .map_err(|e| match e {
            DocumentError::Syntax(e) => http_error(invalid_json(&e, body, false)),
            DocumentError::Metadata(error) => DiscoveryError::Metadata {
                url: url.to_string(),
                error,
            },
        })?;
    Ok((metadata, CacheHints::from_headers(response.headers(), now)))
}

/// Checks an issuer identifier: absolute, allowed by the URL policy, no query or fragment.
pub(crate) fn check_issuer(
    issuer: &str,
    source_url: &str,
    validation: &ValidationOptions,
) -> Result<Url, DiscoveryError> {
    let invalid = |reason: String| DiscoveryError::InvalidIssuer {
        issuer: crate::error::truncate(issuer.to_owned(), 256),
        source_url: source_url.to_owned(),
        reason,
    };
    let url = Url::parse(issuer).map_err(|e| invalid(e.to_string()))?;
    if !validation.url_policy.allows(&url) {
        return Err(invalid(format!(
            "the URL policy {:?} does not allow it",
            validation.url_policy
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "an issuer must not have a query or fragment component".to_owned(),
        ));
    }
    Ok(url)
}

/// `GET url` expecting JSON, with the caller's expectations.
pub(crate) fn get(url: &Url, expect: &Expectations) -> Result<OutgoingRequest, DiscoveryError> {
    Ok(OutgoingRequest::get_json(url)?.with_expectations(expect.clone()))
}
