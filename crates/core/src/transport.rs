//! The one async HTTP trait that transports implement and the async layers drive.
//!
//! It lives here, beside [`OutgoingRequest`](crate::http::OutgoingRequest), so that it is defined
//! exactly once; it is not IO itself (no runtime, no sockets), only the shape of "send this, give me
//! the response". [`TransportError`] is always available; the trait needs the `transport` feature,
//! which the transports and `matrix-oidc` enable: a program that drives the core with its own IO
//! does not compile the `async-trait` macro.

/// Why a transport could not produce a response. Never contains header values or bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection could be made (DNS, refused, unreachable).
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL requested.
        url: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed (unknown CA, name mismatch, protocol error).
    #[error("TLS failure talking to {url}: {reason}")]
    Tls {
        /// The URL requested.
        url: String,
        /// Why.
        reason: String,
    },
    /// The exchange took longer than the request's timeout.
    #[error("{url} did not answer within {timeout_ms} ms")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout that applied.
        timeout_ms: u64,
    },
    /// The response body passed the request's bound; reading stopped there.
    #[error("the response from {url} is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The URL requested.
        url: String,
        /// The bound.
        limit: usize,
    },
    /// The transport was asked to do something it refuses (e.g. follow a redirect).
    #[error("refused to send the request to {url}: {reason}")]
    Refused {
        /// The URL requested.
        url: String,
        /// Why.
        reason: String,
    },
    /// Any other I/O or protocol failure.
    #[error("HTTP exchange with {url} failed: {reason}")]
    Other {
        /// The URL requested.
        url: String,
        /// Why.
        reason: String,
    },
}

impl TransportError {
    /// The URL the failed request was for.
    pub fn url(&self) -> &str {
        match self {
            TransportError::Connect { url, .. }
            | TransportError::Tls { url, .. }
            | TransportError::Timeout { url, .. }
            | TransportError::BodyTooLarge { url, .. }
            | TransportError::Refused { url, .. }
            | TransportError::Other { url, .. } => url,
        }
    }
}

#[cfg(feature = "transport")]
#[cfg_attr(docsrs, doc(cfg(feature = "transport")))]
/// Sends one request and returns the response with its body read, honouring the request's
/// [`Expectations`](crate::http::Expectations): at most `max_body_bytes` read (else
/// [`TransportError::BodyTooLarge`]), redirects returned as responses (never followed), `timeout`
/// applied to the whole exchange.
///
/// Futures are `Send` on native targets; on `wasm32` they need not be, so a browser `fetch`
/// transport can implement it.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait HttpClient: MaybeSendSync {
    /// Sends `request`.
    async fn send(
        &self,
        request: crate::http::OutgoingRequest,
    ) -> Result<http::Response<Vec<u8>>, TransportError>;
}

/// `Send + Sync` on native targets, nothing on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}

/// `Send + Sync` on native targets, nothing on wasm32.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

#[cfg(feature = "transport")]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl<T: HttpClient + ?Sized> HttpClient for std::sync::Arc<T> {
    async fn send(
        &self,
        request: crate::http::OutgoingRequest,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        (**self).send(request).await
    }
}
