//! Logout: revocation of both tokens, local state cleared whatever the server says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use matrix_oidc::core::revoke::RevocationError;
use matrix_oidc::storage::{MemoryStore, SessionStore};
use matrix_oidc::{Error, LogoutReason, SessionEvent, TokenTypeHint};
use std::sync::Arc;
use support::server::FakeServer;
use support::{T0, builder, client, login};

#[tokio::test]
async fn logout_revokes_both_tokens_and_forgets_the_session() {
    let server = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let client = builder(&clock).store(store.clone()).build();
    let session = login(&client, &server).await;
    let tokens = session.session().tokens;
    let rt = tokens.refresh_token.clone().unwrap();
    let mut events = client.subscribe();

    let report = session.logout().await.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        report.revoked,
        [TokenTypeHint::RefreshToken, TokenTypeHint::AccessToken]
    );
    assert_eq!(
        server.revocations(),
        [
            (rt.expose().to_owned(), Some("refresh_token".to_owned())),
            (
                tokens.access_token.expose().to_owned(),
                Some("access_token".to_owned())
            ),
        ]
    );
    assert!(!server.access_token_valid(tokens.access_token.expose()));
    assert!(!server.refresh_token_valid(rt.expose()));
    assert!(store.load(session.key()).await.unwrap().is_none());
    assert!(client.sessions().await.unwrap().is_empty());
    assert_eq!(
        events.try_next(),
        Some(SessionEvent::LoggedOut {
            key: session.key().clone(),
            reason: LogoutReason::Requested
        })
    );
    assert!(session.is_logged_out());
    assert!(session.access_token().await.unwrap_err().is_logged_out());
    assert!(client.restore(session.key()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_failed_revocation_is_reported_and_the_local_logout_still_happens() {
    let server = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let client = builder(&clock).store(store.clone()).build();
    let session = login(&client, &server).await;
    server.configure(|c| c.revocation_failure = Some(503));

    let report = session.logout().await.unwrap();
    assert!(!report.is_complete());
    assert!(report.revoked.is_empty());
    assert_eq!(report.failures.len(), 2);
    for failure in &report.failures {
        assert!(
            matches!(
                failure.error,
                Error::Revocation(RevocationError::Unavailable { .. })
            ),
            "{:?}",
            failure.error
        );
        assert!(failure.error.is_transient());
    }
    assert!(store.load(session.key()).await.unwrap().is_none());
    assert!(session.access_token().await.unwrap_err().is_logged_out());
}

#[tokio::test]
async fn logout_with_the_server_down() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let session = login(&client, &server).await;
    // The cached metadata expired and the server is down: nothing can be revoked.
    clock.advance(std::time::Duration::from_secs(3600));
    server.configure(|c| c.unavailable = true);
    let report = session.logout().await.unwrap();
    assert_eq!(report.failures.len(), 2);
    for failure in &report.failures {
        assert!(
            matches!(failure.error, Error::Discovery(_)),
            "{:?}",
            failure.error
        );
        assert!(failure.error.is_transient());
    }
    assert!(client.sessions().await.unwrap().is_empty());
    assert!(session.is_logged_out());
}

#[tokio::test]
async fn logout_waits_for_a_refresh_in_flight_and_revokes_the_new_tokens() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let session = login(&client, &server).await;
    clock.advance(std::time::Duration::from_secs(400));
    server.pause_token_endpoint();
    let s = session.clone();
    let refreshing = tokio::spawn(async move { s.access_token().await });
    server.token_requests_held(1).await;
    let s = session.clone();
    let logout = tokio::spawn(async move { s.logout().await });
    server.resume_token_endpoint();
    let new = refreshing.await.unwrap().unwrap();
    let report = logout.await.unwrap().unwrap();
    assert!(report.is_complete());
    let revoked: Vec<_> = server.revocations().into_iter().map(|(t, _)| t).collect();
    assert!(
        revoked.contains(&new.expose().to_owned()),
        "the refreshed token was revoked"
    );
    assert!(!server.access_token_valid(new.expose()));
}
