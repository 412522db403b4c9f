//! A [`reqwest`] transport for matrix-oidc: [`ReqwestTransport`] implements the core's
//! [`HttpClient`] on a `reqwest::Client`.
//!
//! What it guarantees for every [`OutgoingRequest`]:
//!
//! - **No redirects.** A 3xx comes back as the response, `Location` intact, for the core to judge
//!   (whatever [`Expectations::follow_redirects`] says).
//!   Clients made by [`ReqwestTransport::builder`] use `redirect::Policy::none()`. A client you
//!   supply must too; if it follows one anyway, the exchange fails with
//!   [`TransportError::Refused`] rather than hand back a response from somewhere else.
//! - **Bounded bodies.** A `Content-Length` over [`Expectations::max_body_bytes`] is refused from the
//!   head; any other body is read chunk by chunk and abandoned (the connection dropped) as soon as it
//!   passes the bound: [`TransportError::BodyTooLarge`].
//! - **One deadline.** [`Expectations::timeout`] covers the whole exchange, connect to last body
//!   byte: [`TransportError::Timeout`].
//! - **Plain errors.** Connect, TLS, timeout, size and other failures each name the URL (without
//!   any `user:password@`) and the cause, never a header value or a body.
//!
//! TLS is rustls with the `ring` provider (no OpenSSL, no aws-lc): the platform's root CAs, plus
//! any you add with [`ReqwestTransportBuilder::add_root_certificates_pem`] (a corporate CA, a test
//! CA), or only those.
//!
//! # Example
//!
//! (The same example is in the workspace README, under "Choosing a transport".)
//!
//! ```no_run
//! use matrix_oidc_core::http::OutgoingRequest;
//! use matrix_oidc_core::transport::HttpClient;
//! use matrix_oidc_reqwest::ReqwestTransport;
//!
//! async fn well_known() -> Result<(), Box<dyn std::error::Error>> {
//!     let transport = ReqwestTransport::builder()
//!         .add_root_certificates_pem(std::fs::read("corporate-ca.pem")?)?
//!         .build()?;
//!     let url = url::Url::parse("https://matrix.example.org/.well-known/matrix/client")?;
//!     let response = transport.send(OutgoingRequest::get_json(&url)?).await?;
//!     println!("{}", response.status());
//!     Ok(())
//! }
//! ```
//!
//! [`ReqwestTransport::try_default`] trusts the platform's roots alone;
//! `.platform_roots(false)` trusts only the CAs you add.
//!
//! # Bringing your own client
//!
//! [`ReqwestTransport::new`] wraps a `reqwest::Client` you already use (its pool, proxies, user
//! agent are kept). Build it with `redirect(reqwest::redirect::Policy::none())`. To start from this
//! crate's TLS set-up and redirect policy, take [`ReqwestTransportBuilder::client_builder`], or
//! change the rest with [`ReqwestTransportBuilder::configure`]. With this crate's reqwest features
//! alone there is no default rustls crypto provider, so a bare `reqwest::Client::new()` panics:
//! start from `client_builder()` (or enable reqwest's `rustls` feature in your application).
//!
//! # Why these dependencies
//!
//! `reqwest` (default features off, `rustls-no-provider`) so that no aws-lc or OpenSSL is built;
//! `rustls` with `ring` for the crypto; `rustls-platform-verifier` for the platform's roots (the
//! same verifier reqwest's own rustls set-up uses); `tokio` for the per-request deadline.

mod errors;
mod tls;

pub use reqwest;

use async_trait::async_trait;
use matrix_oidc_core::http::{Expectations, OutgoingRequest};
use matrix_oidc_core::transport::{HttpClient, TransportError};
use rustls::pki_types::CertificateDer;

/// The `User-Agent` clients made by the builder send unless told otherwise.
pub const DEFAULT_USER_AGENT: &str = concat!("matrix-oidc/", env!("CARGO_PKG_VERSION"));

/// Why a transport could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// PEM data could not be parsed.
    #[error("the PEM data is malformed: {reason}")]
    InvalidPem {
        /// Why.
        reason: String,
    },
    /// PEM data parsed but held no `CERTIFICATE` block.
    #[error("the PEM data holds no CERTIFICATE block")]
    NoCertificateInPem,
    /// A root certificate is not a usable X.509 CA certificate.
    #[error("a root certificate cannot be used: {reason}")]
    InvalidCertificate {
        /// Why.
        reason: String,
    },
    /// Platform roots were turned off and no root was added: nothing could ever be trusted.
    #[error("no root certificate to trust: add one or keep the platform's roots")]
    NoRoots,
    /// The TLS set-up failed (for example, the platform's root store could not be loaded).
    #[error("cannot set up TLS: {reason}")]
    Tls {
        /// Why.
        reason: String,
    },
    /// reqwest refused the client configuration.
    #[error("cannot build the reqwest client: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
}

/// An [`HttpClient`] on a `reqwest::Client`. Cheap to clone (the client is reference-counted).
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl std::fmt::Debug for ReqwestTransport {
    // The client's own Debug lists its default headers, which may hold credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqwestTransport").finish_non_exhaustive()
    }
}

impl ReqwestTransport {
    /// Wraps a client you own. It must not follow redirects
    /// (`redirect(reqwest::redirect::Policy::none())`); if it does, requests that get redirected
    /// fail with [`TransportError::Refused`]. [`ReqwestTransportBuilder::client_builder`] gives a
    /// `reqwest::ClientBuilder` set up that way, with this crate's TLS.
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// A builder for a client with this crate's TLS set-up and no redirects.
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder::default()
    }

    /// The platform's root CAs, no redirects, [`DEFAULT_USER_AGENT`]. Fails only if the TLS
    /// set-up does (no root store on the platform).
    pub fn try_default() -> Result<Self, ConfigError> {
        Self::builder().build()
    }

    /// The wrapped client, to share with the rest of the application.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Unwraps the client.
    pub fn into_inner(self) -> reqwest::Client {
        self.client
    }

    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
        expect: &Expectations,
        url: &str,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let timeout = expect.timeout;
        let request = reqwest::Request::try_from(request).map_err(|e| TransportError::Other {
            url: url.to_owned(),
            reason: format!("not a request reqwest can send: {}", errors::causes(&e)),
        })?;
        let sent_to = request.url().clone();
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| errors::classify(&e, url, timeout))?;
        if response.url() != &sent_to {
            // The response is from another URL: the client followed a redirect.
            return Err(TransportError::Refused {
                url: url.to_owned(),
                reason: "the reqwest client followed a redirect; build it with \
                         redirect::Policy::none() so that 3xx responses come back"
                    .to_owned(),
            });
        }
        let limit = expect.max_body_bytes;
        let too_large = || TransportError::BodyTooLarge {
            url: url.to_owned(),
            limit,
        };
        let declared = response.content_length();
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        let capacity = declared.map_or(0, |len| usize::try_from(len).unwrap_or(limit).min(limit));
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| errors::classify(&e, url, timeout))?
        {
            if chunk.len() > limit - body.len() {
                // Dropping `response` closes the connection: the rest is never read.
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = response.status();
        *out.version_mut() = response.version();
        *out.headers_mut() = std::mem::take(response.headers_mut());
        Ok(out)
    }
}

#[async_trait]
impl HttpClient for ReqwestTransport {
    async fn send(
        &self,
        request: OutgoingRequest,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let OutgoingRequest { request, expect } = request;
        let url = errors::shown_url(request.uri());
        match tokio::time::timeout(expect.timeout, self.exchange(request, &expect, &url)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(TransportError::Timeout {
                url,
                timeout_ms: errors::millis(expect.timeout),
            }),
        }
    }
}

type Configure = Box<dyn FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send>;

/// Builds a [`ReqwestTransport`] with this crate's TLS set-up (rustls + ring) and redirects off.
pub struct ReqwestTransportBuilder {
    roots: Vec<CertificateDer<'static>>,
    platform_roots: bool,
    user_agent: String,
    configure: Option<Configure>,
}

impl Default for ReqwestTransportBuilder {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            platform_roots: true,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            configure: None,
        }
    }
}

impl std::fmt::Debug for ReqwestTransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqwestTransportBuilder")
            .field("added_roots", &self.roots.len())
            .field("platform_roots", &self.platform_roots)
            .field("user_agent", &self.user_agent)
            .field("configure", &self.configure.is_some())
            .finish()
    }
}

impl ReqwestTransportBuilder {
    /// Also trusts every `CERTIFICATE` in `pem` (other PEM blocks are skipped) as a root CA.
    ///
    /// ```
    /// # let pki = matrix_oidc_transport_tests::TestPki::generate("doc");
    /// # let pem = pki.ca_pem();
    /// let transport = matrix_oidc_reqwest::ReqwestTransport::builder()
    ///     .add_root_certificates_pem(pem)?
    ///     .build()?;
    /// # Ok::<(), matrix_oidc_reqwest::ConfigError>(())
    /// ```
    pub fn add_root_certificates_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        self.roots.extend(tls::certificates_from_pem(pem.as_ref())?);
        Ok(self)
    }

    /// Also trusts the DER-encoded certificate `der` as a root CA (checked by [`build`](Self::build)).
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(CertificateDer::from(der.into()));
        self
    }

    /// Whether the platform's root CAs are trusted (default `true`). With `false`, only the added
    /// roots are.
    pub fn platform_roots(mut self, enabled: bool) -> Self {
        self.platform_roots = enabled;
        self
    }

    /// The `User-Agent` to send (default [`DEFAULT_USER_AGENT`]).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Adjusts the underlying `reqwest::ClientBuilder` (proxies, pool, local address…) before this
    /// builder applies its TLS configuration and `redirect::Policy::none()`, which always win.
    pub fn configure(
        mut self,
        f: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + 'static,
    ) -> Self {
        self.configure = Some(Box::new(f));
        self
    }

    /// A `reqwest::ClientBuilder` with this builder's TLS set-up, `User-Agent` and
    /// `redirect::Policy::none()`, for when you want to build (and own) the client yourself; wrap
    /// the result with [`ReqwestTransport::new`]. Leave the redirect policy as it is.
    ///
    /// This is the way to make a client by hand with this crate's features alone: they build
    /// rustls without a default crypto provider, so a bare `reqwest::Client::new()` panics unless
    /// your application enables one (reqwest's `rustls` feature, or installing a rustls
    /// `CryptoProvider` as the process default).
    pub fn client_builder(self) -> Result<reqwest::ClientBuilder, ConfigError> {
        let tls = tls::client_config(self.roots, self.platform_roots)?;
        let mut builder = reqwest::Client::builder();
        if let Some(configure) = self.configure {
            builder = configure(builder);
        }
        Ok(builder
            .user_agent(self.user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(tls))
    }

    /// Builds the client and wraps it.
    pub fn build(self) -> Result<ReqwestTransport, ConfigError> {
        let client = self
            .client_builder()?
            .build()
            .map_err(|e| ConfigError::Client {
                reason: errors::causes(&e),
            })?;
        Ok(ReqwestTransport::new(client))
    }
}

#[cfg(test)]
mod readme {
    /// The crate example and the README's must not drift apart: the README's is not compiled.
    #[test]
    fn the_readme_shows_the_crate_example() {
        let readme = include_str!("../../../README.md");
        let example: Vec<&str> = include_str!("lib.rs")
            .lines()
            .skip_while(|line| *line != "//! ```no_run")
            .skip(1)
            .take_while(|line| *line != "//! ```")
            .map(|line| {
                line.strip_prefix("//! ")
                    .unwrap_or(line.trim_start_matches("//!"))
            })
            .collect();
        assert!(example.len() > 5, "{example:?}");
        let example = format!("```rust\n{}\n```", example.join("\n"));
        assert!(readme.contains(&example), "README.md lacks:\n{example}");
    }
}
