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
//! `matrix-oidc-transport-common` for what both matrix-oidc transports share: the rustls set-up
//! (`ring` crypto, the platform's roots through `rustls-platform-verifier`, the same verifier
//! reqwest's own rustls set-up uses), the error classification, the body bound and the deadline.

pub use matrix_oidc_transport_common::{ConfigError, DEFAULT_USER_AGENT};
pub use reqwest;

use async_trait::async_trait;
use matrix_oidc_core::http::{Expectations, OutgoingRequest};
use matrix_oidc_core::transport::{HttpClient, TransportError};
use matrix_oidc_transport_common::{
    BoundedBody, TransportSettings, causes, millis, shown_url, tls_failure, user_agent_header,
    with_deadline,
};
use std::time::Duration;

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
            reason: format!("not a request reqwest can send: {}", causes(&e)),
        })?;
        let sent_to = request.url().clone();
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| classify(&e, url, timeout))?;
        if response.url() != &sent_to {
            // The response is from another URL: the client followed a redirect.
            return Err(TransportError::Refused {
                url: url.to_owned(),
                reason: "the reqwest client followed a redirect; build it with \
                         redirect::Policy::none() so that 3xx responses come back"
                    .to_owned(),
            });
        }
        let mut body = BoundedBody::new(response.content_length(), expect.max_body_bytes, url)?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| classify(&e, url, timeout))?
        {
            // On an error, dropping `response` closes the connection: the rest is never read.
            body.extend(&chunk)?;
        }
        let mut out = http::Response::new(body.into_bytes());
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
        let url = shown_url(request.uri());
        with_deadline(expect.timeout, &url, self.exchange(request, &expect, &url)).await
    }
}

/// The error of a failed exchange, by its cause: TLS, timeout, connect or other.
fn classify(err: &reqwest::Error, url: &str, timeout: Duration) -> TransportError {
    let url = url.to_owned();
    if let Some(reason) = tls_failure(err) {
        return TransportError::Tls { url, reason };
    }
    // Only if the caller's own client carries a shorter timeout than the request's.
    if err.is_timeout() {
        return TransportError::Timeout {
            url,
            timeout_ms: millis(timeout),
        };
    }
    let reason = causes(err);
    if err.is_connect() {
        TransportError::Connect { url, reason }
    } else {
        TransportError::Other { url, reason }
    }
}

type Configure = Box<dyn FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send>;

/// Builds a [`ReqwestTransport`] with this crate's TLS set-up (rustls + ring) and redirects off.
#[derive(Default)]
pub struct ReqwestTransportBuilder {
    settings: TransportSettings,
    configure: Option<Configure>,
}

impl std::fmt::Debug for ReqwestTransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqwestTransportBuilder")
            .field("settings", &self.settings)
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
        self.settings.add_root_certificates_pem(pem.as_ref())?;
        Ok(self)
    }

    /// Also trusts the DER-encoded certificate `der` as a root CA (checked by [`build`](Self::build)).
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.settings.add_root_certificate_der(der.into());
        self
    }

    /// Whether the platform's root CAs are trusted (default `true`). With `false`, only the added
    /// roots are.
    pub fn platform_roots(mut self, enabled: bool) -> Self {
        self.settings.set_platform_roots(enabled);
        self
    }

    /// The `User-Agent` to send (default [`DEFAULT_USER_AGENT`]). Not a valid
    /// header value: [`ConfigError::InvalidUserAgent`] from [`build`](Self::build).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.settings.set_user_agent(user_agent.into());
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
        let tls = self.settings.rustls_config()?;
        let user_agent = user_agent_header(self.settings.user_agent())?;
        let mut builder = reqwest::Client::builder();
        if let Some(configure) = self.configure {
            builder = configure(builder);
        }
        Ok(builder
            .user_agent(user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(tls))
    }

    /// Builds the client and wraps it.
    pub fn build(self) -> Result<ReqwestTransport, ConfigError> {
        let client = self
            .client_builder()?
            .build()
            .map_err(|e| ConfigError::Client { reason: causes(&e) })?;
        Ok(ReqwestTransport::new(client))
    }
}
