//! What the client needs from its surroundings, injected: the time, a timer, and (optionally) a way
//! to run a task in the background.
//!
//! The client picks no async runtime. It reads the clock through [`Clock`] (the system clock unless
//! told otherwise, a [`ManualClock`] in tests), waits through [`Sleep`] only where waiting is the job
//! (polling in the device grant), and, given a [`Spawn`], runs each token refresh as its own task so
//! that it finishes even if every caller waiting for it is cancelled. With the `tokio` feature,
//! [`TokioSleep`] and [`TokioSpawner`] implement the last two on tokio.

use matrix_oidc_core::Timestamp;
use matrix_oidc_core::transport::MaybeSendSync;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A boxed future: `Send` on native targets, not on `wasm32` (where nothing is).
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;
/// A boxed future: `Send` on native targets, not on `wasm32` (where nothing is).
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = futures_util::future::LocalBoxFuture<'a, T>;

/// The wall clock, as the client reads it: token expiry, metadata freshness, pending-login
/// lifetimes and device-grant deadlines are all measured against [`Clock::now`].
pub trait Clock: MaybeSendSync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// The operating system's clock (`SystemTime::now`). The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(std::time::SystemTime::now())
    }
}

/// A clock that moves only when told to: for tests and simulations.
///
/// Clones share the same time, so a test keeps one clone and hands another to the client.
///
/// ```
/// use matrix_oidc::{Clock, ManualClock};
/// use matrix_oidc_core::Timestamp;
/// use std::time::Duration;
/// let clock = ManualClock::new(Timestamp::from_unix_seconds(1_000));
/// let seen_by_client = clock.clone();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(seen_by_client.now(), Timestamp::from_unix_seconds(1_005));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            millis: Arc::new(AtomicU64::new(start.as_unix_millis())),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: Timestamp) {
        self.millis.store(now.as_unix_millis(), Ordering::SeqCst);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(m.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// A timer: the future resolves after `duration`.
///
/// Used between device-grant polls. Implement it on your runtime's timer, or use `TokioSleep`
/// (feature `tokio`). A test can implement it by advancing a [`ManualClock`] and returning at
/// once, which makes a whole polling sequence run instantly and deterministically.
pub trait Sleep: MaybeSendSync {
    /// A future that completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

impl<S: Sleep + ?Sized> Sleep for Arc<S> {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        (**self).sleep(duration)
    }
}

/// Runs a future to completion in the background.
///
/// Optional. When the client has one, each token refresh runs as its own task: if every caller
/// that waits for it is cancelled, the refresh still completes and its rotated refresh token is
/// stored. Without one, an abandoned refresh is resumed by the next caller that asks for a token
/// (it is kept, half-done, inside the client), which is as safe as long as someone asks again.
pub trait Spawn: MaybeSendSync {
    /// Starts `future`; it must be polled to completion even though nobody awaits it.
    fn spawn(&self, future: BoxFuture<'static, ()>);
}

impl<S: Spawn + ?Sized> Spawn for Arc<S> {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        (**self).spawn(future)
    }
}

/// [`Sleep`] on tokio's timer. Needs a tokio runtime with the time driver enabled when polled.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleep;

#[cfg(feature = "tokio")]
impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// [`Spawn`] on a tokio runtime.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Debug, Clone)]
pub struct TokioSpawner {
    handle: tokio::runtime::Handle,
}

#[cfg(feature = "tokio")]
impl TokioSpawner {
    /// Spawns onto the runtime behind `handle`.
    pub fn new(handle: tokio::runtime::Handle) -> Self {
        Self { handle }
    }

    /// Spawns onto the runtime this is called from; `None` outside a tokio runtime.
    pub fn try_current() -> Option<Self> {
        tokio::runtime::Handle::try_current().ok().map(Self::new)
    }
}

#[cfg(feature = "tokio")]
impl Spawn for TokioSpawner {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        drop(self.handle.spawn(future));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_saturates() {
        let c = ManualClock::new(Timestamp::from_unix_seconds(10));
        assert_eq!(c.now(), Timestamp::from_unix_seconds(10));
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now(), Timestamp::from_unix_millis(11_500));
        c.set(Timestamp::from_unix_millis(u64::MAX - 1));
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now(), Timestamp::from_unix_millis(u64::MAX));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp::from_unix_seconds(1_577_836_800));
    }
}
