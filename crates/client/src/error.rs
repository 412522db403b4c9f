//! The one error type of this crate.

use matrix_oidc_core::callback::CallbackError;
use matrix_oidc_core::device_grant::DeviceGrantError;
use matrix_oidc_core::discovery::DiscoveryError;
use matrix_oidc_core::legacy::LegacyError;
use matrix_oidc_core::oidc::{IdTokenError, LogoutError, UserinfoError};
use matrix_oidc_core::registration::{NotSupportedReason, RegistrationError};
use matrix_oidc_core::revoke::RevocationError;
use matrix_oidc_core::whoami::WhoamiError;
use matrix_oidc_core::{
    AuthorizeError, OAuthErrorBody, RandomError, ScopeError, Timestamp, TokenError, TransportError,
};
use matrix_oidc_storage::StoreError;
use std::sync::Arc;

/// Which step a [`Error::Transport`] failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Fetching the authorization server metadata.
    Discovery,
    /// Registering the client.
    Registration,
    /// Exchanging an authorization code.
    CodeExchange,
    /// Asking for a device code.
    DeviceAuthorization,
    /// Polling for the tokens of a device authorization.
    DevicePoll,
    /// Asking the homeserver who the token belongs to.
    Whoami,
    /// Reading the legacy login flows.
    LoginFlows,
    /// Revoking a token.
    Revocation,
    /// Fetching the OpenID Provider's key set (`jwks_uri`).
    Jwks,
    /// Calling the userinfo endpoint.
    Userinfo,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Discovery => "discovery",
            Operation::Registration => "client registration",
            Operation::CodeExchange => "code exchange",
            Operation::DeviceAuthorization => "device authorization",
            Operation::DevicePoll => "device grant polling",
            Operation::Whoami => "whoami",
            Operation::LoginFlows => "reading the login flows",
            Operation::Revocation => "token revocation",
            Operation::Jwks => "fetching the provider's key set",
            Operation::Userinfo => "the userinfo request",
        })
    }
}

/// Everything that can go wrong in this crate.
///
/// The variants a caller acts on differently are separate, mirroring matrix-js-sdk's `OidcError` /
/// `OAuth2Error` and its `TokenRefreshLogoutError` / `TokenRefreshError` pair:
///
/// | js-sdk | here |
/// |---|---|
/// | `OidcError.NotSupported` | [`Error::NotSupported`] |
/// | `OidcError.General`, `Misconfigured`, `OpSupport` | [`Error::Discovery`] |
/// | `DynamicRegistrationNotSupported` | [`Error::RegistrationNotSupported`] |
/// | `DynamicRegistrationFailed`, `DynamicRegistrationInvalid` | [`Error::Registration`] |
/// | `MissingOrInvalidStoredState` | [`Error::StateNotFound`] |
/// | `CodeExchangeFailed`, `InvalidBearerTokenResponse` | [`Error::Token`] |
/// | (user pressed "Deny") | [`Error::Cancelled`] |
/// | `TokenRefreshLogoutError` | [`Error::LoggedOut`] |
/// | `TokenRefreshError` | [`Error::RefreshFailed`] |
/// | `RevokeTokenFailed` | [`Error::Revocation`], inside [`crate::LogoutReport::failures`] (a logout never fails for it) |
/// | `DeviceAuthorizationGrantFailed` | [`Error::DeviceGrant`] |
/// | (oidc-client-ts' ID token errors) | [`Error::IdToken`] |
///
/// Network failures are lifted to [`Error::Transport`] whichever step they happened in (except
/// during a refresh, which reports [`Error::RefreshFailed`] so that "try again later" is one case).
/// Messages never contain a token, code, verifier or device code.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The homeserver does not offer the OAuth 2.0 API (it answered `404 M_UNRECOGNIZED`): use the
    /// legacy login API ([`crate::OAuthClient::login_api`] tells which).
    #[error("{homeserver} does not support the OAuth 2.0 API: {source}")]
    NotSupported {
        /// The homeserver asked.
        homeserver: String,
        /// What each discovery endpoint answered.
        source: DiscoveryError,
    },
    /// Discovery failed otherwise: invalid metadata, an unusable answer, a wrong URL.
    #[error(transparent)]
    Discovery(DiscoveryError),
    /// The homeserver now delegates to another authorization server than the one that issued the
    /// session's tokens; they cannot be refreshed or revoked there. Sign in again.
    #[error(
        "the homeserver's authorization server is now {found}, but the session was issued by {expected}"
    )]
    IssuerChanged {
        /// The session's issuer.
        expected: String,
        /// The issuer the homeserver names now.
        found: String,
    },
    /// The authorization server cannot register clients (no registration endpoint, or it does not
    /// offer a grant type the client needs): configure a pre-registered client id instead.
    #[error("{issuer} does not support dynamic client registration: {reason}")]
    RegistrationNotSupported {
        /// The issuer.
        issuer: String,
        /// Why.
        reason: NotSupportedReason,
    },
    /// The registration was refused, or its answer is unusable, or the client metadata breaks a rule.
    #[error(transparent)]
    Registration(RegistrationError),
    /// The authorization request cannot be built (the server lacks PKCE S256, a prompt, …).
    #[error(transparent)]
    Authorize(AuthorizeError),
    /// The requested scope is invalid.
    #[error(transparent)]
    Scope(ScopeError),
    /// The callback's `state` matches no pending login: it was finished already, aborted, expired, or
    /// started elsewhere (js-sdk's `MissingOrInvalidStoredState`).
    #[error("no pending login matches the callback's state (already finished, expired or unknown)")]
    StateNotFound,
    /// The user declined (`access_denied`), in the browser or on the device-grant page.
    #[error("the user cancelled the authorization: {error}")]
    Cancelled {
        /// What the server said.
        error: OAuthErrorBody,
    },
    /// The callback URL is not a usable authorization response, or the server sent an error there.
    #[error(transparent)]
    Callback(CallbackError),
    /// The token endpoint refused the code, or its answer is unusable.
    #[error(transparent)]
    Token(TokenError),
    /// The device grant failed: the code expired, the server does not offer the grant, or polling hit
    /// an error it cannot recover from.
    #[error(transparent)]
    DeviceGrant(DeviceGrantError),
    /// The session is over: a refresh was refused for good (or the session was removed, by a logout
    /// here or in another process). Sign in again; with `soft_logout` the homeserver lets the user
    /// keep local data (js-sdk's `TokenRefreshLogoutError`).
    #[error("the session is logged out{}", match .source { Some(e) => format!(": {e}"), None => String::new() })]
    LoggedOut {
        /// Whether the homeserver allowed a soft logout.
        soft_logout: bool,
        /// The refusal that ended the session, when it was a refresh.
        source: Option<TokenError>,
    },
    /// A refresh failed in a way that may pass (network, 5xx, 429); the session is kept. No new
    /// attempt is made before `retry_at` (js-sdk's `TokenRefreshError`).
    #[error("refreshing the access token failed; retry after {retry_at:?}{}", match .source { Some(e) => format!(": {e}"), None => String::new() })]
    RefreshFailed {
        /// When the next attempt is allowed.
        retry_at: Timestamp,
        /// The failure, if it happened in this call (`None` when an earlier one set the backoff).
        source: Option<TokenError>,
    },
    /// `whoami` failed, or named another user or device than expected.
    #[error(transparent)]
    Whoami(WhoamiError),
    /// The revocation endpoint refused, or answered unusably.
    #[error(transparent)]
    Revocation(RevocationError),
    /// Reading the legacy login flows failed.
    #[error(transparent)]
    Legacy(LegacyError),
    /// The network failed.
    #[error("{operation} failed: {source}")]
    Transport {
        /// The step.
        operation: Operation,
        /// What the transport said.
        source: TransportError,
    },
    /// The store failed.
    #[error("storage failed: {0}")]
    Store(Arc<StoreError>),
    /// The random source failed.
    #[error(transparent)]
    Random(RandomError),
    /// An OpenID Connect ID token was refused: missing although `openid` was requested, a bad
    /// signature, a key the provider's key set does not hold, wrong `iss`/`aud`/`nonce`, expired,
    /// or — after a refresh — another `sub` than the session's (OpenID Connect Core §3.1.3.7,
    /// §12.2). The inner error says which check failed.
    #[error(transparent)]
    IdToken(IdTokenError),
    /// The userinfo call failed, or its answer was refused (another `sub` than the ID token's,
    /// not JSON, …).
    #[error(transparent)]
    Userinfo(UserinfoError),
    /// The end-session (RP-initiated logout) URL cannot be built; [`LogoutError::NotSupported`]
    /// when the server has no `end_session_endpoint`.
    #[error(transparent)]
    EndSession(LogoutError),
    /// The operation needs a validated ID token, and the session has none: it did not sign in with
    /// OpenID Connect (see `LoginOptions::openid`, feature `oidc`).
    #[error("the session has no validated ID token (it did not sign in with OpenID Connect)")]
    NoIdToken,
}

impl Error {
    /// Whether the user must sign in again.
    pub fn is_logged_out(&self) -> bool {
        matches!(self, Error::LoggedOut { .. })
    }

    /// Whether the homeserver does not support the OAuth 2.0 API.
    pub fn is_not_supported(&self) -> bool {
        matches!(self, Error::NotSupported { .. })
    }

    /// Whether the same call may succeed later: network failures, 5xx and 429 answers, a refresh in
    /// backoff.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::RefreshFailed { .. } => true,
            Error::Discovery(e) => e.is_retryable(),
            Error::Token(e) => e.is_transient(),
            Error::DeviceGrant(DeviceGrantError::Token(e)) => e.is_transient(),
            Error::Revocation(e) => e.is_transient(),
            Error::Registration(RegistrationError::Http { error, .. }) => {
                error.status().is_some_and(|s| s >= 500 || s == 429)
            }
            _ => false,
        }
    }

    /// The OAuth error the server sent (`error`, `error_description`, `error_uri`), if any.
    pub fn oauth_error(&self) -> Option<&OAuthErrorBody> {
        match self {
            Error::Cancelled { error } => Some(error),
            Error::Callback(e) => e.oauth_error(),
            Error::Token(e) => e.oauth_error(),
            Error::LoggedOut {
                source: Some(e), ..
            }
            | Error::RefreshFailed {
                source: Some(e), ..
            } => e.oauth_error(),
            Error::Registration(RegistrationError::Rejected { error, .. }) => Some(error),
            Error::DeviceGrant(
                DeviceGrantError::AccessDenied { error }
                | DeviceGrantError::ExpiredToken { error }
                | DeviceGrantError::Rejected { error, .. },
            ) => Some(error),
            Error::DeviceGrant(DeviceGrantError::Token(e)) => e.oauth_error(),
            Error::Revocation(e) => e.oauth_error(),
            _ => None,
        }
    }

    pub(crate) fn discovery(homeserver: &str, e: DiscoveryError) -> Self {
        if e.is_not_supported() {
            Error::NotSupported {
                homeserver: homeserver.to_owned(),
                source: e,
            }
        } else {
            Error::Discovery(e)
        }
    }

    pub(crate) fn transport(operation: Operation, source: TransportError) -> Self {
        Error::Transport { operation, source }
    }

    pub(crate) fn registration(issuer: &str, e: RegistrationError) -> Self {
        match e {
            RegistrationError::NotSupported { reason } => Error::RegistrationNotSupported {
                issuer: issuer.to_owned(),
                reason,
            },
            other => Error::Registration(other),
        }
    }

    pub(crate) fn callback(e: CallbackError) -> Self {
        match e {
            CallbackError::Cancelled { error } => Error::Cancelled { error },
            CallbackError::UnknownState => Error::StateNotFound,
            other => Error::Callback(other),
        }
    }

    pub(crate) fn token(operation: Operation, e: TokenError) -> Self {
        match e {
            TokenError::Transport { source, .. } => Error::transport(operation, source),
            other => Error::Token(other),
        }
    }

    pub(crate) fn device(operation: Operation, e: DeviceGrantError) -> Self {
        match e {
            DeviceGrantError::Transport(source) => Error::transport(operation, source),
            DeviceGrantError::AccessDenied { error } => Error::Cancelled { error },
            other => Error::DeviceGrant(other),
        }
    }

    pub(crate) fn whoami(e: WhoamiError) -> Self {
        match e {
            WhoamiError::Transport(source) => Error::transport(Operation::Whoami, source),
            other => Error::Whoami(other),
        }
    }

    pub(crate) fn revocation(e: RevocationError) -> Self {
        match e {
            RevocationError::Transport(source) => Error::transport(Operation::Revocation, source),
            other => Error::Revocation(other),
        }
    }

    pub(crate) fn legacy(e: LegacyError) -> Self {
        match e {
            LegacyError::Transport(source) => Error::transport(Operation::LoginFlows, source),
            other => Error::Legacy(other),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(Arc::new(e))
    }
}

impl From<RandomError> for Error {
    fn from(e: RandomError) -> Self {
        Error::Random(e)
    }
}

impl From<AuthorizeError> for Error {
    fn from(e: AuthorizeError) -> Self {
        match e {
            AuthorizeError::Random(r) => Error::Random(r),
            other => Error::Authorize(other),
        }
    }
}

impl From<ScopeError> for Error {
    fn from(e: ScopeError) -> Self {
        Error::Scope(e)
    }
}
