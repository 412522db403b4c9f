//! Shared by the integration tests: the fake server, a client wired to it through the real reqwest
//! transport, a controllable clock, and a sleeper that advances it.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

pub mod keys;
pub mod server;

use matrix_oidc::core::{SeededRandom, Timestamp};
use matrix_oidc::{
    AuthSession, BoxFuture, ClientMetadata, LoginOptions, ManualClock, OAuthClient,
    OAuthClientBuilder, Sleep,
};
use matrix_oidc_reqwest::ReqwestTransport;
use server::FakeServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use url::Url;

/// The start of every test's clock.
pub const T0: Timestamp = Timestamp::from_unix_seconds(1_750_000_000);

/// A client for `server` (reqwest transport, memory store, seeded randomness, manual clock), not yet
/// built, so that tests can change what they need.
pub fn builder(clock: &ManualClock) -> OAuthClientBuilder {
    OAuthClient::builder(ReqwestTransport::try_default().unwrap())
        .allow_insecure_loopback()
        .clock(clock.clone())
        .random(SeededRandom::new(7))
}

/// A built client with a fresh clock at [`T0`].
pub fn client() -> (OAuthClient, ManualClock) {
    let clock = ManualClock::new(T0);
    (builder(&clock).build(), clock)
}

/// The application's registration metadata: a native app with a loopback redirect URI.
pub fn app() -> ClientMetadata {
    ClientMetadata::native(Url::parse("https://app.example.org/").unwrap())
        .with_client_name("matrix-oidc tests")
        .with_redirect_uri(Url::parse("http://127.0.0.1/callback").unwrap())
}

/// Where the browser comes back to (the registered loopback URI, with a port).
pub fn redirect_uri() -> Url {
    Url::parse("http://127.0.0.1:8765/callback").unwrap()
}

/// A full authorization code login: start, the user approves, finish.
pub async fn login(client: &OAuthClient, server: &FakeServer) -> AuthSession {
    let start = client
        .start_login(&LoginOptions::new(
            server.base.clone(),
            redirect_uri(),
            app(),
        ))
        .await
        .unwrap();
    let callback = server.approve(start.url.as_str());
    client.finish_login(&callback).await.unwrap()
}

/// A [`Sleep`] that moves a [`ManualClock`] forward instead of waiting, and counts its naps.
#[derive(Clone)]
pub struct ClockSleep {
    pub clock: ManualClock,
    pub naps: Arc<AtomicU64>,
}

impl ClockSleep {
    pub fn new(clock: &ManualClock) -> Self {
        Self {
            clock: clock.clone(),
            naps: Arc::default(),
        }
    }

    pub fn naps(&self) -> u64 {
        self.naps.load(Ordering::SeqCst)
    }
}

impl Sleep for ClockSleep {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.clock.advance(duration);
        self.naps.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    }
}
