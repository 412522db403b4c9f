//! The redirect back from the authorization server: parsing it and checking it against the pending
//! authorization.
//!
//! Two steps, so that an application with several flows in progress can find the right one first:
//!
//! 1. [`CallbackResponse::parse`] reads a full redirect URL, or just its query or fragment, in the
//!    response mode that was requested, and refuses duplicated parameters.
//! 2. [`CallbackResponse::verify`] compares `state` in constant time, checks that the URL is the
//!    redirect URI that was sent (any port for a loopback URI), checks RFC 9207 `iss`, and yields the
//!    code, or the server's error ([`CallbackError::Cancelled`] when the user said no).
//!
//! [`complete`] does both for the common case of one pending authorization.
//!
//! ```
//! # use matrix_oidc_core::{AuthorizationRequest, AuthorizationServerMetadata, DeviceId, Scope, SeededRandom, Timestamp};
//! # let metadata: AuthorizationServerMetadata = serde_json::from_str(r#"{
//! #     "issuer": "https://account.example.com/",
//! #     "authorization_endpoint": "https://account.example.com/oauth2/auth",
//! #     "token_endpoint": "https://account.example.com/oauth2/token",
//! #     "code_challenge_methods_supported": ["S256"] }"#).unwrap();
//! # let scope = Scope::matrix(DeviceId::parse("AABBBCCCDDD").unwrap()).build().unwrap();
//! # let redirect = "https://app.example.com/oauth2-callback".parse().unwrap();
//! # let pending = AuthorizationRequest::new(&metadata, "s6BhdRkqt3", redirect, scope)
//! #     .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1)).unwrap().pending;
//! use matrix_oidc_core::callback::{self, CallbackError};
//! let url = format!("https://app.example.com/oauth2-callback#state={}&code=iuB7Eiz9heengah1joh2ioy9ahChuP6R", pending.state);
//! let code = callback::complete(&url, &pending).unwrap();
//! assert_eq!(code.secret().expose(), "iuB7Eiz9heengah1joh2ioy9ahChuP6R");
//!
//! let denied = format!("#state={}&error=access_denied", pending.state);
//! assert!(matches!(callback::complete(&denied, &pending), Err(CallbackError::Cancelled { .. })));
//! ```

use crate::error::OAuthErrorBody;
use crate::secret::{Secret, constant_time_eq};
use crate::session::{PendingAuthorization, ResponseMode};
use std::borrow::Cow;
use url::Url;

/// The authorization code from a successful callback. Redacted in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode(Secret);

impl AuthorizationCode {
    /// Wraps a code (for codes obtained some other way, e.g. in tests).
    pub fn new(code: Secret) -> Self {
        Self(code)
    }

    /// The code.
    pub fn secret(&self) -> &Secret {
        &self.0
    }
}

/// The error codes of RFC 6749 §4.1.2.1, plus the OpenID Connect ones servers send in callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthorizationErrorKind {
    /// `invalid_request`.
    InvalidRequest,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// `access_denied`: the user (or the server) refused.
    AccessDenied,
    /// `unsupported_response_type`.
    UnsupportedResponseType,
    /// `invalid_scope`.
    InvalidScope,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// `login_required` (OpenID Connect; MAS answers `prompt=none` with it).
    LoginRequired,
    /// Any other code.
    Other,
}

impl AuthorizationErrorKind {
    /// Classifies an `error` string.
    pub fn of(error: &str) -> Self {
        match error {
            "invalid_request" => Self::InvalidRequest,
            "unauthorized_client" => Self::UnauthorizedClient,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "invalid_scope" => Self::InvalidScope,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "login_required" => Self::LoginRequired,
            _ => Self::Other,
        }
    }
}

/// What was wrong with a callback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The input is empty.
    #[error("the callback is empty")]
    Empty,
    /// The parameters are in the query but the fragment was requested, or the other way round.
    #[error(
        "the callback carries its parameters in the {found} but response_mode={expected} was requested"
    )]
    WrongComponent {
        /// The requested mode.
        expected: ResponseMode,
        /// Where the parameters were found.
        found: ResponseMode,
    },
    /// Neither a code nor an error nor a state in the component the response mode names.
    #[error("the callback has no authorization response parameters in its {mode}")]
    MissingParameters {
        /// The requested mode.
        mode: ResponseMode,
    },
    /// A response parameter appears twice (RFC 6749 §3.1 forbids it).
    #[error("the callback repeats the parameter {name:?}")]
    DuplicateParameter {
        /// The parameter.
        name: &'static str,
    },
    /// No `state` parameter.
    #[error("the callback has no state parameter")]
    MissingState,
    /// The `state` does not belong to this (or any) pending authorization: a stale, foreign or forged
    /// callback. matrix-js-sdk calls this `MissingOrInvalidStoredState`.
    #[error("the callback's state matches no pending authorization")]
    UnknownState,
    /// The callback URL is not the redirect URI that was sent.
    #[error("the callback arrived at {found} but the redirect URI sent was {expected}")]
    RedirectUriMismatch {
        /// The redirect URI sent.
        expected: String,
        /// Where the callback arrived (scheme, host, port and path only: the query holds the code).
        found: String,
    },
    /// RFC 9207: `iss` names another issuer (a mix-up attack, or a misconfiguration).
    #[error("the callback's iss {found:?} is not the issuer {expected} the request went to")]
    IssuerMismatch {
        /// The issuer the request went to.
        expected: String,
        /// The `iss` received.
        found: String,
    },
    /// RFC 9207: the server advertises `iss` but the callback lacks it.
    #[error(
        "the callback has no iss parameter although {expected} advertises \
         authorization_response_iss_parameter_supported"
    )]
    MissingIssuer {
        /// The issuer.
        expected: String,
    },
    /// The user declined (`access_denied`).
    #[error("authorization cancelled: {error}")]
    Cancelled {
        /// The error the server sent.
        error: OAuthErrorBody,
    },
    /// The server answered with another error.
    #[error("the authorization server answered with error {error}")]
    Authorization {
        /// The error the server sent.
        error: OAuthErrorBody,
    },
    /// Neither `code` nor `error`.
    #[error("the callback has a state but neither a code nor an error")]
    MissingCode,
}

impl CallbackError {
    /// The server's error body, for [`CallbackError::Cancelled`] and [`CallbackError::Authorization`].
    pub fn oauth_error(&self) -> Option<&OAuthErrorBody> {
        match self {
            CallbackError::Cancelled { error } | CallbackError::Authorization { error } => {
                Some(error)
            }
            _ => None,
        }
    }

    /// The class of the server's error, if the server sent one.
    pub fn kind(&self) -> Option<AuthorizationErrorKind> {
        self.oauth_error()
            .map(|e| AuthorizationErrorKind::of(&e.error))
    }

    /// Whether the user cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, CallbackError::Cancelled { .. })
    }
}

/// A parsed callback, not yet checked against a pending authorization.
///
/// `Debug` redacts the code and shows where the callback arrived without its query or fragment.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackResponse {
    state: Option<String>,
    code: Option<Secret>,
    error: Option<OAuthErrorBody>,
    iss: Option<String>,
    arrival: Arrival,
}

impl std::fmt::Debug for CallbackResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackResponse")
            .field("state", &self.state)
            .field("code", &self.code)
            .field("error", &self.error)
            .field("iss", &self.iss)
            .field(
                "arrived_at",
                &self.arrival.found_url().map(|u| without_query(&u)),
            )
            .finish()
    }
}

/// Where the callback arrived, when a full URL was given.
#[derive(Clone)]
enum Arrival {
    /// Only a query or fragment was given.
    Unknown,
    /// A full URL, parsed.
    Parsed(Url),
    /// A full URL whose text, up to the response parameters, is exactly the redirect URI given to
    /// [`CallbackResponse::parse_at`]: `input[..redirect_len]` is that URI's serialization. Parsing
    /// the input as a URL would succeed and give that URI back with the parameters added, so the
    /// parse is left for when it is needed: a pending authorization with another redirect URI.
    Exact { input: String, redirect_len: usize },
}

impl Arrival {
    /// The URL the callback arrived at, parsed (again, for [`Arrival::Exact`]).
    fn found_url(&self) -> Option<Url> {
        match self {
            Arrival::Unknown => None,
            Arrival::Parsed(url) => Some(url.clone()),
            Arrival::Exact { input, .. } => Url::parse(input).ok(),
        }
    }
}

impl PartialEq for Arrival {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Arrival::Unknown, Arrival::Unknown) => true,
            (Arrival::Unknown, _) | (_, Arrival::Unknown) => false,
            _ => self.found_url() == other.found_url(),
        }
    }
}

impl Eq for Arrival {}

const PARAMS: [&str; 6] = [
    "state",
    "code",
    "error",
    "error_description",
    "error_uri",
    "iss",
];

fn has_response_params(component: &str) -> bool {
    form_urlencoded::parse(component.as_bytes())
        .any(|(k, _)| matches!(k.as_ref(), "state" | "code" | "error"))
}

/// The response parameters of a callback, borrowed from its text where no decoding was needed.
struct Params<'a> {
    values: [Option<Cow<'a, str>>; 6],
}

impl<'a> Params<'a> {
    fn read(component: &'a str, mode: ResponseMode) -> Result<Self, CallbackError> {
        let mut values: [Option<Cow<'a, str>>; 6] = Default::default();
        for (k, v) in form_pairs(component) {
            if let Some(i) = PARAMS.iter().position(|p| *p == k) {
                if let (Some(slot), Some(name)) = (values.get_mut(i), PARAMS.get(i)) {
                    if slot.is_some() {
                        return Err(CallbackError::DuplicateParameter { name });
                    }
                    *slot = Some(v);
                }
            }
        }
        let [state, code, error, ..] = &values;
        if state.is_none() && code.is_none() && error.is_none() {
            return Err(CallbackError::MissingParameters { mode });
        }
        Ok(Self { values })
    }

    fn into_response(self, arrival: Arrival) -> CallbackResponse {
        let [state, code, error, error_description, error_uri, iss] = self.values;
        let error = error.and_then(|e| {
            OAuthErrorBody::from_pairs(
                [
                    Some(("error", e.as_ref())),
                    error_description
                        .as_deref()
                        .map(|d| ("error_description", d)),
                    error_uri.as_deref().map(|u| ("error_uri", u)),
                ]
                .into_iter()
                .flatten(),
            )
        });
        CallbackResponse {
            state: state.map(Cow::into_owned),
            code: code
                .filter(|c| !c.is_empty())
                .map(|c| Secret::new(c.into_owned())),
            error,
            iss: iss.map(Cow::into_owned),
            arrival,
        }
    }
}

/// The pairs of an `application/x-www-form-urlencoded` string, as `form_urlencoded::parse` decodes
/// them; a pair with nothing to decode (no `%`, no `+`) is handed out as it stands, without the
/// decoder's copies and UTF-8 check (the text is already a `str`, cut at ASCII delimiters).
fn form_pairs(component: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    component
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            if pair.bytes().any(|b| b == b'%' || b == b'+') {
                return form_urlencoded::parse(pair.as_bytes()).next();
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((Cow::Borrowed(k), Cow::Borrowed(v)))
        })
}

/// The response parameters of `input` when it is the text of `redirect_uri` followed directly by
/// them, in `mode`'s component, and URL parsing would read the same parameters from it.
fn exact_component<'a>(input: &'a str, mode: ResponseMode, redirect_uri: &Url) -> Option<&'a str> {
    // URL parsing removes tabs and newlines anywhere and control characters at the ends; the text
    // as it stands is what it would read only when there are none.
    if redirect_uri.fragment().is_some() || input.bytes().any(|b| b < 0x20) {
        return None;
    }
    let rest = input.strip_prefix(redirect_uri.as_str())?;
    match mode {
        // The fragment is everything after the first '#'; the redirect URI's own query (if any) is
        // part of what matched.
        ResponseMode::Fragment => rest.strip_prefix('#'),
        // The query runs from '?' to the first '#'. A redirect URI with a query of its own would
        // continue with '&': left to the URL parser.
        ResponseMode::Query if redirect_uri.query().is_none() => {
            let query = rest.strip_prefix('?')?;
            Some(query.split('#').next().unwrap_or(query))
        }
        ResponseMode::Query => None,
    }
}

impl CallbackResponse {
    /// Parses `input`, which is either the full URL the browser was redirected to, or only its query
    /// (`?` optional) or fragment (`#` optional), reading the parameters where `mode` puts them.
    pub fn parse(input: &str, mode: ResponseMode) -> Result<Self, CallbackError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(CallbackError::Empty);
        }
        if let Some(rest) = input.strip_prefix('?') {
            if mode == ResponseMode::Fragment {
                return Err(CallbackError::WrongComponent {
                    expected: mode,
                    found: ResponseMode::Query,
                });
            }
            Self::from_component(rest, mode, Arrival::Unknown)
        } else if let Some(rest) = input.strip_prefix('#') {
            if mode == ResponseMode::Query {
                return Err(CallbackError::WrongComponent {
                    expected: mode,
                    found: ResponseMode::Fragment,
                });
            }
            Self::from_component(rest, mode, Arrival::Unknown)
        } else if let Ok(url) = Url::parse(input) {
            let (wanted, other, other_mode) = match mode {
                ResponseMode::Query => (url.query(), url.fragment(), ResponseMode::Fragment),
                ResponseMode::Fragment => (url.fragment(), url.query(), ResponseMode::Query),
            };
            let wanted = wanted.unwrap_or("");
            if !has_response_params(wanted) {
                if other.is_some_and(has_response_params) {
                    return Err(CallbackError::WrongComponent {
                        expected: mode,
                        found: other_mode,
                    });
                }
                return Err(CallbackError::MissingParameters { mode });
            }
            let mut response = Params::read(wanted, mode)?.into_response(Arrival::Unknown);
            response.arrival = Arrival::Parsed(url);
            Ok(response)
        } else {
            // Not an absolute URL: a bare query or fragment.
            Self::from_component(input, mode, Arrival::Unknown)
        }
    }

    /// [`parse`](Self::parse) for a callback the application expects at `redirect_uri` (the one it
    /// sends in its authorization requests): the same result for every input, found faster.
    ///
    /// When `input` is `redirect_uri` followed directly by the response parameters (`#…` in
    /// fragment mode, `?…` in query mode), the parameters are read from the text as it is, without
    /// parsing the whole input as a URL; a later [`verify`](Self::verify) against a pending
    /// authorization with that redirect URI then needs no URL parse either. Anything else (another
    /// port of a loopback URI, a differently written URL, a redirect URI with its own query in query
    /// mode, control characters that URL parsing would strip) takes [`parse`](Self::parse)'s way.
    ///
    /// ```
    /// use matrix_oidc_core::ResponseMode;
    /// use matrix_oidc_core::callback::CallbackResponse;
    /// let redirect = "https://app.example.com/cb".parse().unwrap();
    /// let input = "https://app.example.com/cb#state=s1&code=c1";
    /// let parsed = CallbackResponse::parse_at(input, ResponseMode::Fragment, &redirect).unwrap();
    /// assert_eq!(parsed, CallbackResponse::parse(input, ResponseMode::Fragment).unwrap());
    /// assert_eq!(parsed.state(), Some("s1"));
    /// ```
    pub fn parse_at(
        input: &str,
        mode: ResponseMode,
        redirect_uri: &Url,
    ) -> Result<Self, CallbackError> {
        let trimmed = input.trim();
        // A component without response parameters, or with a repeated one, is answered by `parse`,
        // which also looks at the other component to tell which error it is.
        if let Some(Ok(params)) =
            exact_component(trimmed, mode, redirect_uri).map(|c| Params::read(c, mode))
        {
            return Ok(params.into_response(Arrival::Exact {
                input: trimmed.to_owned(),
                redirect_len: redirect_uri.as_str().len(),
            }));
        }
        Self::parse(input, mode)
    }

    fn from_component(
        component: &str,
        mode: ResponseMode,
        arrival: Arrival,
    ) -> Result<Self, CallbackError> {
        Ok(Params::read(component, mode)?.into_response(arrival))
    }

    /// The `state` received, to find the pending authorization in a store.
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }

    /// The `iss` received, if any.
    pub fn issuer(&self) -> Option<&str> {
        self.iss.as_deref()
    }

    /// Whether `pending` is the authorization this callback answers (constant-time `state` comparison).
    pub fn matches(&self, pending: &PendingAuthorization) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| constant_time_eq(s, &pending.state))
    }

    /// The pending authorization among `candidates` that this callback answers.
    pub fn find<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a PendingAuthorization>,
    ) -> Result<&'a PendingAuthorization, CallbackError> {
        if self.state.is_none() {
            return Err(CallbackError::MissingState);
        }
        // Every candidate is compared, so timing does not reveal which one matched.
        let mut found = None;
        for p in candidates {
            if self.matches(p) && found.is_none() {
                found = Some(p);
            }
        }
        found.ok_or(CallbackError::UnknownState)
    }

    /// Checks the callback against `pending` and returns the code.
    ///
    /// In order: `state` (missing or different: [`CallbackError::MissingState`] /
    /// [`CallbackError::UnknownState`]), the redirect URI when a full URL was parsed, RFC 9207 `iss`,
    /// then the outcome. Server errors are reported only once the callback is known to be genuine.
    pub fn verify(
        &self,
        pending: &PendingAuthorization,
    ) -> Result<AuthorizationCode, CallbackError> {
        if self.state.is_none() {
            return Err(CallbackError::MissingState);
        }
        if !self.matches(pending) {
            return Err(CallbackError::UnknownState);
        }
        let found = match &self.arrival {
            Arrival::Unknown => None,
            Arrival::Parsed(url) => Some(Cow::Borrowed(url)),
            // The redirect URI the text began with is this one: it matches, no parse needed.
            Arrival::Exact {
                input,
                redirect_len,
            } if input.get(..*redirect_len) == Some(pending.redirect_uri.as_str()) => None,
            Arrival::Exact { input, .. } => match Url::parse(input) {
                Ok(url) => Some(Cow::Owned(url)),
                // Cannot happen (the text began with a parsed URL's serialization); refuse anyway.
                Err(_) => {
                    return Err(CallbackError::RedirectUriMismatch {
                        expected: pending.redirect_uri.to_string(),
                        found: String::new(),
                    });
                }
            },
        };
        if let Some(url) = found {
            if !redirect_uri_matches(&pending.redirect_uri, &url) {
                return Err(CallbackError::RedirectUriMismatch {
                    expected: pending.redirect_uri.to_string(),
                    found: without_query(&url),
                });
            }
        }
        match &self.iss {
            // RFC 9207 compares strings; the stored issuer is a parsed URL, so compare the parsed forms
            // (which only normalizes what URL parsing normalizes, such as an empty path). The usual
            // case, the serialized issuer itself, needs no parse: parsing a serialized URL gives it back.
            Some(iss)
                if iss != pending.issuer.as_str()
                    && Url::parse(iss).ok().as_ref() != Some(&pending.issuer) =>
            {
                return Err(CallbackError::IssuerMismatch {
                    expected: pending.issuer.to_string(),
                    found: iss.clone(),
                });
            }
            None if pending.require_iss => {
                return Err(CallbackError::MissingIssuer {
                    expected: pending.issuer.to_string(),
                });
            }
            _ => {}
        }
        if let Some(error) = &self.error {
            return Err(if error.error == "access_denied" {
                CallbackError::Cancelled {
                    error: error.clone(),
                }
            } else {
                CallbackError::Authorization {
                    error: error.clone(),
                }
            });
        }
        self.code
            .clone()
            .map(AuthorizationCode)
            .ok_or(CallbackError::MissingCode)
    }
}

/// Parses `input` in `pending`'s response mode and verifies it against `pending`.
pub fn complete(
    input: &str,
    pending: &PendingAuthorization,
) -> Result<AuthorizationCode, CallbackError> {
    CallbackResponse::parse_at(input, pending.response_mode, &pending.redirect_uri)?.verify(pending)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether the callback `found` arrived at the redirect URI `expected`: same scheme, host, path, no
/// credentials, the same port unless the host is a loopback address (RFC 8252 §7.3: any port), and every
/// query parameter of `expected` present in `found`.
pub fn redirect_uri_matches(expected: &Url, found: &Url) -> bool {
    let loopback = expected.scheme() == "http" && is_loopback(expected);
    let port_ok = loopback || expected.port_or_known_default() == found.port_or_known_default();
    let query_ok = expected
        .query_pairs()
        .all(|pair| found.query_pairs().any(|other| other == pair));
    expected.scheme() == found.scheme()
        && expected.host() == found.host()
        && expected.path() == found.path()
        && expected.username() == found.username()
        && expected.password() == found.password()
        && port_ok
        && query_ok
}

fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scope, Timestamp};

    fn pending(redirect: &str, mode: ResponseMode) -> PendingAuthorization {
        PendingAuthorization {
            state: "ewubooN9weezeewah9fol4oothohroh3".into(),
            issuer: Url::parse("https://account.example.com/").unwrap(),
            token_endpoint: Url::parse("https://account.example.com/oauth2/token").unwrap(),
            client_id: "s6BhdRkqt3".into(),
            redirect_uri: Url::parse(redirect).unwrap(),
            code_verifier: Secret::new("v".repeat(43)),
            nonce: None,
            device_id: None,
            scope: Scope::parse("urn:matrix:client:api:*").unwrap(),
            response_mode: mode,
            require_iss: false,
            homeserver: None,
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    const STATE: &str = "ewubooN9weezeewah9fol4oothohroh3";

    #[test]
    fn spec_samples() {
        let p = pending(
            "https://app.example.com/oauth2-callback",
            ResponseMode::Fragment,
        );
        let ok = "https://app.example.com/oauth2-callback#state=ewubooN9weezeewah9fol4oothohroh3&code=iuB7Eiz9heengah1joh2ioy9ahChuP6R";
        assert_eq!(
            complete(ok, &p).unwrap().secret().expose(),
            "iuB7Eiz9heengah1joh2ioy9ahChuP6R"
        );
        let denied = "https://app.example.com/oauth2-callback#state=ewubooN9weezeewah9fol4oothohroh3&error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request.&error_uri=https%3A%2F%2Ferrors.example.com%2F";
        let e = complete(denied, &p).unwrap_err();
        assert!(e.is_cancelled());
        assert_eq!(e.kind(), Some(AuthorizationErrorKind::AccessDenied));
        let body = e.oauth_error().unwrap();
        assert_eq!(
            body.error_description.as_deref(),
            Some("The resource owner or authorization server denied the request.")
        );
        assert_eq!(
            body.error_uri.as_deref(),
            Some("https://errors.example.com/")
        );
    }

    #[test]
    fn rust_sdk_cases_in_query_mode() {
        let p = pending("https://example.com/", ResponseMode::Query);
        assert_eq!(
            CallbackResponse::parse("https://example.com", ResponseMode::Query).unwrap_err(),
            CallbackError::MissingParameters {
                mode: ResponseMode::Query
            }
        );
        let mut p456 = p.clone();
        p456.state = "456".into();
        assert_eq!(
            complete("https://example.com/?code=123&state=456", &p456)
                .unwrap()
                .secret()
                .expose(),
            "123"
        );
        let e = complete("https://example.com/?error=invalid_scope&state=456", &p456).unwrap_err();
        assert!(matches!(e, CallbackError::Authorization { .. }));
        assert_eq!(e.kind(), Some(AuthorizationErrorKind::InvalidScope));
        assert!(!e.is_cancelled());
    }

    #[test]
    fn raw_components_and_wrong_component() {
        let p = pending("https://app.example.com/cb", ResponseMode::Fragment);
        let raw = format!("state={STATE}&code=abc");
        assert_eq!(complete(&raw, &p).unwrap().secret().expose(), "abc");
        assert_eq!(
            complete(&format!("#{raw}"), &p).unwrap().secret().expose(),
            "abc"
        );
        assert_eq!(
            complete(&format!("?{raw}"), &p).unwrap_err(),
            CallbackError::WrongComponent {
                expected: ResponseMode::Fragment,
                found: ResponseMode::Query
            }
        );
        let e = complete(&format!("https://app.example.com/cb?{raw}"), &p).unwrap_err();
        assert_eq!(
            e,
            CallbackError::WrongComponent {
                expected: ResponseMode::Fragment,
                found: ResponseMode::Query
            }
        );
        assert!(e.to_string().contains("response_mode=fragment"), "{e}");
        let q = pending("http://127.0.0.1/cb", ResponseMode::Query);
        assert!(matches!(
            complete(&format!("#{raw}"), &q),
            Err(CallbackError::WrongComponent { .. })
        ));
        assert_eq!(complete("   ", &q), Err(CallbackError::Empty));
        assert_eq!(
            complete("foo=bar", &q),
            Err(CallbackError::MissingParameters {
                mode: ResponseMode::Query
            })
        );
    }

    #[test]
    fn state_problems() {
        let p = pending("https://app.example.com/cb", ResponseMode::Fragment);
        assert_eq!(complete("#code=abc", &p), Err(CallbackError::MissingState));
        assert_eq!(
            complete("#code=abc&state=ewubooN9weezeewah9fol4oothohroh4", &p),
            Err(CallbackError::UnknownState)
        );
        // A forged error callback with the wrong state is reported as unknown state, not as an error.
        assert_eq!(
            complete("#error=access_denied&state=x", &p),
            Err(CallbackError::UnknownState)
        );
        assert_eq!(
            complete(&format!("#state={STATE}&code=a&code=b"), &p),
            Err(CallbackError::DuplicateParameter { name: "code" })
        );
        assert_eq!(
            complete(&format!("#state={STATE}&state={STATE}&code=a"), &p),
            Err(CallbackError::DuplicateParameter { name: "state" })
        );
        assert_eq!(
            complete(&format!("#state={STATE}&code="), &p),
            Err(CallbackError::MissingCode)
        );
        assert_eq!(
            complete(&format!("#state={STATE}&session_state=x"), &p),
            Err(CallbackError::MissingCode)
        );
    }

    #[test]
    fn find_among_many() {
        let a = pending("https://app.example.com/cb", ResponseMode::Fragment);
        let mut b = a.clone();
        b.state = "other-state-value".into();
        let cb = CallbackResponse::parse("#state=other-state-value&code=x", ResponseMode::Fragment)
            .unwrap();
        assert_eq!(cb.find([&a, &b]).unwrap().state, "other-state-value");
        let cb = CallbackResponse::parse("#state=nope&code=x", ResponseMode::Fragment).unwrap();
        assert_eq!(cb.find([&a, &b]), Err(CallbackError::UnknownState));
        let cb = CallbackResponse::parse("#code=x", ResponseMode::Fragment).unwrap();
        assert_eq!(cb.find([&a]), Err(CallbackError::MissingState));
    }

    #[test]
    fn redirect_uri_rules() {
        let ok = |expected: &str, found: &str| {
            redirect_uri_matches(&Url::parse(expected).unwrap(), &Url::parse(found).unwrap())
        };
        assert!(ok(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53682/cb?code=1"
        ));
        assert!(ok("http://localhost/cb", "http://LOCALHOST:1/cb"));
        assert!(ok("http://[::1]:80/cb", "http://[::1]:9/cb"));
        assert!(!ok("https://localhost/cb", "https://localhost:8443/cb"));
        assert!(!ok(
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb"
        ));
        assert!(ok(
            "https://app.example.com/cb",
            "https://app.example.com:443/cb"
        ));
        assert!(!ok(
            "https://app.example.com/cb",
            "https://evil.example.com/cb"
        ));
        assert!(!ok(
            "https://app.example.com/cb",
            "http://app.example.com/cb"
        ));
        assert!(!ok(
            "https://app.example.com/cb",
            "https://app.example.com/cb2"
        ));
        assert!(ok(
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb?x=1&code=2"
        ));
        assert!(!ok(
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb?code=2"
        ));
        assert!(ok(
            "com.example.app:/callback",
            "com.example.app:/callback?code=1"
        ));

        let p = pending("http://127.0.0.1/cb", ResponseMode::Query);
        assert!(
            complete(
                &format!("http://127.0.0.1:4000/cb?state={STATE}&code=c"),
                &p
            )
            .is_ok()
        );
        let e = complete(
            &format!("http://127.0.0.1:4000/other?state={STATE}&code=secretcode"),
            &p,
        )
        .unwrap_err();
        assert_eq!(
            e,
            CallbackError::RedirectUriMismatch {
                expected: "http://127.0.0.1/cb".into(),
                found: "http://127.0.0.1:4000/other".into()
            }
        );
        assert!(!e.to_string().contains("secretcode"));
    }

    #[test]
    fn rfc9207_iss() {
        let mut p = pending("https://app.example.com/cb", ResponseMode::Fragment);
        let with = |iss: &str| format!("#state={STATE}&code=c&iss={iss}");
        assert!(complete(&with("https%3A%2F%2Faccount.example.com%2F"), &p).is_ok());
        // The same issuer without the trailing slash parses to the same URL.
        assert!(complete(&with("https%3A%2F%2Faccount.example.com"), &p).is_ok());
        assert_eq!(
            complete(&with("https%3A%2F%2Fevil.example.com%2F"), &p),
            Err(CallbackError::IssuerMismatch {
                expected: "https://account.example.com/".into(),
                found: "https://evil.example.com/".into()
            })
        );
        assert!(matches!(
            complete(&with("not a url"), &p),
            Err(CallbackError::IssuerMismatch { .. })
        ));
        assert!(complete(&format!("#state={STATE}&code=c"), &p).is_ok());
        p.require_iss = true;
        assert_eq!(
            complete(&format!("#state={STATE}&code=c"), &p),
            Err(CallbackError::MissingIssuer {
                expected: "https://account.example.com/".into()
            })
        );
        // An error callback from the wrong issuer is a mix-up, not a server error.
        assert!(matches!(
            complete(
                &format!("#state={STATE}&error=server_error&iss=https%3A%2F%2Fevil.example.com"),
                &p
            ),
            Err(CallbackError::IssuerMismatch { .. })
        ));
    }

    /// `parse_at` (text compared with the redirect URI, no URL parse) and `parse` (URL parse) give
    /// the same response, the same verification against every pending login, and the same errors.
    #[test]
    fn parse_at_and_parse_agree() {
        let redirects = [
            "https://app.example.com/cb",
            "https://app.example.com/oauth2-callback",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "http://[::1]/cb",
            "com.example.app:/callback",
            "https://app.example.com/cb?x=1",
        ];
        let suffixes = [
            format!("#state={STATE}&code=c"),
            format!("?state={STATE}&code=c"),
            format!("#state={STATE}&code=c&iss=https%3A%2F%2Faccount.example.com%2F"),
            format!("#state={STATE}&code=c&iss=https%3A%2F%2Faccount.example.com"),
            format!("#state={STATE}&code=c&iss=https%3A%2F%2Fevil.example.com%2F"),
            format!("?state={STATE}&code=c&iss=not+a+url"),
            format!("#state={STATE}&code=a&code=b"),
            format!("?state={STATE}&state={STATE}&code=a"),
            "#code=c".to_owned(),
            "?code=c".to_owned(),
            format!("#state={STATE}&error=access_denied&error_description=a+b%20c&error_uri=x"),
            format!("?state={STATE}&error=server_error"),
            format!("#state={STATE}&code=c+d%2B%25%"),
            format!("#state={STATE}&code=%FF%FE"),
            format!("#state={STATE}&code=é ü"),
            format!("#state={STATE}&code=<>\"`'{{}}|\\^"),
            format!("?state={STATE}&code=<>\"`'{{}}|\\^"),
            format!("#state={STATE}&co\tde=c"),
            format!("#state={STATE}&code=c\n"),
            format!("#state={STATE}&code=c\u{0}"),
            format!("#state={STATE}&code=c\u{7f}"),
            format!("#state={STATE}&code="),
            "#state=other&code=c".to_owned(),
            format!("?state={STATE}&code=c#frag"),
            format!("?state={STATE}&code=c#state=x&code=d"),
            format!("#state={STATE}&code=c?x=1"),
            format!("&state={STATE}&code=c"),
            format!("&state={STATE}&code=c#state=x"),
            "#".to_owned(),
            "?".to_owned(),
            String::new(),
            "#foo=bar".to_owned(),
            "?foo=bar".to_owned(),
            format!("/more#state={STATE}&code=c"),
            format!("x#state={STATE}&code=c"),
            format!("  #state={STATE}&code=c  "),
        ];
        let prefixes = |redirect: &str| {
            let url = Url::parse(redirect).unwrap();
            let mut out = vec![redirect.to_owned(), String::new()];
            if url.port().is_none() && url.host().is_some() {
                let mut other = url.clone();
                other.set_port(Some(4000)).unwrap();
                out.push(other.as_str().trim_end_matches('?').to_owned());
            }
            out.push(redirect.replace("app.example.com", "APP.example.com:443"));
            out.push(redirect.replace("/cb", "/./cb"));
            out.push(redirect.replace("127.0.0.1", "127.1"));
            out.push(format!(" {redirect}"));
            out
        };
        let pendings: Vec<PendingAuthorization> = redirects
            .iter()
            .flat_map(|r| {
                [ResponseMode::Query, ResponseMode::Fragment].map(|mode| pending(r, mode))
            })
            .flat_map(|p| {
                let mut strict = p.clone();
                strict.require_iss = true;
                [p, strict]
            })
            .collect();
        let mut exact = 0;
        for redirect in redirects {
            let redirect_url = Url::parse(redirect).unwrap();
            for prefix in prefixes(redirect) {
                for suffix in &suffixes {
                    let input = format!("{prefix}{suffix}");
                    for mode in [ResponseMode::Query, ResponseMode::Fragment] {
                        let slow = CallbackResponse::parse(&input, mode);
                        let fast = CallbackResponse::parse_at(&input, mode, &redirect_url);
                        assert_eq!(fast, slow, "{input} {mode:?}");
                        if matches!(&fast, Ok(r) if matches!(r.arrival, Arrival::Exact { .. })) {
                            exact += 1;
                        }
                        let (Ok(fast), Ok(slow)) = (fast, slow) else {
                            continue;
                        };
                        assert_eq!(fast.state(), slow.state(), "{input}");
                        assert_eq!(fast.issuer(), slow.issuer(), "{input}");
                        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{input}");
                        for p in &pendings {
                            assert_eq!(
                                fast.verify(p),
                                slow.verify(p),
                                "{input} {mode:?} against {}",
                                p.redirect_uri
                            );
                        }
                        assert_eq!(fast.find(&pendings), slow.find(&pendings));
                    }
                }
            }
        }
        // The table does exercise the text path, not only the fallback.
        assert!(exact > 50, "{exact}");
    }

    #[test]
    fn form_pairs_decode_as_form_urlencoded_does() {
        use crate::{RandomSource, SeededRandom};
        let alphabet = [
            "&", "=", "%", "+", "2", "B", "F", "a", "é", " ", "%2", "%41", "%e9",
        ];
        let mut rng = SeededRandom::new(3);
        for _ in 0..5000 {
            let mut bytes = [0u8; 24];
            rng.fill(&mut bytes).unwrap();
            let len = usize::from(bytes[0] % 24);
            let s: String = bytes[1..=len]
                .iter()
                .map(|b| alphabet[usize::from(*b) % alphabet.len()])
                .collect();
            let ours: Vec<_> = form_pairs(&s).collect();
            let theirs: Vec<_> = form_urlencoded::parse(s.as_bytes()).collect();
            assert_eq!(ours, theirs, "{s}");
        }
    }

    #[test]
    fn debug_shows_neither_the_code_nor_the_query() {
        for (input, mode) in [
            (
                "http://127.0.0.1/cb?state=s&code=the-secret-code",
                ResponseMode::Query,
            ),
            (
                "https://app.example.com/cb#state=s&code=the-secret-code",
                ResponseMode::Fragment,
            ),
        ] {
            let redirect = Url::parse(input.split(['?', '#']).next().unwrap()).unwrap();
            for parsed in [
                CallbackResponse::parse(input, mode).unwrap(),
                CallbackResponse::parse_at(input, mode, &redirect).unwrap(),
            ] {
                let dbg = format!("{parsed:?}");
                assert!(!dbg.contains("the-secret-code"), "{dbg}");
                assert!(dbg.contains(redirect.as_str()), "{dbg}");
            }
        }
    }

    #[test]
    fn random_inputs_never_panic_and_never_yield_a_code_without_the_state() {
        use crate::{RandomSource, SeededRandom};
        let alphabet: &[u8] = b"?#&=%:/.@[]abcSTATEcode_-+ \x00\xff";
        let p = pending("http://127.0.0.1/cb", ResponseMode::Query);
        let mut rng = SeededRandom::new(11);
        for _ in 0..5000 {
            let mut bytes = [0u8; 40];
            rng.fill(&mut bytes).unwrap();
            let len = usize::from(bytes[0] % 40);
            let s: String = bytes[..len]
                .iter()
                .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
                .collect();
            for input in [
                s.clone(),
                format!("http://127.0.0.1/cb?{s}"),
                format!("#{s}"),
            ] {
                assert!(complete(&input, &p).is_err(), "{input}");
            }
        }
    }

    #[test]
    fn debug_redacts_the_code_and_untrusted_input_never_panics() {
        let cb = CallbackResponse::parse(
            &format!("#state={STATE}&code=the-secret-code"),
            ResponseMode::Fragment,
        )
        .unwrap();
        assert!(!format!("{cb:?}").contains("the-secret-code"));
        let p = pending("https://app.example.com/cb", ResponseMode::Fragment);
        for junk in [
            "#",
            "?",
            "#%",
            "#&&&",
            "#state",
            "#=x",
            "https://",
            "://",
            "#state=%FF%FE&code=%00",
            "\u{0}",
            "https://app.example.com/cb#state=é&code=ü",
        ] {
            let _ = complete(junk, &p);
        }
    }
}
