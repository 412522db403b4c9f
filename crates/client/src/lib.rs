//! # matrix-oidc
//!
//! The async API applications call to sign in to a Matrix homeserver through its OAuth 2.0 API, and
//! to keep the session alive: matrix-js-sdk's `oauth` module and matrix-rust-sdk's `OAuth`, rebuilt
//! over the sans-IO [`matrix_oidc_core`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use matrix_oidc::{LoginOptions, OAuthClient};
//! use matrix_oidc::core::registration::ClientMetadata;
//! use url::Url;
//! use matrix_oidc_reqwest::ReqwestTransport;
//!
//! let client = OAuthClient::new(ReqwestTransport::try_default()?);
//! let app = ClientMetadata::native(Url::parse("https://app.example.org/")?)
//!     .with_client_name("Example")
//!     .with_redirect_uri(Url::parse("http://127.0.0.1/callback")?);
//! let homeserver = Url::parse("https://matrix.example.org")?;
//! let start = client
//!     .start_login(&LoginOptions::new(homeserver, Url::parse("http://127.0.0.1:8765/callback")?, app))
//!     .await?;
//! println!("open {}", start.url);
//! # let callback_url = String::new();
//! // … the browser comes back to http://127.0.0.1:8765/callback?code=…&state=…
//! let session = client.finish_login(&callback_url).await?;
//! let token = session.access_token().await?; // refreshed when due
//! # let _ = token;
//! session.logout().await?;
//! # Ok(()) }
//! ```
//!
//! ## What it offers
//!
//! | | |
//! |---|---|
//! | discovery, cached per HTTP caching headers, one request per server at a time | [`OAuthClient::discover`] |
//! | "OAuth or legacy?" | [`OAuthClient::login_api`] |
//! | client registration (fresh per login, or a pre-registered id) | [`ClientConfig`], [`OAuthClient::register_client`] |
//! | authorization code login | [`OAuthClient::start_login`], [`OAuthClient::finish_login`] |
//! | device-code login | [`OAuthClient::start_device_login`], [`DeviceLogin::wait`] |
//! | valid access tokens, single-flight refresh (in and across processes) | [`AuthSession::access_token`], [`AuthSession::handle_unknown_token`] |
//! | "refresh now", joined with any refresh in flight | [`AuthSession::refresh`] |
//! | login at an OAuth 2.0 / OpenID Connect issuer, without Matrix | [`LoginOptions::for_issuer`] |
//! | logout with revocation | [`AuthSession::logout`] |
//! | account management URLs | [`AuthSession::account_management_url`] |
//! | token-change notifications | [`OAuthClient::subscribe`], [`OAuthClientBuilder::on_event`] |
//!
//! ## OpenID Connect (feature `oidc`)
//!
//! Matrix needs no ID token, so the OpenID Connect layer is optional, and without the `oidc`
//! feature this crate does not depend on any signature crate. With it:
//!
//! * `LoginOptions::openid()` asks for the `openid` scope with a nonce; `finish_login` then
//!   validates the ID token (signature against the provider's key set, `iss`, `aud`/`azp`,
//!   `exp`/`iat`, nonce, `at_hash`/`c_hash`) before storing the session, and
//!   `AuthSession::id_token_claims()` returns its claims.
//! * An ID token in a refresh response is validated too, and must be for the same subject
//!   (OpenID Connect Core §12.2); one for someone else ends the session.
//! * Key sets are cached per `jwks_uri` and shared by every session of the client; a token naming
//!   an unknown key (rotation) causes one refetch, at most once a minute.
//! * `AuthSession::userinfo()` (its `sub` must be the ID token's) and
//!   `AuthSession::end_session_url()` (RP-initiated logout).
//!
//! `oidc-ring` uses `ring` instead of the RustCrypto crates for signatures; `oidc-rustcrypto-next`
//! keeps RustCrypto on its newer `rsa`/`p256`/`p384` releases (faster; needs Rust 1.87).
//!
//! ## No runtime of its own
//!
//! The client is generic over the transport ([`HttpClient`](matrix_oidc_core::HttpClient)) and the
//! stores ([`matrix_oidc_storage`]'s traits), reads time through a [`Clock`], waits only through a
//! [`Sleep`] you pass to [`DeviceLogin::wait`], and spawns nothing unless given a [`Spawn`]. With
//! the `tokio` feature, `TokioSleep` and `TokioSpawner` are ready-made.
//!
//! ## Guarantees
//!
//! * **One refresh at a time.** However many tasks ask for a token while it is due, one token
//!   request is made and all get its result. Across processes sharing a store, the store's lock
//!   does the same: whoever takes it second re-reads the tokens and finds them fresh.
//! * **A rotated refresh token is never lost.** The refresh is stored before its tokens are
//!   handed out, and it runs in a shared future that outlives any cancelled caller.
//! * **Logged out means logged out.** A refresh the server refuses for good removes the session
//!   from the store and fails with [`Error::LoggedOut`], distinct from the temporary
//!   [`Error::RefreshFailed`].
//! * **No secret in logs.** `tracing` spans and events name URLs, statuses and ids, never tokens,
//!   codes, verifiers or device codes.
//!
//! See `docs/parity.md` for how each matrix-js-sdk and matrix-rust-sdk function maps to this crate.

#![cfg_attr(docsrs, feature(doc_cfg))]
// `Error` is 128 bytes because it carries the core's errors unboxed, so that callers can match
// nested variants (`Error::DeviceGrant(DeviceGrantError::ExpiredToken { .. })`). It is only ever
// returned from network operations, where that size costs nothing measurable.
#![allow(clippy::result_large_err)]

mod cache;
mod client;
mod device;
mod error;
mod events;
mod login;
#[cfg(feature = "oidc")]
mod oidc;
mod runtime;
mod session;
mod single_flight;

pub use matrix_oidc_core as core;
pub use matrix_oidc_storage as storage;

pub use client::{DEFAULT_METADATA_TTL, OAuthClient, OAuthClientBuilder};
pub use device::{DeviceLogin, DeviceLoginOptions, DevicePoll};
pub use error::{Error, Operation};
pub use events::{EventHook, LogoutReason, SessionEvent, SessionEvents};
pub use login::{ClientConfig, LoginOptions, LoginStart};
pub use matrix_oidc_core::AuthorizationUrl;
pub use runtime::{BoxFuture, Clock, ManualClock, Sleep, Spawn, SystemClock};
#[cfg(feature = "tokio")]
pub use runtime::{TokioSleep, TokioSpawner};
pub use session::{AccessToken, AuthSession, LogoutReport, RevocationFailure};

// The types an application meets in the signatures above.
pub use matrix_oidc_core::legacy::LoginApi;
#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub use matrix_oidc_core::oidc::{
    EndSessionRequest, EndSessionUrl, IdTokenClaims, JwksCache, JwksCacheConfig, UserInfo,
};
pub use matrix_oidc_core::registration::ClientMetadata;
pub use matrix_oidc_core::revoke::TokenTypeHint;
pub use matrix_oidc_core::{
    AccountAction, DeviceId, Discovered, LoginHint, RefreshPolicy, ResponseMode, Secret, Session,
    Timestamp,
};
/// The signature backends (feature `oidc`).
#[cfg(feature = "oidc")]
#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
pub use matrix_oidc_jose as jose;
pub use matrix_oidc_storage::SessionKey;

#[cfg(test)]
mod api_tests {
    //! Compile-time checks: every public future is `Send` (usable with `tokio::spawn` and other
    //! work-stealing executors), and the long-lived types are `Send + Sync`.
    use super::*;
    use url::Url;

    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync + 'static>() {}

    #[allow(dead_code, clippy::too_many_arguments)]
    fn futures_are_send(
        client: &OAuthClient,
        session: &AuthSession,
        device: &mut DeviceLogin,
        url: &Url,
        login: &LoginOptions,
        device_options: &DeviceLoginOptions,
        token: &AccessToken,
        metadata: &ClientMetadata,
    ) {
        send(&client.discover(url));
        send(&client.discover_issuer(url));
        send(&client.login_api(url));
        send(&client.register_client(url, metadata));
        send(&client.account_management_url(url, AccountAction::Profile, None));
        send(&client.start_login(login));
        send(&client.finish_login("x"));
        send(&client.abort_login("x"));
        send(&client.start_device_login(device_options));
        send(&client.restore(session.key()));
        send(&client.sessions());
        send(&client.import_session(session.session()));
        send(&session.access_token());
        send(&session.refresh());
        send(&session.handle_unknown_token(token, false));
        send(&session.logout());
        send(&session.whoami());
        send(&session.account_management_url(AccountAction::Profile));
        send(&device.poll_once());
    }

    #[allow(dead_code)]
    fn wait_is_send(device: DeviceLogin, sleep: &dyn Sleep) {
        send(&device.wait(sleep));
    }

    #[test]
    fn long_lived_types_are_send_and_sync() {
        send_sync::<OAuthClient>();
        send_sync::<AuthSession>();
        send_sync::<DeviceLogin>();
        send_sync::<Error>();
        send_sync::<AccessToken>();
        send_sync::<SessionEvent>();
    }
}

/// The workspace README, whose Rust blocks `cargo test` compiles and runs as this crate's doctests
/// (this crate's dev-dependencies include both transports), so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
