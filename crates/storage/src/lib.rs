//! # matrix-oidc-storage
//!
//! TODO docs

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
#[cfg(all(not(target_arch = "wasm32"), feature = "file"))]
mod file;
#[cfg(all(not(target_arch = "wasm32"), any(feature = "file", feature = "sqlite")))]
mod fsutil;
mod key;
mod memory;
#[cfg(all(not(target_arch = "wasm32"), feature = "sqlite"))]
mod sqlite;
mod traits;

pub use error::StoreError;
#[cfg(all(not(target_arch = "wasm32"), feature = "file"))]
pub use file::{FILE_FORMAT_VERSION, FileStore};
pub use key::{Generation, SessionKey};
pub use memory::MemoryStore;
#[cfg(all(not(target_arch = "wasm32"), feature = "sqlite"))]
pub use sqlite::{DEFAULT_BUSY_TIMEOUT, SQLITE_SCHEMA_VERSION, SqliteStore};
pub use traits::{
    DEFAULT_PENDING_LIFETIME, LockGuard, PendingStore, SessionLock, SessionStore, StoredSession,
    is_expired,
};
