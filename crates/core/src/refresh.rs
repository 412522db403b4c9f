//! When to refresh, and who does it: refresh coordination as pure logic that an async layer drives.
//!
//! Several tasks share one session. Each asks the [`RefreshCoordinator`] (behind the async layer's
//! mutex) before a request and again when the homeserver answers `M_UNKNOWN_TOKEN`. The coordinator
//! answers with a [`RefreshDecision`]:
//!
//! ```text
//!          before_request(now) / on_unknown_token(generation, …) / request_refresh(now)
//!                                   │
//!      ┌──────────────┬─────────────┼──────────────┬──────────────┬──────────────┐
//!      ▼              ▼             ▼              ▼              ▼              ▼
//!    Use{…}      Refresh(ticket)   Wait      Backoff{until}   LoggedOut{…}   (same call
//!  token is ok   you refresh:     someone    last refresh     sign in        again later)
//!  or was        send ticket's    else is    failed; not      again
//!  already       request, then    refreshing before `until`
//!  refreshed     finish(ticket,…) │
//!                     │           └──── woken after finish ─┘
//!                     ▼
//!         RefreshOutcome::{Refreshed, LoggedOut, Failed, Superseded}
//! ```
//!
//! Single flight: only one [`RefreshTicket`] exists at a time. Every token set has a *generation*; a
//! caller that used generation `g` and got `M_UNKNOWN_TOKEN` after someone else already refreshed gets
//! the new tokens back ([`RefreshDecision::Use`]) instead of refreshing again with a refresh token the
//! server has already rotated away (which would log the session out).
//!
//! Across processes, the store plays the part of the mutex: before sending a refresh, take the store's
//! lock, load the stored tokens and hand them to [`RefreshCoordinator::adopt`]. If another process
//! refreshed meanwhile (the [`TokenSet::fingerprint`] differs), [`RefreshCoordinator::is_current`] turns
//! false: [`abandon`](RefreshCoordinator::abandon) the ticket and use the adopted tokens.
//!
//! ```
//! use matrix_oidc_core::refresh::{RefreshCoordinator, RefreshDecision, RefreshOutcome, RefreshPolicy};
//! use matrix_oidc_core::{Secret, Timestamp, TokenSet};
//! use std::time::Duration;
//!
//! let t0 = Timestamp::from_unix_seconds(1_000);
//! let tokens = TokenSet::new(Secret::new("at1"))
//!     .with_refresh_token(Some(Secret::new("rt1")))
//!     .with_expires_at(Some(t0 + Duration::from_secs(10)));
//! let mut c = RefreshCoordinator::new(tokens, RefreshPolicy::default());
//!
//! // Expiring within the margin: the first caller gets the ticket, the second waits.
//! let RefreshDecision::Refresh(ticket) = c.before_request(t0) else { panic!() };
//! assert!(matches!(c.before_request(t0 + Duration::from_secs(20)), RefreshDecision::Wait));
//!
//! let endpoint = "https://auth.example.com/token".parse().unwrap();
//! let request = ticket.token_request(&endpoint, "client").unwrap();
//! # let _ = request;
//! // … send request.request, parse the answer …
//! let new = TokenSet::new(Secret::new("at2")).with_refresh_token(Some(Secret::new("rt2")));
//! let outcome = c.finish(ticket, Ok(new), t0);
//! assert!(matches!(outcome, RefreshOutcome::Refreshed { generation: 1, .. }));
//!
//! // A caller that used generation 0 and got M_UNKNOWN_TOKEN adopts generation 1.
//! let RefreshDecision::Use { generation, access_token } = c.on_unknown_token(0, false, t0) else { panic!() };
//! assert_eq!((generation, access_token.expose()), (1, "at2"));
//! ```

use crate::secret::Secret;
use crate::session::TokenSet;
use crate::time::Timestamp;
use crate::token::{LogoutPolicy, TokenError, TokenRequest};
use std::time::Duration;
use url::Url;

/// Recognizes the homeserver's "this access token is not valid" answer to any Client-Server API
/// request: HTTP 401 with `errcode: M_UNKNOWN_TOKEN`. Returns its `soft_logout` flag (absent = false),
/// to pass to [`RefreshCoordinator::on_unknown_token`].
pub fn unknown_token<B: AsRef<[u8]>>(response: &http::Response<B>) -> Option<bool> {
    if response.status() != http::StatusCode::UNAUTHORIZED {
        return None;
    }
    crate::error::MatrixErrorBody::parse(response.body().as_ref())
        .filter(|e| e.errcode == "M_UNKNOWN_TOKEN")
        .map(|e| e.soft_logout.unwrap_or(false))
}

/// Tunables of a [`RefreshCoordinator`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// Refresh ahead of time when the access token expires within this margin — or within half its
    /// lifetime, if that is shorter and known ([`TokenSet::refresh_margin`]). Default 30 s.
    pub margin: Duration,
    /// Which refresh failures log the session out. Default: the specification's (any 4xx).
    pub logout: LogoutPolicy,
    /// If a token that a refresh produced less than this long ago is already rejected with
    /// `M_UNKNOWN_TOKEN` (and has not reached its own expiry), the session is treated as logged out
    /// rather than refreshed again, so a server that rejects every token cannot cause a refresh loop.
    /// Default 10 s.
    pub fresh_token_window: Duration,
    /// Wait after the first transient failure; doubled after each further one. Default 1 s.
    pub backoff_initial: Duration,
    /// Longest wait between attempts. Default 32 s (matrix-js-sdk's cap).
    pub backoff_max: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(30),
            logout: LogoutPolicy::default(),
            fresh_token_window: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(32),
        }
    }
}

impl RefreshPolicy {
    /// The same policy with another margin.
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The same policy with another logout rule.
    pub fn with_logout(mut self, logout: LogoutPolicy) -> Self {
        self.logout = logout;
        self
    }
}

/// Why a refresh was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshReason {
    /// The access token expires within the margin (or already has).
    Expiring,
    /// The homeserver answered `M_UNKNOWN_TOKEN` (with this `soft_logout` flag).
    UnknownToken {
        /// The `soft_logout` flag of the error.
        soft_logout: bool,
    },
    /// The application asked for a refresh now ([`RefreshCoordinator::request_refresh`]).
    Requested,
}

/// The right to perform the one refresh in flight. Not `Clone`: hand it back to
/// [`RefreshCoordinator::finish`] or [`RefreshCoordinator::abandon`].
#[derive(Debug)]
#[must_use = "a ticket blocks other refreshes until it is finished or abandoned"]
pub struct RefreshTicket {
    generation: u64,
    tokens: TokenSet,
    reason: RefreshReason,
}

impl RefreshTicket {
    /// The generation of the tokens being refreshed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Why the refresh happens.
    pub fn reason(&self) -> RefreshReason {
        self.reason
    }

    /// The token request to send. `token_endpoint` comes from the (freshly fetched or cached)
    /// metadata and `client_id` from the session.
    pub fn token_request(
        &self,
        token_endpoint: &Url,
        client_id: &str,
    ) -> Result<TokenRequest, TokenError> {
        TokenRequest::refresh(token_endpoint, client_id, &self.tokens)
    }
}

/// What a caller should do.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum RefreshDecision {
    /// Send the request with this access token (of this generation); no refresh is needed, or another
    /// caller already refreshed.
    Use {
        /// The generation of the tokens; pass it to [`RefreshCoordinator::on_unknown_token`].
        generation: u64,
        /// The access token to use.
        access_token: Secret,
    },
    /// Refresh now: send [`RefreshTicket::token_request`], then call [`RefreshCoordinator::finish`].
    Refresh(RefreshTicket),
    /// Another caller is refreshing; wait until it finishes, then ask again.
    Wait,
    /// A refresh failed temporarily and the token is unusable; do not retry before `until`.
    Backoff {
        /// When a new attempt is allowed.
        until: Timestamp,
    },
    /// The session is over; the user must sign in again (keeping local state if `soft_logout`).
    LoggedOut {
        /// Whether the homeserver allowed a soft logout.
        soft_logout: bool,
    },
    /// A refresh was requested ([`RefreshCoordinator::request_refresh`]) but the session has no
    /// refresh token; its access token is still usable until it expires.
    NoRefreshToken,
}

/// The result of a finished refresh.
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// New tokens. Persist them before anyone uses them (a crash in between would leave the store with
    /// a rotated-away refresh token), then wake the waiters.
    Refreshed {
        /// The new generation.
        generation: u64,
        /// The new tokens (also held by the coordinator).
        tokens: TokenSet,
    },
    /// The refresh was refused in a way that ends the session.
    LoggedOut {
        /// The refusal.
        error: TokenError,
        /// Whether the homeserver allowed a soft logout.
        soft_logout: bool,
    },
    /// A failure that may pass: the current tokens are kept and a new attempt is allowed at `retry_at`.
    Failed {
        /// The failure.
        error: TokenError,
        /// When [`RefreshCoordinator::before_request`] will hand out a new ticket.
        retry_at: Timestamp,
    },
    /// The refresh failed, but meanwhile newer tokens were adopted from another process; use them.
    Superseded {
        /// The generation of the adopted tokens.
        generation: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    InFlight,
    LoggedOut { soft_logout: bool },
}

/// Single-flight refresh state for one session. See the [module docs](self).
#[derive(Debug)]
pub struct RefreshCoordinator {
    tokens: TokenSet,
    generation: u64,
    state: State,
    policy: RefreshPolicy,
    failures: u32,
    retry_at: Option<Timestamp>,
    refreshed_at: Option<Timestamp>,
}

impl RefreshCoordinator {
    /// A coordinator for `tokens` at generation 0.
    pub fn new(tokens: TokenSet, policy: RefreshPolicy) -> Self {
        Self {
            tokens,
            generation: 0,
            state: State::Idle,
            policy,
            failures: 0,
            retry_at: None,
            refreshed_at: None,
        }
    }

    /// The current tokens.
    pub fn tokens(&self) -> &TokenSet {
        &self.tokens
    }

    /// The generation of the current tokens (0 at creation, +1 per refresh or adoption).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The policy.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    /// Whether a refresh is in flight.
    pub fn is_refreshing(&self) -> bool {
        self.state == State::InFlight
    }

    /// Whether the session has been logged out by a refresh failure.
    pub fn is_logged_out(&self) -> bool {
        matches!(self.state, State::LoggedOut { .. })
    }

    /// Whether the access token expires within the margin at `now` (the policy's margin, capped at
    /// half the token's lifetime: see [`TokenSet::refresh_margin`]).
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.tokens
            .expires_within(now, self.tokens.refresh_margin(self.policy.margin))
    }

    fn use_current(&self) -> RefreshDecision {
        RefreshDecision::Use {
            generation: self.generation,
            access_token: self.tokens.access_token.clone(),
        }
    }

    fn start(&mut self, reason: RefreshReason) -> RefreshDecision {
        self.state = State::InFlight;
        RefreshDecision::Refresh(RefreshTicket {
            generation: self.generation,
            tokens: self.tokens.clone(),
            reason,
        })
    }

    fn in_backoff(&self, now: Timestamp) -> Option<Timestamp> {
        self.retry_at.filter(|&at| now < at)
    }

    /// Before sending a request at `now`: use the current token, or refresh first when it expires
    /// within the margin. While another refresh is in flight, a token that has not expired yet is still
    /// handed out.
    pub fn before_request(&mut self, now: Timestamp) -> RefreshDecision {
        let expired = self.tokens.is_expired(now);
        match self.state {
            State::LoggedOut { soft_logout } => RefreshDecision::LoggedOut { soft_logout },
            State::InFlight if expired => RefreshDecision::Wait,
            State::InFlight => self.use_current(),
            State::Idle if !self.is_due(now) => self.use_current(),
            State::Idle if self.tokens.refresh_token.is_none() => {
                if expired {
                    self.state = State::LoggedOut { soft_logout: false };
                    RefreshDecision::LoggedOut { soft_logout: false }
                } else {
                    self.use_current()
                }
            }
            State::Idle => match self.in_backoff(now) {
                Some(until) if expired => RefreshDecision::Backoff { until },
                Some(_) => self.use_current(),
                None => self.start(RefreshReason::Expiring),
            },
        }
    }

    /// The homeserver answered `M_UNKNOWN_TOKEN` to a request made with the tokens of `generation`.
    ///
    /// If newer tokens exist, use them. Otherwise refresh (the specification says to try a refresh
    /// before honouring `soft_logout`), unless there is no refresh token or the rejected token is one a
    /// refresh produced moments ago ([`RefreshPolicy::fresh_token_window`]).
    pub fn on_unknown_token(
        &mut self,
        generation: u64,
        soft_logout: bool,
        now: Timestamp,
    ) -> RefreshDecision {
        if let State::LoggedOut { soft_logout } = self.state {
            return RefreshDecision::LoggedOut { soft_logout };
        }
        if generation < self.generation {
            return self.use_current();
        }
        if self.state == State::InFlight {
            return RefreshDecision::Wait;
        }
        let just_refreshed = self.refreshed_at.is_some_and(|at| {
            now.duration_since(at) < self.policy.fresh_token_window && !self.tokens.is_expired(now)
        });
        if self.tokens.refresh_token.is_none() || just_refreshed {
            self.state = State::LoggedOut { soft_logout };
            return RefreshDecision::LoggedOut { soft_logout };
        }
        if let Some(until) = self.in_backoff(now) {
            return RefreshDecision::Backoff { until };
        }
        self.start(RefreshReason::UnknownToken { soft_logout })
    }

    /// The application wants new tokens now, whatever the current ones' expiry ("refresh now": a
    /// command-line tool's `refresh`, or new claims wanted in the ID token).
    ///
    /// * While a refresh is in flight: [`RefreshDecision::Wait`] — it started no earlier than this
    ///   request, so its result answers it, and concurrent requests cause one refresh.
    /// * Otherwise a ticket with [`RefreshReason::Requested`], even during the backoff after a
    ///   transient failure: the backoff keeps automatic retries from hammering the server, and an
    ///   explicit request is not automatic. A failure still extends the backoff.
    /// * Without a refresh token: [`RefreshDecision::NoRefreshToken`], or
    ///   [`RefreshDecision::LoggedOut`] once the access token has expired (as in
    ///   [`before_request`](Self::before_request)).
    ///
    /// ```
    /// use matrix_oidc_core::refresh::{RefreshCoordinator, RefreshDecision, RefreshPolicy, RefreshReason};
    /// use matrix_oidc_core::{Secret, Timestamp, TokenSet};
    /// let tokens = TokenSet::new(Secret::new("at1")).with_refresh_token(Some(Secret::new("rt1")));
    /// let mut c = RefreshCoordinator::new(tokens, RefreshPolicy::default());
    /// let now = Timestamp::from_unix_seconds(1_000);
    /// // The token never expires, yet a refresh is granted; a second request joins it.
    /// let RefreshDecision::Refresh(ticket) = c.request_refresh(now) else { panic!() };
    /// assert_eq!(ticket.reason(), RefreshReason::Requested);
    /// assert!(matches!(c.request_refresh(now), RefreshDecision::Wait));
    /// # c.abandon(ticket);
    /// ```
    pub fn request_refresh(&mut self, now: Timestamp) -> RefreshDecision {
        match self.state {
            State::LoggedOut { soft_logout } => RefreshDecision::LoggedOut { soft_logout },
            State::InFlight => RefreshDecision::Wait,
            State::Idle if self.tokens.refresh_token.is_none() => {
                if self.tokens.is_expired(now) {
                    self.state = State::LoggedOut { soft_logout: false };
                    RefreshDecision::LoggedOut { soft_logout: false }
                } else {
                    RefreshDecision::NoRefreshToken
                }
            }
            State::Idle => self.start(RefreshReason::Requested),
        }
    }

    /// Whether `ticket` still refreshes the current tokens (false once newer tokens were adopted).
    pub fn is_current(&self, ticket: &RefreshTicket) -> bool {
        ticket.generation == self.generation
    }

    /// Records the result of the refresh `ticket` allowed, at `now`.
    pub fn finish(
        &mut self,
        ticket: RefreshTicket,
        result: Result<TokenSet, TokenError>,
        now: Timestamp,
    ) -> RefreshOutcome {
        if self.state == State::InFlight {
            self.state = State::Idle;
        }
        match result {
            Ok(tokens) => {
                self.tokens = tokens;
                self.generation += 1;
                self.failures = 0;
                self.retry_at = None;
                self.refreshed_at = Some(now);
                self.state = State::Idle;
                RefreshOutcome::Refreshed {
                    generation: self.generation,
                    tokens: self.tokens.clone(),
                }
            }
            // Another process refreshed while this request was out: its failure (most likely an
            // `invalid_grant` for the rotated-away refresh token) says nothing about the session.
            Err(_) if ticket.generation != self.generation => RefreshOutcome::Superseded {
                generation: self.generation,
            },
            Err(error) if error.is_logout_with(self.policy.logout) => {
                let soft_logout = match ticket.reason {
                    RefreshReason::UnknownToken { soft_logout } => soft_logout,
                    RefreshReason::Expiring | RefreshReason::Requested => false,
                };
                self.state = State::LoggedOut { soft_logout };
                RefreshOutcome::LoggedOut { error, soft_logout }
            }
            Err(error) => {
                self.failures = self.failures.saturating_add(1);
                let exp = self.failures.saturating_sub(1).min(16);
                let wait = self
                    .policy
                    .backoff_initial
                    .saturating_mul(1u32 << exp)
                    .min(self.policy.backoff_max);
                let retry_at = now + wait;
                self.retry_at = Some(retry_at);
                RefreshOutcome::Failed { error, retry_at }
            }
        }
    }

    /// Gives the ticket back without a result (the request was cancelled, or [`is_current`]
    /// turned false after [`adopt`]). No failure is recorded.
    ///
    /// [`is_current`]: Self::is_current
    /// [`adopt`]: Self::adopt
    pub fn abandon(&mut self, ticket: RefreshTicket) {
        let _ = ticket;
        if self.state == State::InFlight {
            self.state = State::Idle;
        }
    }

    /// Adopts tokens from a shared store (another process may have refreshed, or signed in again).
    /// Returns whether they differ from the current ones ([`TokenSet::fingerprint`]); if so the
    /// generation advances and a logged-out state is cleared.
    pub fn adopt(&mut self, tokens: TokenSet) -> bool {
        if tokens.fingerprint() == self.tokens.fingerprint()
            && tokens.access_token == self.tokens.access_token
        {
            return false;
        }
        self.tokens = tokens;
        self.generation += 1;
        self.failures = 0;
        self.retry_at = None;
        self.refreshed_at = None;
        if matches!(self.state, State::LoggedOut { .. }) {
            self.state = State::Idle;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OAuthErrorBody;
    use crate::token::GrantKind;
    use crate::transport::TransportError;

    const T0: Timestamp = Timestamp::from_unix_seconds(1_000);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn tokens(n: u32, expires: Option<Timestamp>) -> TokenSet {
        TokenSet::new(Secret::new(format!("at{n}")))
            .with_refresh_token(Some(Secret::new(format!("rt{n}"))))
            .with_expires_at(expires)
    }

    fn invalid_grant() -> TokenError {
        TokenError::Rejected {
            grant: GrantKind::RefreshToken,
            endpoint: "https://a.example/token".into(),
            status: 400,
            error: OAuthErrorBody {
                error: "invalid_grant".into(),
                error_description: None,
                error_uri: None,
            },
        }
    }

    fn server_error() -> TokenError {
        TokenError::Transport {
            grant: GrantKind::RefreshToken,
            source: TransportError::Connect {
                url: "https://a.example/token".into(),
                reason: "refused".into(),
            },
        }
    }

    fn ticket(d: RefreshDecision) -> RefreshTicket {
        match d {
            RefreshDecision::Refresh(t) => t,
            other => panic!("expected a ticket, got {other:?}"),
        }
    }

    #[test]
    fn recognizes_unknown_token_answers() {
        let resp = |status: u16, body: &str| {
            http::Response::builder()
                .status(status)
                .body(body.as_bytes().to_vec())
                .unwrap()
        };
        assert_eq!(
            unknown_token(&resp(
                401,
                r#"{"errcode":"M_UNKNOWN_TOKEN","error":"x","soft_logout":true}"#
            )),
            Some(true)
        );
        assert_eq!(
            unknown_token(&resp(401, r#"{"errcode":"M_UNKNOWN_TOKEN"}"#)),
            Some(false)
        );
        assert_eq!(
            unknown_token(&resp(401, r#"{"errcode":"M_MISSING_TOKEN"}"#)),
            None
        );
        assert_eq!(
            unknown_token(&resp(403, r#"{"errcode":"M_UNKNOWN_TOKEN"}"#)),
            None
        );
        assert_eq!(unknown_token(&resp(401, "<html>")), None);
    }

    /// Found by the conformance suite against oidc-provider issuing 5-second tokens: with the
    /// default 30-second margin every token was due the moment it arrived, so each request refreshed
    /// again and callers arriving just after a refresh started another one.
    #[test]
    fn a_token_shorter_lived_than_the_margin_is_used_for_half_its_life() {
        let short = |n: u32, issued: Timestamp| {
            tokens(n, Some(issued + secs(5))).with_issued_at(Some(issued))
        };
        let mut c = RefreshCoordinator::new(short(1, T0), RefreshPolicy::default());
        assert!(matches!(
            c.before_request(T0 + Duration::from_millis(2_400)),
            RefreshDecision::Use { generation: 0, .. }
        ));
        let t = ticket(c.before_request(T0 + Duration::from_millis(2_500)));
        let refreshed_at = T0 + Duration::from_millis(2_600);
        let outcome = c.finish(t, Ok(short(2, refreshed_at)), refreshed_at);
        assert!(matches!(
            outcome,
            RefreshOutcome::Refreshed { generation: 1, .. }
        ));
        // The next caller, right after the refresh, uses the new token instead of refreshing again.
        assert!(matches!(
            c.before_request(refreshed_at + Duration::from_millis(100)),
            RefreshDecision::Use { generation: 1, .. }
        ));
        assert!(c.is_due(refreshed_at + Duration::from_millis(2_500)));
        // A long-lived token keeps the full margin.
        let long = tokens(3, Some(T0 + secs(300))).with_issued_at(Some(T0));
        let c = RefreshCoordinator::new(long, RefreshPolicy::default());
        assert!(!c.is_due(T0 + secs(269)));
        assert!(c.is_due(T0 + secs(270)));
    }

    #[test]
    fn due_only_within_the_margin() {
        let mut c =
            RefreshCoordinator::new(tokens(1, Some(T0 + secs(60))), RefreshPolicy::default());
        assert!(matches!(
            c.before_request(T0),
            RefreshDecision::Use { generation: 0, .. }
        ));
        assert!(!c.is_due(T0 + secs(29)));
        assert!(c.is_due(T0 + secs(30)));
        let t = ticket(c.before_request(T0 + secs(30)));
        assert_eq!(t.reason(), RefreshReason::Expiring);
        // Unknown expiry: never proactively due.
        let mut c = RefreshCoordinator::new(tokens(1, None), RefreshPolicy::default());
        assert!(matches!(
            c.before_request(Timestamp::from_unix_seconds(u64::MAX / 2000)),
            RefreshDecision::Use { .. }
        ));
    }

    #[test]
    fn single_flight_and_losers_adopt() {
        let mut c = RefreshCoordinator::new(tokens(1, Some(T0)), RefreshPolicy::default());
        let t = ticket(c.before_request(T0));
        assert!(c.is_refreshing());
        // Token already expired: others wait; an M_UNKNOWN_TOKEN for generation 0 also waits.
        assert!(matches!(c.before_request(T0), RefreshDecision::Wait));
        assert!(matches!(
            c.on_unknown_token(0, false, T0),
            RefreshDecision::Wait
        ));
        let req = t
            .token_request(&Url::parse("https://a.example/token").unwrap(), "c")
            .unwrap();
        assert_eq!(
            req.request.request.body(),
            b"grant_type=refresh_token&refresh_token=rt1&client_id=c"
        );
        let out = c.finish(t, Ok(tokens(2, Some(T0 + secs(300)))), T0);
        assert!(matches!(
            out,
            RefreshOutcome::Refreshed { generation: 1, .. }
        ));
        // The loser retries with the new token instead of refreshing with the spent rt1.
        match c.on_unknown_token(0, false, T0 + secs(1)) {
            RefreshDecision::Use {
                generation,
                access_token,
            } => {
                assert_eq!(generation, 1);
                assert_eq!(access_token.expose(), "at2");
            }
            other => panic!("{other:?}"),
        }
        assert!(!c.is_refreshing());
    }

    #[test]
    fn unexpired_token_is_handed_out_during_a_refresh() {
        let mut c =
            RefreshCoordinator::new(tokens(1, Some(T0 + secs(20))), RefreshPolicy::default());
        let _t = ticket(c.before_request(T0));
        assert!(matches!(
            c.before_request(T0 + secs(1)),
            RefreshDecision::Use { generation: 0, .. }
        ));
        assert!(matches!(
            c.before_request(T0 + secs(20)),
            RefreshDecision::Wait
        ));
    }

    #[test]
    fn unknown_token_refreshes_then_logs_out_with_soft_logout() {
        let mut c = RefreshCoordinator::new(tokens(1, None), RefreshPolicy::default());
        let t = ticket(c.on_unknown_token(0, true, T0));
        assert_eq!(
            t.reason(),
            RefreshReason::UnknownToken { soft_logout: true }
        );
        match c.finish(t, Err(invalid_grant()), T0) {
            RefreshOutcome::LoggedOut { soft_logout, error } => {
                assert!(soft_logout);
                assert_eq!(error, invalid_grant());
            }
            other => panic!("{other:?}"),
        }
        assert!(c.is_logged_out());
        assert!(matches!(
            c.before_request(T0),
            RefreshDecision::LoggedOut { soft_logout: true }
        ));
        assert!(matches!(
            c.on_unknown_token(0, false, T0),
            RefreshDecision::LoggedOut { soft_logout: true }
        ));
    }

    #[test]
    fn no_refresh_token_means_logged_out_once_unusable() {
        let at_only = TokenSet::new(Secret::new("at")).with_expires_at(Some(T0 + secs(10)));
        let mut c = RefreshCoordinator::new(at_only.clone(), RefreshPolicy::default());
        assert!(matches!(c.before_request(T0), RefreshDecision::Use { .. }));
        assert!(matches!(
            c.before_request(T0 + secs(10)),
            RefreshDecision::LoggedOut { soft_logout: false }
        ));
        let mut c = RefreshCoordinator::new(at_only, RefreshPolicy::default());
        assert!(matches!(
            c.on_unknown_token(0, true, T0),
            RefreshDecision::LoggedOut { soft_logout: true }
        ));
    }

    #[test]
    fn transient_failures_back_off_exponentially_and_then_retry_fresh() {
        let policy = RefreshPolicy::default();
        let mut c = RefreshCoordinator::new(tokens(1, Some(T0)), policy);
        let mut now = T0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let t = ticket(c.before_request(now));
            match c.finish(t, Err(server_error()), now) {
                RefreshOutcome::Failed { retry_at, error } => {
                    assert!(error.is_transient());
                    waits.push(retry_at.duration_since(now).as_secs());
                    assert!(
                        matches!(c.before_request(now), RefreshDecision::Backoff { until } if until == retry_at)
                    );
                    assert!(matches!(
                        c.on_unknown_token(0, false, now),
                        RefreshDecision::Backoff { .. }
                    ));
                    now = retry_at;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 32, 32]);
        // A success resets the backoff.
        let t = ticket(c.before_request(now));
        let _ = c.finish(t, Ok(tokens(2, Some(now))), now);
        let t = ticket(c.before_request(now));
        assert!(
            matches!(c.finish(t, Err(server_error()), now), RefreshOutcome::Failed { retry_at, .. } if retry_at == now + secs(1))
        );
    }

    #[test]
    fn backoff_still_hands_out_a_live_token() {
        let mut c =
            RefreshCoordinator::new(tokens(1, Some(T0 + secs(20))), RefreshPolicy::default());
        let t = ticket(c.before_request(T0));
        let _ = c.finish(t, Err(server_error()), T0);
        assert!(matches!(c.before_request(T0), RefreshDecision::Use { .. }));
    }

    #[test]
    fn logout_policy_is_honoured() {
        let rejected_401 = TokenError::Rejected {
            grant: GrantKind::RefreshToken,
            endpoint: "e".into(),
            status: 401,
            error: OAuthErrorBody {
                error: "invalid_client".into(),
                error_description: None,
                error_uri: None,
            },
        };
        let mut spec = RefreshCoordinator::new(tokens(1, Some(T0)), RefreshPolicy::default());
        let t = ticket(spec.before_request(T0));
        assert!(matches!(
            spec.finish(t, Err(rejected_401.clone()), T0),
            RefreshOutcome::LoggedOut { .. }
        ));
        let mut strict = RefreshCoordinator::new(
            tokens(1, Some(T0)),
            RefreshPolicy::default().with_logout(LogoutPolicy::InvalidGrantOnly),
        );
        let t = ticket(strict.before_request(T0));
        assert!(matches!(
            strict.finish(t, Err(rejected_401), T0),
            RefreshOutcome::Failed { .. }
        ));
        assert!(!strict.is_logged_out());
    }

    #[test]
    fn fresh_token_rejected_again_is_a_logout_not_a_loop() {
        let mut c = RefreshCoordinator::new(tokens(1, None), RefreshPolicy::default());
        let t = ticket(c.on_unknown_token(0, false, T0));
        let _ = c.finish(t, Ok(tokens(2, Some(T0 + secs(300)))), T0);
        assert!(matches!(
            c.on_unknown_token(1, false, T0 + secs(2)),
            RefreshDecision::LoggedOut { soft_logout: false }
        ));

        // Outside the window, or after the new token's own expiry, a refresh is legitimate.
        let mut c = RefreshCoordinator::new(tokens(1, None), RefreshPolicy::default());
        let t = ticket(c.on_unknown_token(0, false, T0));
        let _ = c.finish(t, Ok(tokens(2, Some(T0 + secs(300)))), T0);
        assert!(matches!(
            c.on_unknown_token(1, false, T0 + secs(11)),
            RefreshDecision::Refresh(_)
        ));
        let mut c = RefreshCoordinator::new(tokens(1, None), RefreshPolicy::default());
        let t = ticket(c.on_unknown_token(0, false, T0));
        let _ = c.finish(t, Ok(tokens(2, Some(T0 + secs(2)))), T0);
        assert!(matches!(
            c.on_unknown_token(1, false, T0 + secs(3)),
            RefreshDecision::Refresh(_)
        ));
    }

    #[test]
    fn cross_process_adoption() {
        let mut c = RefreshCoordinator::new(tokens(1, Some(T0)), RefreshPolicy::default());
        let t = ticket(c.before_request(T0));
        // Under the store lock: the stored tokens are the same → keep going.
        assert!(!c.adopt(tokens(1, Some(T0))));
        assert!(c.is_current(&t));
        // Another process already refreshed → adopt, drop the ticket, use the new token.
        assert!(c.adopt(tokens(2, Some(T0 + secs(300)))));
        assert!(!c.is_current(&t));
        c.abandon(t);
        assert!(!c.is_refreshing());
        assert!(matches!(
            c.before_request(T0),
            RefreshDecision::Use { generation: 1, .. }
        ));
    }

    #[test]
    fn failure_after_adoption_is_superseded_not_logout() {
        let mut c = RefreshCoordinator::new(tokens(1, Some(T0)), RefreshPolicy::default());
        let t = ticket(c.before_request(T0));
        assert!(c.adopt(tokens(2, Some(T0 + secs(300)))));
        assert!(matches!(
            c.finish(t, Err(invalid_grant()), T0),
            RefreshOutcome::Superseded { generation: 1 }
        ));
        assert!(!c.is_logged_out());
        // Re-login elsewhere clears a logged-out state.
        let t = ticket(c.on_unknown_token(1, false, T0 + secs(60)));
        let _ = c.finish(t, Err(invalid_grant()), T0);
        assert!(c.is_logged_out());
        assert!(c.adopt(tokens(3, None)));
        assert!(matches!(
            c.before_request(T0),
            RefreshDecision::Use { generation: 2, .. }
        ));
    }

    #[test]
    fn requested_refresh_ignores_expiry_and_joins_the_one_in_flight() {
        // A token far from expiry (and one with no known expiry) is refreshed on request.
        for expiry in [Some(T0 + secs(3600)), None] {
            let mut c = RefreshCoordinator::new(tokens(1, expiry), RefreshPolicy::default());
            assert!(matches!(c.before_request(T0), RefreshDecision::Use { .. }));
            let t = ticket(c.request_refresh(T0));
            assert_eq!(t.reason(), RefreshReason::Requested);
            assert_eq!(t.generation(), 0);
            // Everyone asking meanwhile joins it; the live token is still handed out.
            assert!(matches!(c.request_refresh(T0), RefreshDecision::Wait));
            assert!(matches!(
                c.before_request(T0),
                RefreshDecision::Use { generation: 0, .. }
            ));
            let out = c.finish(t, Ok(tokens(2, expiry)), T0);
            assert!(matches!(
                out,
                RefreshOutcome::Refreshed { generation: 1, .. }
            ));
            // Once it is done, a new request is a new refresh.
            let t = ticket(c.request_refresh(T0 + secs(1)));
            assert_eq!(t.generation(), 1);
        }
    }

    #[test]
    fn requested_refresh_bypasses_the_backoff_but_a_failure_extends_it() {
        let mut c = RefreshCoordinator::new(tokens(1, Some(T0)), RefreshPolicy::default());
        let t = ticket(c.before_request(T0));
        let _ = c.finish(t, Err(server_error()), T0);
        assert!(matches!(
            c.before_request(T0),
            RefreshDecision::Backoff { .. }
        ));
        // Automatic callers are held back until T0 + 1 s; an explicit request is not.
        let t = ticket(c.request_refresh(T0));
        match c.finish(t, Err(server_error()), T0) {
            RefreshOutcome::Failed { retry_at, .. } => assert_eq!(retry_at, T0 + secs(2)),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(c.before_request(T0 + secs(1)), RefreshDecision::Backoff { until } if until == T0 + secs(2))
        );
    }

    #[test]
    fn requested_refresh_refused_logs_out_without_soft_logout() {
        let mut c = RefreshCoordinator::new(tokens(1, None), RefreshPolicy::default());
        let t = ticket(c.request_refresh(T0));
        assert!(matches!(
            c.finish(t, Err(invalid_grant()), T0),
            RefreshOutcome::LoggedOut {
                soft_logout: false,
                ..
            }
        ));
        assert!(matches!(
            c.request_refresh(T0),
            RefreshDecision::LoggedOut { soft_logout: false }
        ));
    }

    #[test]
    fn requested_refresh_without_a_refresh_token() {
        let at_only = TokenSet::new(Secret::new("at")).with_expires_at(Some(T0 + secs(10)));
        let mut c = RefreshCoordinator::new(at_only, RefreshPolicy::default());
        assert!(matches!(
            c.request_refresh(T0),
            RefreshDecision::NoRefreshToken
        ));
        assert!(!c.is_refreshing() && !c.is_logged_out());
        assert!(matches!(c.before_request(T0), RefreshDecision::Use { .. }));
        assert!(matches!(
            c.request_refresh(T0 + secs(10)),
            RefreshDecision::LoggedOut { soft_logout: false }
        ));
        assert!(c.is_logged_out());
    }

    #[test]
    fn abandon_allows_a_fresh_attempt_without_backoff() {
        let mut c = RefreshCoordinator::new(tokens(1, Some(T0)), RefreshPolicy::default());
        let t = ticket(c.before_request(T0));
        c.abandon(t);
        let _t = ticket(c.before_request(T0));
    }
}
