//! Telling the application that a session changed: new tokens, signed in, signed out.
//!
//! Two ways to listen, both runtime-agnostic: a hook called synchronously
//! ([`OAuthClientBuilder::on_event`](crate::OAuthClientBuilder::on_event)), and a [`Stream`] of
//! events ([`OAuthClient::subscribe`](crate::OAuthClient::subscribe)). Events carry no tokens: ask
//! the session for its current access token when one arrives.

use crate::single_flight::lock;
use futures_channel::mpsc;
use futures_util::Stream;
use matrix_oidc_storage::SessionKey;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogoutReason {
    /// The application logged out ([`AuthSession::logout`](crate::AuthSession::logout)).
    Requested,
    /// A refresh was refused for good (or there was no refresh token left); `soft_logout` as the
    /// homeserver said.
    RefreshRejected {
        /// Whether the homeserver allowed a soft logout.
        soft_logout: bool,
    },
    /// The session disappeared from the store: another process logged it out.
    RemovedFromStore,
    /// A refresh returned an ID token that failed validation against the session's (another
    /// `sub`, a bad signature, …): the provider no longer vouches for the same user, so the
    /// session ends (feature `oidc`).
    IdTokenRejected,
}

/// Something happened to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A login finished and the session was stored.
    LoggedIn {
        /// The session.
        key: SessionKey,
    },
    /// The session has new tokens, stored before this event is sent.
    TokensRefreshed {
        /// The session.
        key: SessionKey,
        /// `false` when another process refreshed and this one picked the tokens up from the store.
        by_this_process: bool,
    },
    /// The session ended; its tokens are gone from the store.
    LoggedOut {
        /// The session.
        key: SessionKey,
        /// Why.
        reason: LogoutReason,
    },
}

impl SessionEvent {
    /// The session the event is about.
    pub fn key(&self) -> &SessionKey {
        match self {
            SessionEvent::LoggedIn { key }
            | SessionEvent::TokensRefreshed { key, .. }
            | SessionEvent::LoggedOut { key, .. } => key,
        }
    }
}

/// A hook called with every event, synchronously, by the task that caused it. Keep it short.
#[cfg(not(target_arch = "wasm32"))]
pub type EventHook = Arc<dyn Fn(&SessionEvent) + Send + Sync>;
/// A hook called with every event, synchronously, by the task that caused it. Keep it short.
#[cfg(target_arch = "wasm32")]
pub type EventHook = Arc<dyn Fn(&SessionEvent)>;

#[derive(Default)]
pub(crate) struct Events {
    hooks: Vec<EventHook>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<SessionEvent>>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("hooks", &self.hooks.len())
            .field("subscribers", &lock(&self.subscribers).len())
            .finish()
    }
}

impl Events {
    pub(crate) fn new(hooks: Vec<EventHook>) -> Self {
        Self {
            hooks,
            subscribers: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn emit(&self, event: SessionEvent) {
        tracing::debug!(?event, "session event");
        for hook in &self.hooks {
            hook(&event);
        }
        // Dropped streams are forgotten here, so subscribers never pile up.
        lock(&self.subscribers).retain(|tx| tx.unbounded_send(event.clone()).is_ok());
    }

    pub(crate) fn subscribe(&self) -> SessionEvents {
        let (tx, rx) = mpsc::unbounded();
        lock(&self.subscribers).push(tx);
        SessionEvents { rx }
    }
}

/// The events of one [`OAuthClient::subscribe`](crate::OAuthClient::subscribe) call, in order. Ends
/// when the client is dropped.
///
/// Events queue up until read, so read them (or drop the stream).
#[derive(Debug)]
pub struct SessionEvents {
    rx: mpsc::UnboundedReceiver<SessionEvent>,
}

impl SessionEvents {
    /// The next event if one is queued, without waiting.
    pub fn try_next(&mut self) -> Option<SessionEvent> {
        self.rx.try_recv().ok()
    }
}

impl Stream for SessionEvents {
    type Item = SessionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionEvent>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}
