//! Every step is traced, and no trace contains a secret: the whole life of three sessions (code
//! login, device login, OpenID Connect login, refresh, unknown token, userinfo, logout) is logged
//! at TRACE level and searched for every token, code, verifier, device code, state, nonce and ID
//! token the server issued or received.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use matrix_oidc::{DeviceLoginOptions, LoginOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::keys::TestKey;
use support::server::FakeServer;
use support::{ClockSleep, app, client, login, redirect_uri};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn traces_cover_every_step_and_never_contain_a_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = FakeServer::start().await;
    let (client, clock) = client();
    server.enable_oidc(&clock, TestKey::es256(5, "k1"));
    let session = login(&client, &server).await;
    clock.advance(Duration::from_secs(280));
    let token = session.access_token().await.unwrap();
    server.expire_access_tokens();
    clock.advance(Duration::from_secs(20));
    session.handle_unknown_token(&token, false).await.unwrap();
    session.whoami().await.unwrap();
    let device = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()))
        .await
        .unwrap();
    server.approve_device(device.user_code());
    let second = device.wait(&ClockSleep::new(&clock)).await.unwrap();
    let debug = format!(
        "{second:?} {:?} {:?}",
        second.session(),
        second.access_token().await
    );
    let options = LoginOptions::new(server.base.clone(), redirect_uri(), app()).openid();
    let start = client.start_login(&options).await.unwrap();
    let third = client
        .finish_login(&server.approve(start.url.as_str()))
        .await
        .unwrap();
    third.refresh().await.unwrap();
    third.userinfo().await.unwrap();
    let end_session = third.end_session_url(None).await.unwrap();
    let debug = format!(
        "{debug} {third:?} {:?} {:?} {end_session:?}",
        third.session(),
        third.id_token_claims()
    );
    session.logout().await.unwrap();
    second.logout().await.unwrap();
    third.logout().await.unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for step in [
        "fetch_metadata",
        "client registered",
        "login started",
        "authorization code exchanged",
        "signed in",
        "session stored",
        "refreshing the access token",
        "access token refreshed",
        "device authorization started",
        "device authorization granted",
        "logged out",
        "provider key set fetched",
        "ID token validated",
        "refreshed ID token validated",
        "POST",
        "status=200",
    ] {
        assert!(log.contains(step), "no trace of {step:?} in:\n{log}");
    }
    let secrets = server.secrets();
    assert!(secrets.len() > 10, "{secrets:?}");
    for secret in secrets {
        assert!(
            !log.contains(&secret),
            "the log contains the secret {secret:?}"
        );
        assert!(
            !debug.contains(&secret),
            "Debug output shows the secret {secret:?}"
        );
    }
}
