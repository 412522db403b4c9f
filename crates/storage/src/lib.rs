//! # matrix-oidc-storage
//!
//! The state a login must keep beyond one function call, behind three small async traits, with
//! three stores that implement all of them:
//!
//! * [`PendingStore`]: authorization requests waiting for their callback (the `state`, PKCE
//!   verifier and nonce of [`PendingAuthorization`](matrix_oidc_core::PendingAuthorization)),
//!   taken exactly once and expiring after [`DEFAULT_PENDING_LIFETIME`] (configurable).
//!   This is what must survive the browser redirect, even into another process.
//! * [`SessionStore`]: signed-in [`Session`](matrix_oidc_core::Session)s under a
//!   [`SessionKey`], saved with compare-and-swap on a [`Generation`], so a writer holding stale
//!   tokens can never overwrite a rotated refresh token ([`StoreError::Conflict`] instead).
//! * [`SessionLock`]: one lock per session for single-flight refresh, across processes where
//!   the store is shared.
//!
//! ## Which store
//!
//! | | [`MemoryStore`] | `FileStore` (feature `file`, default) | `SqliteStore` (feature `sqlite`) |
//! |---|---|---|---|
//! | for | tests, browsers (wasm32), one-shot tools | command-line tools, small apps; no C compiler needed | desktop and server apps, many sessions, an existing SQLite database |
//! | survives a restart | no | yes: `fsync`ed before a call returns | yes: WAL, `synchronous = FULL` |
//! | after a crash | — | each document old or new, never torn | each row old or new |
//! | shared between processes | no | yes: advisory lock around every change | yes: SQLite transactions, busy timeout |
//! | [`SessionLock`] | in-process async mutex | lock file per key | lock file per key beside the database |
//! | damaged data | — | error naming the file, kept | error naming database/table/row, kept |
//!
//! All three give the same answers to the same calls: one conformance suite (in this crate's
//! tests) runs against each. Stores are cheap-to-clone handles: clone one per task.
//!
//! ## Time is an argument
//!
//! Like the core, stores never read the clock: [`PendingStore::take`] and
//! [`PendingStore::purge_expired`] take `now: Timestamp`, so expiry is deterministic in tests.
//! Pass `Timestamp::from_system_time(SystemTime::now())` in applications.
//!
//! ## Refreshing without racing
//!
//! Several tasks or processes sharing one session refresh it once: take the lock, reload (the
//! holder before you may have refreshed already), refresh only if still needed, save with the
//! generation you loaded.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! use matrix_oidc_core::{Secret, Session, TokenSet};
//! use matrix_oidc_storage::{MemoryStore, SessionKey, SessionLock, SessionStore};
//!
//! let store = MemoryStore::new();
//! let session = Session::new(
//!     "https://auth.example.org/".parse()?,
//!     "client-1",
//!     TokenSet::new(Secret::new("access-1")).with_refresh_token(Some(Secret::new("refresh-1"))),
//! );
//! let key = SessionKey::new("default");
//! store.save(&key, &session, None).await?;
//!
//! let guard = store.acquire(&key).await?;
//! let current = store.load(&key).await?.ok_or("signed out meanwhile")?;
//! // … call the token endpoint with `current.session.tokens.refresh_token` …
//! let mut refreshed = current.session.clone();
//! refreshed.tokens = TokenSet::new(Secret::new("access-2"))
//!     .with_refresh_token(Some(Secret::new("refresh-2")));
//! store.save(&key, &refreshed, Some(current.generation)).await?;
//! drop(guard);
//! # Ok(()) })
//! # }
//! ```
//!
//! ## Targets and features
//!
//! The traits and [`MemoryStore`] build everywhere, `wasm32-unknown-unknown` included (futures
//! are not required to be `Send` there). `FileStore` (feature `file`, on by default) and
//! `SqliteStore` (feature `sqlite`, off by default: it compiles the bundled SQLite) exist on
//! native targets only.
//!
//! ## Dependencies, and why
//!
//! * `async-lock`: waiting for a lock asynchronously without tying the crate to a runtime.
//! * `blocking`: file and SQLite calls block (and waiting for another process's lock may block
//!   for long), so the file and SQLite stores run them on this runtime-agnostic thread pool
//!   instead of on the caller's executor.
//! * `fs4`: advisory file locks (`flock` on Unix, `LockFileEx` on Windows), released by the
//!   operating system when a process dies.
//! * `sha2`: file names are SHA-256 digests of keys, so no key becomes a path.
//! * `rusqlite` with its bundled SQLite: a known SQLite version on every platform.
//!
//! The crate's own tests always cover `SqliteStore`: a dev-dependency on the crate itself
//! turns on `sqlite` for them, so a plain `cargo test` runs the SQLite suite without making the
//! feature a default for users.
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
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use file::{FILE_FORMAT_VERSION, FileStore};
pub use key::{Generation, SessionKey};
pub use memory::MemoryStore;
#[cfg(all(not(target_arch = "wasm32"), feature = "sqlite"))]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{DEFAULT_BUSY_TIMEOUT, SQLITE_SCHEMA_VERSION, SqliteStore};
pub use traits::{
    DEFAULT_PENDING_LIFETIME, LockGuard, PendingStore, SessionLock, SessionStore, StoredSession,
    is_expired,
};
