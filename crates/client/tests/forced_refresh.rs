//! `AuthSession::refresh`: "refresh now", single-flight with every other caller.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use matrix_oidc::core::TokenError;
use matrix_oidc::storage::{MemoryStore, SessionStore};
use matrix_oidc::{Error, SessionEvent};
use std::sync::Arc;
use std::time::Duration;
use support::server::FakeServer;
use support::{T0, builder, client, login};

#[tokio::test]
async fn a_fresh_token_is_refreshed_on_request_and_the_rotation_is_stored() {
    let server = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let client = builder(&clock).store(store.clone()).build();
    let session = login(&client, &server).await;
    let mut events = client.subscribe();
    let before = session.access_token().await.unwrap();
    let old_rt = session.session().tokens.refresh_token.unwrap();

    // Far from expiry: `access_token` would not refresh, `refresh` does.
    let after = session.refresh().await.unwrap();
    assert_eq!(server.count("token:refresh_token"), 1);
    assert_eq!(after.generation(), 1);
    assert_ne!(after.expose(), before.expose());
    assert!(server.access_token_valid(after.expose()));
    assert!(!server.access_token_valid(before.expose()));
    assert!(!server.refresh_token_valid(old_rt.expose()));
    let stored = store.load(session.key()).await.unwrap().unwrap();
    assert_eq!(stored.session.tokens.access_token, *after.secret());
    assert!(server.refresh_token_valid(stored.session.tokens.refresh_token.unwrap().expose()));
    assert_eq!(
        events.try_next(),
        Some(SessionEvent::TokensRefreshed {
            key: session.key().clone(),
            by_this_process: true
        })
    );
    // Later callers use the new token without a request.
    assert_eq!(session.access_token().await.unwrap(), after);

    // A request made after that refresh finished is a new refresh.
    let again = session.refresh().await.unwrap();
    assert_eq!(again.generation(), 2);
    assert_eq!(server.count("token:refresh_token"), 2);
}

#[tokio::test]
async fn concurrent_refresh_and_access_token_callers_share_one_request() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let session = login(&client, &server).await;
    let forced = (0..200).map(|_| session.refresh());
    let plain = (0..200).map(|_| session.access_token());
    let (forced, plain) = futures_util::join!(
        futures_util::future::join_all(forced),
        futures_util::future::join_all(plain)
    );
    assert_eq!(server.count("token:refresh_token"), 1);
    let first = forced[0].as_ref().unwrap().clone();
    assert_eq!(first.generation(), 1);
    assert!(forced.iter().all(|t| t.as_ref().unwrap() == &first));
    // Without a spawner, `access_token` callers arriving during the refresh wait for it.
    assert!(plain.iter().all(|t| t.as_ref().unwrap() == &first));
    assert!(server.access_token_valid(first.expose()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refresh_tasks_on_many_handles_share_one_request() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let session = login(&client, &server).await;
    let key = session.key().clone();
    server.pause_token_endpoint();
    let (polled, mut polled_rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let client = client.clone();
            let key = key.clone();
            let polled = polled.clone();
            tokio::spawn(async move {
                let handle = client.restore(&key).await.unwrap().unwrap();
                let mut call: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> =
                    if i % 2 == 0 {
                        Box::pin(handle.refresh())
                    } else {
                        Box::pin(handle.access_token())
                    };
                // The first poll makes the call's decision (start, join or use); report it.
                let first = futures_util::poll!(&mut call);
                polled.send(()).unwrap();
                let result = match first {
                    std::task::Poll::Ready(result) => result,
                    std::task::Poll::Pending => call.await,
                };
                (i % 2 == 0, result)
            })
        })
        .collect();
    for _ in 0..100 {
        polled_rx.recv().await.unwrap();
    }
    // Every call has decided while the one token request is still held open.
    server.token_requests_held(1).await;
    server.resume_token_endpoint();
    let mut results = Vec::new();
    for t in tasks {
        let (forced, result) = t.await.unwrap();
        results.push((forced, result.unwrap()));
    }
    assert_eq!(server.count("token:refresh_token"), 1);
    let newest = session.access_token().await.unwrap();
    assert_eq!(newest.generation(), 1);
    // Every `refresh` got the new token; an `access_token` that ran before the refresh started
    // may have got the old one, which was still valid then.
    for (forced, token) in &results {
        if *forced || token.generation() == 1 {
            assert_eq!(token, &newest);
        } else {
            assert_eq!(token.generation(), 0);
        }
    }
}

#[tokio::test]
async fn an_explicit_refresh_is_not_held_back_by_the_backoff() {
    let server = FakeServer::start().await;
    let (client, _clock) = client();
    let session = login(&client, &server).await;
    server.configure(|c| c.token_failure = Some(503));
    let err = session.refresh().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RefreshFailed {
                source: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    // The automatic path keeps the live token during the backoff; the explicit one tries again.
    assert_eq!(session.access_token().await.unwrap().generation(), 0);
    assert_eq!(server.count("token:refresh_token"), 1);
    server.configure(|c| c.token_failure = None);
    let token = session.refresh().await.unwrap();
    assert_eq!(server.count("token:refresh_token"), 2);
    assert_eq!(token.generation(), 1);
    assert!(!session.is_logged_out());
}

#[tokio::test]
async fn a_refused_explicit_refresh_logs_out() {
    let server = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let client = builder(&clock).store(store.clone()).build();
    let session = login(&client, &server).await;
    server.revoke_all_sessions();
    let err = session.refresh().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::LoggedOut {
                soft_logout: false,
                source: Some(_)
            }
        ),
        "{err:?}"
    );
    assert!(session.is_logged_out());
    assert!(store.load(session.key()).await.unwrap().is_none());
    assert!(session.refresh().await.unwrap_err().is_logged_out());
    assert_eq!(server.count("token:refresh_token"), 1);
}

#[tokio::test]
async fn without_a_refresh_token_the_session_says_so_and_stays_usable() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let mut bare = login(&client, &server).await.session();
    bare.tokens.refresh_token = None;
    let other = builder(&clock).build();
    let imported = other.import_session(bare).await.unwrap();
    let err = imported.refresh().await.unwrap_err();
    assert!(
        matches!(err, Error::Token(TokenError::NoRefreshToken)),
        "{err:?}"
    );
    assert!(!imported.is_logged_out());
    assert_eq!(imported.access_token().await.unwrap().generation(), 0);
    assert_eq!(server.count("token:refresh_token"), 0);
    clock.advance(Duration::from_secs(300));
    assert!(imported.refresh().await.unwrap_err().is_logged_out());
}
