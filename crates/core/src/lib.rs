//! # matrix-oidc-core
//!
//! The sans-IO heart of matrix-oidc: Matrix OAuth 2.0 API and OAuth 2.0 / OpenID Connect client logic
//! as pure types, validation and small state machines.
//!
//! * No sockets, no async runtime, no clock reads, no hidden randomness. A round trip is
//!   "build an [`OutgoingRequest`]" + "handle the `http::Response`"; `now` is a [`Timestamp`]
//!   argument and randomness a [`RandomSource`] argument.
//! * Every request carries [`Expectations`] (body bound, no redirects, timeout, content type) that a
//!   transport must enforce and the handlers re-check.
//! * Errors are one `#[non_exhaustive]` enum per area, with variants a caller can match on.
//! * Builds for `wasm32-unknown-unknown`.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod error;
pub mod http;
pub mod metadata;
pub mod oidc;
pub mod random;
pub mod secret;
pub mod session;
pub mod time;
pub mod transport;

pub use error::{BodyExcerpt, MatrixErrorBody, OAuthErrorBody, ResponseError};
pub use http::{Expectations, OutgoingRequest};
pub use metadata::AuthorizationServerMetadata;
#[cfg(any(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    feature = "wasm-js"
))]
pub use random::OsRandom;
pub use random::{RandomError, RandomSource, SeededRandom};
pub use secret::Secret;
pub use session::{PendingAuthorization, ResponseMode, Session, TokenSet};
pub use time::Timestamp;
pub use transport::{HttpClient, TransportError};

/// The RFC 8628 device authorization grant type.
pub const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
