//! Signing in with the authorization code flow: [`OAuthClient::start_login`] gives the URL to open,
//! [`OAuthClient::finish_login`] turns the callback URL into a stored [`AuthSession`].
//!
//! ```text
//! start_login(options)                                   finish_login(callback_url)
//!   ├─ discover (cached)                                   ├─ read `state` from the callback
//!   ├─ register the client (Dynamic) ── every time         ├─ take the pending login (once!)
//!   ├─ scope + PKCE + state (core)                         ├─ check it (core): redirect URI, iss, error
//!   └─ pending login ──▶ store                             ├─ exchange the code (core)
//!        │                                                 ├─ whoami ── user id, device id check
//!        ▼                                                 └─ session ──▶ store ─▶ AuthSession
//!   LoginStart { url } ──▶ browser ──▶ redirect_uri?code=…&state=…
//! ```
//!
//! The pending login lives in the store, not in memory: the callback may arrive in another process
//! (a desktop app's URL handler) or after a restart, and it can be used exactly once.

use crate::client::OAuthClient;
use crate::error::{Error, Operation};
use crate::session::AuthSession;
use matrix_oidc_core::callback::{self, CallbackError, CallbackResponse};
use matrix_oidc_core::discovery::Discovered;
use matrix_oidc_core::registration::ClientMetadata;
use matrix_oidc_core::{
    AuthorizationRequest, AuthorizationUrl, DeviceId, LoginHint, PendingAuthorization,
    ResponseMode, Scope, ScopeFlavor, Session, Timestamp, TokenRequest,
};
use url::Url;

/// How the application identifies itself to the authorization server.
// Built once per login and passed by reference: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientConfig {
    /// Register with this metadata at the start of every login, as the Matrix specification asks
    /// (servers hand back the same client id for identical metadata). The client id is kept with
    /// the session.
    Dynamic(ClientMetadata),
    /// A client id registered beforehand with the authorization server.
    Registered {
        /// The client id.
        client_id: String,
    },
}

impl ClientConfig {
    /// A pre-registered client id.
    pub fn registered(client_id: impl Into<String>) -> Self {
        ClientConfig::Registered {
            client_id: client_id.into(),
        }
    }
}

impl From<ClientMetadata> for ClientConfig {
    fn from(metadata: ClientMetadata) -> Self {
        ClientConfig::Dynamic(metadata)
    }
}

/// What a login asks for. Only the homeserver, the redirect URI and the client are required.
///
/// ```
/// use matrix_oidc::{ClientConfig, LoginOptions};
/// use matrix_oidc::core::registration::ClientMetadata;
/// use url::Url;
/// let client = ClientMetadata::native(Url::parse("https://app.example.org/").unwrap())
///     .with_client_name("Example")
///     .with_redirect_uri(Url::parse("http://127.0.0.1/callback").unwrap());
/// let options = LoginOptions::new(
///     Url::parse("https://matrix.example.org").unwrap(),
///     Url::parse("http://127.0.0.1:8765/callback").unwrap(),
///     client,
/// )
/// .prompt_create();
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct LoginOptions {
    pub(crate) target: LoginTarget,
    redirect_uri: Url,
    pub(crate) client: ClientConfig,
    pub(crate) device_id: Option<DeviceId>,
    prompt_create: bool,
    login_hint: Option<LoginHint>,
    response_mode: Option<ResponseMode>,
    pub(crate) scope_flavor: ScopeFlavor,
    pub(crate) extra_scopes: Vec<String>,
    openid: bool,
}

/// Where a login goes: a Matrix homeserver (its authorization server is discovered through it, and
/// the session learns its user from `whoami`), or an authorization server directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginTarget {
    Homeserver(Url),
    Issuer(Url),
}

impl std::fmt::Display for LoginTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginTarget::Homeserver(u) => write!(f, "homeserver {u}"),
            LoginTarget::Issuer(u) => write!(f, "issuer {u}"),
        }
    }
}

impl LoginOptions {
    /// A login to `homeserver` that comes back to `redirect_uri` (one of the client's registered
    /// redirect URIs; on loopback, the port may differ from the registered one).
    pub fn new(homeserver: Url, redirect_uri: Url, client: impl Into<ClientConfig>) -> Self {
        Self::with_target(
            LoginTarget::Homeserver(homeserver),
            redirect_uri,
            client.into(),
        )
    }

    /// A login at the authorization server `issuer` itself, for an application that is an OAuth
    /// 2.0 / OpenID Connect relying party but not a Matrix client: the server's metadata comes from
    /// OpenID Connect Discovery or RFC 8414 ([`OAuthClient::discover_issuer`]), the scope holds
    /// only what [`extra_scope`](Self::extra_scope) (and, with feature `oidc`, `openid`) add — no Matrix API or device scope — and no homeserver is asked
    /// who signed in. With `openid`, the validated ID token's `sub` becomes the session's user id.
    ///
    /// [`device_id`](Self::device_id) and [`scope_flavor`](Self::scope_flavor) do not apply.
    ///
    /// ```
    /// use matrix_oidc::LoginOptions;
    /// use url::Url;
    /// let options = LoginOptions::for_issuer(
    ///     Url::parse("https://id.example.com/").unwrap(),
    ///     Url::parse("http://127.0.0.1:8765/callback").unwrap(),
    ///     matrix_oidc::ClientConfig::registered("my-app"),
    /// )
    /// .extra_scope("profile")
    /// .extra_scope("email");
    /// # let _ = options;
    /// ```
    pub fn for_issuer(issuer: Url, redirect_uri: Url, client: impl Into<ClientConfig>) -> Self {
        Self::with_target(LoginTarget::Issuer(issuer), redirect_uri, client.into())
    }

    fn with_target(target: LoginTarget, redirect_uri: Url, client: ClientConfig) -> Self {
        Self {
            target,
            redirect_uri,
            client,
            device_id: None,
            prompt_create: false,
            login_hint: None,
            response_mode: None,
            scope_flavor: ScopeFlavor::default(),
            extra_scopes: Vec::new(),
            openid: false,
        }
    }

    /// Reuses a device id (only with the keys it holds: the server invalidates the device's
    /// previous tokens). Default: a new random one.
    pub fn device_id(mut self, device_id: DeviceId) -> Self {
        self.device_id = Some(device_id);
        self
    }

    /// Asks the server to show its registration page (`prompt=create`).
    pub fn prompt_create(mut self) -> Self {
        self.prompt_create = true;
        self
    }

    /// Suggests the account to sign in with (MSC4198; servers may ignore it).
    pub fn login_hint(mut self, hint: LoginHint) -> Self {
        self.login_hint = Some(hint);
        self
    }

    /// Where the server puts the response. Default: `fragment` for `https` redirect URIs,
    /// `query` otherwise.
    pub fn response_mode(mut self, mode: ResponseMode) -> Self {
        self.response_mode = Some(mode);
        self
    }

    /// Stable (default) or unstable MSC2967 scope names, for servers older than Matrix 1.15.
    pub fn scope_flavor(mut self, flavor: ScopeFlavor) -> Self {
        self.scope_flavor = flavor;
        self
    }

    /// Asks for one more scope token.
    ///
    /// `extra_scope("openid")` only adds the token; to have the ID token validated and its claims
    /// kept, use `openid()` (feature `oidc`).
    pub fn extra_scope(mut self, scope: impl Into<String>) -> Self {
        self.extra_scopes.push(scope.into());
        self
    }

    /// Signs in with OpenID Connect as well: asks for the `openid` scope with a fresh `nonce`, and
    /// [`finish_login`](OAuthClient::finish_login) then requires an ID token and validates it
    /// (signature against the provider's key set, `iss`, `aud`/`azp`, `exp`/`iat`, the `nonce`,
    /// `at_hash`/`c_hash`) before the session is stored. Its claims are then
    /// [`AuthSession::id_token_claims`], later ID tokens from refreshes are held to the same
    /// subject, and [`AuthSession::userinfo`] and [`AuthSession::end_session_url`] work.
    ///
    /// ```
    /// use matrix_oidc::LoginOptions;
    /// use url::Url;
    /// let options = LoginOptions::for_issuer(
    ///     Url::parse("https://id.example.com/").unwrap(),
    ///     Url::parse("http://127.0.0.1:8765/callback").unwrap(),
    ///     matrix_oidc::ClientConfig::registered("my-app"),
    /// )
    /// .openid()
    /// .extra_scope("profile");
    /// # let _ = options;
    /// ```
    #[cfg(feature = "oidc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
    pub fn openid(mut self) -> Self {
        self.openid = true;
        self
    }
}

/// A started login: send the user to [`url`](Self::url).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginStart {
    /// The authorization URL to open in the system browser (its text; [`AuthorizationUrl::to_url`]
    /// gives a [`Url`]).
    pub url: AuthorizationUrl,
    /// The login's `state`, to [`abort_login`](OAuthClient::abort_login) it.
    pub state: String,
    /// The client id used.
    pub client_id: String,
    /// The device id requested.
    pub device_id: Option<DeviceId>,
    /// When the pending login expires in the store.
    pub expires_at: Timestamp,
}

pub(crate) fn build_scope(
    client: &OAuthClient,
    device_id: Option<DeviceId>,
    flavor: ScopeFlavor,
    extra: &[String],
) -> Result<Scope, Error> {
    build_matrix_scope(client, device_id, flavor, extra, false)
}

fn build_matrix_scope(
    client: &OAuthClient,
    device_id: Option<DeviceId>,
    flavor: ScopeFlavor,
    extra: &[String],
    openid: bool,
) -> Result<Scope, Error> {
    let device_id = match device_id {
        Some(d) => d,
        None => client.inner.with_rng(DeviceId::generate)?,
    };
    let mut builder = Scope::matrix(device_id).flavor(flavor);
    if openid {
        builder = builder.openid();
    }
    for token in extra {
        builder = builder.extra(token.clone());
    }
    Ok(builder.build()?)
}

/// The scope of a login at an issuer: `openid` (first, when asked for) and the extra tokens.
fn build_issuer_scope(extra: &[String], openid: bool) -> Result<Scope, Error> {
    let tokens = openid
        .then(|| "openid".to_owned())
        .into_iter()
        .chain(extra.iter().cloned());
    Ok(Scope::from_tokens(tokens)?)
}

impl OAuthClient {
    pub(crate) async fn client_id_for(
        &self,
        discovered: &Discovered,
        config: &ClientConfig,
    ) -> Result<String, Error> {
        match config {
            ClientConfig::Registered { client_id } => Ok(client_id.clone()),
            ClientConfig::Dynamic(metadata) => {
                Ok(self.register_at(discovered, metadata).await?.client_id)
            }
        }
    }

    /// Starts an authorization code login: discovers the homeserver (or the issuer, for
    /// [`LoginOptions::for_issuer`]), registers the client (for [`ClientConfig::Dynamic`]), stores
    /// the pending login, and returns the URL to open.
    ///
    /// Then the browser comes back to the redirect URI; pass that whole URL to
    /// [`finish_login`](Self::finish_login), in this process or another that shares the store,
    /// within the store's pending lifetime (15 minutes by default).
    #[tracing::instrument(skip_all, fields(target = %options.target))]
    pub async fn start_login(&self, options: &LoginOptions) -> Result<LoginStart, Error> {
        let inner = &self.inner;
        // The scope first: a bad one fails before any request.
        let scope = match &options.target {
            LoginTarget::Homeserver(_) => build_matrix_scope(
                self,
                options.device_id.clone(),
                options.scope_flavor,
                &options.extra_scopes,
                options.openid,
            )?,
            LoginTarget::Issuer(_) => build_issuer_scope(&options.extra_scopes, options.openid)?,
        };
        let discovered = match &options.target {
            LoginTarget::Homeserver(hs) => self.discover(hs).await?,
            LoginTarget::Issuer(issuer) => self.discover_issuer(issuer).await?,
        };
        let client_id = self.client_id_for(&discovered, &options.client).await?;
        let mut request = AuthorizationRequest::new(
            &discovered.metadata,
            client_id.clone(),
            options.redirect_uri.clone(),
            scope,
        );
        if let LoginTarget::Homeserver(hs) = &options.target {
            request = request.homeserver(hs.clone());
        }
        if options.openid {
            request = request.with_nonce();
        }
        if let Some(mode) = options.response_mode {
            request = request.response_mode(mode);
        }
        if options.prompt_create {
            request = request.prompt_create();
        }
        if let Some(hint) = &options.login_hint {
            request = request.login_hint(hint.clone());
        }
        let now = inner.clock.now();
        let start = inner.with_rng(|rng| request.build(now, rng))?;
        match inner.pending.purge_expired(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired pending logins removed"),
            Err(error) => tracing::warn!(%error, "could not purge expired pending logins"),
        }
        inner.pending.put(&start.pending).await?;
        let expires_at = now + inner.pending.pending_lifetime();
        tracing::info!(
            %client_id,
            response_mode = start.pending.response_mode.as_str(),
            openid = options.openid,
            "login started"
        );
        Ok(LoginStart {
            url: start.url,
            state: start.pending.state.clone(),
            client_id,
            device_id: start.pending.device_id.clone(),
            expires_at,
        })
    }

    /// Finishes a login from the URL the browser was redirected to (or just its query or
    /// fragment): takes the pending login out of the store (once: a second call with the same
    /// callback fails with [`Error::StateNotFound`]), exchanges the code, validates the ID token
    /// (for a login with `LoginOptions::openid`, feature `oidc`), asks the homeserver who signed in (for a
    /// Matrix login), stores the session and returns it.
    ///
    /// The user declining gives [`Error::Cancelled`]; the pending login is discarded either way.
    /// An ID token that fails validation gives [`Error::IdToken`], and no session is stored.
    #[tracing::instrument(skip_all)]
    pub async fn finish_login(&self, callback_url: &str) -> Result<AuthSession, Error> {
        let inner = &self.inner;
        let state = callback_state(callback_url)?;
        let now = inner.clock.now();
        let Some(pending) = inner.pending.take(&state, now).await? else {
            tracing::warn!("no pending login for this callback");
            return Err(Error::StateNotFound);
        };
        let code = callback::complete(callback_url, &pending).map_err(|e| {
            tracing::warn!(error = %e, "the callback is not a successful authorization");
            Error::callback(e)
        })?;
        let request = TokenRequest::authorization_code(&pending, &code)
            .map_err(|e| Error::token(Operation::CodeExchange, e))?;
        let sent_at = inner.clock.now();
        let response = inner
            .send(request.request.clone())
            .await
            .map_err(|e| Error::transport(Operation::CodeExchange, e))?;
        let tokens = request
            .parse(&response, sent_at)
            .map_err(|e| Error::token(Operation::CodeExchange, e))?;
        tracing::info!("authorization code exchanged");
        #[allow(unused_mut)]
        let mut session = Session::from_pending(&pending, tokens);
        if pending.nonce.is_some() {
            // The login asked for OpenID Connect: no session without a valid ID token.
            #[cfg(feature = "oidc")]
            self.validate_login_id_token(&mut session, &pending, &code)
                .await?;
            #[cfg(not(feature = "oidc"))]
            tracing::warn!(
                "the login asked for an ID token, but this build has no `oidc` feature to validate it"
            );
        }
        self.identify_and_store(session, &pending).await
    }

    async fn identify_and_store(
        &self,
        mut session: Session,
        pending: &PendingAuthorization,
    ) -> Result<AuthSession, Error> {
        if let Some(homeserver) = &pending.homeserver {
            let whoami = self
                .whoami(homeserver, &session.tokens.access_token)
                .await?;
            whoami.apply_to(&mut session).map_err(Error::whoami)?;
            tracing::info!(user_id = %whoami.user_id, "signed in");
        }
        self.store_session(session).await
    }

    /// Forgets the pending login with `state` (the user closed the browser). Returns whether it
    /// was still pending.
    pub async fn abort_login(&self, state: &str) -> Result<bool, Error> {
        let now = self.inner.clock.now();
        Ok(self.inner.pending.take(state, now).await?.is_some())
    }
}

/// The `state` of a callback, wherever the server put it (query or fragment).
fn callback_state(callback_url: &str) -> Result<String, Error> {
    let parsed = match CallbackResponse::parse(callback_url, ResponseMode::Query) {
        Err(CallbackError::WrongComponent { .. } | CallbackError::MissingParameters { .. }) => {
            CallbackResponse::parse(callback_url, ResponseMode::Fragment)
        }
        other => other,
    }
    .map_err(Error::callback)?;
    parsed
        .state()
        .map(str::to_owned)
        .ok_or(Error::Callback(CallbackError::MissingState))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_found_in_query_or_fragment() {
        assert_eq!(
            callback_state("http://127.0.0.1/cb?code=c&state=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            callback_state("https://app.example/cb#state=xyz&code=c").unwrap(),
            "xyz"
        );
        assert_eq!(callback_state("state=s1&code=c").unwrap(), "s1");
        assert!(matches!(
            callback_state("http://127.0.0.1/cb?code=c"),
            Err(Error::Callback(CallbackError::MissingState))
        ));
        assert!(matches!(
            callback_state("http://127.0.0.1/cb"),
            Err(Error::Callback(_))
        ));
        assert!(matches!(
            callback_state(""),
            Err(Error::Callback(CallbackError::Empty))
        ));
    }
}
