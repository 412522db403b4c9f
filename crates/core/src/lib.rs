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
//!
//! Features (all off by default): `transport` adds the async `transport::HttpClient`
//! trait that the transport crates implement (it brings in the `async-trait` macro);
//! `wasm-js` gives [`OsRandom`] the browser's random source on
//! `wasm32-unknown-unknown`.

#![doc = include_str!("../doc/login-flow.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod account;
pub mod authorize;
pub mod cache;
pub mod callback;
pub mod device_grant;
pub mod device_id;
pub mod discovery;
pub mod error;
pub mod http;
pub mod legacy;
pub mod metadata;
pub mod oidc;
pub mod pkce;
pub mod random;
pub mod refresh;
pub mod registration;
pub mod revoke;
pub mod scope;
pub mod secret;
pub mod session;
pub mod time;
pub mod token;
pub mod transport;
pub mod whoami;

pub use account::AccountAction;
pub use authorize::{
    AuthorizationRequest, AuthorizationStart, AuthorizationUrl, AuthorizeError, LoginHint, Prompt,
};
pub use cache::CacheHints;
pub use callback::{AuthorizationCode, CallbackError, CallbackResponse};
pub use device_grant::{
    DeviceAuthorization, DeviceAuthorizationRequest, DeviceGrantError, DevicePoller, PollAction,
    PollStatus,
};
pub use device_id::{DeviceId, DeviceIdError};
pub use discovery::{
    Discovered, DiscoveryError, DiscoveryOptions, DiscoverySource, IssuerDiscovery,
    MatrixDiscovery, Step,
};
pub use error::{BodyExcerpt, MatrixErrorBody, OAuthErrorBody, ResponseError};
pub use http::{Expectations, OutgoingRequest};
pub use metadata::{
    AuthorizationServerMetadata, MetadataError, MetadataField, Profile, UrlPolicy,
    ValidationOptions,
};
pub use pkce::{Pkce, PkceError};
#[cfg(any(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    feature = "wasm-js"
))]
pub use random::OsRandom;
pub use random::{
    DEFAULT_POOL_BYTES, LOGIN_RANDOM_BYTES, MAX_POOL_BYTES, MAX_PREFETCH_BYTES, PrefetchedRandom,
    RandomError, RandomPool, RandomSource, SeededRandom,
};
pub use refresh::{
    RefreshCoordinator, RefreshDecision, RefreshOutcome, RefreshPolicy, RefreshReason,
    RefreshTicket,
};
pub use registration::{
    ClientMetadata, ClientRegistration, MetadataRules, Registration, RegistrationError,
};
pub use revoke::{RevocationError, RevocationRequest, TokenTypeHint};
pub use scope::{MatrixScopeBuilder, Scope, ScopeError, ScopeFlavor};
pub use secret::Secret;
pub use session::{PendingAuthorization, ResponseMode, Session, TokenSet};
pub use time::Timestamp;
pub use token::{GrantKind, LogoutPolicy, TokenError, TokenRequest};
#[cfg(feature = "transport")]
pub use transport::HttpClient;
pub use transport::TransportError;
pub use whoami::{Whoami, WhoamiError, WhoamiRequest};

/// The RFC 8628 device authorization grant type.
pub const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
