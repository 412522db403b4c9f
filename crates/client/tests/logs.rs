//! Every step is traced, and no trace contains a secret: the whole life of two sessions (code
//! login, device login, refresh, unknown token, logout) is logged at TRACE level and searched for
//! every token, code, verifier, device code and state the server issued or received.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use matrix_oidc::DeviceLoginOptions;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::server::FakeServer;
use support::{ClockSleep, app, client, login};

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
    session.logout().await.unwrap();
    second.logout().await.unwrap();

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
