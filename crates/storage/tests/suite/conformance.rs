//! The behaviour every store promises, written once over the traits.
//!
//! `conformance_suite!(backend_expr)` instantiates every check as a test in the calling module.

use crate::common::{Backend, pending, refresh_of, session};
use matrix_oidc_core::Timestamp;
use matrix_oidc_storage::{
    DEFAULT_PENDING_LIFETIME, Generation, PendingStore, SessionKey, SessionLock, SessionStore,
    StoreError,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const T0: u64 = 1_700_000_000_000;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

pub(crate) async fn pending_take_once<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    store.put(&pending("state-1", T0)).await.unwrap();
    let taken = store.take("state-1", at(T0 + 1_000)).await.unwrap();
    assert_eq!(taken, Some(pending("state-1", T0)));
    assert_eq!(store.take("state-1", at(T0 + 1_000)).await.unwrap(), None);
    // Not even through another handle.
    let other = b.reopen(&store);
    assert_eq!(other.take("state-1", at(T0 + 1_000)).await.unwrap(), None);
}

pub(crate) async fn pending_unknown_state_finds_nothing<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    store.put(&pending("state-1", T0)).await.unwrap();
    assert_eq!(store.take("state-2", at(T0)).await.unwrap(), None);
    assert_eq!(store.take("", at(T0)).await.unwrap(), None);
    assert_eq!(store.take("../state-1", at(T0)).await.unwrap(), None);
    // The real one is untouched by those attempts.
    assert!(store.take("state-1", at(T0)).await.unwrap().is_some());
}

pub(crate) async fn pending_duplicate_state_is_refused<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    store.put(&pending("dup", T0)).await.unwrap();
    let second = pending("dup", T0 + 5);
    let err = store.put(&second).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateState), "{err:?}");
    // The first entry is still the one stored.
    assert_eq!(
        store.take("dup", at(T0 + 10)).await.unwrap(),
        Some(pending("dup", T0))
    );
}

pub(crate) async fn pending_expires_after_its_lifetime<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    assert_eq!(store.pending_lifetime(), MINUTE);
    store.put(&pending("fresh", T0)).await.unwrap();
    store.put(&pending("stale", T0)).await.unwrap();
    let just_before = at(T0 + 59_999);
    let expiry = at(T0 + 60_000);
    assert!(store.take("fresh", just_before).await.unwrap().is_some());
    assert_eq!(store.take("stale", expiry).await.unwrap(), None);
    // Taking an expired entry removed it: it is gone even for an earlier clock.
    assert_eq!(store.take("stale", at(T0)).await.unwrap(), None);
}

pub(crate) async fn pending_default_lifetime_is_fifteen_minutes<B: Backend>(b: B) {
    let store = b.fresh(DEFAULT_PENDING_LIFETIME);
    assert_eq!(DEFAULT_PENDING_LIFETIME, Duration::from_secs(900));
    store.put(&pending("a", T0)).await.unwrap();
    store.put(&pending("b", T0)).await.unwrap();
    assert!(store.take("a", at(T0 + 899_999)).await.unwrap().is_some());
    assert_eq!(store.take("b", at(T0 + 900_000)).await.unwrap(), None);
}

pub(crate) async fn pending_purge_removes_only_expired<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    for (state, created) in [
        ("old-1", T0),
        ("old-2", T0 + 10_000),
        ("edge", T0 + 20_000),
        ("new", T0 + 50_000),
    ] {
        store.put(&pending(state, created)).await.unwrap();
    }
    // Now = T0 + 80 s: old-1 and old-2 expired (created ≤ 20 s), edge expires exactly now.
    let now = at(T0 + 80_000);
    assert_eq!(store.purge_expired(now).await.unwrap(), 3);
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);
    // Purged entries are gone even for a clock that says they are fresh.
    assert_eq!(store.take("old-2", at(T0 + 10_001)).await.unwrap(), None);
    assert_eq!(store.take("edge", at(T0 + 20_001)).await.unwrap(), None);
    assert!(store.take("new", now).await.unwrap().is_some());
    // Purging before anything could expire (now < lifetime since the epoch) removes nothing.
    store.put(&pending("epoch", 0)).await.unwrap();
    assert_eq!(store.purge_expired(at(59_999)).await.unwrap(), 0);
    assert_eq!(store.purge_expired(at(60_000)).await.unwrap(), 1);
}

pub(crate) async fn pending_concurrent_takes_have_one_winner<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    let handles = [store.clone(), b.reopen(&store)];
    for round in 0..5 {
        let state = format!("race-{round}");
        store.put(&pending(&state, T0)).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let h = handles[i % 2].clone();
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                h.take(&state, at(T0)).await.unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            if let Some(p) = t.await.unwrap() {
                assert_eq!(p, pending(&state, T0));
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

pub(crate) async fn sessions_create_load_update<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    let key = SessionKey::new("alice");
    assert_eq!(store.load(&key).await.unwrap(), None);
    let g1 = store.save(&key, &session("rt-1"), None).await.unwrap();
    assert_eq!(g1, Generation::FIRST);
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(loaded.key, key);
    assert_eq!(loaded.generation, g1);
    assert_eq!(loaded.session, session("rt-1"));
    let g2 = store.save(&key, &session("rt-2"), Some(g1)).await.unwrap();
    assert!(g2 > g1);
    let loaded = b.reopen(&store).load(&key).await.unwrap().unwrap();
    assert_eq!(
        (loaded.generation, refresh_of(&loaded.session)),
        (g2, "rt-2".into())
    );
}

pub(crate) async fn sessions_stale_writer_conflicts<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    let other = b.reopen(&store);
    let key = SessionKey::new("alice");
    let g1 = store.save(&key, &session("rt-1"), None).await.unwrap();

    // Both read generation 1; `other` rotates the refresh token first.
    let g2 = other.save(&key, &session("rt-2"), Some(g1)).await.unwrap();
    let err = store
        .save(&key, &session("rt-1-stale"), Some(g1))
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict {
            key: k,
            expected,
            current,
        } => {
            assert_eq!(k, key);
            assert_eq!(expected, Some(g1));
            assert_eq!(current, Some(g2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let now = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        (now.generation, refresh_of(&now.session)),
        (g2, "rt-2".into())
    );

    // Creating what exists conflicts, and so does updating what does not.
    let err = store.save(&key, &session("x"), None).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected: None, current: Some(g), .. } if g == g2),
        "{err:?}"
    );
    let missing = SessionKey::new("nobody");
    let err = store
        .save(&missing, &session("x"), Some(g1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { current: None, .. }),
        "{err:?}"
    );
    assert_eq!(store.load(&missing).await.unwrap(), None);
    // A guessed future generation conflicts too.
    let err = store
        .save(&key, &session("x"), Some(g2.next()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

pub(crate) async fn sessions_delete_and_recreate<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    let key = SessionKey::new("alice");
    assert!(!store.delete(&key).await.unwrap());
    let g1 = store.save(&key, &session("rt-1"), None).await.unwrap();
    let g2 = store.save(&key, &session("rt-2"), Some(g1)).await.unwrap();
    assert!(store.delete(&key).await.unwrap());
    assert!(!store.delete(&key).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert!(store.list().await.unwrap().is_empty());

    // A writer still holding g2 cannot resurrect the signed-out session.
    let err = store
        .save(&key, &session("rt-2b"), Some(g2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { current: None, .. }),
        "{err:?}"
    );
    // A new sign-in under the same key gets a generation never seen before, so writers from
    // before the delete still conflict.
    let g3 = store.save(&key, &session("rt-3"), None).await.unwrap();
    assert!(g3 > g2, "{g3} after {g2}");
    for stale in [g1, g2] {
        let err = store
            .save(&key, &session("stale"), Some(stale))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    }
    let now = b.reopen(&store).load(&key).await.unwrap().unwrap();
    assert_eq!(
        (now.generation, refresh_of(&now.session)),
        (g3, "rt-3".into())
    );
}

pub(crate) async fn sessions_list_in_key_order<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    assert!(store.list().await.unwrap().is_empty());
    // Keys that would be dangerous or ambiguous as file names.
    let keys = [
        "zed",
        "../../etc/passwd",
        "a/b\\c",
        "Alice",
        "alice",
        "ünï 🗝",
        "",
    ];
    for (i, k) in keys.iter().enumerate() {
        let key = SessionKey::new(*k);
        let g = store
            .save(&key, &session(&format!("rt-{i}")), None)
            .await
            .unwrap();
        if i % 2 == 0 {
            store
                .save(&key, &session(&format!("rt-{i}-b")), Some(g))
                .await
                .unwrap();
        }
    }
    assert!(store.delete(&SessionKey::new("zed")).await.unwrap());

    let listed = b.reopen(&store).list().await.unwrap();
    let mut expected: Vec<&str> = keys.iter().copied().filter(|k| *k != "zed").collect();
    expected.sort();
    let got: Vec<&str> = listed.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(got, expected);
    for stored in &listed {
        let i = keys.iter().position(|k| *k == stored.key.as_str()).unwrap();
        let (generation, refresh) = if i % 2 == 0 {
            (Generation::new(2), format!("rt-{i}-b"))
        } else {
            (Generation::FIRST, format!("rt-{i}"))
        };
        assert_eq!(stored.generation, generation, "{}", stored.key);
        assert_eq!(refresh_of(&stored.session), refresh);
        assert_eq!(
            store.load(&stored.key).await.unwrap().as_ref(),
            Some(stored)
        );
    }
}

pub(crate) async fn sessions_concurrent_writers<B: Backend>(b: B) {
    const TASKS: usize = 8;
    const WRITES_PER_TASK: usize = 8;
    let store = b.fresh(MINUTE);
    let key = SessionKey::new("shared");
    let first = store
        .save(&key, &session("rt-initial"), None)
        .await
        .unwrap();
    let handles = [store.clone(), b.reopen(&store)];

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let h = handles[t % 2].clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut conflicts = 0usize;
            while acknowledged.len() < WRITES_PER_TASK {
                let current = h.load(&key).await.unwrap().unwrap();
                let token = format!("rt-{t}-{}", acknowledged.len());
                match h
                    .save(&key, &session(&token), Some(current.generation))
                    .await
                {
                    Ok(g) => {
                        assert!(g > current.generation);
                        acknowledged.push((g, token));
                    }
                    Err(StoreError::Conflict { current: now, .. }) => {
                        assert_ne!(now, Some(current.generation));
                        conflicts += 1;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            (acknowledged, conflicts)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let (acknowledged, _conflicts) = t.await.unwrap();
        all.extend(acknowledged);
    }
    assert_eq!(all.len(), TASKS * WRITES_PER_TASK);
    let generations: HashSet<Generation> = all.iter().map(|(g, _)| *g).collect();
    assert_eq!(
        generations.len(),
        all.len(),
        "a generation was acknowledged twice"
    );
    assert!(!generations.contains(&first));
    let (last_generation, last_token) = all.iter().max_by_key(|(g, _)| *g).unwrap().clone();
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.generation, last_generation);
    assert_eq!(refresh_of(&stored.session), last_token);
}

pub(crate) async fn lock_is_exclusive_per_key<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    let other = b.reopen(&store);
    let key = SessionKey::new("alice");
    let guard = store.acquire(&key).await.unwrap();
    assert_eq!(guard.key(), &key);
    assert!(store.try_acquire(&key).await.unwrap().is_none());
    assert!(other.try_acquire(&key).await.unwrap().is_none());
    // Other keys are independent.
    let bob = other.try_acquire(&SessionKey::new("bob")).await.unwrap();
    assert!(bob.is_some());
    guard.release();
    let again = other.try_acquire(&key).await.unwrap();
    assert!(again.is_some());
    assert!(store.try_acquire(&key).await.unwrap().is_none());
    drop(again);
    assert!(store.try_acquire(&key).await.unwrap().is_some());
}

pub(crate) async fn lock_acquire_waits_for_release<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    let other = b.reopen(&store);
    let key = SessionKey::new("alice");
    let guard = store.acquire(&key).await.unwrap();
    let acquired = Arc::new(AtomicBool::new(false));
    let waiter = {
        let acquired = acquired.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let g = other.acquire(&key).await.unwrap();
            acquired.store(true, Ordering::SeqCst);
            g
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!acquired.load(Ordering::SeqCst), "acquired a held lock");
    drop(guard);
    let g = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter never got the released lock")
        .unwrap();
    assert!(acquired.load(Ordering::SeqCst));
    assert!(store.try_acquire(&key).await.unwrap().is_none());
    drop(g);
}

pub(crate) async fn lock_abandoned_acquire_leaves_it_free<B: Backend>(b: B) {
    let store = b.fresh(MINUTE);
    let other = b.reopen(&store);
    let key = SessionKey::new("alice");
    let guard = store.acquire(&key).await.unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(50), other.acquire(&key)).await;
    assert!(gave_up.is_err());
    drop(guard);
    // The abandoned waiter must not end up holding the lock. (A file lock waiter may still be
    // finishing on its thread; it lets go as soon as it gets the lock.)
    let g = tokio::time::timeout(Duration::from_secs(10), other.acquire(&key))
        .await
        .expect("lock stayed held by an abandoned waiter")
        .unwrap();
    drop(g);
}

/// Instantiates every conformance check for a backend expression.
macro_rules! conformance_suite {
    ($backend:expr) => {
        conformance_suite!(@tests $backend;
            pending_take_once,
            pending_unknown_state_finds_nothing,
            pending_duplicate_state_is_refused,
            pending_expires_after_its_lifetime,
            pending_default_lifetime_is_fifteen_minutes,
            pending_purge_removes_only_expired,
            pending_concurrent_takes_have_one_winner,
            sessions_create_load_update,
            sessions_stale_writer_conflicts,
            sessions_delete_and_recreate,
            sessions_list_in_key_order,
            sessions_concurrent_writers,
            lock_is_exclusive_per_key,
            lock_acquire_waits_for_release,
            lock_abandoned_acquire_leaves_it_free,
        );
    };
    (@tests $backend:expr; $($name:ident),* $(,)?) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::conformance::$name($backend).await;
                }
            )*
        }
    };
}
pub(crate) use conformance_suite;
