//! A [`hyper`] transport for matrix-oidc: [`HyperTransport`] implements the core's [`HttpClient`] on
//! hyper-util's (legacy) pooled `Client` with rustls.
//!
//! What it guarantees for every [`OutgoingRequest`]:
//!
//! - **No redirects.** hyper never follows them: a 3xx comes back as the response, `Location`
//!   intact, for the core to judge (whatever [`Expectations::follow_redirects`] says).
//! - **Bounded bodies.** A `Content-Length` over [`Expectations::max_body_bytes`] is refused from the
//!   head; any other body is read frame by frame and abandoned (the connection dropped) as soon as
//!   it passes the bound: [`TransportError::BodyTooLarge`].
//! - **One deadline.** [`Expectations::timeout`] covers the whole exchange, connect to last body
//!   byte: [`TransportError::Timeout`].
//! - **Plain errors.** Connect, TLS, timeout, size and other failures each name the URL (without
//!   any `user:password@`) and the cause, never a header value or a body.
//!
//! TLS is rustls with the `ring` provider through hyper-rustls (no OpenSSL, no aws-lc): the
//! platform's root CAs, plus any you add with [`HyperTransportBuilder::add_root_certificates_pem`]
//! (a corporate CA, a test CA), or only those. Connections speak HTTP/1.1.
//!
//! # Example
//!
//! ```no_run
//! use matrix_oidc_core::http::OutgoingRequest;
//! use matrix_oidc_core::transport::HttpClient;
//! use matrix_oidc_hyper::HyperTransport;
//!
//! async fn well_known() -> Result<(), Box<dyn std::error::Error>> {
//!     let transport = HyperTransport::builder()
//!         .add_root_certificates_pem(std::fs::read("corporate-ca.pem")?)?
//!         .build()?;
//!     let url = url::Url::parse("https://matrix.example.org/.well-known/matrix/client")?;
//!     let response = transport.send(OutgoingRequest::get_json(&url)?).await?;
//!     println!("{}", response.status());
//!     Ok(())
//! }
//! ```
//!
//! [`HyperTransport::try_default`] trusts the platform's roots alone;
//! `.platform_roots(false)` trusts only the CAs you add.
//!
//! # Bringing your own client
//!
//! [`HyperTransport::new`] wraps a hyper-util `Client` you already use, over any connector (a
//! proxy connector, a custom resolver…), as long as its request body type is [`RequestBody`].
//! [`HyperTransportBuilder::connector`] hands out this crate's TLS connector to build one with.
//!
//! # Why these dependencies
//!
//! `hyper` and `hyper-util` (client, HTTP/1, tokio) for the pooled client; `hyper-rustls` for TLS
//! over it; `http-body-util` and `bytes` for the body types; `matrix-oidc-transport-common` for
//! what both matrix-oidc transports share: the rustls set-up (`ring` crypto, the platform's roots
//! through `rustls-platform-verifier`), the error classification, the body bound and the deadline.

pub use hyper_rustls;
pub use hyper_util;
pub use matrix_oidc_transport_common::{ConfigError, DEFAULT_USER_AGENT};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use matrix_oidc_core::http::{Expectations, OutgoingRequest};
use matrix_oidc_core::transport::{HttpClient, TransportError};
use matrix_oidc_transport_common::{
    BoundedBody, TransportSettings, shown_url, tls_failure, user_agent_header, with_causes,
    with_deadline,
};

/// The request body type the wrapped client takes.
pub type RequestBody = Full<Bytes>;

/// The connector the builder makes: HTTP or HTTPS (rustls) over hyper-util's TCP connector.
pub type DefaultConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// An [`HttpClient`] on a hyper-util `Client`. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct HyperTransport<C = DefaultConnector> {
    client: Client<C, RequestBody>,
    user_agent: Option<http::HeaderValue>,
}

impl<C> std::fmt::Debug for HyperTransport<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperTransport")
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

impl HyperTransport {
    /// A builder for a pooled client with this crate's TLS set-up.
    pub fn builder() -> HyperTransportBuilder {
        HyperTransportBuilder::default()
    }

    /// The platform's root CAs, [`DEFAULT_USER_AGENT`]. Fails only if the TLS set-up does (no root
    /// store on the platform).
    pub fn try_default() -> Result<Self, ConfigError> {
        Self::builder().build()
    }
}

impl<C> HyperTransport<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// Wraps a client you own. Requests go out as the core built them; no `User-Agent` is added
    /// (see [`with_user_agent`](Self::with_user_agent)).
    pub fn new(client: Client<C, RequestBody>) -> Self {
        Self {
            client,
            user_agent: None,
        }
    }

    /// Sends `user_agent` with every request that has no `User-Agent` of its own.
    pub fn with_user_agent(mut self, user_agent: &str) -> Result<Self, ConfigError> {
        self.user_agent = Some(user_agent_header(user_agent)?);
        Ok(self)
    }

    /// The wrapped client, to share with the rest of the application.
    pub fn client(&self) -> &Client<C, RequestBody> {
        &self.client
    }

    /// Unwraps the client.
    pub fn into_inner(self) -> Client<C, RequestBody> {
        self.client
    }

    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
        expect: &Expectations,
        url: &str,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (mut parts, body) = request.into_parts();
        if let Some(ua) = &self.user_agent {
            parts
                .headers
                .entry(http::header::USER_AGENT)
                .or_insert_with(|| ua.clone());
        }
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| classify_request(&e, url))?;
        let (parts, mut incoming) = response.into_parts();

        // For a body framed by Content-Length the lower bound is that length.
        let declared = incoming.size_hint().lower();
        let mut body = BoundedBody::new(Some(declared), expect.max_body_bytes, url)?;
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| classify_body(&e, url))?;
            // Trailers are not data; the core has no use for them.
            if let Ok(data) = frame.into_data() {
                // On an error, dropping `incoming` closes the connection: the rest is never read.
                body.extend(&data)?;
            }
        }
        Ok(http::Response::from_parts(parts, body.into_bytes()))
    }
}

#[async_trait]
impl<C> HttpClient for HyperTransport<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn send(
        &self,
        request: OutgoingRequest,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let OutgoingRequest { request, expect } = request;
        let url = shown_url(request.uri());
        with_deadline(expect.timeout, &url, self.exchange(request, &expect, &url)).await
    }
}

/// A failure of the request itself (connecting, sending, reading the head).
fn classify_request(err: &hyper_util::client::legacy::Error, url: &str) -> TransportError {
    let url = url.to_owned();
    if let Some(reason) = tls_failure(err) {
        return TransportError::Tls { url, reason };
    }
    let reason = with_causes(err);
    if err.is_connect() {
        TransportError::Connect { url, reason }
    } else {
        TransportError::Other { url, reason }
    }
}

/// A failure while reading the body.
fn classify_body(err: &hyper::Error, url: &str) -> TransportError {
    let url = url.to_owned();
    if let Some(reason) = tls_failure(err) {
        return TransportError::Tls { url, reason };
    }
    TransportError::Other {
        url,
        reason: format!("while reading the body: {}", with_causes(err)),
    }
}

type Configure = Box<dyn FnOnce(&mut hyper_util::client::legacy::Builder) + Send>;

/// Builds a [`HyperTransport`] with this crate's TLS set-up (rustls + ring).
#[derive(Default)]
pub struct HyperTransportBuilder {
    settings: TransportSettings,
    configure: Option<Configure>,
}

impl std::fmt::Debug for HyperTransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperTransportBuilder")
            .field("settings", &self.settings)
            .field("configure", &self.configure.is_some())
            .finish()
    }
}

impl HyperTransportBuilder {
    /// Also trusts every `CERTIFICATE` in `pem` (other PEM blocks are skipped) as a root CA.
    ///
    /// ```
    /// # let pki = matrix_oidc_transport_tests::TestPki::generate("doc");
    /// # let pem = pki.ca_pem();
    /// let transport = matrix_oidc_hyper::HyperTransport::builder()
    ///     .add_root_certificates_pem(pem)?
    ///     .build()?;
    /// # Ok::<(), matrix_oidc_hyper::ConfigError>(())
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

    /// The `User-Agent` to send when a request has none (default [`DEFAULT_USER_AGENT`]). Not a
    /// valid header value: [`ConfigError::InvalidUserAgent`] from [`build`](Self::build).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.settings.set_user_agent(user_agent.into());
        self
    }

    /// Adjusts hyper-util's client builder (pool size and idle timeout, HTTP/1 options…).
    pub fn configure(
        mut self,
        f: impl FnOnce(&mut hyper_util::client::legacy::Builder) + Send + 'static,
    ) -> Self {
        self.configure = Some(Box::new(f));
        self
    }

    /// The HTTP/HTTPS connector with this builder's roots, for building a client of your own
    /// (wrap it with [`HyperTransport::new`]).
    pub fn connector(&self) -> Result<DefaultConnector, ConfigError> {
        let tls = self.settings.rustls_config()?;
        let mut http = HttpConnector::new();
        // The HTTPS layer needs the TCP connector to accept https:// URIs.
        http.enforce_http(false);
        http.set_nodelay(true);
        Ok(hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http))
    }

    /// Builds the pooled client and wraps it.
    pub fn build(self) -> Result<HyperTransport, ConfigError> {
        let connector = self.connector()?;
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_timer(TokioTimer::new());
        if let Some(configure) = self.configure {
            configure(&mut builder);
        }
        HyperTransport::new(builder.build(connector)).with_user_agent(self.settings.user_agent())
    }
}
