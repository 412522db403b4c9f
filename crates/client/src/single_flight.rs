//! One operation per key in flight, awaited by every caller that asks for it meanwhile.
//!
//! The operation is a [`Shared`] future kept in a map while it runs. Whoever of its callers is
//! polled drives it; a caller that is cancelled simply stops waiting, and the operation stays in the
//! map, so the next caller for the key resumes it instead of starting a second one. Side effects
//! (filling a cache, persisting tokens) therefore belong *inside* the operation: they happen once,
//! whichever caller finishes it.

use crate::runtime::BoxFuture;
use futures_util::FutureExt;
use futures_util::future::Shared;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

/// A shared, restartable-by-anyone future.
pub(crate) type SharedFuture<V> = Shared<BoxFuture<'static, V>>;

/// Keyed single-flight: see the module docs.
pub(crate) struct SingleFlight<K, V: Clone> {
    inflight: Mutex<HashMap<K, SharedFuture<V>>>,
}

impl<K, V: Clone> std::fmt::Debug for SingleFlight<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inflight.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("SingleFlight")
            .field("in_flight", &n)
            .finish()
    }
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) trait MaybeSendFuture<V>: Future<Output = V> + Send + 'static {}
#[cfg(not(target_arch = "wasm32"))]
impl<V, F: Future<Output = V> + Send + 'static> MaybeSendFuture<V> for F {}
#[cfg(target_arch = "wasm32")]
pub(crate) trait MaybeSendFuture<V>: Future<Output = V> + 'static {}
#[cfg(target_arch = "wasm32")]
impl<V, F: Future<Output = V> + 'static> MaybeSendFuture<V> for F {}

impl<K: Hash + Eq + Clone, V: Clone + 'static> SingleFlight<K, V> {
    /// Joins the operation for `key`, starting it with `start` if none is in flight.
    ///
    /// Returns the shared future; await it with [`SingleFlight::finish`] so that the entry is
    /// removed once done.
    pub(crate) fn join<F: MaybeSendFuture<V>>(
        &self,
        key: &K,
        start: impl FnOnce() -> F,
    ) -> (SharedFuture<V>, bool) {
        let mut map = lock(&self.inflight);
        if let Some(existing) = map.get(key) {
            return (existing.clone(), false);
        }
        let fut: BoxFuture<'static, V> = Box::pin(start());
        let shared = fut.shared();
        map.insert(key.clone(), shared.clone());
        (shared, true)
    }

    /// The operation in flight for `key`, if any, to wait for without starting one (await it with
    /// [`SingleFlight::finish`] too, so that a finished entry is removed).
    #[cfg_attr(not(feature = "oidc"), allow(dead_code))]
    pub(crate) fn in_flight(&self, key: &K) -> Option<SharedFuture<V>> {
        lock(&self.inflight).get(key).cloned()
    }

    /// Awaits `fut` (from [`join`](Self::join)) and removes it from the map if it is still the
    /// entry for `key`.
    pub(crate) async fn finish(&self, key: &K, fut: SharedFuture<V>) -> V {
        let value = fut.clone().await;
        let mut map = lock(&self.inflight);
        if map.get(key).is_some_and(|f| f.ptr_eq(&fut)) {
            map.remove(key);
        }
        value
    }

    /// Joins or starts the operation for `key` and awaits it.
    #[cfg(test)]
    pub(crate) async fn run<F: MaybeSendFuture<V>>(&self, key: K, start: impl FnOnce() -> F) -> V {
        let (fut, _) = self.join(&key, start);
        self.finish(&key, fut).await
    }

    /// How many operations are in flight (for tests and `Debug`).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.inflight).len()
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical section
/// here is a few map operations), so poisoning is ignored rather than propagated.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_run_and_later_callers_start_anew() {
        let sf: Arc<SingleFlight<&'static str, u32>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = futures_channel::oneshot::channel::<u32>();
        let rx = rx.shared();
        let mut callers = Vec::new();
        for _ in 0..50 {
            let runs = runs.clone();
            let rx = rx.clone();
            let sf = sf.clone();
            callers.push(async move {
                sf.run("k", move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    rx.await.unwrap_or(0)
                })
                .await
            });
        }
        let all = futures_util::future::join_all(callers);
        let driver = async {
            tx.send(7).unwrap();
        };
        let (values, ()) = futures_util::join!(all, driver);
        assert!(values.iter().all(|&v| v == 7));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(sf.len(), 0);
        let v = sf.run("k", || async { 9 }).await;
        assert_eq!(v, 9);
    }

    #[tokio::test]
    async fn a_cancelled_caller_leaves_the_operation_for_the_next() {
        let sf: SingleFlight<u8, u32> = SingleFlight::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = futures_channel::oneshot::channel::<u32>();
        let r = runs.clone();
        let (fut, started) = sf.join(&1, move || async move {
            r.fetch_add(1, Ordering::SeqCst);
            rx.await.unwrap_or(0)
        });
        assert!(started);
        // Poll once, then drop: the caller is cancelled mid-operation.
        assert!(futures_util::poll!(Box::pin(fut.clone())).is_pending());
        drop(fut);
        assert_eq!(sf.len(), 1);
        tx.send(5).unwrap();
        let r = runs.clone();
        let v = sf
            .run(1, move || async move {
                r.fetch_add(100, Ordering::SeqCst);
                0
            })
            .await;
        assert_eq!(v, 5);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(sf.len(), 0);
    }
}
