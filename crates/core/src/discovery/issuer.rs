//! Generic discovery from an issuer identifier (OpenID Connect Discovery 1.0 §4, RFC 8414 §3).
//!
//! ```text
//!  new(issuer) ── start() ──▶ GET <first well-known URL>
//!                                 │
//!            ┌── 200 ─────────────┤── 404 ──▶ GET <next well-known URL> ── … ──▶ NoMetadata
//!            ▼                    │
//!   validate, issuer == expected  └── anything else ──▶ Err(Http)
//!            │
//!            ▼
//!   Done(Discovered { source: OpenIdConfiguration | OAuthAuthorizationServer })
//! ```

use super::{
    Attempt, Discovered, DiscoveryError, DiscoverySource, Presence, Step, check_issuer, get,
    presence, read_metadata,
};
use crate::http::Expectations;
use crate::metadata::ValidationOptions;
use crate::{Timestamp, UrlPolicy};
use url::Url;

/// The two well-known documents an issuer may serve its metadata at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WellKnownDocument {
    /// `<issuer>/.well-known/openid-configuration`: the suffix is appended to the issuer's path
    /// (OpenID Connect Discovery §4.1).
    OpenIdConfiguration,
    /// `/.well-known/oauth-authorization-server<issuer path>`: the well-known segment is inserted
    /// before the issuer's path (RFC 8414 §3.1).
    OAuthAuthorizationServer,
}

impl WellKnownDocument {
    /// The document's URL for `issuer`.
    pub fn url_for(self, issuer: &Url) -> Url {
        match self {
            WellKnownDocument::OpenIdConfiguration => openid_configuration_url(issuer),
            WellKnownDocument::OAuthAuthorizationServer => oauth_authorization_server_url(issuer),
        }
    }

    fn source(self) -> DiscoverySource {
        match self {
            WellKnownDocument::OpenIdConfiguration => DiscoverySource::OpenIdConfiguration,
            WellKnownDocument::OAuthAuthorizationServer => {
                DiscoverySource::OAuthAuthorizationServer
            }
        }
    }
}

/// `<issuer>/.well-known/openid-configuration`, joined as OpenID Connect Discovery §4.1 says: the
/// issuer's trailing `/` is removed and the suffix appended. Never relative-URL resolution, which would
/// drop the issuer's last path segment (the bug old matrix-js-sdk had).
///
/// ```
/// use matrix_oidc_core::discovery::openid_configuration_url;
/// use url::Url;
/// let url = |s| openid_configuration_url(&Url::parse(s).unwrap()).to_string();
/// assert_eq!(url("https://auth.example.com/"), "https://auth.example.com/.well-known/openid-configuration");
/// assert_eq!(url("https://example.com/realms/matrix"), "https://example.com/realms/matrix/.well-known/openid-configuration");
/// assert_eq!(url("https://example.com/realms/matrix/"), "https://example.com/realms/matrix/.well-known/openid-configuration");
/// ```
pub fn openid_configuration_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = format!(
        "{}/.well-known/openid-configuration",
        issuer.path().trim_end_matches('/')
    );
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// `/.well-known/oauth-authorization-server<issuer path>`, with RFC 8414 §3.1's path insertion (the
/// issuer path's trailing `/` removed).
///
/// ```
/// use matrix_oidc_core::discovery::oauth_authorization_server_url;
/// use url::Url;
/// let url = |s| oauth_authorization_server_url(&Url::parse(s).unwrap()).to_string();
/// assert_eq!(url("https://example.com/"), "https://example.com/.well-known/oauth-authorization-server");
/// assert_eq!(url("https://example.com/issuer1"), "https://example.com/.well-known/oauth-authorization-server/issuer1");
/// assert_eq!(url("https://example.com/issuer1/"), "https://example.com/.well-known/oauth-authorization-server/issuer1");
/// ```
pub fn oauth_authorization_server_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = format!(
        "/.well-known/oauth-authorization-server{}",
        issuer.path().trim_end_matches('/')
    );
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Options of an [`IssuerDiscovery`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerDiscoveryOptions {
    /// How the document is validated. Default: [`ValidationOptions::oauth`].
    pub validation: ValidationOptions,
    /// The documents to try, in order; the next one is tried only when the previous answered 404.
    /// Default: OpenID Connect first (what most servers, MAS included, serve), then RFC 8414.
    pub documents: Vec<WellKnownDocument>,
    /// Expectations for every request.
    pub expectations: Expectations,
}

impl Default for IssuerDiscoveryOptions {
    fn default() -> Self {
        Self {
            validation: ValidationOptions::oauth(),
            documents: vec![
                WellKnownDocument::OpenIdConfiguration,
                WellKnownDocument::OAuthAuthorizationServer,
            ],
            expectations: Expectations::json(),
        }
    }
}

impl IssuerDiscoveryOptions {
    /// The same options with other validation rules.
    pub fn with_validation(mut self, validation: ValidationOptions) -> Self {
        self.validation = validation;
        self
    }

    /// The same options with another URL policy.
    pub fn with_url_policy(mut self, url_policy: UrlPolicy) -> Self {
        self.validation.url_policy = url_policy;
        self
    }

    /// The same options trying `documents`, in that order.
    pub fn with_documents(
        mut self,
        documents: impl IntoIterator<Item = WellKnownDocument>,
    ) -> Self {
        self.documents = documents.into_iter().collect();
        self
    }

    /// The same options with other request expectations.
    pub fn with_expectations(mut self, expectations: Expectations) -> Self {
        self.expectations = expectations;
        self
    }
}

/// Discovery of an issuer's metadata at its well-known URLs. See the [module docs](super) for the
/// call-order contract.
#[derive(Debug, Clone)]
pub struct IssuerDiscovery {
    issuer: Url,
    options: IssuerDiscoveryOptions,
    /// Index in `options.documents` of the outstanding request, if any.
    pending: Option<usize>,
    attempts: Vec<Attempt>,
}

impl IssuerDiscovery {
    /// Discovery for `issuer`, which must be allowed by the URL policy and have no query or fragment.
    pub fn new(issuer: &Url, options: IssuerDiscoveryOptions) -> Result<Self, DiscoveryError> {
        let issuer = check_issuer(issuer.as_str(), "the caller", &options.validation)?;
        Ok(Self {
            issuer,
            options,
            pending: None,
            attempts: Vec::new(),
        })
    }

    /// The issuer being discovered.
    pub fn issuer(&self) -> &Url {
        &self.issuer
    }

    /// The first request.
    pub fn start(&mut self) -> Result<Step, DiscoveryError> {
        self.attempts.clear();
        self.request(0)
    }

    fn request(&mut self, index: usize) -> Result<Step, DiscoveryError> {
        self.pending = None;
        let Some(doc) = self.options.documents.get(index) else {
            return Err(DiscoveryError::NoMetadata {
                attempts: std::mem::take(&mut self.attempts),
            });
        };
        let request = get(&doc.url_for(&self.issuer), &self.options.expectations)?;
        self.pending = Some(index);
        Ok(Step::Send(request))
    }

    /// Handles the response to the last request, received at `now`.
    pub fn handle_response<B: AsRef<[u8]>>(
        &mut self,
        response: &http::Response<B>,
        now: Timestamp,
    ) -> Result<Step, DiscoveryError> {
        let index = self
            .pending
            .take()
            .ok_or(DiscoveryError::NoRequestPending)?;
        let doc = *self
            .options
            .documents
            .get(index)
            .ok_or(DiscoveryError::NoRequestPending)?;
        let url = doc.url_for(&self.issuer);
        // Only a plain 404 moves on: a generic server has no M_UNRECOGNIZED convention.
        if response.status() == http::StatusCode::NOT_FOUND {
            if let Presence::NotHere(attempt) = presence(response, &url) {
                self.attempts.push(attempt);
            }
            return self.request(index + 1);
        }
        let (metadata, cache) = read_metadata(
            response,
            &url,
            &self.options.expectations,
            &self.options.validation,
            Some(&self.issuer),
            now,
        )?;
        Ok(Step::Done(Box::new(Discovered {
            metadata,
            source: doc.source(),
            url: Some(url),
            cache,
        })))
    }
}
