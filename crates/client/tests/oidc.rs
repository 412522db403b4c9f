//! The OpenID Connect layer through the async client, against the fake provider: signed ID tokens
//! at login and on refresh, key rotation, unknown keys, userinfo, the end-session URL, and the
//! plain (non-Matrix) relying party.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::StreamExt as _;
use matrix_oidc::core::oidc::{IdTokenError, LogoutError, SignatureError, UserinfoError};
use matrix_oidc::storage::{MemoryStore, SessionStore};
use matrix_oidc::{
    AuthSession, Error, LoginOptions, LogoutReason, ManualClock, OAuthClient, SessionEvent,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use support::keys::TestKey;
use support::server::{FakeServer, RefreshIdToken};
use support::{T0, app, builder, redirect_uri};
use url::Url;

const SUB: &str = "248289761001";

/// A provider signing with an ES256 key, and a client on the same clock.
async fn setup() -> (FakeServer, OAuthClient, ManualClock, Arc<MemoryStore>) {
    let server = FakeServer::start().await;
    let clock = ManualClock::new(T0);
    server.enable_oidc(&clock, TestKey::es256(1, "k1"));
    let store = Arc::new(MemoryStore::new());
    let client = builder(&clock).store(store.clone()).build();
    (server, client, clock, store)
}

fn query(pairs: url::form_urlencoded::Parse<'_>) -> HashMap<String, String> {
    pairs.into_owned().collect()
}

/// A Matrix login that also asks for `openid`.
async fn openid_login(client: &OAuthClient, server: &FakeServer) -> Result<AuthSession, Error> {
    let options = LoginOptions::new(server.base.clone(), redirect_uri(), app()).openid();
    let start = client.start_login(&options).await?;
    let callback = server.approve(start.url.as_str());
    client.finish_login(&callback).await
}

#[tokio::test]
async fn a_matrix_login_with_openid_validates_a_signed_id_token() {
    let (server, client, _clock, store) = setup().await;
    let options = LoginOptions::new(server.base.clone(), redirect_uri(), app()).openid();
    let start = client.start_login(&options).await.unwrap();
    let q = query(start.url.query_pairs());
    let scope: Vec<&str> = q["scope"].split(' ').collect();
    assert_eq!(scope[0], "openid");
    assert!(scope.contains(&"urn:matrix:client:api:*"));
    let nonce = q.get("nonce").expect("a nonce is sent").clone();
    assert!(nonce.len() >= 22, "{nonce}");

    let callback = server.approve(start.url.as_str());
    let session = client.finish_login(&callback).await.unwrap();
    let claims = session.id_token_claims().expect("validated claims");
    assert_eq!(claims.sub, SUB);
    assert_eq!(claims.iss, server.issuer().as_str());
    assert_eq!(claims.aud, vec![start.client_id.clone()]);
    assert_eq!(claims.nonce.as_ref().unwrap().expose(), nonce);
    assert_eq!(claims.profile.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(claims.iat, T0);
    // A Matrix session keeps its Matrix user id, from whoami.
    assert_eq!(session.user_id().as_deref(), Some("@alice:localhost"));
    assert_eq!(server.count("whoami"), 1);
    assert_eq!(server.count("jwks"), 1);
    // The claims are stored with the session.
    let stored = store.load(session.key()).await.unwrap().unwrap();
    assert_eq!(stored.session.id_token_claims.as_ref(), Some(&claims));
    assert!(stored.session.tokens.id_token.is_some());

    // A second login reuses the cached keys.
    openid_login(&client, &server).await.unwrap();
    assert_eq!(server.count("jwks"), 1);
}

#[tokio::test]
async fn a_matrix_login_without_openid_has_no_claims_and_fetches_no_keys() {
    let (server, client, _clock, _store) = setup().await;
    let session = support::login(&client, &server).await;
    assert_eq!(session.id_token_claims(), None);
    assert!(session.session().tokens.id_token.is_none());
    assert_eq!(server.count("jwks"), 0);
    assert!(matches!(
        session.userinfo().await.unwrap_err(),
        Error::NoIdToken
    ));
}

#[tokio::test]
async fn a_plain_relying_party_logs_in_at_the_issuer_with_rsa_signed_tokens() {
    let server = FakeServer::start().await;
    let clock = ManualClock::new(T0);
    server.enable_oidc(&clock, TestKey::rs256(11, "rsa-1"));
    let client = builder(&clock).build();
    let options = LoginOptions::for_issuer(server.issuer(), redirect_uri(), app())
        .openid()
        .extra_scope("profile")
        .extra_scope("email");
    let start = client.start_login(&options).await.unwrap();
    let q = query(start.url.query_pairs());
    assert_eq!(q["scope"], "openid profile email", "no Matrix scope");
    assert!(q.contains_key("nonce"));
    assert_eq!(start.device_id, None);
    let callback = server.approve(start.url.as_str());
    let session = client.finish_login(&callback).await.unwrap();

    // Discovery at the issuer, no Matrix endpoint, no whoami.
    assert!(server.count("openid_configuration") >= 1);
    assert_eq!(server.count("auth_metadata"), 0);
    assert_eq!(server.count("whoami"), 0);
    let s = session.session();
    assert_eq!(s.homeserver, None);
    assert_eq!(s.device_id, None);
    assert_eq!(s.user_id.as_deref(), Some(SUB), "the sub is the user id");
    assert_eq!(session.user_id().as_deref(), Some(SUB));
    assert_eq!(session.id_token_claims().unwrap().sub, SUB);
    assert!(session.key().as_str().contains(SUB));

    // The issuer session refreshes through the issuer's metadata, with an RS256 ID token.
    let refreshed = session.refresh().await.unwrap();
    assert_eq!(refreshed.generation(), 1);
    assert_eq!(server.count("auth_metadata"), 0);
    let info = session.userinfo().await.unwrap();
    assert_eq!(info.sub, SUB);
    assert_eq!(info.profile.email.as_deref(), Some("alice@example.org"));
    let url = session.end_session_url(None).await.unwrap();
    assert_eq!(url.expose().path(), "/oauth2/logout");
}

#[tokio::test]
async fn a_refresh_validates_the_new_id_token_and_keeps_the_last_one_otherwise() {
    let (server, client, clock, store) = setup().await;
    let session = openid_login(&client, &server).await.unwrap();
    let login_token = session.session().tokens.id_token.unwrap();
    let login_nonce = session.id_token_claims().unwrap().nonce.unwrap();

    // No ID token in the refresh response: the login's stays (it is the logout hint).
    server.provider(|p| p.on_refresh = RefreshIdToken::Omit);
    clock.advance(Duration::from_secs(100));
    session.refresh().await.unwrap();
    assert_eq!(
        session.session().tokens.id_token.as_ref(),
        Some(&login_token)
    );
    assert_eq!(session.id_token_claims().unwrap().iat, T0);

    // A new one for the same subject replaces it once validated.
    server.provider(|p| p.on_refresh = RefreshIdToken::Issue);
    clock.advance(Duration::from_secs(100));
    session.refresh().await.unwrap();
    let claims = session.id_token_claims().unwrap();
    assert_eq!(claims.sub, SUB);
    assert_eq!(claims.iat, T0 + Duration::from_secs(200));
    assert_ne!(session.session().tokens.id_token.unwrap(), login_token);
    // The token had no nonce; the original authentication's is kept for the next comparison.
    assert_eq!(claims.nonce.as_ref(), Some(&login_nonce));
    assert_eq!(claims.auth_time, Some(T0));

    // Carrying the login's nonce is allowed (§12.2), also after a token without one.
    server.provider(|p| p.on_refresh = RefreshIdToken::WithOriginalNonce);
    session.refresh().await.unwrap();
    assert_eq!(session.id_token_claims().unwrap().nonce, Some(login_nonce));
    let stored = store.load(session.key()).await.unwrap().unwrap();
    assert_eq!(stored.session.id_token_claims, session.id_token_claims());
    assert_eq!(server.count("token:refresh_token"), 3);
    assert_eq!(server.count("jwks"), 1);
}

/// Refreshes with an ID token that breaks §12.2 and checks that the session ends for good.
async fn refused_refresh(mode: RefreshIdToken) -> IdTokenError {
    let (server, client, _clock, store) = setup().await;
    let session = openid_login(&client, &server).await.unwrap();
    let mut events = client.subscribe();
    server.provider(|p| p.on_refresh = mode);
    let err = session.refresh().await.unwrap_err();
    let Error::IdToken(inner) = err else {
        panic!("{err:?}")
    };
    assert!(session.is_logged_out());
    assert!(store.load(session.key()).await.unwrap().is_none());
    assert_eq!(
        events.next().await,
        Some(SessionEvent::LoggedOut {
            key: session.key().clone(),
            reason: LogoutReason::IdTokenRejected
        })
    );
    // The tokens issued with the refused ID token were revoked.
    let revoked: Vec<_> = server.revocations();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert!(!server.refresh_token_valid(&revoked[0].0));
    assert!(session.access_token().await.unwrap_err().is_logged_out());
    assert!(session.refresh().await.unwrap_err().is_logged_out());
    assert_eq!(server.count("token:refresh_token"), 1);
    inner
}

#[tokio::test]
async fn a_refresh_for_another_subject_ends_the_session() {
    let e = refused_refresh(RefreshIdToken::OtherSubject("mallory".into())).await;
    assert_eq!(e, IdTokenError::SubjectChanged);
}

#[tokio::test]
async fn a_refresh_with_another_nonce_ends_the_session() {
    let e = refused_refresh(RefreshIdToken::WithNonce("other-nonce".into())).await;
    assert_eq!(e, IdTokenError::NonceChanged);
}

#[tokio::test]
async fn a_restored_session_holds_refreshes_to_its_stored_claims() {
    let (server, client, clock, store) = setup().await;
    let session = openid_login(&client, &server).await.unwrap();
    let key = session.key().clone();
    drop(session);
    drop(client);
    // Another process, the same store.
    let other = builder(&clock).store(store.clone()).build();
    let restored = other.restore(&key).await.unwrap().unwrap();
    assert_eq!(restored.id_token_claims().unwrap().sub, SUB);
    server.provider(|p| p.on_refresh = RefreshIdToken::OtherSubject("mallory".into()));
    let err = restored.refresh().await.unwrap_err();
    assert!(
        matches!(err, Error::IdToken(IdTokenError::SubjectChanged)),
        "{err:?}"
    );
}

#[tokio::test]
async fn key_rotation_costs_one_key_set_fetch() {
    let (server, client, clock, _store) = setup().await;
    let session = openid_login(&client, &server).await.unwrap();
    assert_eq!(server.count("jwks"), 1);

    // The provider rotates: tokens now name a key the cached set lacks.
    clock.advance(Duration::from_secs(120));
    server.rotate_key(TestKey::es256(2, "k2"));
    session.refresh().await.unwrap();
    assert_eq!(server.count("jwks"), 2, "one refetch for the new kid");
    clock.advance(Duration::from_secs(120));
    session.refresh().await.unwrap();
    assert_eq!(server.count("jwks"), 2, "the new key is cached");

    // Two logins finishing at once with a newer key: one refetch, shared.
    clock.advance(Duration::from_secs(120));
    server.rotate_key(TestKey::rs256(12, "k3"));
    let mut callbacks = Vec::new();
    for _ in 0..2 {
        let options = LoginOptions::new(server.base.clone(), redirect_uri(), app()).openid();
        let start = client.start_login(&options).await.unwrap();
        callbacks.push(server.approve(start.url.as_str()));
    }
    let (a, b) = futures_util::join!(
        client.finish_login(&callbacks[0]),
        client.finish_login(&callbacks[1])
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(server.count("jwks"), 3);
}

#[tokio::test]
async fn a_token_signed_by_an_unknown_key_is_refused_with_its_own_error() {
    let (server, client, clock, store) = setup().await;
    server.provider(|p| p.signer = TestKey::es256(66, "intruder"));
    let err = openid_login(&client, &server).await.unwrap_err();
    match &err {
        Error::IdToken(
            e @ IdTokenError::Signature(SignatureError::NoMatchingKey { kid: Some(kid), .. }),
        ) => {
            assert_eq!(kid, "intruder");
            assert!(e.is_unknown_key());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("intruder"), "{err}");
    // The keys were fetched moments ago: no refetch for a made-up kid.
    assert_eq!(server.count("jwks"), 1);
    assert!(store.list().await.unwrap().is_empty(), "no session stored");
    // The tokens issued with it were revoked.
    let revoked = server.revocations();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].1.as_deref(), Some("refresh_token"));
    assert!(!server.refresh_token_valid(&revoked[0].0));

    // Later, one refetch is allowed; the key is still unknown.
    clock.advance(Duration::from_secs(120));
    let err = openid_login(&client, &server).await.unwrap_err();
    assert!(
        matches!(&err, Error::IdToken(e) if e.is_unknown_key()),
        "{err:?}"
    );
    assert_eq!(server.count("jwks"), 2);

    // A key with a known kid but other material is a bad signature, not an unknown key.
    server.provider(|p| p.signer = TestKey::es256(67, "k1"));
    let err = openid_login(&client, &server).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::IdToken(IdTokenError::Signature(SignatureError::BadSignature {
                tried: 1
            }))
        ),
        "{err:?}"
    );
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_login_without_the_requested_id_token_fails() {
    let (server, client, _clock, store) = setup().await;
    server.provider(|p| p.omit_login_id_token = true);
    let err = openid_login(&client, &server).await.unwrap_err();
    assert!(
        matches!(err, Error::IdToken(IdTokenError::Missing)),
        "{err:?}"
    );
    assert!(store.list().await.unwrap().is_empty());
    assert_eq!(server.revocations().len(), 1);
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let (server, client, _clock, _store) = setup().await;
    // Issued an hour and a half ago with an hour's lifetime, as by a provider with a wrong clock.
    let late = ManualClock::new(T0.saturating_sub(Duration::from_secs(5400)));
    server.provider(|p| p.clock = late);
    let err = openid_login(&client, &server).await.unwrap_err();
    assert!(
        matches!(err, Error::IdToken(IdTokenError::Expired { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn userinfo_is_returned_only_for_the_id_tokens_subject() {
    let (server, client, _clock, _store) = setup().await;
    let session = openid_login(&client, &server).await.unwrap();
    let info = session.userinfo().await.unwrap();
    assert_eq!(info.sub, SUB);
    assert_eq!(info.profile.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(info.profile.email_verified, Some(true));

    // A refused access token: one refresh, then the call goes through.
    server.expire_access_tokens();
    assert_eq!(session.userinfo().await.unwrap().sub, SUB);
    assert_eq!(server.count("token:refresh_token"), 1);
    assert_eq!(server.count("userinfo"), 3);

    server.provider(|p| p.userinfo_sub = Some("someone-else".into()));
    let err = session.userinfo().await.unwrap_err();
    assert!(
        matches!(err, Error::Userinfo(UserinfoError::SubjectMismatch)),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_end_session_url_names_the_session() {
    let (server, client, _clock, _store) = setup().await;
    let session = openid_login(&client, &server).await.unwrap();
    let bye = Url::parse("http://127.0.0.1:8765/bye").unwrap();
    let url = session.end_session_url(Some(bye.clone())).await.unwrap();
    let u = url.expose();
    let endpoint = server.base.join("oauth2/logout").unwrap();
    assert_eq!(u.as_str().split('?').next(), Some(endpoint.as_str()));
    let q = query(u.query_pairs());
    let id_token = session.session().tokens.id_token.unwrap();
    assert_eq!(q["id_token_hint"], id_token.expose());
    assert_eq!(q["client_id"], session.session().client_id);
    assert_eq!(q["post_logout_redirect_uri"], bye.as_str());
    assert_eq!(q.len(), 3);
    assert!(!format!("{url:?}").contains(id_token.expose()));

    // It is still available after the local logout (the handle keeps the session).
    session.logout().await.unwrap();
    let again = session.end_session_url(None).await.unwrap();
    assert_eq!(query(again.expose().query_pairs()).len(), 2);

    // A provider without the endpoint says so.
    let (server, client, _clock, _store) = setup().await;
    server.provider(|p| p.end_session = false);
    let session = openid_login(&client, &server).await.unwrap();
    let err = session.end_session_url(None).await.unwrap_err();
    assert!(
        matches!(err, Error::EndSession(LogoutError::NotSupported)),
        "{err:?}"
    );
}

#[tokio::test]
async fn key_sets_can_be_persisted_between_clients() {
    let (server, client, clock, _store) = setup().await;
    openid_login(&client, &server).await.unwrap();
    let saved = serde_json::to_string(&client.jwks_caches()).unwrap();
    assert_eq!(server.count("jwks"), 1);

    let caches: Vec<matrix_oidc::JwksCache> = serde_json::from_str(&saved).unwrap();
    assert_eq!(caches.len(), 1);
    let mut next = builder(&clock);
    for cache in caches {
        next = next.jwks_cache(cache);
    }
    let next = next.build();
    openid_login(&next, &server).await.unwrap();
    assert_eq!(server.count("jwks"), 1, "the saved keys were used");

    // Without them, a client fetches the keys itself.
    let fresh = builder(&clock).build();
    openid_login(&fresh, &server).await.unwrap();
    assert_eq!(server.count("jwks"), 2);
}

#[tokio::test]
async fn a_login_at_an_issuer_needs_a_scope_and_says_so_before_any_request() {
    let (server, client, _clock, _store) = setup().await;
    let options = LoginOptions::for_issuer(server.issuer(), redirect_uri(), app());
    let err = client.start_login(&options).await.unwrap_err();
    assert!(
        matches!(err, Error::Scope(matrix_oidc::core::ScopeError::Empty)),
        "{err:?}"
    );
    assert_eq!(server.count("openid_configuration"), 0);
    assert_eq!(server.count("register"), 0);
}

#[tokio::test]
async fn a_plain_relying_party_without_registration_uses_its_client_id() {
    let server = FakeServer::start().await;
    let clock = ManualClock::new(T0);
    server.enable_oidc(&clock, TestKey::es256(3, "k1"));
    let client = builder(&clock).build();
    // Registered beforehand: the registration endpoint is used once, here, by the "admin".
    let registered = client.register_client(&server.base, &app()).await.unwrap();
    let before = server.count("register");
    let options = LoginOptions::for_issuer(
        server.issuer(),
        redirect_uri(),
        matrix_oidc::ClientConfig::registered(registered.client_id.clone()),
    )
    .openid();
    let start = client.start_login(&options).await.unwrap();
    assert_eq!(query(start.url.query_pairs())["scope"], "openid");
    let session = client
        .finish_login(&server.approve(start.url.as_str()))
        .await
        .unwrap();
    assert_eq!(server.count("register"), before);
    assert_eq!(
        session.id_token_claims().unwrap().aud,
        [registered.client_id]
    );
}
