//! Access tokens on demand: refresh when due, single flight, cancellation safety, logout on
//! refusal, events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::StreamExt;
use matrix_oidc::storage::{MemoryStore, SessionStore};
use matrix_oidc::{Error, LogoutReason, SessionEvent, TokioSpawner};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::server::FakeServer;
use support::{T0, builder, client, login};

/// Past the default refresh margin (30 s before a 300 s expiry).
const DUE: Duration = Duration::from_secs(271);

#[tokio::test]
async fn refreshes_only_when_due_and_stores_the_rotated_tokens_first() {
    let server = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let client = builder(&clock).store(store.clone()).build();
    let session = login(&client, &server).await;

    let first = session.access_token().await.unwrap();
    assert_eq!(first.generation(), 0);
    assert_eq!(first.expires_at(), Some(T0 + Duration::from_secs(300)));
    clock.advance(Duration::from_secs(269));
    assert_eq!(session.access_token().await.unwrap(), first);
    assert_eq!(server.count("token:refresh_token"), 0);

    clock.advance(Duration::from_secs(2));
    let second = session.access_token().await.unwrap();
    assert_eq!(second.generation(), 1);
    assert_ne!(second.expose(), first.expose());
    assert_eq!(server.count("token:refresh_token"), 1);
    assert!(server.access_token_valid(second.expose()));

    let stored = store.load(session.key()).await.unwrap().unwrap();
    assert_eq!(stored.session.tokens.access_token, *second.secret());
    let rt = stored.session.tokens.refresh_token.clone().unwrap();
    assert!(
        server.refresh_token_valid(rt.expose()),
        "the stored refresh token is the live one"
    );
}

#[tokio::test]
async fn a_thousand_concurrent_callers_cause_one_token_request() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let session = login(&client, &server).await;
    clock.advance(Duration::from_secs(400)); // expired: nobody may use the old token
    let tokens = futures_util::future::join_all((0..1000).map(|_| session.access_token())).await;
    let tokens: Vec<_> = tokens.into_iter().map(Result::unwrap).collect();
    assert_eq!(server.count("token:refresh_token"), 1);
    assert!(tokens.iter().all(|t| t == &tokens[0]));
    assert_eq!(tokens[0].generation(), 1);
    assert!(server.access_token_valid(tokens[0].expose()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_tasks_on_many_handles_cause_one_token_request() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let session = login(&client, &server).await;
    let key = session.key().clone();
    clock.advance(Duration::from_secs(400));
    server.pause_token_endpoint();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let handle = client.restore(&key).await.unwrap().unwrap();
                handle.access_token().await
            })
        })
        .collect();
    server.token_requests_held(1).await;
    server.resume_token_endpoint();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap().unwrap());
    }
    assert_eq!(server.count("token:refresh_token"), 1);
    assert!(seen.iter().all(|t| t == &seen[0]));
}

/// The task that started the refresh is cancelled after the server rotated the refresh token and
/// before the answer was read. Without a spawner, the next caller drives the same refresh on.
#[tokio::test]
async fn a_cancelled_refresh_is_finished_by_the_next_caller() {
    let server = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let client = builder(&clock).store(store.clone()).build();
    let session = login(&client, &server).await;
    let old_rt = session.session().tokens.refresh_token.unwrap();
    clock.advance(DUE);

    server.pause_token_endpoint();
    let s = session.clone();
    let task = tokio::spawn(async move { s.access_token().await });
    server.token_requests_held(1).await;
    assert!(
        !server.refresh_token_valid(old_rt.expose()),
        "the server rotated already"
    );
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    server.resume_token_endpoint();

    let token = session.access_token().await.unwrap();
    assert_eq!(
        server.count("token:refresh_token"),
        1,
        "the same refresh, not a second one"
    );
    assert_eq!(token.generation(), 1);
    let stored = store.load(session.key()).await.unwrap().unwrap();
    let rt = stored.session.tokens.refresh_token.unwrap();
    assert!(server.refresh_token_valid(rt.expose()));

    // And it is usable: the next refresh succeeds with it.
    clock.advance(Duration::from_secs(400));
    let third = session.access_token().await.unwrap();
    assert_eq!(third.generation(), 2);
    assert_eq!(server.count("token:refresh_token"), 2);
}

/// With a spawner, the refresh completes and is stored even though nobody asks again.
#[tokio::test]
async fn a_cancelled_refresh_completes_by_itself_with_a_spawner() {
    let server = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let client = builder(&clock)
        .store(store.clone())
        .spawner(TokioSpawner::try_current().unwrap())
        .build();
    let session = login(&client, &server).await;
    let mut events = client.subscribe();
    clock.advance(DUE);

    server.pause_token_endpoint();
    let s = session.clone();
    let task = tokio::spawn(async move { s.access_token().await });
    server.token_requests_held(1).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    server.resume_token_endpoint();

    let event = events.next().await.unwrap();
    assert_eq!(
        event,
        SessionEvent::TokensRefreshed {
            key: session.key().clone(),
            by_this_process: true
        }
    );
    // A second client on the same store, as after a restart, finds the rotated token and can use it.
    let stored = store.load(session.key()).await.unwrap().unwrap();
    let rt = stored.session.tokens.refresh_token.clone().unwrap();
    assert!(server.refresh_token_valid(rt.expose()));
    let restarted = builder(&clock).store(store.clone()).build();
    let again = restarted.restore(session.key()).await.unwrap().unwrap();
    clock.advance(Duration::from_secs(400));
    again.access_token().await.unwrap();
    assert_eq!(server.count("token:refresh_token"), 2);
}

#[tokio::test]
async fn a_refused_refresh_logs_out_clears_the_store_and_says_so() {
    let server = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let calls = hook_calls.clone();
    let client = builder(&clock)
        .store(store.clone())
        .on_event(move |e| {
            if matches!(e, SessionEvent::LoggedOut { .. }) {
                calls.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build();
    let session = login(&client, &server).await;
    let mut events = client.subscribe();
    server.revoke_all_sessions();
    clock.advance(DUE);

    let err = session.access_token().await.unwrap_err();
    match &err {
        Error::LoggedOut {
            soft_logout: false,
            source: Some(e),
        } => assert_eq!(e.oauth_error().unwrap().error, "invalid_grant"),
        other => panic!("{other:?}"),
    }
    assert!(err.is_logged_out() && !err.is_transient());
    assert!(session.is_logged_out());
    assert!(store.load(session.key()).await.unwrap().is_none());
    assert_eq!(
        events.try_next(),
        Some(SessionEvent::LoggedOut {
            key: session.key().clone(),
            reason: LogoutReason::RefreshRejected { soft_logout: false }
        })
    );
    assert_eq!(hook_calls.load(Ordering::SeqCst), 1);
    // Later calls fail the same way, without requests.
    assert!(session.access_token().await.unwrap_err().is_logged_out());
    assert_eq!(server.count("token:refresh_token"), 1);
}

#[tokio::test]
async fn a_temporary_failure_keeps_the_session_and_backs_off() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let session = login(&client, &server).await;
    clock.advance(Duration::from_secs(400));
    server.configure(|c| c.token_failure = Some(503));

    let err = session.access_token().await.unwrap_err();
    let retry_at = match &err {
        Error::RefreshFailed {
            retry_at,
            source: Some(_),
        } => *retry_at,
        other => panic!("{other:?}"),
    };
    assert!(err.is_transient());
    assert_eq!(retry_at, clock_now(&clock) + Duration::from_secs(1));
    // Before `retry_at`: no new attempt.
    assert!(matches!(
        session.access_token().await,
        Err(Error::RefreshFailed { source: None, .. })
    ));
    assert!(!session.is_logged_out());

    // After `retry_at`, a new attempt; the server is back.
    server.configure(|c| c.token_failure = None);
    clock.set(retry_at);
    assert_eq!(session.access_token().await.unwrap().generation(), 1);
    assert_eq!(server.count("token:refresh_token"), 2);
}

fn clock_now(clock: &matrix_oidc::ManualClock) -> matrix_oidc::Timestamp {
    use matrix_oidc::Clock;
    clock.now()
}

/// With a spawner driving the refresh, a token that is due but not expired is still handed out
/// while the refresh runs: nobody waits.
#[tokio::test]
async fn with_a_spawner_a_due_but_unexpired_token_is_handed_out_during_the_refresh() {
    let server = FakeServer::start().await;
    let clock = matrix_oidc::ManualClock::new(T0);
    let client = builder(&clock)
        .spawner(TokioSpawner::try_current().unwrap())
        .build();
    let session = login(&client, &server).await;
    clock.advance(DUE);
    server.pause_token_endpoint();
    let s = session.clone();
    let refreshing = tokio::spawn(async move { s.access_token().await });
    server.token_requests_held(1).await;
    let meanwhile = session.access_token().await.unwrap();
    assert_eq!(meanwhile.generation(), 0);
    server.resume_token_endpoint();
    assert_eq!(refreshing.await.unwrap().unwrap().generation(), 1);
    assert_eq!(server.count("token:refresh_token"), 1);
}

/// Without a spawner, callers during a refresh join it (so that it is driven to the end even if
/// its first caller goes away), and get the new token.
#[tokio::test]
async fn without_a_spawner_callers_during_a_refresh_join_it() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let session = login(&client, &server).await;
    clock.advance(DUE);
    server.pause_token_endpoint();
    let s = session.clone();
    let first = tokio::spawn(async move { s.access_token().await });
    server.token_requests_held(1).await;
    let s = session.clone();
    let second = tokio::spawn(async move { s.access_token().await });
    server.resume_token_endpoint();
    let (a, b) = (
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a.generation(), 1);
    assert_eq!(server.count("token:refresh_token"), 1);
}

#[tokio::test]
async fn unknown_token_adopts_a_newer_token_without_a_request() {
    let server = FakeServer::start().await;
    let (client, clock) = client();
    let session = login(&client, &server).await;
    let old = session.access_token().await.unwrap();
    clock.advance(DUE);
    let new = session.access_token().await.unwrap();
    assert_eq!(server.count("token:refresh_token"), 1);
    // A request made with the old token failed with M_UNKNOWN_TOKEN meanwhile.
    let retry = session.handle_unknown_token(&old, false).await.unwrap();
    assert_eq!(retry, new);
    assert_eq!(server.count("token:refresh_token"), 1);

    // The current token rejected (server-side expiry): refresh.
    server.expire_access_tokens();
    clock.advance(Duration::from_secs(20)); // past the fresh-token window
    let newest = session.handle_unknown_token(&new, false).await.unwrap();
    assert_eq!(newest.generation(), 2);
    assert!(server.access_token_valid(newest.expose()));

    // Rejected again right after a refresh: logged out, no loop.
    let err = session
        .handle_unknown_token(&newest, true)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::LoggedOut {
                soft_logout: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.count("token:refresh_token"), 2);
}

#[tokio::test]
async fn a_session_without_a_refresh_token_ends_at_expiry() {
    let server = FakeServer::start().await;
    let (client, _) = client();
    let mut bare = login(&client, &server).await.session();
    bare.tokens.refresh_token = None;

    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let other = builder(&clock).store(store.clone()).build();
    let mut events = other.subscribe();
    let imported = other.import_session(bare).await.unwrap();
    assert_eq!(
        events.try_next(),
        Some(SessionEvent::LoggedIn {
            key: imported.key().clone()
        })
    );
    assert_eq!(imported.access_token().await.unwrap().generation(), 0);
    clock.advance(Duration::from_secs(300));
    let err = imported.access_token().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::LoggedOut {
                soft_logout: false,
                source: None
            }
        ),
        "{err:?}"
    );
    assert!(store.load(imported.key()).await.unwrap().is_none());
    assert_eq!(
        events.try_next(),
        Some(SessionEvent::LoggedOut {
            key: imported.key().clone(),
            reason: LogoutReason::RefreshRejected { soft_logout: false }
        })
    );
    assert_eq!(events.try_next(), None, "one event, not one per call");
    assert!(imported.access_token().await.unwrap_err().is_logged_out());
    assert_eq!(events.try_next(), None);
    assert_eq!(server.count("token:refresh_token"), 0);
}

#[tokio::test]
async fn a_session_logged_out_elsewhere_ends_here_at_the_next_refresh() {
    let server = FakeServer::start().await;
    let store = Arc::new(MemoryStore::new());
    let clock = matrix_oidc::ManualClock::new(T0);
    let a = builder(&clock).store(store.clone()).build();
    let b = builder(&clock).store(store.clone()).build();
    let session_a = login(&a, &server).await;
    let session_b = b.restore(session_a.key()).await.unwrap().unwrap();
    let mut events = b.subscribe();
    session_a.logout().await.unwrap();
    clock.advance(DUE);
    let err = session_b.access_token().await.unwrap_err();
    assert!(err.is_logged_out(), "{err:?}");
    assert_eq!(
        events.try_next(),
        Some(SessionEvent::LoggedOut {
            key: session_a.key().clone(),
            reason: LogoutReason::RemovedFromStore
        })
    );
    assert_eq!(server.count("token:refresh_token"), 0);
}

#[tokio::test]
async fn two_clients_sharing_a_store_refresh_once() {
    let server = FakeServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = matrix_oidc::storage::FileStore::open(dir.path()).unwrap();
    let clock = matrix_oidc::ManualClock::new(T0);
    let a = builder(&clock).store(store.clone()).build();
    let b = builder(&clock).store(store).build();
    let session_a = login(&a, &server).await;
    let session_b = b.restore(session_a.key()).await.unwrap().unwrap();
    let mut events_a = a.subscribe();
    let mut events_b = b.subscribe();
    clock.advance(DUE);
    let (ta, tb) = tokio::join!(session_a.access_token(), session_b.access_token());
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert_eq!(ta.expose(), tb.expose());
    assert_eq!(server.count("token:refresh_token"), 1);
    // One of them refreshed, the other picked the tokens up from the store.
    let mut by_this_process = [events_a.try_next(), events_b.try_next()]
        .into_iter()
        .map(|e| match e {
            Some(SessionEvent::TokensRefreshed {
                by_this_process, ..
            }) => by_this_process,
            other => panic!("{other:?}"),
        })
        .collect::<Vec<_>>();
    by_this_process.sort();
    assert_eq!(by_this_process, [false, true]);
}
