//! Values and backends the tests share.

use matrix_oidc_core::{PendingAuthorization, Secret, Session, TokenSet};
use matrix_oidc_storage::{PendingStore, SessionLock, SessionStore};
use serde_json::json;
use std::time::Duration;

/// A pending authorization built the way a store reads it back: from JSON.
pub(crate) fn pending(state: &str, created_at_ms: u64) -> PendingAuthorization {
    serde_json::from_value(json!({
        "state": state,
        "issuer": "https://auth.example.org/",
        "token_endpoint": "https://auth.example.org/oauth2/token",
        "client_id": "client-1",
        "redirect_uri": "http://127.0.0.1:8080/callback",
        "code_verifier": format!("verifier-SECRET-{state}"),
        "nonce": "nonce-SECRET",
        "device_id": "ABCDEFGH",
        "scope": "openid urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGH",
        "response_mode": "query",
        "require_iss": true,
        "homeserver": "https://matrix.example.org/",
        "created_at": created_at_ms,
    }))
    .unwrap()
}

/// A session whose refresh token is `refresh` (access token derived from it).
pub(crate) fn session(refresh: &str) -> Session {
    Session::new(
        "https://auth.example.org/".parse().unwrap(),
        "client-1",
        TokenSet::new(Secret::new(format!("access-SECRET-{refresh}")))
            .with_refresh_token(Some(Secret::new(refresh)))
            .with_scope(Some("urn:matrix:client:api:*".into())),
    )
    .with_homeserver(Some("https://matrix.example.org/".parse().unwrap()))
    .with_user_id(Some("@alice:example.org".into()))
    .with_device_id(Some("ABCDEFGH".into()))
}

/// The refresh token of a session, exposed for comparison.
pub(crate) fn refresh_of(session: &Session) -> String {
    session
        .tokens
        .refresh_token
        .as_ref()
        .map(|s| s.expose().to_owned())
        .unwrap_or_default()
}

/// Everything every store implements.
pub(crate) trait Store: PendingStore + SessionStore + SessionLock + Clone + 'static {}
impl<T: PendingStore + SessionStore + SessionLock + Clone + 'static> Store for T {}

/// How the conformance suite gets stores of one implementation.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The store type.
    type Store: Store;
    /// A handle on new, empty storage.
    fn fresh(&self, lifetime: Duration) -> Self::Store;
    /// An independent handle on the same storage, as a second process would open it (for the
    /// memory store, which is not shared across processes, a clone).
    fn reopen(&self, store: &Self::Store) -> Self::Store;
}

pub(crate) struct MemoryBackend;

impl Backend for MemoryBackend {
    type Store = matrix_oidc_storage::MemoryStore;
    fn fresh(&self, lifetime: Duration) -> Self::Store {
        matrix_oidc_storage::MemoryStore::new().with_pending_lifetime(lifetime)
    }
    fn reopen(&self, store: &Self::Store) -> Self::Store {
        store.clone()
    }
}

pub(crate) struct FileBackend {
    root: tempfile::TempDir,
    counter: std::sync::atomic::AtomicUsize,
}

impl FileBackend {
    pub(crate) fn new() -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
            counter: Default::default(),
        }
    }
}

impl Backend for FileBackend {
    type Store = matrix_oidc_storage::FileStore;
    fn fresh(&self, lifetime: Duration) -> Self::Store {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        matrix_oidc_storage::FileStore::open(self.root.path().join(format!("store-{n}")))
            .unwrap()
            .with_pending_lifetime(lifetime)
    }
    fn reopen(&self, store: &Self::Store) -> Self::Store {
        matrix_oidc_storage::FileStore::open(store.dir())
            .unwrap()
            .with_pending_lifetime(store.pending_lifetime())
    }
}

pub(crate) struct SqliteBackend {
    root: tempfile::TempDir,
    counter: std::sync::atomic::AtomicUsize,
}

impl SqliteBackend {
    pub(crate) fn new() -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
            counter: Default::default(),
        }
    }
}

impl Backend for SqliteBackend {
    type Store = matrix_oidc_storage::SqliteStore;
    fn fresh(&self, lifetime: Duration) -> Self::Store {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        matrix_oidc_storage::SqliteStore::open(self.root.path().join(format!("store-{n}.db")))
            .unwrap()
            .with_pending_lifetime(lifetime)
    }
    fn reopen(&self, store: &Self::Store) -> Self::Store {
        matrix_oidc_storage::SqliteStore::open(store.path().unwrap())
            .unwrap()
            .with_pending_lifetime(store.pending_lifetime())
    }
}

/// An in-memory SQLite database: one connection, so "another handle" is a clone.
pub(crate) struct SqliteMemoryBackend;

impl Backend for SqliteMemoryBackend {
    type Store = matrix_oidc_storage::SqliteStore;
    fn fresh(&self, lifetime: Duration) -> Self::Store {
        matrix_oidc_storage::SqliteStore::open_in_memory()
            .unwrap()
            .with_pending_lifetime(lifetime)
    }
    fn reopen(&self, store: &Self::Store) -> Self::Store {
        store.clone()
    }
}
