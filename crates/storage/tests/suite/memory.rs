//! The in-memory store.

use crate::common::{pending, session};
use crate::conformance::conformance_suite;
use matrix_oidc_core::Timestamp;
use matrix_oidc_storage::{
    Generation, MemoryStore, PendingStore, SessionKey, SessionLock, SessionStore, StoreError,
    StoredSession,
};

conformance_suite!(crate::common::MemoryBackend);

/// No stored type, store or error prints a token, verifier or nonce in `Debug` or `Display`.
#[tokio::test]
async fn no_secret_in_debug_output() {
    let store = MemoryStore::new();
    let key = SessionKey::new("alice");
    let p = pending("state-1", 1);
    store.put(&p).await.unwrap();
    store.save(&key, &session("rt-SECRET"), None).await.unwrap();
    let stored = store.load(&key).await.unwrap().unwrap();
    let guard = store.acquire(&key).await.unwrap();
    let conflict = store
        .save(&key, &session("rt-SECRET-2"), None)
        .await
        .unwrap_err();
    let printed = format!(
        "{store:?} {store:#?} {p:?} {p:#?} {stored:?} {stored:#?} {guard:?} {conflict:?} {conflict}"
    );
    // Every token, verifier and nonce in the fixtures contains "SECRET".
    assert!(!printed.contains("SECRET"), "{printed}");
    // The output is still useful: it names what is there.
    assert!(printed.contains("alice"), "{printed}");
    let listed: Vec<StoredSession> = store.list().await.unwrap();
    assert!(!format!("{listed:?}").contains("SECRET"));
}

#[tokio::test]
async fn clones_share_contents_and_new_stores_do_not() {
    let a = MemoryStore::new();
    let b = a.clone();
    let c = MemoryStore::new();
    a.put(&pending("s", 0)).await.unwrap();
    let key = SessionKey::new("k");
    a.save(&key, &session("rt"), None).await.unwrap();
    assert!(c.load(&key).await.unwrap().is_none());
    assert_eq!(c.take("s", Timestamp::UNIX_EPOCH).await.unwrap(), None);
    assert_eq!(
        b.load(&key).await.unwrap().unwrap().generation,
        Generation::FIRST
    );
    assert!(b.take("s", Timestamp::UNIX_EPOCH).await.unwrap().is_some());
}

#[tokio::test]
async fn trait_objects_work() {
    let store: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(MemoryStore::new());
    let key = SessionKey::new("k");
    let g = store.save(&key, &session("a"), None).await.unwrap();
    let err = store.save(&key, &session("b"), None).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { current: Some(c), .. } if c == g));
}
