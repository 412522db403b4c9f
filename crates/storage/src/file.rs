//! The durable file store: one JSON document per entry in one directory.

use crate::error::describe_json_error;
use crate::fsutil::{
    FileLocks, TEMP_PREFIX, create_private_dir, hashed_name, io_error, lock_file_blocking,
    read_document, remove_durably, write_atomic,
};
use crate::traits::{LockGuard, PendingStore, SessionLock, SessionStore, StoredSession};
use crate::{DEFAULT_PENDING_LIFETIME, Generation, SessionKey, StoreError, is_expired};
use matrix_oidc_core::secret::constant_time_eq;
use matrix_oidc_core::{PendingAuthorization, Session, Timestamp};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The document format version this build reads and writes.
pub const FILE_FORMAT_VERSION: u64 = 1;

/// Pending authorizations, sessions and locks as files in one directory, shared safely by every
/// process that opens the same directory.
///
/// # Layout
///
/// ```text
/// <dir>/                      0700
///   write.lock                advisory lock held while a document is replaced
///   pending/<sha256>.json     {"version":1,"pending":{…}}                      0600
///   sessions/<sha256>.json    {"version":1,"key":"…","generation":3,"session":{…}}
///   locks/<sha256>.lock       one per session key, for SessionLock
/// ```
///
/// File names are SHA-256 digests of the key (or `state`), in lowercase hex, so no key, however
/// chosen, becomes a path. A deleted session leaves a small document without tokens
/// (`"session":null`) that remembers its generation.
///
/// # Guarantees
///
/// * **Atomic and durable**: a document is replaced by writing a temporary file, `fsync`ing
///   it, renaming it over the old one and `fsync`ing the directory. Once a call returns `Ok`,
///   the change survives a crash of the process or the machine; a crash in between leaves the
///   old document, never a torn one.
/// * **Cross-process**: every change takes the advisory lock on `write.lock` for its
///   read-compare-write, so compare-and-swap and take-once hold between processes. Readers
///   take no lock (they see the old or the new document). [`SessionLock`] uses one lock file
///   per key; a process that dies releases its locks.
/// * **Private**: on Unix, directories are created (or tightened) to `0700` and files to `0600`.
/// * **Loud about damage**: a document that does not parse, that belongs to another key, or
///   that has an unknown `version` gives [`StoreError::Corrupt`] or
///   [`StoreError::UnsupportedVersion`] naming the file. Nothing is deleted or overwritten to
///   "repair" it: `save` over a corrupt session fails too, until someone looks.
///
/// # Blocking
///
/// File calls block, and waiting for a lock held by another process may block for long, so
/// every operation runs on the [`blocking`](https://docs.rs/blocking) crate's thread pool
/// (runtime-agnostic, so the store works under any executor) and the caller's task just
/// awaits it. Advisory locks are only as good as the file system: avoid network file systems.
///
/// Dropping the future of a change does not undo it: once its thread has started, the change
/// completes (or fails) on its own. After an abandoned `save`, `load` to learn whether it
/// landed.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// use matrix_oidc_core::{Secret, Session, TokenSet};
/// use matrix_oidc_storage::{FileStore, SessionKey, SessionStore};
/// # let dir = tempfile::tempdir()?;
/// let store = FileStore::open(dir.path().join("oidc"))?;
/// let session = Session::new(
///     "https://auth.example.org/".parse()?,
///     "client-1",
///     TokenSet::new(Secret::new("access")).with_refresh_token(Some(Secret::new("refresh"))),
/// );
/// let key = SessionKey::new("default");
/// let generation = store.save(&key, &session, None).await?;
///
/// // Another process (here: another handle) sees it.
/// let other = FileStore::open(dir.path().join("oidc"))?;
/// let stored = other.load(&key).await?.ok_or("missing")?;
/// assert_eq!(stored.generation, generation);
/// # Ok(()) })
/// # }
/// ```
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
    lifetime: Duration,
}

struct Inner {
    dir: PathBuf,
    pending_dir: PathBuf,
    sessions_dir: PathBuf,
    write_lock: PathBuf,
    locks: FileLocks,
}

#[derive(Serialize)]
struct PendingDocOut<'a> {
    version: u64,
    pending: &'a PendingAuthorization,
}

#[derive(Deserialize)]
struct PendingDocIn {
    pending: PendingAuthorization,
}

#[derive(Serialize)]
struct SessionDocOut<'a> {
    version: u64,
    key: &'a SessionKey,
    generation: Generation,
    session: Option<&'a Session>,
}

#[derive(Deserialize)]
struct SessionDocIn {
    key: SessionKey,
    generation: Generation,
    session: Option<Session>,
}

/// Just the version, read first so that a document from a newer format is reported as such
/// instead of as a parse error.
#[derive(Deserialize)]
struct VersionProbe {
    version: Option<u64>,
}

impl FileStore {
    /// Opens the store in `dir`, creating the directory (and its subdirectories) if needed.
    ///
    /// `dir` should belong to the store alone: on Unix it is made `0700`. Opening reads no
    /// document; damage is reported by the operation that meets it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let pending_dir = dir.join("pending");
        let sessions_dir = dir.join("sessions");
        let locks_dir = dir.join("locks");
        for d in [&dir, &pending_dir, &sessions_dir, &locks_dir] {
            create_private_dir(d)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                write_lock: dir.join("write.lock"),
                dir,
                pending_dir,
                sessions_dir,
                locks: FileLocks::new(locks_dir),
            }),
            lifetime: DEFAULT_PENDING_LIFETIME,
        })
    }

    /// This handle with pending authorizations valid for `lifetime` instead.
    pub fn with_pending_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        blocking::unblock(move || f(&inner)).await
    }
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.dir)
            .field("pending_lifetime", &self.lifetime)
            .finish()
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        location: path.display().to_string(),
        reason: reason.into(),
    }
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Encode {
        what,
        reason: describe_json_error(&e),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Checks the version, then decodes the whole document.
fn decode<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, StoreError> {
    let probe: VersionProbe =
        serde_json::from_slice(bytes).map_err(|e| corrupt(path, describe_json_error(&e)))?;
    match probe.version {
        Some(FILE_FORMAT_VERSION) => {}
        Some(found) => {
            return Err(StoreError::UnsupportedVersion {
                location: path.display().to_string(),
                found,
                supported: FILE_FORMAT_VERSION,
            });
        }
        None => return Err(corrupt(path, "missing field `version`")),
    }
    serde_json::from_slice(bytes).map_err(|e| corrupt(path, describe_json_error(&e)))
}

impl Inner {
    fn pending_path(&self, state: &str) -> PathBuf {
        self.pending_dir.join(hashed_name("pending", state, "json"))
    }

    fn session_path(&self, key: &SessionKey) -> PathBuf {
        self.sessions_dir
            .join(hashed_name("session", key.as_str(), "json"))
    }

    /// The store-wide write lock, held for one read-compare-write.
    fn lock_writes(&self) -> Result<File, StoreError> {
        lock_file_blocking(&self.write_lock)
    }

    fn read_pending(
        &self,
        path: &Path,
        state: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let Some(bytes) = read_document(path)? else {
            return Ok(None);
        };
        let doc: PendingDocIn = decode(path, &bytes)?;
        if !constant_time_eq(&doc.pending.state, state) {
            return Err(corrupt(path, "holds the entry of another state"));
        }
        Ok(Some(doc.pending))
    }

    /// The document for `key`: its generation and the session, `None` for a deleted one.
    fn read_session(
        &self,
        path: &Path,
        key: &SessionKey,
    ) -> Result<Option<(Generation, Option<Session>)>, StoreError> {
        let Some(bytes) = read_document(path)? else {
            return Ok(None);
        };
        let doc: SessionDocIn = decode(path, &bytes)?;
        if &doc.key != key {
            return Err(corrupt(path, "holds the session of another key"));
        }
        Ok(Some((doc.generation, doc.session)))
    }

    fn write_session(
        &self,
        path: &Path,
        key: &SessionKey,
        generation: Generation,
        session: Option<&Session>,
    ) -> Result<(), StoreError> {
        let bytes = encode(
            "a session",
            &SessionDocOut {
                version: FILE_FORMAT_VERSION,
                key,
                generation,
                session,
            },
        )?;
        write_atomic(&self.sessions_dir, path, &bytes)
    }

    /// The document files in `dir` (temporary files skipped).
    fn documents(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".json") && !name.starts_with('.') {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes temporary files left by a writer that died mid-write. Only called with the write
    /// lock held: every live writer holds it while its temporary file exists, so whatever is
    /// found now is abandoned (and was never acknowledged to anyone).
    fn remove_abandoned_temporaries(&self) -> Result<(), StoreError> {
        for dir in [&self.pending_dir, &self.sessions_dir] {
            for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
                let entry = entry.map_err(|e| io_error(dir, e))?;
                if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    let path = entry.path();
                    remove_durably(dir, &path)?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl PendingStore for FileStore {
    async fn put(&self, pending: &PendingAuthorization) -> Result<(), StoreError> {
        let bytes = encode(
            "a pending authorization",
            &PendingDocOut {
                version: FILE_FORMAT_VERSION,
                pending,
            },
        )?;
        let state = pending.state.clone();
        self.run(move |inner| {
            let path = inner.pending_path(&state);
            let _write = inner.lock_writes()?;
            if path.try_exists().map_err(|e| io_error(&path, e))? {
                return Err(StoreError::DuplicateState);
            }
            write_atomic(&inner.pending_dir, &path, &bytes)
        })
        .await
    }

    async fn take(
        &self,
        state: &str,
        now: Timestamp,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let state = state.to_owned();
        let lifetime = self.lifetime;
        self.run(move |inner| {
            let path = inner.pending_path(&state);
            let _write = inner.lock_writes()?;
            // Parse before removing: a damaged entry stays for inspection.
            let Some(pending) = inner.read_pending(&path, &state)? else {
                return Ok(None);
            };
            remove_durably(&inner.pending_dir, &path)?;
            Ok((!is_expired(pending.created_at, lifetime, now)).then_some(pending))
        })
        .await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<usize, StoreError> {
        let lifetime = self.lifetime;
        self.run(move |inner| {
            let _write = inner.lock_writes()?;
            inner.remove_abandoned_temporaries()?;
            let mut removed = 0;
            for path in Inner::documents(&inner.pending_dir)? {
                let Some(bytes) = read_document(&path)? else {
                    continue;
                };
                let doc: PendingDocIn = decode(&path, &bytes)?;
                if is_expired(doc.pending.created_at, lifetime, now)
                    && remove_durably(&inner.pending_dir, &path)?
                {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }

    fn pending_lifetime(&self) -> Duration {
        self.lifetime
    }
}

#[async_trait::async_trait]
impl SessionStore for FileStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<StoredSession>, StoreError> {
        let key = key.clone();
        self.run(move |inner| {
            let path = inner.session_path(&key);
            Ok(match inner.read_session(&path, &key)? {
                Some((generation, Some(session))) => {
                    Some(StoredSession::new(key, session, generation))
                }
                _ => None,
            })
        })
        .await
    }

    async fn save(
        &self,
        key: &SessionKey,
        session: &Session,
        expected: Option<Generation>,
    ) -> Result<Generation, StoreError> {
        let key = key.clone();
        let session = session.clone();
        self.run(move |inner| {
            let path = inner.session_path(&key);
            let _write = inner.lock_writes()?;
            let stored = inner.read_session(&path, &key)?;
            let current = stored.as_ref().and_then(|(g, s)| s.as_ref().map(|_| *g));
            if current != expected {
                return Err(StoreError::Conflict {
                    key,
                    expected,
                    current,
                });
            }
            let generation = stored.map_or(Generation::FIRST, |(g, _)| g.next());
            inner.write_session(&path, &key, generation, Some(&session))?;
            Ok(generation)
        })
        .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.run(move |inner| {
            let path = inner.session_path(&key);
            let _write = inner.lock_writes()?;
            match inner.read_session(&path, &key)? {
                Some((generation, Some(_))) => {
                    // Keep the generation (and nothing else) so that it never repeats.
                    inner.write_session(&path, &key, generation, None)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn list(&self) -> Result<Vec<StoredSession>, StoreError> {
        self.run(move |inner| {
            let mut out = Vec::new();
            for path in Inner::documents(&inner.sessions_dir)? {
                let Some(bytes) = read_document(&path)? else {
                    continue; // deleted since the directory was read
                };
                let doc: SessionDocIn = decode(&path, &bytes)?;
                if path.file_name() != inner.session_path(&doc.key).file_name() {
                    return Err(corrupt(&path, "holds the session of another key"));
                }
                if let Some(session) = doc.session {
                    out.push(StoredSession::new(doc.key, session, doc.generation));
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl SessionLock for FileStore {
    async fn acquire(&self, key: &SessionKey) -> Result<LockGuard, StoreError> {
        self.inner.locks.acquire(key).await
    }

    async fn try_acquire(&self, key: &SessionKey) -> Result<Option<LockGuard>, StoreError> {
        self.inner.locks.try_acquire(key).await
    }
}
