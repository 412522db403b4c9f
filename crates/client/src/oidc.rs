//! The OpenID Connect layer (feature `oidc`): ID tokens validated at login and on refresh, the
//! provider's keys cached per issuer, userinfo, RP-initiated logout.
//!
//! ```text
//!  finish_login ── token response ── id_token ──┐        refresh ── id_token (if any) ──┐
//!                                               ▼                                       ▼
//!        IdTokenValidation (core) ◀── JwksCache per jwks_uri (shared by the client) ──▶ §12.2
//!          │ Fetch: stale keys, or a `kid` not in them (at most one refetch per        checks
//!          │        min_refetch_interval; one request for all validations waiting)
//!          ▼
//!     IdTokenClaims ──▶ Session::id_token_claims (stored) ──▶ AuthSession::id_token_claims
//! ```
//!
//! Signatures are checked by a [`JwsVerifier`] (default: `matrix_oidc_jose::default_verifier()`,
//! RustCrypto, or `ring` with the `oidc-ring` feature). The algorithm an ID token may use comes
//! from the provider's metadata (`id_token_signing_alg_values_supported`, without `none` and HMAC),
//! never from the token alone.

use crate::client::{Inner, OAuthClient, OAuthClientBuilder};
use crate::error::{Error, Operation};
use crate::session::AuthSession;
use crate::single_flight::{SharedFuture, SingleFlight, lock};
use matrix_oidc_core::callback::AuthorizationCode;
use matrix_oidc_core::oidc::{
    EndSessionRequest, EndSessionUrl, IdTokenClaims, IdTokenError, IdTokenExpectations,
    IdTokenValidation, JwksCache, JwksCacheConfig, JwksError, JwsVerifier, LogoutError, UserInfo,
    UserinfoError, ValidationStep, handle_userinfo_response, userinfo_request,
};
use matrix_oidc_core::{
    AuthorizationServerMetadata, OutgoingRequest, PendingAuthorization, Secret, Session,
};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// A signature backend the client can share between tasks.
type SharedVerifier = Arc<dyn JwsVerifier + Send + Sync>;

/// The OpenID Connect settings of an [`OAuthClientBuilder`].
pub(crate) struct OidcSettings {
    verifier: SharedVerifier,
    clock_skew: Duration,
    jwks_config: JwksCacheConfig,
    caches: Vec<JwksCache>,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            verifier: Arc::new(matrix_oidc_jose::default_verifier()),
            clock_skew: matrix_oidc_core::oidc::DEFAULT_CLOCK_SKEW,
            jwks_config: JwksCacheConfig::default(),
            caches: Vec::new(),
        }
    }
}

/// The OpenID Connect state of an [`OAuthClient`]: the verifier and the key sets, per `jwks_uri`.
pub(crate) struct OidcState {
    verifier: SharedVerifier,
    clock_skew: Duration,
    jwks_config: JwksCacheConfig,
    caches: Mutex<HashMap<Url, JwksCache>>,
    fetches: SingleFlight<Url, Result<(), Error>>,
}

impl std::fmt::Debug for OidcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcState")
            .field("clock_skew", &self.clock_skew)
            .field("jwks_config", &self.jwks_config)
            .field("key_sets", &lock(&self.caches).len())
            .finish_non_exhaustive()
    }
}

impl From<OidcSettings> for OidcState {
    fn from(s: OidcSettings) -> Self {
        let caches = s
            .caches
            .into_iter()
            .map(|c| (c.jwks_uri().clone(), c))
            .collect();
        Self {
            verifier: s.verifier,
            clock_skew: s.clock_skew,
            jwks_config: s.jwks_config,
            caches: Mutex::new(caches),
            fetches: SingleFlight::default(),
        }
    }
}

impl OidcState {
    fn new_cache(&self, jwks_uri: &Url) -> JwksCache {
        JwksCache::new(jwks_uri.clone()).with_config(self.jwks_config.clone())
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
impl OAuthClientBuilder {
    /// The signature backend for ID tokens (default: `matrix_oidc_jose::default_verifier()`:
    /// RustCrypto, or `ring` with the `oidc-ring` feature).
    pub fn jws_verifier(mut self, verifier: impl JwsVerifier + Send + Sync + 'static) -> Self {
        self.oidc.verifier = Arc::new(verifier);
        self
    }

    /// The tolerance for ID tokens' `exp`, `iat`, `nbf` against this client's clock (default
    /// [`DEFAULT_CLOCK_SKEW`](matrix_oidc_core::oidc::DEFAULT_CLOCK_SKEW), 60 s).
    pub fn id_token_clock_skew(mut self, skew: Duration) -> Self {
        self.oidc.clock_skew = skew;
        self
    }

    /// How long providers' key sets are kept and how often an unknown `kid` may refetch them
    /// (default [`JwksCacheConfig::default`]: HTTP caching headers within 1 min – 24 h, at most one
    /// unknown-`kid` refetch a minute).
    pub fn jwks_cache_config(mut self, config: JwksCacheConfig) -> Self {
        self.oidc.jwks_config = config;
        self
    }

    /// Starts with a key set saved earlier from [`OAuthClient::jwks_caches`] (it is
    /// `Serialize`), so that a short-lived process does not fetch the keys on every run. Its own
    /// freshness still applies.
    pub fn jwks_cache(mut self, cache: JwksCache) -> Self {
        self.oidc.caches.push(cache);
        self
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
impl OAuthClient {
    /// The providers' key sets this client holds, to persist (they are `Serialize`) and give back
    /// to [`OAuthClientBuilder::jwks_cache`] next time.
    pub fn jwks_caches(&self) -> Vec<JwksCache> {
        let mut caches: Vec<JwksCache> = lock(&self.inner.oidc.caches).values().cloned().collect();
        caches.sort_by(|a, b| a.jwks_uri().as_str().cmp(b.jwks_uri().as_str()));
        caches
    }

    /// Validates the ID token of a finished code flow and puts its claims on `session` (and, with
    /// no homeserver to ask, its `sub` as the user id).
    pub(crate) async fn validate_login_id_token(
        &self,
        session: &mut Session,
        pending: &PendingAuthorization,
        code: &AuthorizationCode,
    ) -> Result<(), Error> {
        let discovered = self.metadata_for_session(session).await?;
        let validated = match session.tokens.id_token.clone() {
            None => Err(Error::IdToken(IdTokenError::Missing)),
            Some(id_token) => {
                let expect = self
                    .expectations(&discovered.metadata, &session.client_id)?
                    .with_pending_nonce(pending)
                    .with_access_token(session.tokens.access_token.clone())
                    .with_code(code.secret().clone());
                self.validate_id_token(&discovered.metadata, &id_token, &expect, None)
                    .await
            }
        };
        let claims = match validated {
            Ok(claims) => claims,
            Err(error) => {
                tracing::warn!(%error, "the ID token was refused");
                // Tokens were issued for a login this client will not complete.
                self.revoke_quietly(&discovered.metadata, &session.client_id, &session.tokens)
                    .await;
                return Err(error);
            }
        };
        tracing::info!(sub_len = claims.sub.len(), "ID token validated");
        if session.homeserver.is_none() {
            session.user_id = Some(claims.sub.clone());
        }
        session.id_token_claims = Some(claims);
        Ok(())
    }

    /// Validates the ID token of a refresh against the session's claims (OpenID Connect Core
    /// §12.2).
    pub(crate) async fn validate_refreshed_id_token(
        &self,
        metadata: &AuthorizationServerMetadata,
        client_id: &str,
        previous: &IdTokenClaims,
        id_token: &Secret,
        access_token: &Secret,
    ) -> Result<IdTokenClaims, Error> {
        let expect = self
            .expectations(metadata, client_id)?
            .with_access_token(access_token.clone());
        let mut claims = self
            .validate_id_token(metadata, id_token, &expect, Some(previous))
            .await?;
        // §12.2 compares every later token with the *original* authentication's nonce, auth_time
        // and azp; a refreshed token may leave them out, so they are carried over rather than lost
        // for the next comparison.
        if claims.nonce.is_none() {
            claims.nonce = previous.nonce.clone();
        }
        if claims.auth_time.is_none() {
            claims.auth_time = previous.auth_time;
        }
        if claims.azp.is_none() {
            claims.azp = previous.azp.clone();
        }
        Ok(claims)
    }

    fn expectations(
        &self,
        metadata: &AuthorizationServerMetadata,
        client_id: &str,
    ) -> Result<IdTokenExpectations, Error> {
        Ok(
            IdTokenExpectations::from_metadata(metadata, client_id, None)
                .map_err(|e| Error::IdToken(e.into()))?
                .with_clock_skew(self.inner.oidc.clock_skew),
        )
    }

    /// The core's validation loop, with the client's shared key-set cache and transport.
    async fn validate_id_token(
        &self,
        metadata: &AuthorizationServerMetadata,
        id_token: &Secret,
        expect: &IdTokenExpectations,
        previous: Option<&IdTokenClaims>,
    ) -> Result<IdTokenClaims, Error> {
        let oidc = &self.inner.oidc;
        let jwks_uri = metadata
            .jwks_uri
            .clone()
            .ok_or(Error::IdToken(IdTokenError::KeySet(JwksError::NoJwksUri)))?;
        let mut validation = match previous {
            Some(p) => IdTokenValidation::refreshed(id_token.expose(), p),
            None => IdTokenValidation::new(id_token.expose()),
        };
        loop {
            let now = self.inner.clock.now();
            // Polled on the shared cache, so that the unknown-`kid` refetch is throttled for every
            // validation rather than per call; and a fetch is joined under the same lock, so that a
            // validation never sees the refetch recorded without the fetch to wait for.
            let fetch = {
                let mut caches = lock(&oidc.caches);
                match oidc.fetches.in_flight(&jwks_uri) {
                    // Another validation is fetching: its keys may be the ones this token needs.
                    Some(fetch) => Fetch::Joined(fetch),
                    None => {
                        let cache = caches
                            .entry(jwks_uri.clone())
                            .or_insert_with(|| oidc.new_cache(&jwks_uri));
                        match validation.poll(cache, expect, &*oidc.verifier, now) {
                            Ok(ValidationStep::Done(claims)) => return Ok(claims),
                            Ok(ValidationStep::Fetch(request)) => {
                                let inner = self.inner.clone();
                                let uri = jwks_uri.clone();
                                let (fetch, _) = oidc
                                    .fetches
                                    .join(&jwks_uri, move || fetch_jwks(inner, uri, request));
                                Fetch::Mine(fetch)
                            }
                            Err(e) => return Err(Error::IdToken(e)),
                        }
                    }
                }
            };
            match fetch {
                Fetch::Mine(fetch) => oidc.fetches.finish(&jwks_uri, fetch).await?,
                Fetch::Joined(fetch) => {
                    tracing::debug!("waiting for a key-set fetch already in flight");
                    // Its failure is not this validation's: the poll decides what to do next.
                    let _ = oidc.fetches.finish(&jwks_uri, fetch).await;
                }
            }
        }
    }
}

enum Fetch {
    Mine(SharedFuture<Result<(), Error>>),
    Joined(SharedFuture<Result<(), Error>>),
}

/// One key-set fetch: runs inside the single-flight future, so the cache is filled even if the
/// validation that started it was cancelled.
async fn fetch_jwks(
    inner: Arc<Inner>,
    jwks_uri: Url,
    request: OutgoingRequest,
) -> Result<(), Error> {
    let response = inner
        .send(request)
        .await
        .map_err(|e| Error::transport(Operation::Jwks, e))?;
    let now = inner.clock.now();
    let oidc = &inner.oidc;
    let mut caches = lock(&oidc.caches);
    let cache = caches
        .entry(jwks_uri.clone())
        .or_insert_with(|| oidc.new_cache(&jwks_uri));
    match cache.handle_response(&response, now) {
        Ok(keys) => {
            tracing::info!(%jwks_uri, keys = keys.keys().len(), "provider key set fetched");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(%jwks_uri, error = %e, "provider key set unusable");
            Err(Error::IdToken(IdTokenError::KeySet(e)))
        }
    }
}

/// Whether a refreshed ID token could not be checked because the keys could not be had (as
/// opposed to a token that is wrong).
pub(crate) fn keys_unavailable(error: &Error) -> bool {
    matches!(
        error,
        Error::Transport {
            operation: Operation::Jwks,
            ..
        } | Error::IdToken(IdTokenError::KeySet(_))
    )
}

#[cfg_attr(docsrs, doc(cfg(feature = "oidc")))]
impl AuthSession {
    /// The claims of the session's ID token, validated at login (or at the last refresh that
    /// brought one): `sub`, `iss`, `aud`, `auth_time`, the profile claims, … `None` for a session
    /// that did not sign in with [`LoginOptions::openid`](crate::LoginOptions::openid).
    ///
    /// `nonce`, `auth_time` and `azp` are the original authentication's when a refreshed token left
    /// them out (OpenID Connect Core §12.2 holds later tokens to those).
    pub fn id_token_claims(&self) -> Option<IdTokenClaims> {
        self.session().id_token_claims
    }

    /// Asks the provider's userinfo endpoint about the user (OpenID Connect Core §5.3), with a
    /// valid access token (refreshed once if the endpoint refuses it). The answer is returned only
    /// if its `sub` is the ID token's; otherwise it may describe another user, and this fails with
    /// [`UserinfoError::SubjectMismatch`].
    ///
    /// Errors: [`Error::NoIdToken`] for a session without validated claims,
    /// [`UserinfoError::NotSupported`] when the provider has no userinfo endpoint.
    #[tracing::instrument(skip_all, fields(session = %self.key()))]
    pub async fn userinfo(&self) -> Result<UserInfo, Error> {
        let session = self.session();
        let claims = session.id_token_claims.as_ref().ok_or(Error::NoIdToken)?;
        let discovered = self.client.metadata_for_session(&session).await?;
        let endpoint = discovered
            .metadata
            .userinfo_endpoint
            .clone()
            .ok_or(Error::Userinfo(UserinfoError::NotSupported))?;
        let mut token = self.access_token().await?;
        let mut retried = false;
        loop {
            let request = userinfo_request(&endpoint, token.secret(), false)
                .map_err(|e| Error::Userinfo(e.into()))?;
            let response = self
                .client
                .inner
                .send(request)
                .await
                .map_err(|e| Error::transport(Operation::Userinfo, e))?;
            match handle_userinfo_response(&response, &claims.sub) {
                Err(UserinfoError::Unauthorized { .. }) if !retried => {
                    retried = true;
                    token = self.handle_unknown_token(&token, false).await?;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the userinfo response was refused");
                    return Err(Error::Userinfo(e));
                }
                Ok(info) => return Ok(info),
            }
        }
    }

    /// The URL that ends the user's session at the provider too (OpenID Connect RP-Initiated
    /// Logout 1.0): the provider's `end_session_endpoint` with the session's last ID token as
    /// `id_token_hint`, its `client_id`, and `post_logout_redirect_uri` (which must be one the
    /// client registered) when given.
    ///
    /// Open it in the browser after (or instead of) [`logout`](Self::logout), which revokes the
    /// tokens; the handle keeps what this needs after a logout. The URL carries the ID token:
    /// its `Debug` hides it.
    ///
    /// Errors: [`Error::EndSession`]`(`[`LogoutError::NotSupported`]`)` when the provider has no
    /// end-session endpoint.
    pub async fn end_session_url(
        &self,
        post_logout_redirect_uri: Option<Url>,
    ) -> Result<EndSessionUrl, Error> {
        let mut request = EndSessionRequest::new();
        if let Some(uri) = post_logout_redirect_uri {
            request = request.with_post_logout_redirect_uri(uri);
        }
        self.end_session_url_with(request).await
    }

    /// [`end_session_url`](Self::end_session_url) with more parameters (`state`, `logout_hint`,
    /// `ui_locales`); `id_token_hint` and `client_id` are filled in from the session when unset.
    pub async fn end_session_url_with(
        &self,
        mut request: EndSessionRequest,
    ) -> Result<EndSessionUrl, Error> {
        let session = self.session();
        let discovered = self.client.metadata_for_session(&session).await?;
        if request.id_token_hint.is_none() {
            request.id_token_hint = session.tokens.id_token.clone();
        }
        if request.client_id.is_none() {
            request.client_id = Some(session.client_id.clone());
        }
        request
            .build_url_from_metadata(&discovered.metadata)
            .map_err(|e: LogoutError| Error::EndSession(e))
    }
}
