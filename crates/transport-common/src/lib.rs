//! What matrix-oidc's HTTP transports (`matrix-oidc-reqwest`, `matrix-oidc-hyper`) share, so that
//! each adapter holds only the glue to its HTTP library:
//!
//! - [`TransportSettings`]: the root CAs to trust (the platform's, through
//!   `rustls-platform-verifier`, plus any added ones, or the added ones alone) and the `User-Agent`,
//!   turned into a rustls `ClientConfig` on the `ring` provider; [`ConfigError`] when that fails.
//! - Error classification: the URL as errors show it ([`shown_url`], no `user:password@`), the
//!   rustls error hidden in a chain ([`tls_failure`]), a chain as one line ([`causes`],
//!   [`with_causes`]).
//! - The limits every exchange obeys: [`BoundedBody`] (the body bound, from the declared length and
//!   then chunk by chunk) and [`with_deadline`] (one timeout for the whole exchange).
//!
//! Applications do not need this crate: each adapter re-exports [`ConfigError`] and
//! [`DEFAULT_USER_AGENT`].
//!
//! # Why these dependencies
//!
//! `rustls` with `ring` for the crypto (no OpenSSL, no aws-lc); `rustls-platform-verifier` for the
//! platform's roots (the verifier reqwest's own rustls set-up uses); `tokio`, timer only, for the
//! deadline.

mod errors;
mod exchange;
mod tls;

pub use errors::{causes, millis, shown_url, tls_failure, with_causes};
pub use exchange::{BoundedBody, with_deadline};
pub use tls::{TransportSettings, user_agent_header};

/// The `User-Agent` transports made by the adapters' builders send unless told otherwise.
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
    /// The `User-Agent` is not a valid header value.
    #[error("the user agent is not a valid header value")]
    InvalidUserAgent,
    /// The HTTP library refused the client configuration (reqwest's `ClientBuilder::build`).
    #[error("cannot build the HTTP client: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
}
