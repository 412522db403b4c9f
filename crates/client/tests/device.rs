//! Device-code login (RFC 8628) through the real transport, with time driven by a test sleeper.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use matrix_oidc::core::device_grant::DeviceGrantError;
use matrix_oidc::{ClientConfig, DeviceLoginOptions, DevicePoll, Error, SessionKey};
use std::time::Duration;
use support::server::{Config, FakeServer};
use support::{ClockSleep, T0, app, client};

#[tokio::test]
async fn device_login_polls_until_approved() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let mut login = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()))
        .await
        .unwrap();
    assert!(login.user_code().starts_with("WDJB-"));
    assert_eq!(login.verification_uri().path(), "/link");
    assert_eq!(
        login.uri_to_show(),
        login.verification_uri_complete().unwrap()
    );
    assert_eq!(login.expires_at(), T0 + Duration::from_secs(1200));
    let device_id = login.device_id().unwrap().clone();

    // Not due yet: no request.
    match login.poll_once().await.unwrap() {
        DevicePoll::Pending { next_poll_at } => {
            assert_eq!(next_poll_at, T0 + Duration::from_secs(5))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.count("token"), 0);

    // Due: one poll, still pending.
    clock.advance(Duration::from_secs(5));
    assert!(matches!(
        login.poll_once().await.unwrap(),
        DevicePoll::Pending { .. }
    ));
    assert_eq!(
        server.count("token:urn:ietf:params:oauth:grant-type:device_code"),
        1
    );

    server.approve_device(login.user_code());
    let sleep = ClockSleep::new(&clock);
    let session = login.wait(&sleep).await.unwrap();
    assert_eq!(sleep.naps(), 1, "one interval, then the approved poll");
    assert_eq!(session.user_id().as_deref(), Some("@alice:localhost"));
    assert_eq!(session.device_id().as_deref(), Some(device_id.as_str()));
    assert_eq!(
        client.sessions().await.unwrap(),
        vec![session.key().clone()]
    );
    assert_eq!(session.key(), &SessionKey::for_session(&session.session()));
    assert!(server.access_token_valid(session.access_token().await.unwrap().expose()));
    // The registration asked for the device grant.
    assert_eq!(server.count("register"), 1);
}

#[tokio::test]
async fn slow_down_and_mas_style_403_are_followed() {
    let server = FakeServer::start_with(Config {
        device_error_status: 403,
        device_poll_script: [
            "authorization_pending",
            "slow_down",
            "authorization_pending",
        ]
        .into_iter()
        .collect(),
        ..Config::default()
    })
    .await;
    let (client, clock) = client();
    let login = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()))
        .await
        .unwrap();
    server.approve_device(login.user_code());
    let sleep = ClockSleep::new(&clock);
    login.wait(&sleep).await.unwrap();
    // 5 s, pending, 5 s, slow_down (→ 10 s), 10 s, pending, 10 s, approved.
    assert_eq!(sleep.naps(), 4);
    assert_eq!(
        matrix_oidc::Clock::now(&clock),
        T0 + Duration::from_secs(5 + 5 + 10 + 10)
    );
    assert_eq!(
        server.count("token:urn:ietf:params:oauth:grant-type:device_code"),
        4
    );
}

#[tokio::test]
async fn declining_on_the_other_device_is_cancelled() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let login = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()))
        .await
        .unwrap();
    server.deny_device(login.user_code());
    let err = login.wait(&ClockSleep::new(&clock)).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert!(client.sessions().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_code_expires() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let login = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()))
        .await
        .unwrap();
    let sleep = ClockSleep::new(&clock);
    let err = login.wait(&sleep).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::DeviceGrant(DeviceGrantError::DeadlinePassed { deadline }) if deadline == T0 + Duration::from_secs(1200)
        ),
        "{err:?}"
    );
    // Polled every 5 s until the deadline, never after.
    assert_eq!(server.count("token"), 1200 / 5 - 1);

    // A server-side expiry is reported the same way.
    let server = FakeServer::start_with(Config {
        device_poll_script: ["expired_token"].into_iter().collect(),
        ..Config::default()
    })
    .await;
    let login = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()))
        .await
        .unwrap();
    let err = login.wait(&sleep).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::DeviceGrant(DeviceGrantError::ExpiredToken { .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_application_deadline_and_cancellation_by_drop() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let deadline = T0 + Duration::from_secs(12);
    let login = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()).deadline(deadline))
        .await
        .unwrap();
    let err = login.wait(&ClockSleep::new(&clock)).await.unwrap_err();
    assert!(matches!(
        err,
        Error::DeviceGrant(DeviceGrantError::DeadlinePassed { .. })
    ));
    assert_eq!(server.count("token"), 2, "at 5 s and 10 s");

    // Dropping the wait future stops polling.
    let login = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()))
        .await
        .unwrap();
    let sleep = ClockSleep::new(&clock);
    let before = server.count("token");
    {
        let wait = login.wait(&sleep);
        futures_util::pin_mut!(wait);
        assert!(futures_util::poll!(wait.as_mut()).is_pending());
    }
    let settled = server.count("token");
    assert!(settled <= before + 1);
    tokio::task::yield_now().await;
    assert_eq!(server.count("token"), settled, "no polling after the drop");
}

#[tokio::test]
async fn resuming_a_saved_device_authorization() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let login = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()))
        .await
        .unwrap();
    let saved = serde_json::to_string(login.authorization()).unwrap();
    assert!(
        !format!("{login:?}").contains("GmRhmhcxhwAzkoEqiMEg"),
        "Debug hides the device code"
    );
    drop(login);
    let user_code = serde_json::from_str::<serde_json::Value>(&saved).unwrap()["user_code"]
        .as_str()
        .unwrap()
        .to_owned();
    server.approve_device(&user_code);
    drop(clock);
    let (restarted, clock) = support::client();
    let resumed = restarted
        .resume_device_login(&server.base, serde_json::from_str(&saved).unwrap())
        .await
        .unwrap();
    let session = resumed.wait(&ClockSleep::new(&clock)).await.unwrap();
    assert_eq!(session.user_id().as_deref(), Some("@alice:localhost"));
}

#[tokio::test]
async fn a_server_without_the_device_grant() {
    let server = FakeServer::start_with(Config {
        device_grant: false,
        ..Config::default()
    })
    .await;
    let (client, _clock) = client();
    let registered = client.register_client(&server.base, &app()).await.unwrap();
    let err = client
        .start_device_login(&DeviceLoginOptions::new(
            server.base.clone(),
            ClientConfig::registered(registered.client_id),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DeviceGrant(DeviceGrantError::NotSupported { .. })
        ),
        "{err:?}"
    );
}

/// The tokio timer and the system clock, for real: one 1-second interval passes.
#[tokio::test]
async fn tokio_sleep_and_the_system_clock() {
    let server = FakeServer::start_with(Config {
        device_interval: 1,
        ..Config::default()
    })
    .await;
    let client = matrix_oidc::OAuthClient::builder(
        matrix_oidc_reqwest::ReqwestTransport::try_default().unwrap(),
    )
    .allow_insecure_loopback()
    .build();
    let login = client
        .start_device_login(&DeviceLoginOptions::new(server.base.clone(), app()))
        .await
        .unwrap();
    server.approve_device(login.user_code());
    let session = login.wait(&matrix_oidc::TokioSleep).await.unwrap();
    assert_eq!(session.user_id().as_deref(), Some("@alice:localhost"));
    assert_eq!(
        server.count("token:urn:ietf:params:oauth:grant-type:device_code"),
        1,
        "no poll before the interval passed"
    );
}
