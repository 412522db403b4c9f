//! [`AuthSession`]: a signed-in session — valid access tokens on demand, and logout.

use crate::client::OAuthClient;
use crate::error::Error;
use crate::events::{LogoutReason, SessionEvent};
use crate::single_flight::{SharedFuture, lock};
use futures_util::FutureExt;
use matrix_oidc_core::revoke::TokenTypeHint;
use matrix_oidc_core::whoami::{Whoami, WhoamiError};
use matrix_oidc_core::{
    AccountAction, RefreshCoordinator, RefreshDecision, RefreshOutcome, RefreshPolicy,
    RefreshTicket, Secret, Session, Timestamp, TokenError,
};
use matrix_oidc_storage::{Generation, SessionKey, StoreError};
use std::sync::{Arc, Mutex};
use tracing::Instrument;
use url::Url;

/// An access token handed out by [`AuthSession::access_token`], with the generation of the token
/// set it belongs to (pass it back to [`AuthSession::handle_unknown_token`]).
///
/// `Debug` does not show the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: Secret,
    generation: u64,
    expires_at: Option<Timestamp>,
}

impl AccessToken {
    /// The token, to put in an `Authorization: Bearer` header.
    pub fn secret(&self) -> &Secret {
        &self.token
    }

    /// The raw token string.
    pub fn expose(&self) -> &str {
        self.token.expose()
    }

    /// Which token set of the session this is (0 at login or restore, +1 per refresh).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When it expires, if the server said.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
}

/// A token the logout could not revoke. The local logout happened anyway.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RevocationFailure {
    /// Which token.
    pub token: TokenTypeHint,
    /// Why.
    pub error: Error,
}

/// What a [`logout`](AuthSession::logout) achieved on the server. Locally, the session is gone
/// whatever this says.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LogoutReport {
    /// The tokens the server confirmed revoked.
    pub revoked: Vec<TokenTypeHint>,
    /// The tokens that could not be revoked, and why.
    pub failures: Vec<RevocationFailure>,
}

impl LogoutReport {
    /// Whether every token was revoked.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

pub(crate) struct SessionState {
    session: Session,
    coordinator: RefreshCoordinator,
    stored_generation: Option<Generation>,
    inflight: Option<SharedFuture<Result<AccessToken, Error>>>,
    ended: Option<LogoutReason>,
    /// New tokens that could not be stored yet (the store failed); saved on the next use.
    unsaved: bool,
}

impl SessionState {
    fn current_token(&self) -> AccessToken {
        let tokens = self.coordinator.tokens();
        AccessToken {
            token: tokens.access_token.clone(),
            generation: self.coordinator.generation(),
            expires_at: tokens.expires_at,
        }
    }

    fn adopt(&mut self, session: Session) -> bool {
        let changed = self.coordinator.adopt(session.tokens.clone());
        self.session = session;
        changed
    }
}

/// The state one process keeps for one session, shared by every [`AuthSession`] handle on it.
pub(crate) struct SessionShared {
    key: SessionKey,
    state: Mutex<SessionState>,
}

impl SessionShared {
    pub(crate) fn new(
        key: SessionKey,
        session: Session,
        generation: Generation,
        policy: RefreshPolicy,
    ) -> Self {
        Self {
            key,
            state: Mutex::new(SessionState {
                coordinator: RefreshCoordinator::new(session.tokens.clone(), policy),
                session,
                stored_generation: Some(generation),
                inflight: None,
                ended: None,
                unsaved: false,
            }),
        }
    }

    /// A new login for the same key: its tokens replace the old ones.
    pub(crate) fn replace(&self, session: Session, generation: Generation) {
        let mut st = lock(&self.state);
        st.adopt(session);
        st.stored_generation = Some(generation);
        st.ended = None;
        st.unsaved = false;
    }

    /// Whether the session ended in this process.
    pub(crate) fn is_ended(&self) -> bool {
        lock(&self.state).ended.is_some()
    }

    /// Ends the refresh in flight: clears it and applies `f`, under the lock.
    fn settle<R>(&self, f: impl FnOnce(&mut SessionState) -> R) -> R {
        let mut st = lock(&self.state);
        st.inflight = None;
        f(&mut st)
    }
}

#[derive(Debug, Clone, Copy)]
enum Trigger {
    BeforeRequest,
    UnknownToken { generation: u64, soft_logout: bool },
    Requested,
}

/// A signed-in session: hands out valid access tokens (refreshing when due), and logs out.
///
/// Cheap to clone; all handles on one session in one process share one refresh coordinator, so
/// concurrent callers cause one refresh. Get one from
/// [`finish_login`](OAuthClient::finish_login), [`DeviceLogin::wait`](crate::DeviceLogin::wait),
/// [`restore`](OAuthClient::restore) or [`import_session`](OAuthClient::import_session).
///
/// ```text
///  access_token() ──▶ RefreshCoordinator (core) ──Use──────────────────────────▶ token
///                        │ Refresh(ticket)            │ Wait
///                        ▼                            ▼
///        one shared refresh future ◀────── every other caller awaits it
///        ├─ metadata (cached)
///        ├─ store lock (cross-process)   ── other process already refreshed? ─▶ adopt, done
///        ├─ POST token_endpoint
///        ├─ save tokens (compare-and-swap) ── before anyone can use them
///        └─ finish(ticket) ─▶ event TokensRefreshed
/// ```
///
/// The refresh runs inside a [`Shared`](futures_util::future::Shared) future kept in the session
/// while it runs. A caller that is cancelled only stops waiting: the next caller (or the
/// [`Spawn`](crate::Spawn)er, if the client has one) drives the same future on, so the rotated
/// refresh token the server sent is read and stored, never lost. Without a spawner, every caller
/// that arrives during a refresh waits for it (even one whose token is still valid), so that the
/// refresh is always driven to its end; with one, such callers get the still-valid token at once.
#[derive(Clone)]
pub struct AuthSession {
    pub(crate) client: OAuthClient,
    shared: Arc<SessionShared>,
}

impl std::fmt::Debug for AuthSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSession")
            .field("key", &self.shared.key)
            .finish_non_exhaustive()
    }
}

impl AuthSession {
    pub(crate) fn new(client: OAuthClient, shared: Arc<SessionShared>) -> Self {
        Self { client, shared }
    }

    /// The key the session is stored under.
    pub fn key(&self) -> &SessionKey {
        &self.shared.key
    }

    /// A snapshot of the session: homeserver, issuer, client id, user, device and current tokens
    /// (whose `Debug` is redacted).
    pub fn session(&self) -> Session {
        lock(&self.shared.state).session.clone()
    }

    /// The Matrix user id.
    pub fn user_id(&self) -> Option<String> {
        lock(&self.shared.state).session.user_id.clone()
    }

    /// The Matrix device id.
    pub fn device_id(&self) -> Option<String> {
        lock(&self.shared.state).session.device_id.clone()
    }

    /// Whether the session has ended (logged out here, refused by the server, or removed by
    /// another process as far as this one has noticed).
    pub fn is_logged_out(&self) -> bool {
        let st = lock(&self.shared.state);
        st.ended.is_some() || st.coordinator.is_logged_out()
    }

    /// A valid access token, refreshed first if it expires within the policy's margin.
    ///
    /// However many callers ask at once, one refresh request is made and all get its result. A
    /// caller cancelled during the refresh does not abort it (see [`AuthSession`]).
    ///
    /// Errors: [`Error::LoggedOut`] when the session is over (the refresh was refused, or the
    /// session was logged out; it is then removed from the store), [`Error::RefreshFailed`] when
    /// the refresh failed temporarily and the token is no longer usable.
    #[tracing::instrument(skip_all, fields(session = %self.shared.key))]
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        self.drive(Trigger::BeforeRequest).await
    }

    /// What to do when the homeserver answered `M_UNKNOWN_TOKEN` to a request made with
    /// `rejected`: returns the token to retry with.
    ///
    /// If another caller (or process) has refreshed since `rejected` was handed out, that newer
    /// token comes back without a request. Otherwise the session refreshes, as the specification
    /// asks before honouring `soft_logout`. A token a refresh produced moments ago that is rejected
    /// again ends the session instead of looping.
    #[tracing::instrument(skip_all, fields(session = %self.shared.key, generation = rejected.generation))]
    pub async fn handle_unknown_token(
        &self,
        rejected: &AccessToken,
        soft_logout: bool,
    ) -> Result<AccessToken, Error> {
        self.drive(Trigger::UnknownToken {
            generation: rejected.generation,
            soft_logout,
        })
        .await
    }

    /// Refreshes the tokens now, whatever their expiry ("refresh now"), and returns the new access
    /// token.
    ///
    /// Single-flight like [`access_token`](Self::access_token): a refresh already in flight is
    /// joined instead of starting another, so N concurrent calls (and any `access_token` callers
    /// that need a refresh meanwhile) cause one token request. A call made after that refresh
    /// finished starts a new one. An earlier transient failure's backoff does not hold an
    /// explicit request back.
    ///
    /// Errors: as for [`access_token`](Self::access_token), plus
    /// [`Error::Token`]`(`[`TokenError::NoRefreshToken`](matrix_oidc_core::TokenError::NoRefreshToken)`)`
    /// when the session has no refresh token (its access token stays usable until it expires).
    ///
    /// ```no_run
    /// # async fn demo(session: matrix_oidc::AuthSession) -> Result<(), matrix_oidc::Error> {
    /// let before = session.access_token().await?;
    /// let after = session.refresh().await?;
    /// assert!(after.generation() > before.generation());
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip_all, fields(session = %self.shared.key))]
    pub async fn refresh(&self) -> Result<AccessToken, Error> {
        self.drive(Trigger::Requested).await
    }

    async fn drive(&self, trigger: Trigger) -> Result<AccessToken, Error> {
        self.persist_unsaved().await;
        let now = self.client.inner.clock.now();
        enum Next {
            Await(SharedFuture<Result<AccessToken, Error>>),
            ConfirmLoggedOut { soft_logout: bool },
        }
        let next = {
            let mut st = lock(&self.shared.state);
            if let Some(reason) = st.ended {
                return Err(ended_error(reason));
            }
            let decision = match trigger {
                Trigger::BeforeRequest => st.coordinator.before_request(now),
                Trigger::UnknownToken {
                    generation,
                    soft_logout,
                } => st
                    .coordinator
                    .on_unknown_token(generation, soft_logout, now),
                Trigger::Requested => st.coordinator.request_refresh(now),
            };
            match decision {
                RefreshDecision::Use { .. } => match &st.inflight {
                    // Without a spawner, a refresh in flight moves only while someone awaits it;
                    // its first caller may have been cancelled. Waiting for it (one round trip)
                    // rather than using the still-valid old token makes sure it completes and
                    // its rotated refresh token is stored.
                    Some(fut) if self.client.inner.spawner.is_none() => Next::Await(fut.clone()),
                    _ => return Ok(st.current_token()),
                },
                RefreshDecision::Refresh(ticket) => {
                    tracing::info!(reason = ?ticket.reason(), "refreshing the access token");
                    let fut = self.start_refresh(ticket);
                    st.inflight = Some(fut.clone());
                    if let Some(spawner) = &self.client.inner.spawner {
                        spawner.spawn(Box::pin(fut.clone().map(drop)));
                    }
                    Next::Await(fut)
                }
                RefreshDecision::Wait => match &st.inflight {
                    Some(fut) => {
                        tracing::debug!("waiting for the refresh in flight");
                        Next::Await(fut.clone())
                    }
                    // The coordinator and `inflight` change together under this lock, so this
                    // cannot happen; report it as a temporary failure rather than spin.
                    None => {
                        return Err(Error::RefreshFailed {
                            retry_at: now,
                            source: None,
                        });
                    }
                },
                RefreshDecision::Backoff { until } => {
                    return Err(Error::RefreshFailed {
                        retry_at: until,
                        source: None,
                    });
                }
                RefreshDecision::LoggedOut { soft_logout } => {
                    Next::ConfirmLoggedOut { soft_logout }
                }
                RefreshDecision::NoRefreshToken => {
                    return Err(Error::Token(TokenError::NoRefreshToken));
                }
                _ => {
                    return Err(Error::RefreshFailed {
                        retry_at: now,
                        source: None,
                    });
                }
            }
        };
        match next {
            Next::Await(fut) => fut.await,
            Next::ConfirmLoggedOut { soft_logout } => self.confirm_logged_out(soft_logout).await,
        }
    }

    /// The coordinator says the session is over without a refresh (no refresh token left and the
    /// access token expired, or a just-refreshed token rejected). Another process may have signed
    /// in again or refreshed meanwhile: if the store has other tokens, use them; else end the
    /// session here and in the store.
    async fn confirm_logged_out(&self, soft_logout: bool) -> Result<AccessToken, Error> {
        let inner = &self.client.inner;
        let key = &self.shared.key;
        match inner.sessions.load(key).await {
            Ok(Some(stored)) => {
                let mut st = lock(&self.shared.state);
                if st.ended.is_none() && !st.unsaved && st.adopt(stored.session) {
                    st.stored_generation = Some(stored.generation);
                    let token = st.current_token();
                    drop(st);
                    tracing::info!("the store has newer tokens: using them");
                    inner.events.emit(SessionEvent::TokensRefreshed {
                        key: key.clone(),
                        by_this_process: false,
                    });
                    return Ok(token);
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read the store"),
        }
        let reason = LogoutReason::RefreshRejected { soft_logout };
        let newly_ended = {
            let mut st = lock(&self.shared.state);
            let newly = st.ended.is_none();
            st.ended.get_or_insert(reason);
            newly
        };
        if newly_ended {
            tracing::warn!(soft_logout, "the session cannot be refreshed: logged out");
            if let Err(error) = inner.sessions.delete(key).await {
                tracing::warn!(%error, "could not delete the logged-out session");
            }
            inner.events.emit(SessionEvent::LoggedOut {
                key: key.clone(),
                reason,
            });
        }
        Err(Error::LoggedOut {
            soft_logout,
            source: None,
        })
    }

    fn start_refresh(&self, ticket: RefreshTicket) -> SharedFuture<Result<AccessToken, Error>> {
        let span = tracing::info_span!("refresh", session = %self.shared.key);
        let fut = refresh(self.client.clone(), self.shared.clone(), ticket).instrument(span);
        let boxed: crate::runtime::BoxFuture<'static, _> = Box::pin(fut);
        boxed.shared()
    }

    /// Saves tokens a refresh obtained but could not store (the store failed then).
    async fn persist_unsaved(&self) {
        let (session, expected) = {
            let st = lock(&self.shared.state);
            if !st.unsaved || st.inflight.is_some() || st.ended.is_some() {
                return;
            }
            (st.session.clone(), st.stored_generation)
        };
        let inner = &self.client.inner;
        match inner
            .sessions
            .save(&self.shared.key, &session, expected)
            .await
        {
            Ok(generation) => {
                let mut st = lock(&self.shared.state);
                if st.session.tokens == session.tokens {
                    st.stored_generation = Some(generation);
                    st.unsaved = false;
                }
                tracing::info!("stored the tokens of an earlier refresh");
            }
            Err(error) => tracing::warn!(%error, "still cannot store the refreshed tokens"),
        }
    }

    /// Logs out: revokes the refresh token and the access token at the authorization server
    /// (RFC 7009), then deletes the session from the store.
    ///
    /// The local logout always happens (unless the store itself fails): tokens the server could
    /// not revoke are listed in the [`LogoutReport`] rather than failing the call. A refresh in
    /// flight is let finish first, so that the tokens revoked are the latest.
    #[tracing::instrument(skip_all, fields(session = %self.shared.key))]
    pub async fn logout(&self) -> Result<LogoutReport, Error> {
        loop {
            let inflight = lock(&self.shared.state).inflight.clone();
            match inflight {
                Some(fut) => drop(fut.await),
                None => break,
            }
        }
        let inner = &self.client.inner;
        let key = &self.shared.key;
        let guard = inner.locks.acquire(key).await?;
        let stored = inner.sessions.load(key).await?;
        let session = {
            let mut st = lock(&self.shared.state);
            st.ended = Some(LogoutReason::Requested);
            match stored {
                // Another process may have refreshed since: its tokens are the live ones.
                Some(stored) if !st.unsaved => stored.session,
                _ => st.session.clone(),
            }
        };
        let mut report = LogoutReport::default();
        let mut tokens = Vec::new();
        if let Some(rt) = &session.tokens.refresh_token {
            tokens.push((rt.clone(), TokenTypeHint::RefreshToken));
        }
        tokens.push((
            session.tokens.access_token.clone(),
            TokenTypeHint::AccessToken,
        ));
        match self.client.metadata_for_session(&session).await {
            Ok(discovered) => {
                for (token, hint) in tokens {
                    match self
                        .revoke(&discovered.metadata, &session, &token, hint)
                        .await
                    {
                        Ok(()) => report.revoked.push(hint),
                        Err(error) => {
                            tracing::warn!(token = hint.as_str(), %error, "revocation failed");
                            report
                                .failures
                                .push(RevocationFailure { token: hint, error });
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "no metadata: cannot revoke");
                for (_, hint) in tokens {
                    report.failures.push(RevocationFailure {
                        token: hint,
                        error: error.clone(),
                    });
                }
            }
        }
        inner.sessions.delete(key).await?;
        drop(guard);
        tracing::info!(complete = report.is_complete(), "logged out");
        inner.events.emit(SessionEvent::LoggedOut {
            key: key.clone(),
            reason: LogoutReason::Requested,
        });
        Ok(report)
    }

    async fn revoke(
        &self,
        metadata: &matrix_oidc_core::AuthorizationServerMetadata,
        session: &Session,
        token: &Secret,
        hint: TokenTypeHint,
    ) -> Result<(), Error> {
        self.client
            .revoke_token(metadata, &session.client_id, token, hint)
            .await
    }

    /// The account management URL for `action` (with this session's device id for the device
    /// actions), or `None` when the server offers no account management.
    pub async fn account_management_url(
        &self,
        action: AccountAction,
    ) -> Result<Option<Url>, Error> {
        let session = self.session();
        let discovered = self.client.metadata_for_session(&session).await?;
        let device_id = if action.takes_device_id() {
            session.device_id.as_deref()
        } else {
            None
        };
        Ok(discovered
            .metadata
            .account_management_url(action, device_id))
    }

    /// Asks the homeserver who the session is (`GET /account/whoami`), with a valid token; on
    /// `M_UNKNOWN_TOKEN` it refreshes once and asks again. Checks that the answer is still this
    /// session's user and device.
    #[tracing::instrument(skip_all, fields(session = %self.shared.key))]
    pub async fn whoami(&self) -> Result<Whoami, Error> {
        let session = self.session();
        let Some(homeserver) = session.homeserver.clone() else {
            return Err(Error::Whoami(WhoamiError::InvalidResponse {
                url: session.issuer.to_string(),
                field: "homeserver",
                reason: "the session has no homeserver".to_owned(),
            }));
        };
        let mut token = self.access_token().await?;
        let mut retried = false;
        loop {
            match self.client.whoami(&homeserver, token.secret()).await {
                Err(Error::Whoami(WhoamiError::UnknownToken { soft_logout, .. })) if !retried => {
                    retried = true;
                    token = self.handle_unknown_token(&token, soft_logout).await?;
                }
                Ok(whoami) => {
                    let mut check = session.clone();
                    whoami.apply_to(&mut check).map_err(Error::whoami)?;
                    return Ok(whoami);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn ended_error(reason: LogoutReason) -> Error {
    Error::LoggedOut {
        soft_logout: matches!(reason, LogoutReason::RefreshRejected { soft_logout: true }),
        source: None,
    }
}

/// The one refresh in flight for a session. Everything with a lasting effect happens in here, so
/// it happens whichever caller (or spawned task) drives it to the end.
async fn refresh(
    client: OAuthClient,
    shared: Arc<SessionShared>,
    ticket: RefreshTicket,
) -> Result<AccessToken, Error> {
    let inner = &client.inner;
    let key = shared.key.clone();
    let abandon = |ticket: RefreshTicket| {
        shared.settle(|st| st.coordinator.abandon(ticket));
    };

    // Metadata first, outside the store lock (it may take a request; the lock should be short).
    let session = lock(&shared.state).session.clone();
    let discovered = match client.metadata_for_session(&session).await {
        Ok(d) => d,
        Err(e) => {
            abandon(ticket);
            return Err(e);
        }
    };

    let _guard = match inner.locks.acquire(&key).await {
        Ok(g) => g,
        Err(e) => {
            abandon(ticket);
            return Err(e.into());
        }
    };
    // Under the lock, the store has the latest tokens: another process may have refreshed (or
    // logged out) while this one waited.
    match inner.sessions.load(&key).await {
        Err(e) => {
            abandon(ticket);
            return Err(e.into());
        }
        Ok(None) => {
            shared.settle(|st| {
                st.coordinator.abandon(ticket);
                st.ended = Some(LogoutReason::RemovedFromStore);
            });
            tracing::info!("the session was removed from the store: logged out elsewhere");
            inner.events.emit(SessionEvent::LoggedOut {
                key,
                reason: LogoutReason::RemovedFromStore,
            });
            return Err(ended_error(LogoutReason::RemovedFromStore));
        }
        Ok(Some(stored)) => {
            let mut st = lock(&shared.state);
            st.stored_generation = Some(stored.generation);
            // With unsaved tokens, memory is newer than the store: keep it, overwrite below.
            if !st.unsaved && st.adopt(stored.session) && !st.coordinator.is_current(&ticket) {
                st.coordinator.abandon(ticket);
                st.inflight = None;
                let token = st.current_token();
                drop(st);
                tracing::info!("another process refreshed already: using its tokens");
                inner.events.emit(SessionEvent::TokensRefreshed {
                    key,
                    by_this_process: false,
                });
                return Ok(token);
            }
        }
    }

    let session = lock(&shared.state).session.clone();
    let result = match ticket.token_request(&discovered.metadata.token_endpoint, &session.client_id)
    {
        Ok(request) => {
            let sent_at = inner.clock.now();
            match inner.send(request.request.clone()).await {
                Ok(response) => request.parse(&response, sent_at),
                Err(e) => Err(request.transport_error(e)),
            }
        }
        Err(e) => Err(e),
    };
    let now = inner.clock.now();

    match result {
        Ok(tokens) => {
            let mut updated = session.clone();
            updated.tokens = tokens;
            if let Err(error) =
                reconcile_id_token(&client, &discovered.metadata, &session, &mut updated).await
            {
                return end_for_rejected_id_token(&client, &shared, ticket, updated, error, now)
                    .await;
            }
            let tokens = updated.tokens.clone();
            // Stored before anyone can use them: a crash after the server rotated the refresh
            // token but before it was stored would otherwise lose the session.
            let expected = lock(&shared.state).stored_generation;
            let saved = save_refreshed(&client, &key, &updated, expected).await;
            let (token, removed) = shared.settle(|st| {
                let outcome = st.coordinator.finish(ticket, Ok(tokens), now);
                debug_assert!(matches!(outcome, RefreshOutcome::Refreshed { .. }));
                st.session = updated;
                let removed = match &saved {
                    Ok(Some(generation)) => {
                        st.stored_generation = Some(*generation);
                        st.unsaved = false;
                        false
                    }
                    Ok(None) => {
                        st.ended = Some(LogoutReason::RemovedFromStore);
                        true
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not store the refreshed tokens; keeping them in memory");
                        st.unsaved = true;
                        false
                    }
                };
                (st.current_token(), removed)
            });
            if removed {
                inner.events.emit(SessionEvent::LoggedOut {
                    key,
                    reason: LogoutReason::RemovedFromStore,
                });
                return Err(ended_error(LogoutReason::RemovedFromStore));
            }
            tracing::info!(generation = token.generation, "access token refreshed");
            inner.events.emit(SessionEvent::TokensRefreshed {
                key,
                by_this_process: true,
            });
            Ok(token)
        }
        Err(error) => {
            let outcome = shared.settle(|st| {
                let outcome = st.coordinator.finish(ticket, Err(error), now);
                if let RefreshOutcome::LoggedOut { soft_logout, .. } = &outcome {
                    st.ended = Some(LogoutReason::RefreshRejected {
                        soft_logout: *soft_logout,
                    });
                }
                (outcome, st.current_token())
            });
            match outcome {
                (RefreshOutcome::LoggedOut { error, soft_logout }, _) => {
                    tracing::warn!(%error, soft_logout, "the refresh was refused: logged out");
                    if let Err(e) = inner.sessions.delete(&key).await {
                        tracing::warn!(error = %e, "could not delete the logged-out session");
                    }
                    inner.events.emit(SessionEvent::LoggedOut {
                        key,
                        reason: LogoutReason::RefreshRejected { soft_logout },
                    });
                    Err(Error::LoggedOut {
                        soft_logout,
                        source: Some(error),
                    })
                }
                (RefreshOutcome::Failed { error, retry_at }, _) => {
                    tracing::warn!(%error, ?retry_at, "the refresh failed; will retry");
                    Err(Error::RefreshFailed {
                        retry_at,
                        source: Some(error),
                    })
                }
                (_, token) => Ok(token),
            }
        }
    }
}

/// Brings the ID token of a refresh in line with the session's. Refresh responses usually have
/// none: the last one is kept (it is the end-session hint). A new one replaces it only once it has
/// passed OpenID Connect Core §12.2 against the session's validated claims (feature `oidc`).
///
/// `Err`: the new ID token is wrong (another `sub`, a bad signature, …) and the session must end.
/// Keys that cannot be fetched are not the token's fault: the previous ID token and claims are
/// kept, and the refresh stands.
async fn reconcile_id_token(
    client: &OAuthClient,
    metadata: &matrix_oidc_core::AuthorizationServerMetadata,
    previous: &Session,
    updated: &mut Session,
) -> Result<(), Error> {
    let Some(new) = updated.tokens.id_token.take() else {
        updated.tokens.id_token = previous.tokens.id_token.clone();
        return Ok(());
    };
    let Some(claims) = &previous.id_token_claims else {
        // Not an OpenID Connect session: there is nothing to hold the token to.
        updated.tokens.id_token = Some(new);
        return Ok(());
    };
    #[cfg(feature = "oidc")]
    {
        let validated = client
            .validate_refreshed_id_token(
                metadata,
                &previous.client_id,
                claims,
                &new,
                &updated.tokens.access_token,
            )
            .await;
        match validated {
            Ok(claims) => {
                tracing::info!("refreshed ID token validated");
                updated.tokens.id_token = Some(new);
                updated.id_token_claims = Some(claims);
                Ok(())
            }
            Err(error) if crate::oidc::keys_unavailable(&error) => {
                tracing::warn!(%error, "cannot check the refreshed ID token; keeping the previous one");
                updated.tokens.id_token = previous.tokens.id_token.clone();
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, "the refreshed ID token was refused");
                Err(error)
            }
        }
    }
    #[cfg(not(feature = "oidc"))]
    {
        let _ = (client, metadata, claims, new);
        tracing::debug!(
            "no `oidc` feature to check the refreshed ID token; keeping the previous one"
        );
        updated.tokens.id_token = previous.tokens.id_token.clone();
        Ok(())
    }
}

/// A refresh brought an ID token for someone else (or a forged one): the provider no longer vouches
/// for this session's user. The session ends here and in the store, and the tokens just issued are
/// revoked (best effort) so that no grant stays alive for a user this client never accepted.
async fn end_for_rejected_id_token(
    client: &OAuthClient,
    shared: &Arc<SessionShared>,
    ticket: RefreshTicket,
    rejected: Session,
    error: Error,
    now: Timestamp,
) -> Result<AccessToken, Error> {
    let inner = &client.inner;
    let reason = LogoutReason::IdTokenRejected;
    shared.settle(|st| {
        let _ = st
            .coordinator
            .finish(ticket, Ok(rejected.tokens.clone()), now);
        st.ended = Some(reason);
        st.unsaved = false;
    });
    if let Err(e) = inner.sessions.delete(&shared.key).await {
        tracing::warn!(error = %e, "could not delete the session");
    }
    if let Ok(discovered) = client.metadata_for_session(&rejected).await {
        client
            .revoke_quietly(&discovered.metadata, &rejected.client_id, &rejected.tokens)
            .await;
    }
    inner.events.emit(SessionEvent::LoggedOut {
        key: shared.key.clone(),
        reason,
    });
    Err(error)
}

/// Saves refreshed tokens over `expected`. `Ok(None)`: the session was deleted meanwhile (logged
/// out by a writer that did not take the lock).
async fn save_refreshed(
    client: &OAuthClient,
    key: &SessionKey,
    session: &Session,
    expected: Option<Generation>,
) -> Result<Option<Generation>, StoreError> {
    let sessions = &client.inner.sessions;
    match sessions.save(key, session, expected).await {
        Ok(g) => Ok(Some(g)),
        Err(StoreError::Conflict { current: None, .. }) => Ok(None),
        // Changed by a writer that did not take the lock. These tokens are the newest the server
        // issued (the refresh token just rotated), so they win.
        Err(StoreError::Conflict { current, .. }) => {
            sessions.save(key, session, current).await.map(Some)
        }
        Err(e) => Err(e),
    }
}
