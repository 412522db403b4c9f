//! The in-memory store: for tests, short-lived tools and browsers.

use crate::traits::{LockGuard, PendingStore, SessionLock, SessionStore, StoredSession};
use crate::{DEFAULT_PENDING_LIFETIME, Generation, SessionKey, StoreError, is_expired};
use matrix_oidc_core::{PendingAuthorization, Session, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Pending authorizations, sessions and locks in this process's memory.
///
/// Clones share the same contents (it is a handle), so one store can be given to many tasks.
/// Nothing survives the process and nothing is shared with another process. Operations complete
/// without waiting, except [`SessionLock::acquire`], which waits asynchronously without tying a
/// runtime (it uses `async-lock`).
///
/// ```
/// # tokio_test_block_on(async {
/// use matrix_oidc_storage::{MemoryStore, SessionLock, SessionKey};
/// let store = MemoryStore::new();
/// let key = SessionKey::new("default");
/// let guard = store.acquire(&key).await?;
/// assert!(store.try_acquire(&key).await?.is_none());
/// drop(guard);
/// assert!(store.try_acquire(&key).await?.is_some());
/// # Ok::<(), matrix_oidc_storage::StoreError>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
    lifetime: Duration,
}

#[derive(Default)]
struct Inner {
    pending: Mutex<HashMap<String, PendingAuthorization>>,
    sessions: Mutex<BTreeMap<SessionKey, Entry>>,
    locks: LocalLocks,
}

/// A session slot. A deleted session leaves its generation behind (`session: None`), so that
/// generations of a key never repeat.
struct Entry {
    generation: Generation,
    session: Option<Session>,
}

impl MemoryStore {
    /// An empty store with the default pending lifetime.
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            lifetime: DEFAULT_PENDING_LIFETIME,
        }
    }

    /// This handle with pending authorizations valid for `lifetime` instead.
    pub fn with_pending_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Counts only: the contents hold tokens and verifiers.
        f.debug_struct("MemoryStore")
            .field("pending", &lock(&self.inner.pending).len())
            .field(
                "sessions",
                &lock(&self.inner.sessions)
                    .values()
                    .filter(|e| e.session.is_some())
                    .count(),
            )
            .field("pending_lifetime", &self.lifetime)
            .finish()
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical section
/// here makes one map change), so poisoning is no reason to fail.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl PendingStore for MemoryStore {
    async fn put(&self, pending: &PendingAuthorization) -> Result<(), StoreError> {
        let mut map = lock(&self.inner.pending);
        if map.contains_key(&pending.state) {
            return Err(StoreError::DuplicateState);
        }
        map.insert(pending.state.clone(), pending.clone());
        Ok(())
    }

    async fn take(
        &self,
        state: &str,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let taken = lock(&self.inner.pending).remove(state);
        Ok(taken.filter(|p| !is_expired(p.created_at, self.lifetime, now)))
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<usize, StoreError> {
        let mut map = lock(&self.inner.pending);
        let before = map.len();
        map.retain(|_, p| !is_expired(p.created_at, self.lifetime, now));
        Ok(before - map.len())
    }

    fn pending_lifetime(&self) -> Duration {
        self.lifetime
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<StoredSession>, StoreError> {
        let map = lock(&self.inner.sessions);
        Ok(map.get(key).and_then(|e| {
            e.session
                .as_ref()
                .map(|s| StoredSession::new(key.clone(), s.clone(), e.generation))
        }))
    }

    async fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<Generation>,
    ) -> Result<Generation, StoreError> {
        let mut map = lock(&self.inner.sessions);
        let entry = map.get(key);
        let current = entry.and_then(|e| e.session.as_ref().map(|_| e.generation));
        if current != expected {
            return Err(StoreError::Conflict {
                key: key.clone(),
                expected,
                current,
            });
        }
        let generation = entry.map_or(Generation::FIRST, |e| e.generation.next());
        map.insert(
            key.clone(),
            Entry {
                generation,
                session: Some(session.clone()),
            },
        );
        Ok(generation)
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let mut map = lock(&self.inner.sessions);
        Ok(map.get_mut(key).and_then(|e| e.session.take()).is_some())
    }

    async fn list(&self) -> Result<Vec<StoredSession>, StoreError> {
        let map = lock(&self.inner.sessions);
        Ok(map
            .iter()
            .filter_map(|(k, e)| {
                e.session
                    .as_ref()
                    .map(|s| StoredSession::new(k.clone(), s.clone(), e.generation))
            })
            .collect())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl SessionLock for MemoryStore {
    async fn acquire(&self, key: &SessionKey) -> Result<LockGuard, StoreError> {
        let held = self.inner.locks.acquire(key).await;
        Ok(LockGuard::new(key.clone(), held))
    }

    async fn try_acquire(&self, key: &SessionKey) -> Result<Option<LockGuard>, StoreError> {
        Ok(self
            .inner
            .locks
            .try_acquire(key)
            .map(|held| LockGuard::new(key.clone(), held)))
    }
}

/// One async mutex per key, for locks within one process.
///
/// A map entry lives as long as someone holds or waits for it; the last guard to go removes it,
/// so the map does not grow with every key ever locked.
#[derive(Default)]
pub(crate) struct LocalLocks {
    map: Arc<Mutex<HashMap<SessionKey, Arc<async_lock::Mutex<()>>>>>,
}

/// Holds one key of a [`LocalLocks`].
pub(crate) struct LocalGuard {
    guard: Option<async_lock::MutexGuardArc<()>>,
    key: SessionKey,
    map: Arc<Mutex<HashMap<SessionKey, Arc<async_lock::Mutex<()>>>>>,
}

impl LocalLocks {
    fn slot(&self, key: &SessionKey) -> Arc<async_lock::Mutex<()>> {
        lock(&self.map).entry(key.clone()).or_default().clone()
    }

    pub(crate) async fn acquire(&self, key: &SessionKey) -> LocalGuard {
        let slot = self.slot(key);
        let guard = slot.lock_arc().await;
        LocalGuard {
            guard: Some(guard),
            key: key.clone(),
            map: self.map.clone(),
        }
    }

    pub(crate) fn try_acquire(&self, key: &SessionKey) -> Option<LocalGuard> {
        let slot = self.slot(key);
        let guard = slot.try_lock_arc()?;
        Some(LocalGuard {
            guard: Some(guard),
            key: key.clone(),
            map: self.map.clone(),
        })
    }
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = lock(&self.map);
        // Only the map's own reference left: nobody holds or waits for this key. Waiters
        // clone the Arc under this same map lock, so none can appear while we decide.
        if map
            .get(&self.key)
            .is_some_and(|slot| Arc::strong_count(slot) == 1)
        {
            map.remove(&self.key);
        }
    }
}
