//! Signing in with the device authorization grant (RFC 8628): for devices without a usable browser.
//!
//! ```text
//! start_device_login(options) ──▶ DeviceLogin { user_code, verification_uri(_complete) }
//!        show them to the user ──▶ (user approves on another device)
//! DeviceLogin::wait(&sleep) ── poll_once ─ pending ─ sleep until next_poll_at ─┐
//!                              ▲──────────────────────────────────────────────┘
//!                              └─ tokens ─▶ whoami ─▶ store ─▶ AuthSession
//! ```
//!
//! Polling follows the core's [`DevicePoller`]: the server's interval, +5 s on `slow_down`, back-off
//! on network errors, and a stop at the code's expiry. The client never sleeps by itself: it waits
//! through the [`Sleep`] it is given, so tests can run a whole sequence without real time passing.
//! Cancel by dropping the [`wait`](DeviceLogin::wait) future.

use crate::client::OAuthClient;
use crate::error::{Error, Operation};
use crate::login::{ClientConfig, build_scope};
use crate::runtime::Sleep;
use crate::session::AuthSession;
use matrix_oidc_core::device_grant::{
    DeviceAuthorization, DeviceAuthorizationRequest, DeviceGrantError, DevicePoller, PollAction,
    PollStatus,
};
use matrix_oidc_core::{DeviceId, ScopeFlavor, Session, Timestamp, TransportError};
use url::Url;

/// What a device-grant login asks for.
#[derive(Debug, Clone)]
#[must_use]
pub struct DeviceLoginOptions {
    homeserver: Url,
    client: ClientConfig,
    device_id: Option<DeviceId>,
    scope_flavor: ScopeFlavor,
    extra_scopes: Vec<String>,
    deadline: Option<Timestamp>,
}

impl DeviceLoginOptions {
    /// A device-grant login to `homeserver`. A [`ClientConfig::Dynamic`] client gets the device
    /// grant type added to its metadata if it lacks it.
    pub fn new(homeserver: Url, client: impl Into<ClientConfig>) -> Self {
        Self {
            homeserver,
            client: client.into(),
            device_id: None,
            scope_flavor: ScopeFlavor::default(),
            extra_scopes: Vec::new(),
            deadline: None,
        }
    }

    /// Reuses a device id. Default: a new random one.
    pub fn device_id(mut self, device_id: DeviceId) -> Self {
        self.device_id = Some(device_id);
        self
    }

    /// Stable (default) or unstable scope names.
    pub fn scope_flavor(mut self, flavor: ScopeFlavor) -> Self {
        self.scope_flavor = flavor;
        self
    }

    /// Asks for one more scope token.
    pub fn extra_scope(mut self, scope: impl Into<String>) -> Self {
        self.extra_scopes.push(scope.into());
        self
    }

    /// Gives up at `deadline` if it comes before the code's own expiry.
    pub fn deadline(mut self, deadline: Timestamp) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

/// Where a device login stands after one [`poll_once`](DeviceLogin::poll_once).
#[derive(Debug)]
#[non_exhaustive]
pub enum DevicePoll {
    /// Not yet; poll again at `next_poll_at` (not before).
    Pending {
        /// When.
        next_poll_at: Timestamp,
    },
    /// Signed in.
    Done(AuthSession),
}

/// A device-grant login waiting for the user. Show [`user_code`](Self::user_code) and
/// [`verification_uri`](Self::verification_uri) (or the
/// [`verification_uri_complete`](Self::verification_uri_complete) link / QR code), then
/// [`wait`](Self::wait).
#[derive(Debug)]
pub struct DeviceLogin {
    client: OAuthClient,
    poller: DevicePoller,
    homeserver: Url,
    issuer: Url,
    device_id: Option<DeviceId>,
}

impl DeviceLogin {
    /// The code the user enters (or compares) on the verification page.
    pub fn user_code(&self) -> &str {
        &self.poller.authorization().user_code
    }

    /// The page where the user enters the code.
    pub fn verification_uri(&self) -> &Url {
        &self.poller.authorization().verification_uri
    }

    /// The same page with the code filled in, if the server offers it.
    pub fn verification_uri_complete(&self) -> Option<&Url> {
        self.poller
            .authorization()
            .verification_uri_complete
            .as_ref()
    }

    /// What to show: the complete URI if offered, else the plain one (show the user code too).
    pub fn uri_to_show(&self) -> &Url {
        self.poller.authorization().uri_to_show()
    }

    /// When the code expires.
    pub fn expires_at(&self) -> Timestamp {
        self.poller.authorization().expires_at
    }

    /// The device id requested.
    pub fn device_id(&self) -> Option<&DeviceId> {
        self.device_id.as_ref()
    }

    /// The client id used.
    pub fn client_id(&self) -> &str {
        &self.poller.authorization().client_id
    }

    /// The whole device authorization (serializable, to resume polling after a restart with
    /// [`OAuthClient::resume_device_login`]). Holds the secret device code.
    pub fn authorization(&self) -> &DeviceAuthorization {
        self.poller.authorization()
    }

    /// When the next poll is due (`None` while one is being answered or once finished).
    pub fn next_poll_at(&self) -> Option<Timestamp> {
        self.poller.next_poll_at()
    }

    /// Polls once if a poll is due, else returns at once with the time it will be due.
    ///
    /// Errors end the login: [`Error::Cancelled`] (the user declined),
    /// [`Error::DeviceGrant`] with [`DeviceGrantError::ExpiredToken`] or
    /// [`DeviceGrantError::DeadlinePassed`] (too late), or an unrecoverable server answer. Network
    /// errors and server errors are retried with a back-off and come back as `Pending`.
    #[tracing::instrument(skip_all, fields(user_code = %self.user_code()))]
    pub async fn poll_once(&mut self) -> Result<DevicePoll, Error> {
        let inner = &self.client.inner;
        let now = inner.clock.now();
        let action = self
            .poller
            .poll(now)
            .map_err(|e| Error::device(Operation::DevicePoll, e))?;
        let request = match action {
            PollAction::Wait { until } => {
                return Ok(DevicePoll::Pending {
                    next_poll_at: until,
                });
            }
            PollAction::Send(request) => request,
            PollAction::AwaitingResponse => {
                // An earlier poll_once was cancelled while its request was out: count it as a
                // failed request so that the poller backs off and polls again.
                let status = self.poller.handle_transport_error(
                    TransportError::Other {
                        url: self.poller.authorization().token_endpoint.to_string(),
                        reason: "the previous poll was cancelled".to_owned(),
                    },
                    now,
                );
                return self.after(status).await;
            }
            _ => {
                return Err(Error::DeviceGrant(DeviceGrantError::NotAwaitingResponse));
            }
        };
        let status = match inner.send(request).await {
            Ok(response) => self.poller.handle_response(&response, inner.clock.now()),
            Err(e) => self.poller.handle_transport_error(e, inner.clock.now()),
        };
        self.after(status).await
    }

    async fn after(
        &mut self,
        status: Result<PollStatus, DeviceGrantError>,
    ) -> Result<DevicePoll, Error> {
        match status.map_err(|e| Error::device(Operation::DevicePoll, e))? {
            PollStatus::Pending { next_poll_at } => {
                tracing::debug!("authorization pending");
                Ok(DevicePoll::Pending { next_poll_at })
            }
            PollStatus::SlowDown {
                interval,
                next_poll_at,
            } => {
                tracing::info!(interval_s = interval.as_secs(), "server asked to slow down");
                Ok(DevicePoll::Pending { next_poll_at })
            }
            PollStatus::Retrying {
                error,
                next_poll_at,
            } => {
                tracing::warn!(%error, "poll failed; backing off");
                Ok(DevicePoll::Pending { next_poll_at })
            }
            PollStatus::Authorized(tokens) => {
                tracing::info!("device authorization granted");
                let session =
                    Session::new(self.issuer.clone(), self.client_id().to_owned(), tokens)
                        .with_homeserver(Some(self.homeserver.clone()))
                        .with_device_id(self.device_id.as_ref().map(|d| d.as_str().to_owned()));
                let mut session = session;
                let whoami = self
                    .client
                    .whoami(&self.homeserver, &session.tokens.access_token)
                    .await?;
                whoami.apply_to(&mut session).map_err(Error::whoami)?;
                Ok(DevicePoll::Done(self.client.store_session(session).await?))
            }
            _ => Err(Error::DeviceGrant(DeviceGrantError::NotAwaitingResponse)),
        }
    }

    /// Polls until the user approves (→ the stored session), declines, or the code expires,
    /// sleeping through `sleep` between polls. Drop the future to cancel.
    pub async fn wait(mut self, sleep: &dyn Sleep) -> Result<AuthSession, Error> {
        loop {
            match self.poll_once().await? {
                DevicePoll::Done(session) => return Ok(session),
                DevicePoll::Pending { next_poll_at } => {
                    let now = self.client.inner.clock.now();
                    let delay = next_poll_at.duration_since(now);
                    if !delay.is_zero() {
                        sleep.sleep(delay).await;
                    }
                }
            }
        }
    }
}

impl OAuthClient {
    /// Starts a device-grant login: discovers the homeserver, registers the client (for
    /// [`ClientConfig::Dynamic`]), and asks for a device code.
    #[tracing::instrument(skip_all, fields(homeserver = %options.homeserver))]
    pub async fn start_device_login(
        &self,
        options: &DeviceLoginOptions,
    ) -> Result<DeviceLogin, Error> {
        let inner = &self.inner;
        let discovered = self.discover(&options.homeserver).await?;
        let config = match &options.client {
            ClientConfig::Dynamic(metadata) => {
                ClientConfig::Dynamic(metadata.clone().with_device_code_grant())
            }
            other => other.clone(),
        };
        let client_id = self.client_id_for(&discovered, &config).await?;
        let scope = build_scope(
            self,
            options.device_id.clone(),
            options.scope_flavor,
            &options.extra_scopes,
        )?;
        let device_id = scope.device_id();
        let request = DeviceAuthorizationRequest::new(&discovered.metadata, &client_id, scope)
            .map_err(|e| Error::device(Operation::DeviceAuthorization, e))?;
        let sent_at = inner.clock.now();
        let response = inner
            .send(request.request.clone())
            .await
            .map_err(|e| Error::transport(Operation::DeviceAuthorization, e))?;
        let authorization = request
            .parse(&response, sent_at)
            .map_err(|e| Error::device(Operation::DeviceAuthorization, e))?;
        tracing::info!(%client_id, "device authorization started");
        let mut poller = authorization.poller(inner.clock.now());
        if let Some(deadline) = options.deadline {
            poller = poller.with_deadline(deadline);
        }
        Ok(DeviceLogin {
            client: self.clone(),
            poller,
            homeserver: options.homeserver.clone(),
            issuer: discovered.metadata.issuer.clone(),
            device_id,
        })
    }

    /// Resumes polling a device authorization saved from [`DeviceLogin::authorization`] (after a
    /// restart, say). The first poll is one interval away.
    pub async fn resume_device_login(
        &self,
        homeserver: &Url,
        authorization: DeviceAuthorization,
    ) -> Result<DeviceLogin, Error> {
        let discovered = self.discover(homeserver).await?;
        let device_id = authorization.scope.device_id();
        Ok(DeviceLogin {
            client: self.clone(),
            poller: authorization.poller(self.inner.clock.now()),
            homeserver: homeserver.clone(),
            issuer: discovered.metadata.issuer.clone(),
            device_id,
        })
    }
}
