//! Discovery, registration and the authorization code login, through the reqwest transport
//! against the in-process homeserver + authorization server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use matrix_oidc::core::discovery::DiscoveryOptions;
use matrix_oidc::core::registration::ClientMetadata;
use matrix_oidc::core::{DeviceId, Profile, ResponseMode, UrlPolicy};
use matrix_oidc::{
    AccountAction, ClientConfig, Error, LoginApi, LoginOptions, OAuthClient, SessionEvent,
    SessionKey,
};
use serde_json::json;
use std::time::Duration;
use support::server::{Config, FakeServer};
use support::{app, client, login, redirect_uri};
use url::Url;

#[tokio::test]
async fn full_login_stores_a_session_with_user_and_device() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let mut events = client.subscribe();

    let options = LoginOptions::new(server.base.clone(), redirect_uri(), app());
    let start = client.start_login(&options).await.unwrap();
    let query: std::collections::HashMap<_, _> = start.url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], start.client_id);
    assert_eq!(query["redirect_uri"], redirect_uri().as_str());
    assert_eq!(
        query["response_mode"], "query",
        "loopback redirect: query mode"
    );
    let device = start.device_id.clone().expect("a device id is generated");
    assert_eq!(
        query["scope"],
        format!("urn:matrix:client:api:* urn:matrix:client:device:{device}")
    );

    let callback = server.approve(start.url.as_str());
    let session = client.finish_login(&callback).await.unwrap();
    assert_eq!(session.user_id().as_deref(), Some("@alice:localhost"));
    assert_eq!(session.device_id().as_deref(), Some(device.as_str()));
    let stored = session.session();
    assert_eq!(stored.client_id, start.client_id);
    assert_eq!(stored.homeserver.as_ref(), Some(&server.base));
    assert_eq!(stored.issuer, server.issuer());

    // The store has it, under the key derived from homeserver, user and device.
    assert_eq!(session.key(), &SessionKey::for_session(&stored));
    assert_eq!(
        client.sessions().await.unwrap(),
        vec![session.key().clone()]
    );
    let token = session.access_token().await.unwrap();
    assert!(server.access_token_valid(token.expose()));
    assert_eq!(
        events.try_next(),
        Some(SessionEvent::LoggedIn {
            key: session.key().clone()
        })
    );
    assert_eq!(server.count("token:authorization_code"), 1);
    assert_eq!(server.count("whoami"), 1);
}

#[tokio::test]
async fn a_callback_finishes_once() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let start = client
        .start_login(&LoginOptions::new(
            server.base.clone(),
            redirect_uri(),
            app(),
        ))
        .await
        .unwrap();
    let callback = server.approve(start.url.as_str());
    client.finish_login(&callback).await.unwrap();
    let again = client.finish_login(&callback).await.unwrap_err();
    assert!(matches!(again, Error::StateNotFound), "{again:?}");
    assert_eq!(
        server.count("token:authorization_code"),
        1,
        "no second exchange"
    );
}

#[tokio::test]
async fn concurrent_finishes_of_one_callback_yield_one_session() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let start = client
        .start_login(&LoginOptions::new(
            server.base.clone(),
            redirect_uri(),
            app(),
        ))
        .await
        .unwrap();
    let callback = server.approve(start.url.as_str());
    let results =
        futures_util::future::join_all((0..10).map(|_| client.finish_login(&callback))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, Error::StateNotFound))
    );
    assert_eq!(server.count("token:authorization_code"), 1);
}

#[tokio::test]
async fn the_callback_may_finish_in_another_client_sharing_the_store() {
    let server = FakeServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = matrix_oidc::storage::FileStore::open(dir.path()).unwrap();
    let clock = matrix_oidc::ManualClock::new(support::T0);
    let starter = support::builder(&clock).store(store.clone()).build();
    let start = starter
        .start_login(&LoginOptions::new(
            server.base.clone(),
            redirect_uri(),
            app(),
        ))
        .await
        .unwrap();
    drop(starter);
    let callback = server.approve(start.url.as_str());
    let finisher = support::builder(&clock).store(store).build();
    let session = finisher.finish_login(&callback).await.unwrap();
    assert_eq!(session.user_id().as_deref(), Some("@alice:localhost"));
}

#[tokio::test]
async fn declining_is_a_distinct_error_and_discards_the_pending_login() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let start = client
        .start_login(&LoginOptions::new(
            server.base.clone(),
            redirect_uri(),
            app(),
        ))
        .await
        .unwrap();
    let callback = server.deny(start.url.as_str());
    let err = client.finish_login(&callback).await.unwrap_err();
    match &err {
        Error::Cancelled { error } => assert_eq!(error.error, "access_denied"),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.oauth_error().unwrap().error, "access_denied");
    assert!(
        !client.abort_login(&start.state).await.unwrap(),
        "discarded"
    );
    assert_eq!(server.count("token"), 0);
}

#[tokio::test]
async fn pending_logins_expire_and_can_be_aborted() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let options = LoginOptions::new(server.base.clone(), redirect_uri(), app());
    let start = client.start_login(&options).await.unwrap();
    assert!(client.abort_login(&start.state).await.unwrap());
    let callback = server.approve(start.url.as_str());
    assert!(matches!(
        client.finish_login(&callback).await,
        Err(Error::StateNotFound)
    ));

    let start = client.start_login(&options).await.unwrap();
    assert_eq!(start.expires_at, support::T0 + Duration::from_secs(15 * 60));
    clock.set(start.expires_at);
    let callback = server.approve(start.url.as_str());
    assert!(matches!(
        client.finish_login(&callback).await,
        Err(Error::StateNotFound)
    ));
}

#[tokio::test]
async fn a_forged_callback_with_another_redirect_uri_is_refused() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let start = client
        .start_login(&LoginOptions::new(
            server.base.clone(),
            redirect_uri(),
            app(),
        ))
        .await
        .unwrap();
    let callback = server.approve(start.url.as_str());
    let forged = callback.replace("/callback", "/elsewhere");
    let err = client.finish_login(&forged).await.unwrap_err();
    assert!(matches!(err, Error::Callback(_)), "{err:?}");
    assert_eq!(server.count("token"), 0);
}

#[tokio::test]
async fn registration_happens_at_every_login_and_the_server_deduplicates() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let a = login(&client, &server).await;
    let b = login(&client, &server).await;
    assert_eq!(server.count("register"), 2, "a fresh registration per flow");
    assert_eq!(server.registered_clients(), 1);
    assert_eq!(a.session().client_id, b.session().client_id);
    assert_ne!(a.key(), b.key(), "two devices, two sessions");
    assert_eq!(
        server.count("auth_metadata"),
        1,
        "metadata came from the cache"
    );
}

#[tokio::test]
async fn a_pre_registered_client_skips_registration() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let registered = client.register_client(&server.base, &app()).await.unwrap();
    let options = LoginOptions::new(
        server.base.clone(),
        redirect_uri(),
        ClientConfig::registered(registered.client_id.clone()),
    )
    .device_id(DeviceId::parse("ABCDEFGHIJ").unwrap());
    let start = client.start_login(&options).await.unwrap();
    assert_eq!(start.client_id, registered.client_id);
    let session = client
        .finish_login(&server.approve(start.url.as_str()))
        .await
        .unwrap();
    assert_eq!(session.device_id().as_deref(), Some("ABCDEFGHIJ"));
    assert_eq!(server.count("register"), 1);
}

#[tokio::test]
async fn registration_not_supported_is_distinct() {
    let server = FakeServer::start_with(Config {
        registration: false,
        ..Config::default()
    })
    .await;
    // The Matrix profile requires a registration endpoint: discovery names the missing field.
    let (client, _clock) = client();
    let err = client.discover(&server.base).await.unwrap_err();
    assert!(matches!(err, Error::Discovery(_)), "{err:?}");
    assert!(err.to_string().contains("registration_endpoint"), "{err}");

    // The tolerant profile (ruma's) accepts it; then dynamic registration is what fails…
    let clock = matrix_oidc::ManualClock::new(support::T0);
    let client = support::builder(&clock)
        .discovery_options(
            DiscoveryOptions::default()
                .with_profile(Profile::MatrixTolerant)
                .with_url_policy(UrlPolicy::AllowInsecureLoopback),
        )
        .build();
    let err = client
        .start_login(&LoginOptions::new(
            server.base.clone(),
            redirect_uri(),
            app(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::RegistrationNotSupported { .. }),
        "{err:?}"
    );
    // …and a pre-registered client id still works.
    server.configure(|c| c.registration = true);
    let registered = client.register_client(&server.base, &app()).await;
    assert!(
        registered.is_err(),
        "the cached metadata has no registration endpoint"
    );
    client.invalidate_metadata(&server.base);
    let id = client
        .register_client(&server.base, &app())
        .await
        .unwrap()
        .client_id;
    server.configure(|c| c.registration = false);
    client.invalidate_metadata(&server.base);
    let start = client
        .start_login(&LoginOptions::new(
            server.base.clone(),
            redirect_uri(),
            ClientConfig::registered(id),
        ))
        .await
        .unwrap();
    client
        .finish_login(&server.approve(start.url.as_str()))
        .await
        .unwrap();
}

#[tokio::test]
async fn fragment_mode_and_https_redirects() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let web = ClientMetadata::web(Url::parse("https://app.example.org/").unwrap())
        .with_redirect_uri(Url::parse("https://app.example.org/callback").unwrap());
    let start = client
        .start_login(&LoginOptions::new(
            server.base.clone(),
            Url::parse("https://app.example.org/callback").unwrap(),
            web,
        ))
        .await
        .unwrap();
    assert!(
        start
            .url
            .query_pairs()
            .any(|(k, v)| k == "response_mode" && v == "fragment")
    );
    let callback = server.approve(start.url.as_str());
    assert!(callback.contains("#state="), "{callback}");
    client.finish_login(&callback).await.unwrap();

    // A caller forcing query mode on the loopback redirect gets it.
    let start = client
        .start_login(
            &LoginOptions::new(server.base.clone(), redirect_uri(), app())
                .response_mode(ResponseMode::Fragment),
        )
        .await
        .unwrap();
    let callback = server.approve(start.url.as_str());
    client.finish_login(&callback).await.unwrap();
}

#[tokio::test]
async fn prompt_create_is_sent_when_advertised() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let start = client
        .start_login(&LoginOptions::new(server.base.clone(), redirect_uri(), app()).prompt_create())
        .await
        .unwrap();
    assert!(
        start
            .url
            .query_pairs()
            .any(|(k, v)| k == "prompt" && v == "create")
    );
}

#[tokio::test]
async fn metadata_is_reused_while_fresh_and_refetched_after() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let first = client.discover(&server.base).await.unwrap();
    let second = client.discover(&server.base).await.unwrap();
    assert_eq!(server.count("auth_metadata"), 1);
    assert!(std::sync::Arc::ptr_eq(&first, &second));
    clock.advance(Duration::from_secs(599));
    client.discover(&server.base).await.unwrap();
    assert_eq!(server.count("auth_metadata"), 1, "max-age=600 not yet over");
    clock.advance(Duration::from_secs(1));
    client.discover(&server.base).await.unwrap();
    assert_eq!(server.count("auth_metadata"), 2);
    client.invalidate_metadata(&server.base);
    client.discover(&server.base).await.unwrap();
    assert_eq!(server.count("auth_metadata"), 3);
}

#[tokio::test]
async fn no_store_metadata_is_never_reused_and_missing_headers_use_the_default_ttl() {
    let server = FakeServer::start_with(Config {
        metadata_cache_control: Some("no-store".into()),
        ..Config::default()
    })
    .await;
    let (client, _clock) = client();
    client.discover(&server.base).await.unwrap();
    client.discover(&server.base).await.unwrap();
    assert_eq!(server.count("auth_metadata"), 2);

    server.configure(|c| c.metadata_cache_control = None);
    let clock = matrix_oidc::ManualClock::new(support::T0);
    let client = support::builder(&clock)
        .default_metadata_ttl(Duration::from_secs(60))
        .build();
    client.discover(&server.base).await.unwrap();
    clock.advance(Duration::from_secs(59));
    client.discover(&server.base).await.unwrap();
    assert_eq!(server.count("auth_metadata"), 3);
    clock.advance(Duration::from_secs(1));
    client.discover(&server.base).await.unwrap();
    assert_eq!(server.count("auth_metadata"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_discoveries_share_one_request() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let client = client.clone();
            let hs = server.base.clone();
            tokio::spawn(async move {
                client
                    .discover(&hs)
                    .await
                    .map(|d| d.metadata.issuer.clone())
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), server.issuer());
    }
    assert_eq!(server.count("auth_metadata"), 1);
}

#[tokio::test]
async fn oauth_or_legacy() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    assert_eq!(
        client.login_api(&server.base).await.unwrap(),
        LoginApi::OAuth
    );
    assert_eq!(
        server.count("login"),
        0,
        "OAuth available: /login not even asked"
    );

    let legacy = FakeServer::start_with(Config {
        oauth: false,
        legacy_flows: Some(json!([
            {"type": "m.login.password"},
            {"type": "m.login.sso", "oauth_aware_preferred": true}
        ])),
        ..Config::default()
    })
    .await;
    match client.login_api(&legacy.base).await.unwrap() {
        LoginApi::Legacy { flows, sso_only } => {
            assert!(sso_only);
            assert!(flows.supports("m.login.password"));
        }
        other => panic!("{other:?}"),
    }
    let err = client.discover(&legacy.base).await.unwrap_err();
    assert!(err.is_not_supported(), "{err:?}");
    let err = client
        .start_login(&LoginOptions::new(
            legacy.base.clone(),
            redirect_uri(),
            app(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err:?}");

    let neither = FakeServer::start_with(Config {
        oauth: false,
        ..Config::default()
    })
    .await;
    assert_eq!(
        client.login_api(&neither.base).await.unwrap(),
        LoginApi::Neither
    );

    // Nothing listening: undetermined, never a downgrade to legacy.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    assert_eq!(
        client.login_api(&dead).await.unwrap(),
        LoginApi::Undetermined
    );
    assert!(matches!(
        client.discover(&dead).await,
        Err(Error::Transport { .. })
    ));
}

#[tokio::test]
async fn account_management_urls() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let session = login(&client, &server).await;
    let device = session.device_id().unwrap();
    let url = session
        .account_management_url(AccountAction::DeviceDelete)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        url.as_str(),
        format!(
            "{}account?action=org.matrix.device_delete&device_id={device}",
            server.base
        )
    );
    let url = session
        .account_management_url(AccountAction::Profile)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(url.query(), Some("action=org.matrix.profile"));
    let url = client
        .account_management_url(&server.base, AccountAction::DevicesList, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(url.query(), Some("action=org.matrix.devices_list"));
}

#[tokio::test]
async fn whoami_refreshes_once_on_unknown_token() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let session = login(&client, &server).await;
    assert_eq!(session.whoami().await.unwrap().user_id, "@alice:localhost");
    server.expire_access_tokens();
    let who = session.whoami().await.unwrap();
    assert_eq!(who.device_id, session.device_id());
    assert_eq!(server.count("token:refresh_token"), 1);
}

#[tokio::test]
async fn restore_and_import() {
    let server = FakeServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = matrix_oidc::storage::FileStore::open(dir.path()).unwrap();
    let clock = matrix_oidc::ManualClock::new(support::T0);
    let key = {
        let client = support::builder(&clock).store(store.clone()).build();
        login(&client, &server).await.key().clone()
    };
    let client: OAuthClient = support::builder(&clock).store(store).build();
    assert_eq!(client.sessions().await.unwrap(), vec![key.clone()]);
    let restored = client.restore(&key).await.unwrap().unwrap();
    let again = client.restore(&key).await.unwrap().unwrap();
    assert_eq!(
        restored.access_token().await.unwrap(),
        again.access_token().await.unwrap()
    );
    assert!(
        client
            .restore(&SessionKey::new("nope"))
            .await
            .unwrap()
            .is_none()
    );

    let (other, _clock) = support::client();
    let imported = other.import_session(restored.session()).await.unwrap();
    assert_eq!(imported.key(), &key);
    assert_eq!(other.sessions().await.unwrap(), vec![key]);
}
