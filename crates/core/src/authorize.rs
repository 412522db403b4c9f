//! Starting an authorization code flow: the URL to open, and what to keep until the callback.
//!
//! [`AuthorizationRequest`] checks what it asks for against the server's metadata before any browser is
//! opened (PKCE `S256`, the response mode, `prompt` values), generates the PKCE verifier, `state` and
//! optional `nonce` from the [`RandomSource`] it is given, and returns an [`AuthorizationStart`]: the URL
//! and a [`PendingAuthorization`] that can be persisted and finished later, in another process if need
//! be (see [`crate::callback`]).
//!
//! ```
//! use matrix_oidc_core::{
//!     AuthorizationRequest, AuthorizationServerMetadata, DeviceId, ResponseMode, Scope, SeededRandom,
//!     Timestamp,
//! };
//! let metadata: AuthorizationServerMetadata = serde_json::from_str(r#"{
//!     "issuer": "https://account.example.com/",
//!     "authorization_endpoint": "https://account.example.com/oauth2/auth",
//!     "token_endpoint": "https://account.example.com/oauth2/token",
//!     "response_modes_supported": ["query", "fragment"],
//!     "code_challenge_methods_supported": ["S256"]
//! }"#).unwrap();
//! let scope = Scope::matrix(DeviceId::parse("AABBBCCCDDD").unwrap()).build().unwrap();
//! let redirect = "https://app.example.com/oauth2-callback".parse().unwrap();
//! let start = AuthorizationRequest::new(&metadata, "s6BhdRkqt3", redirect, scope)
//!     .build(Timestamp::from_unix_seconds(1_700_000_000), &mut SeededRandom::new(1))
//!     .unwrap();
//! assert!(start.url.as_str().starts_with("https://account.example.com/oauth2/auth?response_type=code&client_id=s6BhdRkqt3"));
//! // An https redirect URI gets the fragment response mode.
//! assert_eq!(start.pending.response_mode, ResponseMode::Fragment);
//! ```

use crate::metadata::{AuthorizationServerMetadata, ListValue};
use crate::pkce::{self, Pkce};
use crate::random::{RandomError, RandomSource};
use crate::scope::Scope;
use crate::secret::Secret;
use crate::session::{PendingAuthorization, ResponseMode};
use crate::time::Timestamp;
use url::{Position, Url};

/// A `prompt` value (OpenID Connect Core §3.1.2.1). Matrix defines only [`Prompt::Create`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prompt {
    /// `create`: show the registration page instead of the login page.
    Create,
    /// `login`: ask the user to authenticate again even with a session.
    Login,
    /// `consent`: ask for consent again.
    Consent,
}

impl Prompt {
    /// The protocol value.
    pub fn as_str(self) -> &'static str {
        match self {
            Prompt::Create => "create",
            Prompt::Login => "login",
            Prompt::Consent => "consent",
        }
    }
}

/// A `login_hint` (MSC4198): which account the user probably wants to sign in to.
///
/// The server may ignore it, and the user may sign in to another account, so it is a hint only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginHint(String);

impl LoginHint {
    /// `mxid:<user id>` for a full Matrix user id such as `@alice:example.com`.
    pub fn mxid(user_id: &str) -> Result<Self, AuthorizeError> {
        let invalid = |reason: &str| AuthorizeError::InvalidLoginHint {
            hint: user_id.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = user_id
            .strip_prefix('@')
            .ok_or_else(|| invalid("a Matrix user id starts with '@'"))?;
        let (localpart, server) = rest
            .split_once(':')
            .ok_or_else(|| invalid("a Matrix user id has the form @localpart:server"))?;
        if localpart.is_empty() || server.is_empty() {
            return Err(invalid("a Matrix user id has the form @localpart:server"));
        }
        if !user_id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(invalid(
                "a Matrix user id holds only printable ASCII without spaces",
            ));
        }
        Ok(Self(format!("mxid:{user_id}")))
    }

    /// Any hint of MSC4198's form `prefix:value` (for example `email:alice@example.com`).
    pub fn raw(hint: &str) -> Result<Self, AuthorizeError> {
        let invalid = |reason: &str| AuthorizeError::InvalidLoginHint {
            hint: hint.to_owned(),
            reason: reason.to_owned(),
        };
        let (prefix, value) = hint
            .split_once(':')
            .ok_or_else(|| invalid("a login hint has the form prefix:value"))?;
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_graphic()) {
            return Err(invalid(
                "the prefix must be one or more printable ASCII characters other than ':'",
            ));
        }
        if value.is_empty() || !value.chars().all(|c| c.is_ascii_graphic()) {
            return Err(invalid(
                "the value must be one or more printable ASCII characters",
            ));
        }
        Ok(Self(hint.to_owned()))
    }

    /// The protocol value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an authorization request could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The client id is empty.
    #[error("the client id is empty")]
    EmptyClientId,
    /// The server does not advertise PKCE `S256` in `code_challenge_methods_supported`.
    #[error(
        "{issuer} does not advertise PKCE S256 (code_challenge_methods_supported: {advertised:?}); \
         refusing to authorize without it"
    )]
    PkceS256NotSupported {
        /// The issuer.
        issuer: String,
        /// What it advertises.
        advertised: Option<Vec<String>>,
    },
    /// The server does not advertise the `code` response type.
    #[error(
        "{issuer} does not advertise the 'code' response type (response_types_supported: {advertised:?})"
    )]
    CodeResponseTypeNotSupported {
        /// The issuer.
        issuer: String,
        /// What it advertises.
        advertised: Vec<String>,
    },
    /// The chosen response mode is not in `response_modes_supported`.
    #[error(
        "{issuer} does not support response_mode={mode} (response_modes_supported: {advertised:?})"
    )]
    ResponseModeNotSupported {
        /// The issuer.
        issuer: String,
        /// The mode asked for.
        mode: &'static str,
        /// What it advertises.
        advertised: Vec<String>,
    },
    /// A `prompt` value the server does not advertise (`prompt=create` needs `prompt_values_supported`
    /// to list `create`).
    #[error("{issuer} does not support prompt={prompt} (prompt_values_supported: {advertised:?})")]
    PromptNotSupported {
        /// The issuer.
        issuer: String,
        /// The prompt asked for.
        prompt: &'static str,
        /// What it advertises.
        advertised: Option<Vec<String>>,
    },
    /// The redirect URI has a fragment, which OAuth forbids.
    #[error("the redirect URI {redirect_uri} has a fragment; redirect URIs must not")]
    RedirectUriHasFragment {
        /// The redirect URI.
        redirect_uri: String,
    },
    /// A Matrix device token without the Client-Server API token of the same flavor.
    #[error(
        "scope {scope:?} asks for a device without the Client-Server API scope; servers refuse that"
    )]
    DeviceScopeWithoutApiScope {
        /// The scope.
        scope: String,
    },
    /// A malformed `login_hint`.
    #[error("invalid login hint {hint:?}: {reason}")]
    InvalidLoginHint {
        /// The hint given.
        hint: String,
        /// What is wrong.
        reason: String,
    },
}

/// The URL to send the user to, and the state to keep until the callback arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizationStart {
    /// The authorization URL: open it in the system browser (or redirect a web app to it).
    pub url: AuthorizationUrl,
    /// Everything needed to finish the flow. Persist it keyed by [`PendingAuthorization::state`].
    pub pending: PendingAuthorization,
}

/// Builder for an authorization code request with PKCE.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthorizationRequest<'a> {
    metadata: &'a AuthorizationServerMetadata,
    client_id: String,
    redirect_uri: Url,
    scope: Scope,
    response_mode: Option<ResponseMode>,
    prompts: Vec<Prompt>,
    login_hint: Option<LoginHint>,
    nonce: bool,
    homeserver: Option<Url>,
}

impl<'a> AuthorizationRequest<'a> {
    /// A request to `metadata`'s authorization endpoint for `client_id`, coming back to `redirect_uri`,
    /// asking for `scope`.
    pub fn new(
        metadata: &'a AuthorizationServerMetadata,
        client_id: impl Into<String>,
        redirect_uri: Url,
        scope: Scope,
    ) -> Self {
        Self {
            metadata,
            client_id: client_id.into(),
            redirect_uri,
            scope,
            response_mode: None,
            prompts: Vec::new(),
            login_hint: None,
            nonce: false,
            homeserver: None,
        }
    }

    /// Overrides the response mode. The default is [`ResponseMode::Fragment`] for an `https` redirect
    /// URI (the Matrix specification asks for it) and [`ResponseMode::Query`] otherwise.
    pub fn response_mode(mut self, mode: ResponseMode) -> Self {
        self.response_mode = Some(mode);
        self
    }

    /// Adds a `prompt` value; [`build`](Self::build) fails unless the server advertises it.
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        if !self.prompts.contains(&prompt) {
            self.prompts.push(prompt);
        }
        self
    }

    /// Asks for the registration page (`prompt=create`).
    pub fn prompt_create(self) -> Self {
        self.prompt(Prompt::Create)
    }

    /// Sends a `login_hint`.
    pub fn login_hint(mut self, hint: LoginHint) -> Self {
        self.login_hint = Some(hint);
        self
    }

    /// Sends an OpenID Connect `nonce` (kept in the pending authorization for ID token checks).
    pub fn with_nonce(mut self) -> Self {
        self.nonce = true;
        self
    }

    /// Records the homeserver the login is for, so the session built from the callback knows it.
    pub fn homeserver(mut self, homeserver: Url) -> Self {
        self.homeserver = Some(homeserver);
        self
    }

    /// The response mode [`build`](Self::build) will use.
    pub fn effective_response_mode(&self) -> ResponseMode {
        self.response_mode
            .unwrap_or_else(|| default_response_mode(&self.redirect_uri))
    }

    fn check(&self) -> Result<ResponseMode, AuthorizeError> {
        let md = self.metadata;
        let issuer = || md.issuer.to_string();
        if self.client_id.is_empty() {
            return Err(AuthorizeError::EmptyClientId);
        }
        if self.redirect_uri.fragment().is_some() {
            return Err(AuthorizeError::RedirectUriHasFragment {
                redirect_uri: self.redirect_uri.to_string(),
            });
        }
        if !AuthorizationServerMetadata::list_contains(
            &md.code_challenge_methods_supported,
            pkce::S256,
        ) {
            return Err(AuthorizeError::PkceS256NotSupported {
                issuer: issuer(),
                advertised: md.code_challenge_methods_supported.as_deref().map(owned),
            });
        }
        if let Some(types) = &md.response_types_supported {
            // Exactly "code": "code id_token" is a different (hybrid) response type.
            if !types.iter().any(|t| t == "code") {
                return Err(AuthorizeError::CodeResponseTypeNotSupported {
                    issuer: issuer(),
                    advertised: owned(types),
                });
            }
        }
        let mode = self.effective_response_mode();
        // RFC 8414: an absent response_modes_supported means ["query", "fragment"].
        if let Some(modes) = &md.response_modes_supported {
            if !modes.iter().any(|m| m == mode.as_str()) {
                return Err(AuthorizeError::ResponseModeNotSupported {
                    issuer: issuer(),
                    mode: mode.as_str(),
                    advertised: owned(modes),
                });
            }
        }
        for prompt in &self.prompts {
            if !AuthorizationServerMetadata::list_contains(
                &md.prompt_values_supported,
                prompt.as_str(),
            ) {
                return Err(AuthorizeError::PromptNotSupported {
                    issuer: issuer(),
                    prompt: prompt.as_str(),
                    advertised: md.prompt_values_supported.as_deref().map(owned),
                });
            }
        }
        if let (Some(flavor), true) = (self.scope.flavor(), self.scope.device_token().is_some()) {
            if !self.scope.contains(flavor.api_token_str()) {
                return Err(AuthorizeError::DeviceScopeWithoutApiScope {
                    scope: self.scope.to_string(),
                });
            }
        }
        Ok(mode)
    }

    /// The authorization URL: the endpoint with the request's parameters added to its query.
    ///
    /// Written into one pre-sized string, byte for byte what appending the pairs to a clone of the
    /// endpoint's `Url` with `query_pairs_mut` gives (a test holds the two side by side), without
    /// cloning the endpoint, growing its serialization pair by pair, or parsing the result again.
    fn url(
        &self,
        mode: ResponseMode,
        state: &str,
        challenge: &str,
        nonce: Option<&Secret>,
    ) -> AuthorizationUrl {
        let endpoint = &self.metadata.authorization_endpoint;
        // Up to the end of the query; the endpoint's fragment, if any, goes back at the end, as
        // `query_pairs_mut` puts it back.
        let base = &endpoint[..Position::AfterQuery];
        let fragment = endpoint.fragment();
        let scope_len: usize = self.scope.tokens().map(|t| t.len() + 1).sum();
        let hint_len = self.login_hint.as_ref().map_or(0, |h| h.as_str().len());
        // Form-encoding at most triples a byte: with this the string never grows.
        let escaped = 3
            * (self.client_id.len()
                + self.redirect_uri.as_str().len()
                + scope_len
                + hint_len
                + state.len()
                + challenge.len()
                + nonce.map_or(0, |n| n.expose().len()));
        let mut out = String::with_capacity(
            base.len() + fragment.map_or(0, |f| f.len() + 1) + QUERY_KEYS_LEN + escaped,
        );
        out.push_str(base);
        let mut query = QueryWriter::new(&mut out, endpoint.query());
        query.pair("response_type", ["code"]);
        query.pair("client_id", [self.client_id.as_str()]);
        query.pair("redirect_uri", [self.redirect_uri.as_str()]);
        query.pair("scope", self.scope.tokens());
        query.pair("state", [state]);
        query.pair("response_mode", [mode.as_str()]);
        query.pair("code_challenge", [challenge]);
        query.pair("code_challenge_method", [pkce::S256]);
        if !self.prompts.is_empty() {
            query.pair("prompt", self.prompts.iter().map(|p| p.as_str()));
        }
        if let Some(hint) = &self.login_hint {
            query.pair("login_hint", [hint.as_str()]);
        }
        if let Some(nonce) = nonce {
            query.pair("nonce", [nonce.expose()]);
        }
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(fragment);
        }
        AuthorizationUrl(out)
    }

    /// Checks the request against the metadata, draws the PKCE verifier, `state` and `nonce` from `rng`,
    /// and returns the URL with the pending authorization (created at `now`).
    pub fn build(
        self,
        now: Timestamp,
        rng: &mut dyn RandomSource,
    ) -> Result<AuthorizationStart, AuthorizeError> {
        let mode = self.check()?;
        // One draw for the verifier, the state and the nonce: with the OS source, one system call
        // instead of three (the bytes are the same as three draws in a row would give).
        let mut random = [0u8; pkce::VERIFIER_BYTES + 2 * pkce::STATE_BYTES];
        let used = if self.nonce {
            random.len()
        } else {
            pkce::VERIFIER_BYTES + pkce::STATE_BYTES
        };
        rng.fill(&mut random[..used])?;
        let split = random
            .split_first_chunk::<{ pkce::VERIFIER_BYTES }>()
            .and_then(|(verifier, rest)| {
                let (state, rest) = rest.split_first_chunk::<{ pkce::STATE_BYTES }>()?;
                Some((
                    verifier,
                    state,
                    rest.first_chunk::<{ pkce::STATE_BYTES }>()?,
                ))
            });
        // The buffer is sized from these constants, so the split cannot fail.
        let (verifier_bytes, state_bytes, nonce_bytes) =
            split.ok_or_else(|| RandomError("random buffer too short".to_owned()))?;
        let pkce = Pkce::from_random_bytes(verifier_bytes);
        let state = pkce::state_from_random_bytes(state_bytes);
        let nonce = self
            .nonce
            .then(|| Secret::new(pkce::state_from_random_bytes(nonce_bytes)));
        let md = self.metadata;
        let url = self.url(mode, &state, pkce.challenge(), nonce.as_ref());
        let pending = PendingAuthorization {
            state,
            issuer: md.issuer.clone(),
            token_endpoint: md.token_endpoint.clone(),
            client_id: self.client_id,
            redirect_uri: self.redirect_uri,
            code_verifier: pkce.into_verifier(),
            nonce,
            device_id: self.scope.device_id(),
            scope: self.scope,
            response_mode: mode,
            require_iss: md.authorization_response_iss_parameter_supported,
            homeserver: self.homeserver,
            created_at: now,
        };
        Ok(AuthorizationStart { url, pending })
    }
}

/// Room for the parameter names with their `=` and `&`, so the URL string is allocated once.
const QUERY_KEYS_LEN: usize = 192;

/// Appends `application/x-www-form-urlencoded` pairs to a URL's query, as `url`'s
/// `query_pairs_mut` does: a `&` before each pair unless the query is still empty.
struct QueryWriter<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> QueryWriter<'a> {
    /// Starts after `out`, a URL up to the end of its query, whose query is `query`.
    fn new(out: &'a mut String, query: Option<&str>) -> Self {
        let empty = match query {
            None => {
                out.push('?');
                true
            }
            Some(q) => q.is_empty(),
        };
        Self { out, empty }
    }

    /// `key=value`, where the value is `parts` joined by spaces (a scope or a `prompt` list), each
    /// encoded as it is written: a space joins them as the `+` it would be encoded to.
    fn pair<'v>(&mut self, key: &str, parts: impl IntoIterator<Item = &'v str>) {
        if !self.empty {
            self.out.push('&');
        }
        self.empty = false;
        // The names are this module's constants, made only of characters form-encoding keeps.
        self.out.push_str(key);
        self.out.push('=');
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                self.out.push('+');
            }
            push_form_encoded(self.out, part);
        }
    }
}

/// Appends `value` encoded as `form_urlencoded::byte_serialize` encodes it (the encoding
/// `query_pairs_mut` uses): ASCII letters, digits and `*-._` as they are, a space as `+`, every
/// other byte as `%XX` with upper-case hex digits.
///
/// Runs of bytes that stay as they are are copied whole, and a table says which bytes those are:
/// about half the instructions of `byte_serialize`'s iterator, which was the largest single cost
/// of a login start. A test checks both encodings agree on every ASCII character and on
/// multi-byte text.
/// A metadata list as the owned strings an error carries.
fn owned(list: &[ListValue]) -> Vec<String> {
    list.iter().map(|v| v.to_string()).collect()
}

fn push_form_encoded(out: &mut String, value: &str) {
    let mut run_start = 0;
    for (i, &byte) in value.as_bytes().iter().enumerate() {
        let index = usize::from(byte);
        // 256 entries, one per byte value: always in bounds.
        if FORM_UNCHANGED[index] {
            continue;
        }
        // Bytes of multi-byte characters are all escaped, so a run of unchanged bytes starts and
        // ends on character boundaries and `get` always gives it.
        out.push_str(value.get(run_start..i).unwrap_or_default());
        if byte == b' ' {
            out.push('+');
        } else {
            out.push_str(
                PERCENT_ENCODED
                    .get(3 * index..3 * index + 3)
                    .unwrap_or_default(),
            );
        }
        run_start = i + 1;
    }
    out.push_str(value.get(run_start..).unwrap_or_default());
}

/// Which bytes form-encoding leaves as they are: ASCII letters and digits and `*-._`.
const FORM_UNCHANGED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'*' | b'-' | b'.' | b'_');
        b += 1;
    }
    table
};

/// `%00%01…%FF`: the escape of byte `b` is the three characters at `3 * b`.
const PERCENT_ENCODED: &str = match std::str::from_utf8(&PERCENT_ENCODED_BYTES) {
    Ok(s) => s,
    Err(_) => panic!("the escapes are ASCII"),
};
const PERCENT_ENCODED_BYTES: [u8; 768] = {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut table = [0u8; 768];
    let mut b = 0;
    while b < 256 {
        table[3 * b] = b'%';
        table[3 * b + 1] = HEX[b >> 4];
        table[3 * b + 2] = HEX[b & 0x0F];
        b += 1;
    }
    table
};

/// An authorization URL, as [`AuthorizationRequest::build`] writes it.
///
/// It is the text of the URL (what a browser is sent to), kept as a string because building and
/// re-parsing a [`Url`] for it costs more than everything else a login start computes. Use
/// [`as_str`](Self::as_str) or [`Display`](std::fmt::Display) to open or print it,
/// [`query_pairs`](Self::query_pairs) to read its parameters, and [`to_url`](Self::to_url) when a
/// [`Url`] is wanted.
///
/// ```
/// # use matrix_oidc_core::{AuthorizationRequest, AuthorizationServerMetadata, DeviceId, Scope,
/// #     SeededRandom, Timestamp};
/// # let metadata: AuthorizationServerMetadata = serde_json::from_str(r#"{
/// #     "issuer": "https://account.example.com/",
/// #     "authorization_endpoint": "https://account.example.com/oauth2/auth",
/// #     "token_endpoint": "https://account.example.com/oauth2/token",
/// #     "code_challenge_methods_supported": ["S256"] }"#).unwrap();
/// # let scope = Scope::matrix(DeviceId::parse("AABBBCCCDDD").unwrap()).build().unwrap();
/// # let redirect = "https://app.example.com/cb".parse().unwrap();
/// let start = AuthorizationRequest::new(&metadata, "s6BhdRkqt3", redirect, scope)
///     .build(Timestamp::from_unix_seconds(1_700_000_000), &mut SeededRandom::new(1))?;
/// let state = start.url.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v);
/// assert_eq!(state.as_deref(), Some(start.pending.state.as_str()));
/// let url: url::Url = start.url.to_url()?;
/// assert_eq!(url.as_str(), start.url.as_str());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthorizationUrl(String);

impl AuthorizationUrl {
    /// The URL's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The query: what follows the `?`, up to a `#` if the endpoint has a fragment.
    pub fn query(&self) -> Option<&str> {
        // In a serialized URL a `?` or `#` before the query would be percent-encoded, so the first
        // `?` starts the query and the first `#` after it the fragment.
        let (_, rest) = self.0.split_once('?')?;
        Some(rest.split_once('#').map_or(rest, |(query, _)| query))
    }

    /// The query's decoded `(name, value)` pairs, in order.
    pub fn query_pairs(&self) -> form_urlencoded::Parse<'_> {
        form_urlencoded::parse(self.query().unwrap_or_default().as_bytes())
    }

    /// Parses the URL into a [`Url`]. It was written from a `Url` and encoded parameters, so this
    /// succeeds; the `Result` is there because the type cannot promise it.
    pub fn to_url(&self) -> Result<Url, url::ParseError> {
        Url::parse(&self.0)
    }
}

impl std::fmt::Display for AuthorizationUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for AuthorizationUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<AuthorizationUrl> for String {
    fn from(url: AuthorizationUrl) -> Self {
        url.0
    }
}

impl PartialEq<str> for AuthorizationUrl {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for AuthorizationUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The Matrix specification's choice: `fragment` for an `https` redirect URI, `query` otherwise
/// (custom schemes and `http` loopback URIs).
pub fn default_response_mode(redirect_uri: &Url) -> ResponseMode {
    if redirect_uri.scheme() == "https" {
        ResponseMode::Fragment
    } else {
        ResponseMode::Query
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceId, ScopeFlavor, SeededRandom};

    pub(crate) fn metadata(extra: serde_json::Value) -> AuthorizationServerMetadata {
        let mut base = serde_json::json!({
            "issuer": "https://account.example.com/",
            "authorization_endpoint": "https://account.example.com/oauth2/auth",
            "token_endpoint": "https://account.example.com/oauth2/token",
            "revocation_endpoint": "https://account.example.com/oauth2/revoke",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn scope() -> Scope {
        Scope::matrix(DeviceId::parse("AAABBBCCCDDD").unwrap())
            .build()
            .unwrap()
    }

    fn params(url: &AuthorizationUrl) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn builds_the_spec_sample_parameters() {
        let md = metadata(serde_json::json!({}));
        let redirect = Url::parse("https://app.example.com/oauth2-callback").unwrap();
        let start = AuthorizationRequest::new(&md, "s6BhdRkqt3", redirect.clone(), scope())
            .build(Timestamp::from_unix_seconds(10), &mut SeededRandom::new(5))
            .unwrap();
        let p = params(&start.url);
        let names: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "response_type",
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "response_mode",
                "code_challenge",
                "code_challenge_method"
            ]
        );
        assert_eq!(get(&p, "response_type"), Some("code"));
        assert_eq!(get(&p, "client_id"), Some("s6BhdRkqt3"));
        assert_eq!(
            get(&p, "redirect_uri"),
            Some("https://app.example.com/oauth2-callback")
        );
        assert_eq!(
            get(&p, "scope"),
            Some("urn:matrix:client:api:* urn:matrix:client:device:AAABBBCCCDDD")
        );
        assert_eq!(get(&p, "response_mode"), Some("fragment"));
        assert_eq!(get(&p, "code_challenge_method"), Some("S256"));
        let pending = &start.pending;
        assert_eq!(get(&p, "state"), Some(pending.state.as_str()));
        assert_eq!(
            get(&p, "code_challenge"),
            Some(pkce::s256_challenge(pending.code_verifier.expose()).as_str())
        );
        assert_eq!(pending.client_id, "s6BhdRkqt3");
        assert_eq!(pending.redirect_uri, redirect);
        assert_eq!(
            pending.device_id.as_ref().map(|d| d.as_str()),
            Some("AAABBBCCCDDD")
        );
        assert_eq!(pending.scope, scope());
        assert_eq!(pending.created_at, Timestamp::from_unix_seconds(10));
        assert_eq!(
            pending.token_endpoint.as_str(),
            "https://account.example.com/oauth2/token"
        );
        assert!(pending.nonce.is_none());
        assert!(!pending.require_iss);
        assert!(pending.state.len() >= 22, "state carries at least 128 bits");
        // The verifier never leaves in the URL.
        assert!(!start.url.as_str().contains(pending.code_verifier.expose()));
    }

    #[test]
    fn encoding_matches_the_msc4198_sample() {
        let md = metadata(serde_json::json!({}));
        let start = AuthorizationRequest::new(
            &md,
            "s6BhdRkqt3",
            Url::parse("https://app.example.com/oauth2-callback").unwrap(),
            scope(),
        )
        .login_hint(LoginHint::mxid("@example-user:example.com").unwrap())
        .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
        .unwrap();
        let q = start.url.query().unwrap();
        assert!(
            q.contains("&scope=urn%3Amatrix%3Aclient%3Aapi%3A*+urn%3Amatrix%3Aclient%3Adevice%3AAAABBBCCCDDD&"),
            "{q}"
        );
        assert!(
            q.ends_with("&login_hint=mxid%3A%40example-user%3Aexample.com"),
            "{q}"
        );
    }

    #[test]
    fn response_mode_defaults_and_override() {
        let md = metadata(serde_json::json!({}));
        for (uri, mode) in [
            ("https://app.example.com/cb", ResponseMode::Fragment),
            ("http://127.0.0.1:5173/cb", ResponseMode::Query),
            ("com.example.app:/callback", ResponseMode::Query),
        ] {
            let r = AuthorizationRequest::new(&md, "c", Url::parse(uri).unwrap(), scope());
            assert_eq!(r.effective_response_mode(), mode, "{uri}");
            let start = r
                .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
                .unwrap();
            assert_eq!(start.pending.response_mode, mode);
        }
        let start = AuthorizationRequest::new(
            &md,
            "c",
            Url::parse("https://app.example.com/cb").unwrap(),
            scope(),
        )
        .response_mode(ResponseMode::Query)
        .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
        .unwrap();
        assert_eq!(get(&params(&start.url), "response_mode"), Some("query"));

        let md = metadata(serde_json::json!({"response_modes_supported": ["query"]}));
        let e = AuthorizationRequest::new(
            &md,
            "c",
            Url::parse("https://app.example.com/cb").unwrap(),
            scope(),
        )
        .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
        .unwrap_err();
        assert!(
            matches!(
                e,
                AuthorizeError::ResponseModeNotSupported {
                    mode: "fragment",
                    ..
                }
            ),
            "{e}"
        );
        // Absent list: RFC 8414 default of query and fragment.
        let mut md = metadata(serde_json::json!({}));
        md.response_modes_supported = None;
        assert!(
            AuthorizationRequest::new(
                &md,
                "c",
                Url::parse("https://a.example/cb").unwrap(),
                scope()
            )
            .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
            .is_ok()
        );
    }

    #[test]
    fn prompt_create_only_when_advertised() {
        let redirect = Url::parse("http://127.0.0.1/cb").unwrap();
        let md = metadata(serde_json::json!({"prompt_values_supported": ["login"]}));
        let e = AuthorizationRequest::new(&md, "c", redirect.clone(), scope())
            .prompt_create()
            .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
            .unwrap_err();
        assert!(matches!(
            e,
            AuthorizeError::PromptNotSupported {
                prompt: "create",
                ..
            }
        ));
        assert!(e.to_string().contains("prompt=create"), "{e}");
        let md = metadata(serde_json::json!({}));
        assert!(matches!(
            AuthorizationRequest::new(&md, "c", redirect.clone(), scope())
                .prompt_create()
                .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1)),
            Err(AuthorizeError::PromptNotSupported {
                advertised: None,
                ..
            })
        ));
        let md = metadata(serde_json::json!({"prompt_values_supported": ["login", "create"]}));
        let start = AuthorizationRequest::new(&md, "c", redirect, scope())
            .prompt_create()
            .prompt(Prompt::Login)
            .prompt_create()
            .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
            .unwrap();
        assert_eq!(get(&params(&start.url), "prompt"), Some("create login"));
    }

    #[test]
    fn metadata_and_input_checks() {
        let redirect = Url::parse("http://127.0.0.1/cb").unwrap();
        let md = metadata(serde_json::json!({"code_challenge_methods_supported": ["plain"]}));
        assert!(matches!(
            AuthorizationRequest::new(&md, "c", redirect.clone(), scope())
                .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1)),
            Err(AuthorizeError::PkceS256NotSupported { .. })
        ));
        let mut md = metadata(serde_json::json!({}));
        md.code_challenge_methods_supported = None;
        assert!(matches!(
            AuthorizationRequest::new(&md, "c", redirect.clone(), scope())
                .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1)),
            Err(AuthorizeError::PkceS256NotSupported {
                advertised: None,
                ..
            })
        ));
        let md = metadata(serde_json::json!({"response_types_supported": ["code id_token"]}));
        assert!(matches!(
            AuthorizationRequest::new(&md, "c", redirect.clone(), scope())
                .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1)),
            Err(AuthorizeError::CodeResponseTypeNotSupported { .. })
        ));
        let md = metadata(serde_json::json!({}));
        assert_eq!(
            AuthorizationRequest::new(&md, "", redirect.clone(), scope())
                .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
                .unwrap_err(),
            AuthorizeError::EmptyClientId
        );
        assert!(matches!(
            AuthorizationRequest::new(
                &md,
                "c",
                Url::parse("https://app.example.com/cb#frag").unwrap(),
                scope()
            )
            .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1)),
            Err(AuthorizeError::RedirectUriHasFragment { .. })
        ));
        let device_only = Scope::parse("urn:matrix:client:device:AAABBBCCCDDD").unwrap();
        assert!(matches!(
            AuthorizationRequest::new(&md, "c", redirect.clone(), device_only)
                .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1)),
            Err(AuthorizeError::DeviceScopeWithoutApiScope { .. })
        ));
        // Generic OpenID Connect use: no Matrix tokens at all is fine.
        let oidc = Scope::parse("openid email").unwrap();
        let start = AuthorizationRequest::new(&md, "c", redirect, oidc)
            .with_nonce()
            .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
            .unwrap();
        let nonce = start.pending.nonce.clone().unwrap();
        assert_eq!(get(&params(&start.url), "nonce"), Some(nonce.expose()));
        assert!(start.pending.device_id.is_none());
    }

    #[test]
    fn extra_query_on_the_endpoint_is_kept_and_iss_requirement_recorded() {
        let md = metadata(serde_json::json!({
            "authorization_endpoint": "https://account.example.com/auth?tenant=x",
            "authorization_response_iss_parameter_supported": true,
        }));
        let start = AuthorizationRequest::new(
            &md,
            "c",
            Url::parse("http://[::1]/cb").unwrap(),
            Scope::matrix(DeviceId::parse("AAABBBCCCDDD").unwrap())
                .flavor(ScopeFlavor::Unstable)
                .build()
                .unwrap(),
        )
        .homeserver(Url::parse("https://matrix.example.com/").unwrap())
        .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(1))
        .unwrap();
        assert!(
            start
                .url
                .as_str()
                .starts_with("https://account.example.com/auth?tenant=x&response_type=code")
        );
        assert!(start.pending.require_iss);
        assert_eq!(
            start.pending.homeserver.as_ref().map(Url::as_str),
            Some("https://matrix.example.com/")
        );
    }

    #[test]
    fn same_seed_same_url_and_pending_round_trips_through_serde() {
        let md = metadata(serde_json::json!({}));
        let build = |seed| {
            AuthorizationRequest::new(
                &md,
                "c",
                Url::parse("http://localhost/cb").unwrap(),
                scope(),
            )
            .with_nonce()
            .build(
                Timestamp::from_unix_seconds(99),
                &mut SeededRandom::new(seed),
            )
            .unwrap()
        };
        assert_eq!(build(7), build(7));
        assert_ne!(build(7).pending.state, build(8).pending.state);
        let pending = build(7).pending;
        let json = serde_json::to_string(&pending).unwrap();
        let back: PendingAuthorization = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pending);
        let dbg = format!("{pending:?}");
        assert!(!dbg.contains(pending.code_verifier.expose()), "{dbg}");
        assert!(
            !dbg.contains(pending.nonce.as_ref().unwrap().expose()),
            "{dbg}"
        );
    }

    /// Counts the calls to the source: each is a system call with the OS source.
    struct CountingRandom(SeededRandom, usize);
    impl RandomSource for CountingRandom {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
            self.1 += 1;
            self.0.fill(buf)
        }
    }

    #[test]
    fn one_random_draw_gives_what_separate_draws_would() {
        let md = metadata(serde_json::json!({}));
        let redirect = Url::parse("https://app.example.com/cb").unwrap();
        for nonce in [false, true] {
            let mut rng = CountingRandom(SeededRandom::new(42), 0);
            let mut request = AuthorizationRequest::new(&md, "c", redirect.clone(), scope());
            if nonce {
                request = request.with_nonce();
            }
            let start = request.build(Timestamp::UNIX_EPOCH, &mut rng).unwrap();
            assert_eq!(rng.1, 1, "one draw for verifier, state and nonce");
            // The same values, in the same order, as drawing each on its own.
            let mut separate = SeededRandom::new(42);
            let pkce = Pkce::generate(&mut separate).unwrap();
            assert_eq!(start.pending.code_verifier, *pkce.verifier());
            assert_eq!(
                start.pending.state,
                pkce::generate_state(&mut separate).unwrap()
            );
            let expected_nonce = nonce.then(|| pkce::generate_nonce(&mut separate).unwrap());
            assert_eq!(start.pending.nonce, expected_nonce);
        }
    }

    /// The query written in one string is, byte for byte, what appending pair by pair to the `Url`
    /// gave before.
    #[test]
    fn url_equals_pairwise_appending() {
        fn pairwise(start: &AuthorizationStart, request: &AuthorizationRequest<'_>) -> Url {
            let p = &start.pending;
            let mut url = request.metadata.authorization_endpoint.clone();
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &request.client_id)
                .append_pair("redirect_uri", request.redirect_uri.as_str())
                .append_pair("scope", &request.scope.to_string())
                .append_pair("state", &p.state)
                .append_pair("response_mode", p.response_mode.as_str())
                .append_pair(
                    "code_challenge",
                    &pkce::s256_challenge(p.code_verifier.expose()),
                )
                .append_pair("code_challenge_method", pkce::S256);
            if !request.prompts.is_empty() {
                let joined: Vec<&str> = request.prompts.iter().map(|p| p.as_str()).collect();
                q.append_pair("prompt", &joined.join(" "));
            }
            if let Some(hint) = &request.login_hint {
                q.append_pair("login_hint", hint.as_str());
            }
            if let Some(nonce) = &p.nonce {
                q.append_pair("nonce", nonce.expose());
            }
            drop(q);
            url
        }
        let endpoints = [
            "https://account.example.com/oauth2/auth",
            "https://account.example.com/auth?tenant=x&a=%20b",
            "https://account.example.com/auth?",
            "http://127.0.0.1:8080/auth#frag",
            "https://account.example.com/auth?tenant=x#frag",
            "https://account.example.com/t/%C3%A9/a%20b/authorize",
            "https://account.example.com",
            "https://account.example.com:8443/auth?q=a+b&r=%26",
        ];
        for (i, endpoint) in endpoints.into_iter().enumerate() {
            let md = metadata(serde_json::json!({
                "authorization_endpoint": endpoint,
                "prompt_values_supported": ["create", "login", "consent"],
            }));
            for (client, redirect) in [
                ("s6BhdRkqt3", "https://app.example.com/oauth2-callback"),
                ("c l+i&e=n%t/é", "http://127.0.0.1:5173/cb?x=1&y=é"),
                ("01JA", "com.example.app:/callback"),
                ("日本\u{1F600}*-._~#?", "http://[::1]:1/a%20b/c?q=%2B+&z"),
            ] {
                let scope = Scope::matrix(DeviceId::parse("A*B.C-D_E~!$'()").unwrap())
                    .openid()
                    .extra("urn:matrix:client:com.example.msc9999.foo")
                    .build()
                    .unwrap();
                let mut request =
                    AuthorizationRequest::new(&md, client, Url::parse(redirect).unwrap(), scope);
                match i % 3 {
                    0 => {
                        request = request
                            .prompt_create()
                            .prompt(Prompt::Login)
                            .login_hint(LoginHint::mxid("@ali+ce:example.com").unwrap())
                            .with_nonce();
                    }
                    1 => {
                        request = request
                            .response_mode(ResponseMode::Query)
                            .prompt(Prompt::Consent)
                            .login_hint(LoginHint::raw("email:a%b&c=d#e?f").unwrap());
                    }
                    _ => request = request.response_mode(ResponseMode::Fragment),
                }
                let start = request
                    .clone()
                    .build(Timestamp::UNIX_EPOCH, &mut SeededRandom::new(i as u64))
                    .unwrap();
                let reference = pairwise(&start, &request);
                assert_eq!(start.url.as_str(), reference.as_str());
                assert_eq!(start.url.query(), reference.query());
                assert_eq!(start.url.to_url().unwrap(), reference);
                assert!(start.url.query_pairs().eq(reference.query_pairs()));
            }
        }
    }

    #[test]
    fn form_encoding_matches_form_urlencoded() {
        let mut samples: Vec<String> = (0u8..=0x7F).map(|b| char::from(b).to_string()).collect();
        samples.extend(
            [
                "",
                "é",
                "日本語",
                "\u{1F600}",
                "a b+c&d=e%f/g?h#i",
                "\u{7F}\u{80}\u{7FF}\u{FFFF}",
            ]
            .map(str::to_owned),
        );
        let mut rng = SeededRandom::new(3);
        for _ in 0..200 {
            let mut bytes = [0u8; 24];
            rng.fill(&mut bytes).unwrap();
            samples.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        for sample in samples {
            let mut ours = String::new();
            push_form_encoded(&mut ours, &sample);
            let theirs: String = form_urlencoded::byte_serialize(sample.as_bytes()).collect();
            assert_eq!(ours, theirs, "{sample:?}");
        }
    }

    /// A login through `PrefetchedRandom` calls the source once and gets the values direct draws
    /// give.
    #[test]
    fn a_prefetched_login_is_one_draw_with_the_same_values() {
        let md = metadata(serde_json::json!({}));
        let redirect = Url::parse("https://app.example.com/cb").unwrap();
        for nonce in [false, true] {
            let login = |rng: &mut dyn RandomSource| {
                let device = DeviceId::generate(rng).unwrap();
                let mut request = AuthorizationRequest::new(
                    &md,
                    "c",
                    redirect.clone(),
                    Scope::matrix(device).build().unwrap(),
                );
                if nonce {
                    request = request.with_nonce();
                }
                request.build(Timestamp::UNIX_EPOCH, rng).unwrap()
            };
            let direct = login(&mut SeededRandom::new(8));
            let mut counting = CountingRandom(SeededRandom::new(8), 0);
            let prefetched = login(&mut crate::PrefetchedRandom::for_login(&mut counting));
            assert_eq!(
                counting.1, 1,
                "one draw for device id, verifier, state and nonce"
            );
            assert_eq!(prefetched, direct);
        }
    }

    /// Logins through one `RandomPool` get, in turn, the values direct draws give, with one call of
    /// the source for all of them.
    #[test]
    fn pooled_logins_are_the_direct_logins_with_one_draw() {
        let md = metadata(serde_json::json!({}));
        let redirect = Url::parse("https://app.example.com/cb").unwrap();
        let login = |rng: &mut dyn RandomSource, nonce: bool| {
            let device = DeviceId::generate(rng).unwrap();
            let mut request = AuthorizationRequest::new(
                &md,
                "c",
                redirect.clone(),
                Scope::matrix(device).build().unwrap(),
            );
            if nonce {
                request = request.with_nonce();
            }
            request.build(Timestamp::UNIX_EPOCH, rng).unwrap()
        };
        let mut direct = SeededRandom::new(11);
        let mut pool = crate::RandomPool::new(CountingRandom(SeededRandom::new(11), 0));
        for nonce in [false, true, false, true] {
            assert_eq!(login(&mut pool, nonce), login(&mut direct, nonce));
        }
        /// Counts into a cell the test keeps, since the pool owns its source.
        struct Shared(SeededRandom, std::rc::Rc<std::cell::Cell<usize>>);
        impl RandomSource for Shared {
            fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
                self.1.set(self.1.get() + 1);
                self.0.fill(buf)
            }
        }
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut pool = crate::RandomPool::new(Shared(SeededRandom::new(11), calls.clone()));
        for _ in 0..20 {
            login(&mut pool, true);
        }
        assert_eq!(calls.get(), 1, "20 logins of 112 bytes from one 4 KiB draw");
    }

    #[test]
    fn login_hint_forms() {
        assert_eq!(
            LoginHint::mxid("@alice:example.com").unwrap().as_str(),
            "mxid:@alice:example.com"
        );
        for bad in [
            "alice:example.com",
            "@alice",
            "@:example.com",
            "@alice:",
            "@al ice:x",
        ] {
            assert!(
                matches!(
                    LoginHint::mxid(bad),
                    Err(AuthorizeError::InvalidLoginHint { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            LoginHint::raw("email:alice@example.com").unwrap().as_str(),
            "email:alice@example.com"
        );
        for bad in ["noprefix", ":value", "p:", "p:with space"] {
            assert!(LoginHint::raw(bad).is_err(), "{bad}");
        }
    }
}
