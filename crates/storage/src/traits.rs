//! The three storage traits and the values they exchange.

use crate::{Generation, SessionKey, StoreError};
use matrix_oidc_core::transport::MaybeSendSync;
use matrix_oidc_core::{PendingAuthorization, Session, Timestamp};
use std::time::Duration;

/// How long a pending authorization stays valid unless a store is configured otherwise: 15
/// minutes, enough to sign in with a password manager and a second factor.
pub const DEFAULT_PENDING_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Whether `pending` has outlived `lifetime` at `now`: it expires at `created_at + lifetime`.
///
/// ```
/// use matrix_oidc_core::Timestamp;
/// use matrix_oidc_storage::is_expired;
/// use std::time::Duration;
/// let created = Timestamp::from_unix_seconds(1_000);
/// let lifetime = Duration::from_secs(60);
/// assert!(!is_expired(created, lifetime, Timestamp::from_unix_seconds(1_059)));
/// assert!(is_expired(created, lifetime, Timestamp::from_unix_seconds(1_060)));
/// ```
pub fn is_expired(created_at: Timestamp, lifetime: Duration, now: Timestamp) -> bool {
    now >= created_at.saturating_add(lifetime)
}

/// A session as stored, with the generation to pass back to [`SessionStore::save`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredSession {
    /// The key it is stored under.
    pub key: SessionKey,
    /// The session.
    pub session: Session,
    /// Its generation: pass it as `expected` to save a change of this version.
    pub generation: Generation,
}

impl StoredSession {
    /// A stored session (for store implementations and tests).
    pub fn new(key: SessionKey, session: Session, generation: Generation) -> Self {
        Self {
            key,
            session,
            generation,
        }
    }
}

/// Authorization requests that were started and wait for their callback, keyed by `state`.
///
/// Time is an argument: stores never read the clock, so expiry is deterministic and testable.
/// An entry expires at `created_at + lifetime` ([`is_expired`]); the lifetime is a property of
/// the store ([`DEFAULT_PENDING_LIFETIME`] unless configured).
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait PendingStore: MaybeSendSync {
    /// Stores `pending` under its `state`.
    ///
    /// Fails with [`StoreError::DuplicateState`] if that state is already stored (expired or
    /// not), leaving the stored entry as it was.
    async fn put(&self, pending: &PendingAuthorization) -> Result<(), StoreError>;

    /// Removes and returns the entry for `state`, once: a second call (from this or any other
    /// handle on the same storage) finds nothing, and of concurrent calls exactly one gets it.
    ///
    /// An entry that is expired at `now` is removed too, and `None` is returned.
    async fn take(
        &self,
        state: &str,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, StoreError>;

    /// Removes every entry expired at `now` and returns how many it removed.
    async fn purge_expired(&self, now: Timestamp) -> Result<usize, StoreError>;

    /// How long entries stay valid in this store.
    fn pending_lifetime(&self) -> Duration;
}

/// Signed-in sessions, each under a [`SessionKey`], saved with compare-and-swap.
///
/// Refresh tokens rotate: once the server has issued a new one, the old one is dead. A writer
/// that loaded generation `g` saves with `expected = Some(g)` and succeeds only if the session
/// is still at `g`; otherwise it gets [`StoreError::Conflict`] and must reload. So a writer
/// holding stale tokens can never overwrite a rotated refresh token.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// use matrix_oidc_core::{Secret, Session, TokenSet};
/// use matrix_oidc_storage::{MemoryStore, SessionKey, SessionStore, StoreError};
/// let store = MemoryStore::new();
/// let tokens = |n: u32| {
///     TokenSet::new(Secret::new(format!("access-{n}")))
///         .with_refresh_token(Some(Secret::new(format!("refresh-{n}"))))
/// };
/// let session = Session::new("https://auth.example.org/".parse()?, "client-1", tokens(1));
/// let key = SessionKey::for_session(&session);
/// let first = store.save(&key, &session, None).await?; // create: must not exist yet
///
/// // Two writers read generation `first`; the first to save wins.
/// let mut rotated = session.clone();
/// rotated.tokens = tokens(2);
/// let second = store.save(&key, &rotated, Some(first)).await?;
/// let mut stale = session.clone();
/// stale.tokens = tokens(3);
/// match store.save(&key, &stale, Some(first)).await {
///     Err(StoreError::Conflict { current, .. }) => assert_eq!(current, Some(second)),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(store.load(&key).await?.ok_or("gone")?.session, rotated);
/// # Ok(()) })
/// # }
/// ```
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait SessionStore: MaybeSendSync {
    /// The session stored under `key`, if any.
    async fn load(&self, key: &SessionKey) -> Result<Option<StoredSession>, StoreError>;

    /// Stores `session` under `key` if the stored generation is `expected` (`None`: if no
    /// session is stored), and returns the new generation.
    ///
    /// The new generation is greater than every generation `key` had before, deletes included,
    /// so a writer that read a session before it was deleted and re-created still conflicts.
    /// Otherwise fails with [`StoreError::Conflict`] carrying the current generation, and
    /// changes nothing.
    async fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<Generation>,
    ) -> Result<Generation, StoreError>;

    /// Deletes the session under `key` (signing out), whatever its generation; returns whether
    /// one was stored. A writer still holding its generation conflicts afterwards.
    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError>;

    /// Every stored session, ordered by key.
    async fn list(&self) -> Result<Vec<StoredSession>, StoreError>;
}

/// Mutual exclusion per session, for single-flight token refresh: whoever holds the lock for a
/// key refreshes, the others wait and then load the tokens it saved.
///
/// Stores that can be shared between processes (file, SQLite) lock across processes too, and a
/// process that dies releases its locks. The lock is not re-entrant: acquiring a key already
/// held by the same task waits forever.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait SessionLock: MaybeSendSync {
    /// Waits until the lock for `key` is free, takes it, and returns the guard that holds it.
    ///
    /// Dropping the returned future before it completes gives up waiting.
    async fn acquire(&self, key: &SessionKey) -> Result<LockGuard, StoreError>;

    /// Takes the lock for `key` if nobody holds it right now.
    async fn try_acquire(&self, key: &SessionKey) -> Result<Option<LockGuard>, StoreError>;
}

/// Holds a [`SessionLock`] until dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    key: SessionKey,
    _held: Box<dyn MaybeSendSync>,
}

impl LockGuard {
    /// A guard for `key` that releases the lock when `held` is dropped (for lock
    /// implementations).
    pub fn new(key: SessionKey, held: impl MaybeSendSync + 'static) -> Self {
        Self {
            key,
            _held: Box::new(held),
        }
    }

    /// The key whose lock this guard holds.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// Releases the lock (the same as dropping the guard).
    pub fn release(self) {}
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard").field("key", &self.key).finish()
    }
}

macro_rules! forward_impls {
    ($($wrapper:ty),*) => {$(
        #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
        #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
        impl<T: PendingStore + ?Sized> PendingStore for $wrapper {
            async fn put(&self, pending: &PendingAuthorization) -> Result<(), StoreError> {
                (**self).put(pending).await
            }
            async fn take(
                &self,
                state: &str,
                now: Timestamp,
            ) -> Result<Option<PendingAuthorization>, StoreError> {
                (**self).take(state, now).await
            }
            async fn purge_expired(&self, now: Timestamp) -> Result<usize, StoreError> {
                (**self).purge_expired(now).await
            }
            fn pending_lifetime(&self) -> Duration {
                (**self).pending_lifetime()
            }
        }

        #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
        #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
        impl<T: SessionStore + ?Sized> SessionStore for $wrapper {
            async fn load(&self, key: &SessionKey) -> Result<Option<StoredSession>, StoreError> {
                (**self).load(key).await
            }
            async fn save(
                &self,
                key: &SessionKey,
                session: &Session,
                expected: Option<Generation>,
            ) -> Result<Generation, StoreError> {
                (**self).save(key, session, expected).await
            }
            async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
                (**self).delete(key).await
            }
            async fn list(&self) -> Result<Vec<StoredSession>, StoreError> {
                (**self).list().await
            }
        }

        #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
        #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
        impl<T: SessionLock + ?Sized> SessionLock for $wrapper {
            async fn acquire(&self, key: &SessionKey) -> Result<LockGuard, StoreError> {
                (**self).acquire(key).await
            }
            async fn try_acquire(&self, key: &SessionKey) -> Result<Option<LockGuard>, StoreError> {
                (**self).try_acquire(key).await
            }
        }
    )*};
}

forward_impls!(std::sync::Arc<T>, Box<T>);
