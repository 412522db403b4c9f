//! Second step of the device grant: polling the token endpoint until the user decides (RFC 8628 §3.4,
//! §3.5). See the state diagram in the [module docs](super).

use super::DeviceGrantError;
use super::authorization::DeviceAuthorization;
use crate::http::OutgoingRequest;
use crate::session::TokenSet;
use crate::time::Timestamp;
use crate::token::{TokenError, TokenRequest};
use crate::transport::TransportError;
use std::time::Duration;

/// How much `slow_down` adds to the interval, for this and every later poll (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The longest wait after consecutive transient failures (the backoff doubles up to this).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What to do next, from [`DevicePoller::poll`].
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
// Returned by value and consumed at once; boxing the request would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum PollAction {
    /// Nothing to send yet: call [`DevicePoller::poll`] again at `until`.
    Wait {
        /// When to call again.
        until: Timestamp,
    },
    /// Send this request, then hand its answer to [`DevicePoller::handle_response`] (or a transport
    /// failure to [`DevicePoller::handle_transport_error`]).
    Send(OutgoingRequest),
    /// A poll request is already out; its answer is awaited.
    AwaitingResponse,
    /// The grant is over (its outcome was returned earlier).
    Finished,
}

/// The state after a poll's answer, from [`DevicePoller::handle_response`].
#[derive(Debug)]
#[must_use]
#[non_exhaustive]
pub enum PollStatus {
    /// `authorization_pending`: the user has not decided yet.
    Pending {
        /// When to poll next.
        next_poll_at: Timestamp,
    },
    /// `slow_down`: the interval grew by [`SLOW_DOWN_STEP`].
    SlowDown {
        /// The new interval.
        interval: Duration,
        /// When to poll next.
        next_poll_at: Timestamp,
    },
    /// A transient failure (transport, 5xx, 429): polling continues after a backoff.
    Retrying {
        /// What failed.
        error: TokenError,
        /// When to poll next.
        next_poll_at: Timestamp,
    },
    /// The user approved: the tokens.
    Authorized(TokenSet),
}

#[derive(Debug)]
enum State {
    Waiting {
        next_poll_at: Timestamp,
    },
    AwaitingResponse {
        request: Box<TokenRequest>,
        issued_at: Timestamp,
    },
    Finished,
}

/// Polls the token endpoint for a [`DeviceAuthorization`].
#[derive(Debug)]
pub struct DevicePoller {
    authorization: DeviceAuthorization,
    interval: Duration,
    deadline: Timestamp,
    consecutive_failures: u32,
    state: State,
}

impl DevicePoller {
    /// Starts polling at `now`; the first poll is one interval later.
    pub fn new(authorization: DeviceAuthorization, now: Timestamp) -> Self {
        Self {
            interval: authorization.interval,
            deadline: authorization.expires_at,
            consecutive_failures: 0,
            state: State::Waiting {
                next_poll_at: now + authorization.interval,
            },
            authorization,
        }
    }

    /// Gives up earlier than the device code's expiry (never later).
    pub fn with_deadline(mut self, deadline: Timestamp) -> Self {
        self.deadline = self.deadline.min(deadline);
        self
    }

    /// The authorization being polled for (to show its user code and URL).
    pub fn authorization(&self) -> &DeviceAuthorization {
        &self.authorization
    }

    /// The current interval (grows with `slow_down`).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When polling gives up.
    pub fn deadline(&self) -> Timestamp {
        self.deadline
    }

    /// When the next poll is due, while waiting.
    pub fn next_poll_at(&self) -> Option<Timestamp> {
        match self.state {
            State::Waiting { next_poll_at } => Some(next_poll_at),
            _ => None,
        }
    }

    /// Whether the grant is over.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// What to do at `now`: wait, send a poll request, or give up when the deadline has passed
    /// ([`DeviceGrantError::DeadlinePassed`], after which the poller is finished).
    pub fn poll(&mut self, now: Timestamp) -> Result<PollAction, DeviceGrantError> {
        let next_poll_at = match &self.state {
            State::Finished => return Ok(PollAction::Finished),
            State::AwaitingResponse { .. } => return Ok(PollAction::AwaitingResponse),
            State::Waiting { next_poll_at } => *next_poll_at,
        };
        if now >= self.deadline {
            self.state = State::Finished;
            return Err(DeviceGrantError::DeadlinePassed {
                deadline: self.deadline,
            });
        }
        if now < next_poll_at {
            // Wake up at the deadline if it comes first, to report it.
            return Ok(PollAction::Wait {
                until: next_poll_at.min(self.deadline),
            });
        }
        let a = &self.authorization;
        let request = match TokenRequest::device_code(
            &a.token_endpoint,
            &a.client_id,
            &a.device_code,
            Some(&a.scope),
        ) {
            Ok(r) => r,
            Err(e) => {
                self.state = State::Finished;
                return Err(DeviceGrantError::Token(e));
            }
        };
        let outgoing = request.request.clone();
        self.state = State::AwaitingResponse {
            request: Box::new(request),
            issued_at: now,
        };
        Ok(PollAction::Send(outgoing))
    }

    fn wait(&mut self, now: Timestamp, delay: Duration) -> Timestamp {
        let next_poll_at = now + delay;
        self.state = State::Waiting { next_poll_at };
        next_poll_at
    }

    fn backoff(&mut self, error: TokenError, now: Timestamp) -> PollStatus {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let factor = 1u32 << self.consecutive_failures.min(16);
        let delay = self
            .interval
            .saturating_mul(factor)
            .min(MAX_BACKOFF)
            .max(self.interval);
        let next_poll_at = self.wait(now, delay);
        PollStatus::Retrying {
            error,
            next_poll_at,
        }
    }

    /// Handles the token endpoint's answer to the outstanding poll, received at `now`. The next poll is
    /// scheduled from `now`; the access token's expiry counts from when [`poll`](Self::poll) handed the
    /// request out. Terminal outcomes (tokens, denial, expiry, fatal errors) finish the poller.
    pub fn handle_response<B: AsRef<[u8]>>(
        &mut self,
        response: &http::Response<B>,
        now: Timestamp,
    ) -> Result<PollStatus, DeviceGrantError> {
        let (request, issued_at) = match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitingResponse { request, issued_at } => (request, issued_at),
            other => {
                self.state = other;
                return Err(DeviceGrantError::NotAwaitingResponse);
            }
        };
        match request.parse(response, issued_at) {
            Ok(tokens) => Ok(PollStatus::Authorized(tokens)),
            Err(e) => {
                let code = e.oauth_error().map(|b| b.error.clone());
                match (code.as_deref(), e) {
                    (Some("authorization_pending"), _) => {
                        self.consecutive_failures = 0;
                        let next_poll_at = self.wait(now, self.interval);
                        Ok(PollStatus::Pending { next_poll_at })
                    }
                    (Some("slow_down"), _) => {
                        self.consecutive_failures = 0;
                        self.interval = self.interval.saturating_add(SLOW_DOWN_STEP);
                        let next_poll_at = self.wait(now, self.interval);
                        Ok(PollStatus::SlowDown {
                            interval: self.interval,
                            next_poll_at,
                        })
                    }
                    (Some("access_denied"), TokenError::Rejected { error, .. }) => {
                        Err(DeviceGrantError::AccessDenied { error })
                    }
                    (Some("expired_token"), TokenError::Rejected { error, .. }) => {
                        Err(DeviceGrantError::ExpiredToken { error })
                    }
                    // An error code the grant does not define is fatal, whatever the status.
                    (Some(_), e) => Err(DeviceGrantError::Token(e)),
                    (None, e) if e.is_transient() => Ok(self.backoff(e, now)),
                    (None, e) => Err(DeviceGrantError::Token(e)),
                }
            }
        }
    }

    /// The outstanding poll failed in the transport at `now`: back off (RFC 8628 §3.5) and keep polling.
    pub fn handle_transport_error(
        &mut self,
        error: TransportError,
        now: Timestamp,
    ) -> Result<PollStatus, DeviceGrantError> {
        let request = match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitingResponse { request, .. } => request,
            other => {
                self.state = other;
                return Err(DeviceGrantError::NotAwaitingResponse);
            }
        };
        Ok(self.backoff(request.transport_error(error), now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_grant::DeviceAuthorizationRequest;
    use crate::{DeviceId, Scope};

    const T0: Timestamp = Timestamp::from_unix_seconds(1_000);

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn authorization(expires_in: u64, interval: Option<u64>) -> DeviceAuthorization {
        let md = serde_json::from_value(serde_json::json!({
            "issuer": "https://account.example.com/",
            "authorization_endpoint": "https://account.example.com/oauth2/auth",
            "token_endpoint": "https://account.example.com/oauth2/token",
            "device_authorization_endpoint": "https://account.example.com/oauth2/device",
            "grant_types_supported": [crate::DEVICE_CODE_GRANT_TYPE],
        }))
        .unwrap();
        let scope = Scope::matrix(DeviceId::parse("AABBBCCCDDD").unwrap())
            .build()
            .unwrap();
        let r = DeviceAuthorizationRequest::new(&md, "s6BhdRkqt3", scope).unwrap();
        let mut body = serde_json::json!({
            "device_code": "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS", "user_code": "WDJB-MJHT",
            "verification_uri": "https://account.example.com/link", "expires_in": expires_in,
        });
        if let Some(i) = interval {
            body["interval"] = i.into();
        }
        r.parse(&json(200, &body.to_string()), T0).unwrap()
    }

    /// Polls at exactly the time the poller asks for and returns that time.
    fn send_when_due(p: &mut DevicePoller, now: &mut Timestamp) -> OutgoingRequest {
        loop {
            match p.poll(*now).unwrap() {
                PollAction::Wait { until } => {
                    assert!(until > *now);
                    *now = until;
                }
                PollAction::Send(r) => return r,
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn pending_then_tokens_at_the_interval() {
        let mut p = authorization(1800, Some(5)).poller(T0);
        let mut now = T0;
        let req = send_when_due(&mut p, &mut now);
        assert_eq!(now, T0 + s(5));
        let body: Vec<(String, String)> = form_urlencoded::parse(req.request.body())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            body,
            [
                (
                    "grant_type".to_string(),
                    crate::DEVICE_CODE_GRANT_TYPE.to_string()
                ),
                (
                    "device_code".into(),
                    "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS".into()
                ),
                ("client_id".into(), "s6BhdRkqt3".into()),
            ]
        );
        assert!(matches!(p.poll(now).unwrap(), PollAction::AwaitingResponse));
        let st = p
            .handle_response(&json(400, r#"{"error":"authorization_pending"}"#), now)
            .unwrap();
        assert!(matches!(st, PollStatus::Pending { next_poll_at } if next_poll_at == T0 + s(10)));
        let _ = send_when_due(&mut p, &mut now);
        assert_eq!(now, T0 + s(10));
        let st = p
            .handle_response(
                &json(
                    200,
                    r#"{"access_token":"at","token_type":"Bearer","expires_in":300,"refresh_token":"rt",
                        "scope":"urn:matrix:client:api:* urn:matrix:client:device:AABBBCCCDDD"}"#,
                ),
                now,
            )
            .unwrap();
        let PollStatus::Authorized(tokens) = st else {
            panic!("{st:?}")
        };
        assert_eq!(tokens.access_token.expose(), "at");
        assert_eq!(tokens.expires_at, Some(now + s(300)));
        assert!(p.is_finished());
        assert!(matches!(p.poll(now).unwrap(), PollAction::Finished));
    }

    #[test]
    fn slow_down_adds_five_seconds_for_good() {
        let mut p = authorization(1800, None).poller(T0);
        let mut now = T0;
        let _ = send_when_due(&mut p, &mut now);
        assert_eq!(now, T0 + s(5), "default interval");
        let st = p
            .handle_response(&json(400, r#"{"error":"slow_down"}"#), now)
            .unwrap();
        assert!(matches!(st, PollStatus::SlowDown { interval, .. } if interval == s(10)));
        let _ = send_when_due(&mut p, &mut now);
        assert_eq!(now, T0 + s(15));
        let _ = p
            .handle_response(&json(400, r#"{"error":"slow_down"}"#), now)
            .unwrap();
        assert_eq!(p.interval(), s(15));
        let _ = send_when_due(&mut p, &mut now);
        assert_eq!(now, T0 + s(30));
        let _ = p
            .handle_response(&json(400, r#"{"error":"authorization_pending"}"#), now)
            .unwrap();
        let _ = send_when_due(&mut p, &mut now);
        assert_eq!(now, T0 + s(45), "the slower interval stays");
    }

    #[test]
    fn decided_by_the_error_string_not_the_status() {
        // MAS answers 403 for every polling error.
        let mut p = authorization(1800, Some(5)).poller(T0);
        let mut now = T0;
        let _ = send_when_due(&mut p, &mut now);
        assert!(matches!(
            p.handle_response(&json(403, r#"{"error":"authorization_pending"}"#), now)
                .unwrap(),
            PollStatus::Pending { .. }
        ));
        let _ = send_when_due(&mut p, &mut now);
        let e = p
            .handle_response(&json(403, r#"{"error":"access_denied"}"#), now)
            .unwrap_err();
        assert!(e.is_denied(), "{e}");
        assert!(p.is_finished());

        let mut p = authorization(1800, Some(5)).poller(T0);
        let mut now = T0;
        let _ = send_when_due(&mut p, &mut now);
        let e = p
            .handle_response(&json(403, r#"{"error":"expired_token"}"#), now)
            .unwrap_err();
        assert!(matches!(e, DeviceGrantError::ExpiredToken { .. }));
        assert!(e.is_expired());

        // Unknown error codes and invalid_grant (code already used, on MAS) are fatal.
        for body in [r#"{"error":"invalid_grant"}"#, r#"{"error":"made_up"}"#] {
            let mut p = authorization(1800, Some(5)).poller(T0);
            let mut now = T0;
            let _ = send_when_due(&mut p, &mut now);
            let e = p.handle_response(&json(400, body), now).unwrap_err();
            assert!(
                matches!(e, DeviceGrantError::Token(TokenError::Rejected { .. })),
                "{e}"
            );
            assert!(p.is_finished());
        }
    }

    #[test]
    fn local_deadline() {
        let mut p = authorization(12, Some(5)).poller(T0);
        let mut now = T0;
        let _ = send_when_due(&mut p, &mut now);
        let _ = p
            .handle_response(&json(400, r#"{"error":"authorization_pending"}"#), now)
            .unwrap();
        let _ = send_when_due(&mut p, &mut now);
        assert_eq!(now, T0 + s(10));
        let _ = p
            .handle_response(&json(400, r#"{"error":"authorization_pending"}"#), now)
            .unwrap();
        // Next poll would be at 15 s but the code expires at 12 s: wake up at 12 to report it.
        assert!(matches!(p.poll(now).unwrap(), PollAction::Wait { until } if until == T0 + s(12)));
        let e = p.poll(T0 + s(12)).unwrap_err();
        assert_eq!(
            e,
            DeviceGrantError::DeadlinePassed {
                deadline: T0 + s(12)
            }
        );
        assert!(e.is_expired());
        assert!(matches!(p.poll(T0 + s(13)).unwrap(), PollAction::Finished));

        // An application deadline can only shorten it.
        let p = authorization(1800, Some(5))
            .poller(T0)
            .with_deadline(T0 + s(60));
        assert_eq!(p.deadline(), T0 + s(60));
        let p = authorization(30, Some(5))
            .poller(T0)
            .with_deadline(T0 + s(60));
        assert_eq!(p.deadline(), T0 + s(30));
    }

    #[test]
    fn transient_failures_back_off_and_keep_polling() {
        let mut p = authorization(1800, Some(5)).poller(T0);
        let mut now = T0;
        let _ = send_when_due(&mut p, &mut now);
        let st = p
            .handle_transport_error(
                TransportError::Timeout {
                    url: "u".into(),
                    timeout_ms: 1,
                },
                now,
            )
            .unwrap();
        assert!(
            matches!(st, PollStatus::Retrying { next_poll_at, .. } if next_poll_at == now + s(10))
        );
        let _ = send_when_due(&mut p, &mut now);
        let st = p.handle_response(&json(503, "{}"), now).unwrap();
        assert!(
            matches!(st, PollStatus::Retrying { next_poll_at, .. } if next_poll_at == now + s(20))
        );
        let _ = send_when_due(&mut p, &mut now);
        let st = p.handle_response(&json(502, "<html>"), now).unwrap();
        assert!(
            matches!(st, PollStatus::Retrying { next_poll_at, .. } if next_poll_at == now + s(40))
        );
        let _ = send_when_due(&mut p, &mut now);
        let st = p.handle_response(&json(429, ""), now).unwrap();
        assert!(
            matches!(st, PollStatus::Retrying { next_poll_at, .. } if next_poll_at == now + MAX_BACKOFF)
        );
        let _ = send_when_due(&mut p, &mut now);
        let _ = p
            .handle_response(&json(400, r#"{"error":"authorization_pending"}"#), now)
            .unwrap();
        assert_eq!(
            p.next_poll_at(),
            Some(now + s(5)),
            "a normal answer resets the backoff"
        );
        // A 4xx without an OAuth error body is fatal.
        let _ = send_when_due(&mut p, &mut now);
        assert!(p.handle_response(&json(404, "{}"), now).is_err());
    }

    #[test]
    fn misuse_is_reported_not_panicking() {
        let mut p = authorization(1800, Some(5)).poller(T0);
        assert_eq!(
            p.handle_response(&json(200, "{}"), T0).unwrap_err(),
            DeviceGrantError::NotAwaitingResponse
        );
        assert_eq!(
            p.handle_transport_error(
                TransportError::Timeout {
                    url: "u".into(),
                    timeout_ms: 1
                },
                T0
            )
            .unwrap_err(),
            DeviceGrantError::NotAwaitingResponse
        );
        assert!(
            matches!(p.poll(T0).unwrap(), PollAction::Wait { .. }),
            "state kept"
        );
    }

    #[test]
    fn dropped_device_scope_is_fatal() {
        let mut p = authorization(1800, Some(5)).poller(T0);
        let mut now = T0;
        let _ = send_when_due(&mut p, &mut now);
        let e = p
            .handle_response(
                &json(200, r#"{"access_token":"at","token_type":"Bearer","scope":"urn:matrix:client:api:*"}"#),
                now,
            )
            .unwrap_err();
        assert!(matches!(
            e,
            DeviceGrantError::Token(TokenError::DeviceScopeDropped { .. })
        ));
    }
}
