//! [`OAuthClient`]: the object an application keeps, and its builder.

use crate::cache::TtlCache;
use crate::error::{Error, Operation};
use crate::events::{EventHook, Events, SessionEvent, SessionEvents};
use crate::runtime::{Clock, Spawn, SystemClock};
use crate::session::{AuthSession, SessionShared};
use crate::single_flight::{SingleFlight, lock};
use matrix_oidc_core::discovery::{
    Discovered, DiscoveryOptions, IssuerDiscovery, IssuerDiscoveryOptions, MatrixDiscovery, Step,
};
use matrix_oidc_core::legacy::{
    LegacyProbe, LoginApi, LoginFlowsRequest, OAuthProbe, choose_login_api,
};
use matrix_oidc_core::registration::{
    ClientMetadata, ClientRegistration, MetadataRules, Registration,
};
use matrix_oidc_core::revoke::{RevocationRequest, TokenTypeHint};
use matrix_oidc_core::whoami::{Whoami, WhoamiRequest};
use matrix_oidc_core::{
    AccountAction, HttpClient, OsRandom, OutgoingRequest, RandomSource, RefreshPolicy, Secret,
    Session, TransportError, UrlPolicy,
};
use matrix_oidc_storage::{
    Generation, MemoryStore, PendingStore, SessionKey, SessionLock, SessionStore, StoreError,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tracing::Instrument;
use url::Url;

/// How long metadata is reused when its response carried no caching headers.
pub const DEFAULT_METADATA_TTL: Duration = Duration::from_secs(60 * 60);

/// How many servers' metadata the cache keeps at most.
const METADATA_CACHE_CAPACITY: usize = 64;

/// The async Matrix OAuth 2.0 client: discovery, registration, login (authorization code and
/// device grant), token refresh and logout, over any [`HttpClient`] and any store.
///
/// Cheap to clone (one `Arc`); clones share the metadata cache, the stores and the in-process
/// refresh coordination. Build one with [`OAuthClient::builder`].
///
/// It holds no protocol logic of its own: every request is built and every response judged by
/// `matrix-oidc-core`. What it adds is the IO around it — sending, storing, caching, waiting — and
/// the guarantees that need IO: one discovery per server at a time, one refresh per session at a
/// time (across processes too, through the store's lock), and tokens persisted before use.
#[derive(Clone)]
pub struct OAuthClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("discovery", &self.inner.discovery)
            .field("registration_rules", &self.inner.registration_rules)
            .field("refresh_policy", &self.inner.refresh_policy)
            .field("spawner", &self.inner.spawner.is_some())
            .field("events", &self.inner.events)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) http: Arc<dyn HttpClient>,
    pub(crate) pending: Arc<dyn PendingStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) locks: Arc<dyn SessionLock>,
    pub(crate) clock: Arc<dyn Clock>,
    rng: Mutex<Box<dyn RandomSource + Send>>,
    pub(crate) spawner: Option<Arc<dyn Spawn>>,
    pub(crate) discovery: DiscoveryOptions,
    pub(crate) registration_rules: MetadataRules,
    pub(crate) refresh_policy: RefreshPolicy,
    default_metadata_ttl: Duration,
    metadata_cache: TtlCache<String, Arc<Discovered>>,
    discoveries: SingleFlight<String, Result<Arc<Discovered>, Error>>,
    live: Mutex<HashMap<SessionKey, Weak<SessionShared>>>,
    pub(crate) events: Events,
    #[cfg(feature = "oidc")]
    pub(crate) oidc: crate::oidc::OidcState,
}

/// Configures an [`OAuthClient`]. Everything but the transport has a default.
#[must_use]
pub struct OAuthClientBuilder {
    http: Arc<dyn HttpClient>,
    pending: Option<Arc<dyn PendingStore>>,
    sessions: Option<Arc<dyn SessionStore>>,
    locks: Option<Arc<dyn SessionLock>>,
    clock: Arc<dyn Clock>,
    rng: Box<dyn RandomSource + Send>,
    spawner: Option<Arc<dyn Spawn>>,
    discovery: DiscoveryOptions,
    registration_rules: MetadataRules,
    refresh_policy: RefreshPolicy,
    default_metadata_ttl: Duration,
    hooks: Vec<EventHook>,
    #[cfg(feature = "oidc")]
    pub(crate) oidc: crate::oidc::OidcSettings,
}

impl std::fmt::Debug for OAuthClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientBuilder")
            .field("discovery", &self.discovery)
            .field("registration_rules", &self.registration_rules)
            .field("refresh_policy", &self.refresh_policy)
            .finish_non_exhaustive()
    }
}

impl OAuthClientBuilder {
    /// One store for pending logins, sessions and the refresh lock (a
    /// [`FileStore`](matrix_oidc_storage::FileStore) or `SqliteStore` (feature `sqlite` of
    /// `matrix-oidc-storage`) to survive restarts and share sessions
    /// between processes). Default: a [`MemoryStore`], which forgets everything on exit.
    pub fn store<S: PendingStore + SessionStore + SessionLock + 'static>(
        mut self,
        store: S,
    ) -> Self {
        let store = Arc::new(store);
        self.pending = Some(store.clone());
        self.sessions = Some(store.clone());
        self.locks = Some(store);
        self
    }

    /// Where pending logins go (overrides [`store`](Self::store) for them).
    pub fn pending_store(mut self, store: impl PendingStore + 'static) -> Self {
        self.pending = Some(Arc::new(store));
        self
    }

    /// Where sessions go (overrides [`store`](Self::store) for them).
    pub fn session_store(mut self, store: impl SessionStore + 'static) -> Self {
        self.sessions = Some(Arc::new(store));
        self
    }

    /// The lock that makes refreshes single-flight (overrides [`store`](Self::store) for it). Use
    /// the lock of the store that holds the sessions, or one at least as wide.
    pub fn session_lock(mut self, lock: impl SessionLock + 'static) -> Self {
        self.locks = Some(Arc::new(lock));
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The random source for states, PKCE verifiers and device ids (default: the operating
    /// system's, one system call per draw). A server starting many logins can pass a
    /// [`RandomPool`](matrix_oidc_core::RandomPool) over [`OsRandom`] to draw 4 KiB at a time
    /// (mind its fork caveat).
    pub fn random(mut self, rng: impl RandomSource + Send + 'static) -> Self {
        self.rng = Box::new(rng);
        self
    }

    /// Runs each token refresh as its own task, so that it completes even if every caller waiting
    /// for it is cancelled. See [`Spawn`].
    pub fn spawner(mut self, spawner: impl Spawn + 'static) -> Self {
        self.spawner = Some(Arc::new(spawner));
        self
    }

    /// When to refresh and which refresh failures log out (default: refresh 30 s before expiry;
    /// any 4xx logs out, as the Matrix specification says).
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.refresh_policy = policy;
        self
    }

    /// How homeservers are discovered and their metadata validated.
    pub fn discovery_options(mut self, options: DiscoveryOptions) -> Self {
        self.discovery = options;
        self
    }

    /// Accepts plain `http` URLs on loopback hosts (homeserver, issuer, endpoints). For
    /// development and tests only.
    pub fn allow_insecure_loopback(mut self) -> Self {
        self.discovery = self
            .discovery
            .with_url_policy(UrlPolicy::AllowInsecureLoopback);
        self
    }

    /// Which local checks client metadata must pass before registration (default: the Matrix
    /// specification's).
    pub fn registration_rules(mut self, rules: MetadataRules) -> Self {
        self.registration_rules = rules;
        self
    }

    /// How long metadata is reused when the server sent no caching headers (default
    /// [`DEFAULT_METADATA_TTL`]). Headers, when present, always win.
    pub fn default_metadata_ttl(mut self, ttl: Duration) -> Self {
        self.default_metadata_ttl = ttl;
        self
    }

    /// Calls `hook` with every [`SessionEvent`], synchronously, from the task that caused it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn on_event(mut self, hook: impl Fn(&SessionEvent) + Send + Sync + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Builds the client.
    pub fn build(self) -> OAuthClient {
        let memory = Arc::new(MemoryStore::new());
        OAuthClient {
            inner: Arc::new(Inner {
                http: self.http,
                pending: self.pending.unwrap_or_else(|| memory.clone()),
                sessions: self.sessions.unwrap_or_else(|| memory.clone()),
                locks: self.locks.unwrap_or(memory),
                clock: self.clock,
                rng: Mutex::new(self.rng),
                spawner: self.spawner,
                discovery: self.discovery,
                registration_rules: self.registration_rules,
                refresh_policy: self.refresh_policy,
                default_metadata_ttl: self.default_metadata_ttl,
                metadata_cache: TtlCache::new(METADATA_CACHE_CAPACITY),
                discoveries: SingleFlight::default(),
                live: Mutex::new(HashMap::new()),
                events: Events::new(self.hooks),
                #[cfg(feature = "oidc")]
                oidc: self.oidc.into(),
            }),
        }
    }
}

/// What is being discovered: a homeserver (Matrix discovery) or an issuer (OpenID Connect / RFC
/// 8414 discovery, for sessions without a homeserver).
#[derive(Debug, Clone)]
enum Target {
    Homeserver(Url),
    Issuer(Url),
}

impl Target {
    fn cache_key(&self) -> String {
        match self {
            Target::Homeserver(u) => format!("hs {u}"),
            Target::Issuer(u) => format!("iss {u}"),
        }
    }
}

// One per discovery, on the stack of the discovery future.
#[allow(clippy::large_enum_variant)]
enum Machine {
    Matrix(MatrixDiscovery),
    Issuer(IssuerDiscovery),
}

impl Machine {
    fn start(&mut self) -> Result<Step, matrix_oidc_core::DiscoveryError> {
        match self {
            Machine::Matrix(m) => m.start(),
            Machine::Issuer(m) => m.start(),
        }
    }

    fn handle_response(
        &mut self,
        response: &http::Response<Vec<u8>>,
        now: matrix_oidc_core::Timestamp,
    ) -> Result<Step, matrix_oidc_core::DiscoveryError> {
        match self {
            Machine::Matrix(m) => m.handle_response(response, now),
            Machine::Issuer(m) => m.handle_response(response, now),
        }
    }
}

fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

impl Inner {
    /// Sends one request, logging the method, the URL without its query, and the outcome; never
    /// headers or bodies.
    pub(crate) async fn send(
        &self,
        request: OutgoingRequest,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let method = request.request.method().clone();
        let url = request.url();
        let url = strip_query(&url).to_owned();
        tracing::debug!(%method, %url, "sending request");
        let result = self.http.send(request).await;
        match &result {
            Ok(response) => tracing::debug!(
                %method, %url, status = response.status().as_u16(), "received response"
            ),
            Err(error) => tracing::warn!(%method, %url, %error, "request failed"),
        }
        result
    }

    pub(crate) fn with_rng<T>(&self, f: impl FnOnce(&mut dyn RandomSource) -> T) -> T {
        let mut rng = lock(&self.rng);
        f(&mut **rng)
    }
}

impl OAuthClient {
    /// A builder with `http` as the transport, for example
    /// [`ReqwestTransport`](https://docs.rs/matrix-oidc-reqwest) or `HyperTransport`.
    pub fn builder(http: impl HttpClient + 'static) -> OAuthClientBuilder {
        OAuthClientBuilder {
            http: Arc::new(http),
            pending: None,
            sessions: None,
            locks: None,
            clock: Arc::new(SystemClock),
            rng: Box::new(OsRandom),
            spawner: None,
            discovery: DiscoveryOptions::default(),
            registration_rules: MetadataRules::default(),
            refresh_policy: RefreshPolicy::default(),
            default_metadata_ttl: DEFAULT_METADATA_TTL,
            hooks: Vec::new(),
            #[cfg(feature = "oidc")]
            oidc: crate::oidc::OidcSettings::default(),
        }
    }

    /// A client with `http` and every default (in-memory store, system clock).
    pub fn new(http: impl HttpClient + 'static) -> Self {
        Self::builder(http).build()
    }

    /// The authorization server metadata of `homeserver`, validated.
    ///
    /// Cached as long as the response's HTTP caching headers allow (or
    /// [`default_metadata_ttl`](OAuthClientBuilder::default_metadata_ttl) when it had none): while
    /// fresh, no request is made. Concurrent calls for one homeserver share one discovery.
    ///
    /// Fails with [`Error::NotSupported`] when the homeserver does not offer the OAuth 2.0 API.
    #[tracing::instrument(skip_all, fields(homeserver = %homeserver))]
    pub async fn discover(&self, homeserver: &Url) -> Result<Arc<Discovered>, Error> {
        self.discover_target(Target::Homeserver(homeserver.clone()))
            .await
    }

    /// The metadata of the authorization server `issuer` itself, through OpenID Connect Discovery
    /// and RFC 8414 (for sessions that have no homeserver). Cached like [`discover`](Self::discover).
    #[tracing::instrument(skip_all, fields(issuer = %issuer))]
    pub async fn discover_issuer(&self, issuer: &Url) -> Result<Arc<Discovered>, Error> {
        self.discover_target(Target::Issuer(issuer.clone())).await
    }

    /// Forgets the cached metadata of `homeserver` (for example after its token endpoint
    /// answered 404), so that the next call fetches it again.
    pub fn invalidate_metadata(&self, homeserver: &Url) {
        self.inner
            .metadata_cache
            .remove(&Target::Homeserver(homeserver.clone()).cache_key());
    }

    async fn discover_target(&self, target: Target) -> Result<Arc<Discovered>, Error> {
        let key = target.cache_key();
        let now = self.inner.clock.now();
        if let Some(hit) = self.inner.metadata_cache.get(&key, now) {
            tracing::debug!("metadata cache hit");
            return Ok(hit);
        }
        let inner = self.inner.clone();
        let (fut, started) = self
            .inner
            .discoveries
            .join(&key, move || fetch_metadata(inner, target));
        if !started {
            tracing::debug!("joining a discovery already in flight");
        }
        self.inner.discoveries.finish(&key, fut).await
    }

    /// The metadata for an existing session: its homeserver's, or its issuer's; the issuer must
    /// still be the session's.
    pub(crate) async fn metadata_for_session(
        &self,
        session: &Session,
    ) -> Result<Arc<Discovered>, Error> {
        let discovered = match &session.homeserver {
            Some(hs) => self.discover(hs).await?,
            None => self.discover_issuer(&session.issuer).await?,
        };
        if discovered.metadata.issuer != session.issuer {
            return Err(Error::IssuerChanged {
                expected: session.issuer.to_string(),
                found: discovered.metadata.issuer.to_string(),
            });
        }
        Ok(discovered)
    }

    /// Which login API to use with `homeserver` ("OAuth or legacy?").
    ///
    /// The OAuth 2.0 API wins whenever it is available (and then `/login` is not even asked). The
    /// legacy API is chosen only when discovery *definitely* said "not supported"
    /// (`404 M_UNRECOGNIZED`); a discovery that merely failed yields
    /// [`LoginApi::Undetermined`], so that a network attacker cannot force a downgrade to password
    /// login by blocking the metadata.
    #[tracing::instrument(skip_all, fields(homeserver = %homeserver))]
    pub async fn login_api(&self, homeserver: &Url) -> Result<LoginApi, Error> {
        let oauth = match self.discover(homeserver).await {
            Ok(_) => return Ok(LoginApi::OAuth),
            Err(Error::NotSupported { .. }) => OAuthProbe::NotSupported,
            Err(e) => {
                tracing::info!(error = %e, "OAuth 2.0 discovery failed");
                OAuthProbe::Unknown
            }
        };
        let request = LoginFlowsRequest::new(homeserver).map_err(Error::legacy)?;
        let legacy = match self.inner.send(request.request.clone()).await {
            Ok(response) => LegacyProbe::from_result(request.parse(&response)),
            Err(e) => {
                tracing::info!(error = %e, "reading the legacy login flows failed");
                LegacyProbe::Unknown
            }
        };
        let api = choose_login_api(oauth, legacy);
        tracing::info!(?api, "login API chosen");
        Ok(api)
    }

    /// Registers a client with `homeserver`'s authorization server (RFC 7591).
    ///
    /// [`start_login`](Self::start_login) does this by itself for a
    /// [`ClientConfig::Dynamic`](crate::ClientConfig::Dynamic) client; call it directly only to
    /// obtain a client id ahead of time.
    #[tracing::instrument(skip_all, fields(homeserver = %homeserver))]
    pub async fn register_client(
        &self,
        homeserver: &Url,
        client: &ClientMetadata,
    ) -> Result<ClientRegistration, Error> {
        let discovered = self.discover(homeserver).await?;
        self.register_at(&discovered, client).await
    }

    pub(crate) async fn register_at(
        &self,
        discovered: &Discovered,
        client: &ClientMetadata,
    ) -> Result<ClientRegistration, Error> {
        let issuer = discovered.metadata.issuer.as_str();
        let registration =
            Registration::new(&discovered.metadata, client, self.inner.registration_rules)
                .map_err(|e| Error::registration(issuer, e))?;
        let request = registration
            .request()
            .map_err(|e| Error::registration(issuer, e))?;
        let response = self
            .inner
            .send(request)
            .await
            .map_err(|e| Error::transport(Operation::Registration, e))?;
        let registered = registration
            .handle_response(&response)
            .map_err(|e| Error::registration(issuer, e))?;
        tracing::info!(client_id = %registered.client_id, "client registered");
        Ok(registered)
    }

    /// The account management URL of `homeserver` for `action` (with `device_id` for the device
    /// actions), or `None` when the server does not offer account management. Uses the stable
    /// action name unless the server advertises only an unstable one.
    pub async fn account_management_url(
        &self,
        homeserver: &Url,
        action: AccountAction,
        device_id: Option<&str>,
    ) -> Result<Option<Url>, Error> {
        let discovered = self.discover(homeserver).await?;
        Ok(discovered
            .metadata
            .account_management_url(action, device_id))
    }

    /// Asks `homeserver` who `access_token` belongs to.
    pub(crate) async fn whoami(
        &self,
        homeserver: &Url,
        access_token: &Secret,
    ) -> Result<Whoami, Error> {
        let request = WhoamiRequest::new(homeserver, access_token).map_err(Error::whoami)?;
        let response = self
            .inner
            .send(request.request.clone())
            .await
            .map_err(|e| Error::transport(Operation::Whoami, e))?;
        request.parse(&response).map_err(Error::whoami)
    }

    /// Revokes one token (RFC 7009).
    pub(crate) async fn revoke_token(
        &self,
        metadata: &matrix_oidc_core::AuthorizationServerMetadata,
        client_id: &str,
        token: &Secret,
        hint: TokenTypeHint,
    ) -> Result<(), Error> {
        let request = RevocationRequest::new(metadata, client_id, token, Some(hint))
            .map_err(Error::revocation)?;
        let response = self
            .inner
            .send(request.request.clone())
            .await
            .map_err(|e| Error::transport(Operation::Revocation, e))?;
        request.parse(&response).map_err(Error::revocation)
    }

    /// Revokes tokens that will not be used (they came with an ID token this client refused), so
    /// that no grant stays alive at the server; failures are only logged.
    #[cfg_attr(not(feature = "oidc"), allow(dead_code))]
    pub(crate) async fn revoke_quietly(
        &self,
        metadata: &matrix_oidc_core::AuthorizationServerMetadata,
        client_id: &str,
        tokens: &matrix_oidc_core::TokenSet,
    ) {
        // Revoking the refresh token ends the whole grant at servers that tie them (RFC 7009
        // §2.1 recommends it); the access token is revoked only when there is no refresh token.
        let (token, hint) = match &tokens.refresh_token {
            Some(rt) => (rt, TokenTypeHint::RefreshToken),
            None => (&tokens.access_token, TokenTypeHint::AccessToken),
        };
        if let Err(error) = self.revoke_token(metadata, client_id, token, hint).await {
            tracing::warn!(%error, token = hint.as_str(), "could not revoke the refused tokens");
        }
    }

    /// A stream of [`SessionEvent`]s from now on: logins, refreshed tokens, logouts.
    pub fn subscribe(&self) -> SessionEvents {
        self.inner.events.subscribe()
    }

    /// The keys of every stored session.
    pub async fn sessions(&self) -> Result<Vec<SessionKey>, Error> {
        Ok(self
            .inner
            .sessions
            .list()
            .await?
            .into_iter()
            .map(|s| s.key)
            .collect())
    }

    /// The stored session `key`, ready to use; `None` if there is none. In one process, every
    /// handle on one key shares the same refresh coordination.
    pub async fn restore(&self, key: &SessionKey) -> Result<Option<AuthSession>, Error> {
        if let Some(live) = self.live(key) {
            return Ok(Some(live));
        }
        let Some(stored) = self.inner.sessions.load(key).await? else {
            return Ok(None);
        };
        Ok(Some(self.attach(
            stored.key,
            stored.session,
            stored.generation,
            false,
        )))
    }

    /// Stores a session obtained elsewhere (say, migrated from another application) and returns
    /// it ready to use. It replaces any stored session with the same key.
    pub async fn import_session(&self, session: Session) -> Result<AuthSession, Error> {
        self.store_session(session).await
    }

    fn live(&self, key: &SessionKey) -> Option<AuthSession> {
        let live = lock(&self.inner.live);
        let shared = live
            .get(key)
            .and_then(Weak::upgrade)
            .filter(|s| !s.is_ended())?;
        Some(AuthSession::new(self.clone(), shared))
    }

    /// Saves a newly obtained session (replacing one stored under the same key) and returns it.
    pub(crate) async fn store_session(&self, session: Session) -> Result<AuthSession, Error> {
        let key = SessionKey::for_session(&session);
        let sessions = &self.inner.sessions;
        let current = sessions.load(&key).await?.map(|s| s.generation);
        let generation = match sessions.save(&key, &session, current).await {
            Ok(g) => g,
            // Someone saved in between: this login is newer than whatever they saved.
            Err(StoreError::Conflict { current, .. }) => {
                sessions.save(&key, &session, current).await?
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(session = %key, "session stored");
        let handle = self.attach(key.clone(), session, generation, true);
        self.inner.events.emit(SessionEvent::LoggedIn { key });
        Ok(handle)
    }

    fn attach(
        &self,
        key: SessionKey,
        session: Session,
        generation: Generation,
        replace: bool,
    ) -> AuthSession {
        let mut live = lock(&self.inner.live);
        live.retain(|_, w| w.strong_count() > 0);
        if let Some(existing) = live.get(&key).and_then(Weak::upgrade) {
            if replace {
                existing.replace(session, generation);
            }
            return AuthSession::new(self.clone(), existing);
        }
        let shared = Arc::new(SessionShared::new(
            key.clone(),
            session,
            generation,
            self.inner.refresh_policy.clone(),
        ));
        live.insert(key, Arc::downgrade(&shared));
        AuthSession::new(self.clone(), shared)
    }
}

/// One discovery: runs the core's state machine over the transport, then fills the cache. Runs
/// inside the single-flight future, so the cache is filled even if the caller that started it was
/// cancelled.
async fn fetch_metadata(inner: Arc<Inner>, target: Target) -> Result<Arc<Discovered>, Error> {
    let span = tracing::info_span!("fetch_metadata", target = %target.cache_key());
    async move {
        let label = match &target {
            Target::Homeserver(u) | Target::Issuer(u) => u.to_string(),
        };
        let fail = |e| Error::discovery(&label, e);
        let mut machine = match &target {
            Target::Homeserver(hs) => {
                Machine::Matrix(MatrixDiscovery::new(hs, inner.discovery.clone()).map_err(fail)?)
            }
            Target::Issuer(iss) => {
                let options = IssuerDiscoveryOptions::default()
                    .with_url_policy(inner.discovery.validation.url_policy);
                Machine::Issuer(IssuerDiscovery::new(iss, options).map_err(fail)?)
            }
        };
        let mut step = machine.start().map_err(fail)?;
        let discovered = loop {
            match step {
                Step::Send(request) => {
                    let response = inner
                        .send(request)
                        .await
                        .map_err(|e| Error::transport(Operation::Discovery, e))?;
                    let now = inner.clock.now();
                    step = machine.handle_response(&response, now).map_err(fail)?;
                }
                Step::Done(discovered) => break Arc::new(*discovered),
            }
        };
        let now = inner.clock.now();
        if discovered.cache.no_store {
            tracing::debug!("metadata marked no-store: not cached");
        } else {
            let fresh_until = discovered
                .fresh_until()
                .unwrap_or_else(|| now + inner.default_metadata_ttl);
            tracing::debug!(
                fresh_for_s = fresh_until.duration_since(now).as_secs(),
                source = ?discovered.source,
                "metadata fetched"
            );
            inner
                .metadata_cache
                .insert(target.cache_key(), discovered.clone(), fresh_until, now);
        }
        Ok(discovered)
    }
    .instrument(span)
    .await
}
