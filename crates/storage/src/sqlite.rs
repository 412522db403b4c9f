//! The SQLite store: the one a desktop or server application would use.

use crate::error::describe_json_error;
use crate::fsutil::{FileLocks, create_private_dir, io_error, private_file_options};
use crate::memory::LocalLocks;
use crate::traits::{LockGuard, PendingStore, SessionLock, SessionStore, StoredSession};
use crate::{DEFAULT_PENDING_LIFETIME, Generation, SessionKey, StoreError, is_expired};
use matrix_oidc_core::secret::constant_time_eq;
use matrix_oidc_core::{PendingAuthorization, Session, Timestamp};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The schema version this build reads and writes (row `schema_version` of `matrix_oidc_meta`).
pub const SQLITE_SCHEMA_VERSION: u64 = 1;

/// How long an operation waits for another process's write transaction before failing with
/// [`StoreError::Database`], unless configured with [`SqliteStore::with_busy_timeout`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pending authorizations and sessions in a SQLite database (bundled SQLite, feature `sqlite`).
///
/// Its tables are prefixed `matrix_oidc_` and its schema version is kept in its own table, so
/// it can live in an application's existing database.
///
/// # Guarantees
///
/// * **Transactional**: compare-and-swap saves and take-once run in `BEGIN IMMEDIATE`
///   transactions; a crash leaves each row at its old or new value.
/// * **Durable**: WAL journal with `synchronous = FULL`: a change is on disk when the call
///   returns `Ok`.
/// * **Cross-process**: any number of processes may open the same file. Writers queue on
///   SQLite's lock for up to the busy timeout ([`DEFAULT_BUSY_TIMEOUT`]). [`SessionLock`] uses
///   advisory lock files in the directory `<database>-locks` beside the database (a SQLite
///   transaction cannot serve: the lock holder must be able to write while holding it), and a
///   process that dies releases its locks. An in-memory database locks within the process.
/// * **Private**: on Unix a database file created by this store is `0600` (SQLite gives its
///   `-wal` and `-shm` files the same mode) and the lock directory `0700`. An existing database
///   keeps its mode.
/// * **Loud about damage**: a row that does not decode gives [`StoreError::Corrupt`] naming the
///   database, table and row, and stays in place (`save`, `delete` and `take` refuse to replace
///   or remove it); a database written by a newer schema gives
///   [`StoreError::UnsupportedVersion`] when opened.
///
/// # Blocking
///
/// SQLite calls block (on disk, and on other processes' transactions up to the busy timeout),
/// so every operation runs on the [`blocking`](https://docs.rs/blocking) crate's thread pool;
/// within a process, operations on one handle (and its clones) share one connection and run
/// one at a time.
///
/// Dropping the future of a change does not undo it: once its thread has started, the change
/// completes (or fails) on its own. After an abandoned `save`, `load` to learn whether it
/// landed.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// use matrix_oidc_core::{Secret, Session, TokenSet};
/// use matrix_oidc_storage::{SessionKey, SessionStore, SqliteStore, StoreError};
/// # let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(dir.path().join("app.db"))?;
/// let key = SessionKey::new("default");
/// let session = Session::new(
///     "https://auth.example.org/".parse()?,
///     "client-1",
///     TokenSet::new(Secret::new("access")),
/// );
/// let first = store.save(&key, &session, None).await?;
/// // A second creation attempt conflicts instead of overwriting.
/// let again = store.save(&key, &session, None).await;
/// assert!(matches!(again, Err(StoreError::Conflict { current: Some(g), .. }) if g == first));
/// # Ok(()) })
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    lifetime: Duration,
}

struct Inner {
    conn: Mutex<Connection>,
    /// The database path for messages, or `:memory:`.
    location: String,
    path: Option<PathBuf>,
    locks: Locks,
}

enum Locks {
    Files(FileLocks),
    Local(LocalLocks),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS matrix_oidc_pending (
    state TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL,
    document TEXT NOT NULL
);
-- `document` NULL: the session was deleted; the row keeps its generation so it never repeats.
CREATE TABLE IF NOT EXISTS matrix_oidc_sessions (
    key TEXT PRIMARY KEY NOT NULL,
    generation INTEGER NOT NULL,
    document TEXT
);
";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, switches it to WAL, and creates or
    /// checks this crate's tables.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let location = path.display().to_string();
        // Create the file ourselves so that it (and the -wal/-shm files SQLite derives from
        // it) is owner-only from the first byte.
        private_file_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        let conn = Connection::open(&path).map_err(|e| db_error(&location, e))?;
        let mut locks_name = path.file_name().unwrap_or_default().to_os_string();
        locks_name.push("-locks");
        let locks_dir = path.with_file_name(locks_name);
        create_private_dir(&locks_dir)?;
        Self::setup(
            conn,
            location,
            Some(path),
            Locks::Files(FileLocks::new(locks_dir)),
        )
    }

    /// A private in-memory database: nothing is persisted or shared with other handles except
    /// this one's clones. Handy for tests of code that wants a `SqliteStore`.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let location = ":memory:".to_owned();
        let conn = Connection::open_in_memory().map_err(|e| db_error(&location, e))?;
        Self::setup(conn, location, None, Locks::Local(LocalLocks::default()))
    }

    fn setup(
        mut conn: Connection,
        location: String,
        path: Option<PathBuf>,
        locks: Locks,
    ) -> Result<Self, StoreError> {
        let db = |e| db_error(&location, e);
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(db)?;
        if path.is_some() {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(db)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Database {
                    location,
                    source: format!("cannot switch to WAL mode (journal mode is {mode})").into(),
                });
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        migrate(&mut conn, &location)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                location,
                path,
                locks,
            }),
            lifetime: DEFAULT_PENDING_LIFETIME,
        })
    }

    /// This handle with pending authorizations valid for `lifetime` instead.
    pub fn with_pending_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Waits up to `timeout` (instead of [`DEFAULT_BUSY_TIMEOUT`]) for other processes'
    /// transactions. Applies to this handle's connection, shared with its clones.
    pub fn with_busy_timeout(self, timeout: Duration) -> Result<Self, StoreError> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .busy_timeout(timeout)
            .map_err(|e| db_error(&self.inner.location, e))?;
        Ok(self)
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        blocking::unblock(move || {
            // A panic mid-transaction rolls the transaction back when it unwinds, so the
            // connection is usable even if the mutex is poisoned.
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn, &inner.location)
        })
        .await
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("database", &self.inner.location)
            .field("pending_lifetime", &self.lifetime)
            .finish()
    }
}

fn db_error(location: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Database {
        location: location.to_owned(),
        source: Box::new(e),
    }
}

fn migrate(conn: &mut Connection, location: &str) -> Result<(), StoreError> {
    let db = |e| db_error(location, e);
    // IMMEDIATE: two processes opening a new database at once create the tables once.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS matrix_oidc_meta (
            name TEXT PRIMARY KEY NOT NULL,
            value INTEGER NOT NULL
        );",
    )
    .map_err(db)?;
    let version: Option<i64> = tx
        .query_row(
            "SELECT value FROM matrix_oidc_meta WHERE name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(db)?;
    match version {
        None => {
            tx.execute_batch(SCHEMA).map_err(db)?;
            tx.execute(
                "INSERT INTO matrix_oidc_meta (name, value) VALUES ('schema_version', ?1)",
                params![to_sql_int(SQLITE_SCHEMA_VERSION)],
            )
            .map_err(db)?;
        }
        Some(v) if u64::try_from(v) == Ok(SQLITE_SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(StoreError::UnsupportedVersion {
                location: location.to_owned(),
                found: u64::try_from(v).unwrap_or(0),
                supported: SQLITE_SCHEMA_VERSION,
            });
        }
    }
    tx.commit().map_err(db)
}

fn to_sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn row_location(location: &str, table: &str, row: &str) -> String {
    format!("{location} (table {table}, {row})")
}

fn generation_from_sql(location: &str, key: &SessionKey, v: i64) -> Result<Generation, StoreError> {
    u64::try_from(v)
        .map(Generation::new)
        .map_err(|_| StoreError::Corrupt {
            location: row_location(location, "matrix_oidc_sessions", &format!("key {key}")),
            reason: format!("negative generation {v}"),
        })
}

fn decode_session(location: &str, key: &SessionKey, doc: &str) -> Result<Session, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
        location: row_location(location, "matrix_oidc_sessions", &format!("key {key}")),
        reason: describe_json_error(&e),
    })
}

fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Encode {
        what,
        reason: describe_json_error(&e),
    })
}

#[async_trait::async_trait]
impl PendingStore for SqliteStore {
    async fn put(&self, pending: &PendingAuthorization) -> Result<(), StoreError> {
        let document = encode("a pending authorization", pending)?;
        let state = pending.state.clone();
        let created_at = to_sql_int(pending.created_at.as_unix_millis());
        self.run(move |conn, location| {
            let inserted = conn
                .execute(
                    "INSERT INTO matrix_oidc_pending (state, created_at, document)
                     VALUES (?1, ?2, ?3) ON CONFLICT (state) DO NOTHING",
                    params![state, created_at, document],
                )
                .map_err(|e| db_error(location, e))?;
            if inserted == 0 {
                return Err(StoreError::DuplicateState);
            }
            Ok(())
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
        self.run(move |conn, location| {
            let db = |e| db_error(location, e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let row: Option<(i64, String)> = tx
                .query_row(
                    "SELECT rowid, document FROM matrix_oidc_pending WHERE state = ?1",
                    params![state],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            let Some((rowid, document)) = row else {
                return Ok(None);
            };
            // Decode before deleting: a damaged row stays for inspection (the transaction
            // rolls back when `tx` is dropped).
            let corrupt = |reason: String| StoreError::Corrupt {
                location: row_location(location, "matrix_oidc_pending", &format!("rowid {rowid}")),
                reason,
            };
            let pending: PendingAuthorization =
                serde_json::from_str(&document).map_err(|e| corrupt(describe_json_error(&e)))?;
            if !constant_time_eq(&pending.state, &state) {
                return Err(corrupt("holds the entry of another state".to_owned()));
            }
            tx.execute(
                "DELETE FROM matrix_oidc_pending WHERE rowid = ?1",
                params![rowid],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok((!is_expired(pending.created_at, lifetime, now)).then_some(pending))
        })
        .await
    }

    async fn purge_expired(&self, now: Timestamp) -> Result<usize, StoreError> {
        let lifetime_ms = u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX);
        // Expired means `created_at + lifetime <= now`, i.e. `created_at <= now - lifetime`.
        let Some(cutoff) = now.as_unix_millis().checked_sub(lifetime_ms) else {
            return Ok(0);
        };
        let cutoff = to_sql_int(cutoff);
        self.run(move |conn, location| {
            conn.execute(
                "DELETE FROM matrix_oidc_pending WHERE created_at <= ?1",
                params![cutoff],
            )
            .map_err(|e| db_error(location, e))
        })
        .await
    }

    fn pending_lifetime(&self) -> Duration {
        self.lifetime
    }
}

/// The row of `key`: its generation and document (`None` for a deleted session).
fn read_session_row(
    conn: &Connection,
    location: &str,
    key: &SessionKey,
) -> Result<Option<(Generation, Option<String>)>, StoreError> {
    let row: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT generation, document FROM matrix_oidc_sessions WHERE key = ?1",
            params![key.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(|e| db_error(location, e))?;
    row.map(|(g, doc)| Ok((generation_from_sql(location, key, g)?, doc)))
        .transpose()
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<StoredSession>, StoreError> {
        let key = key.clone();
        self.run(move |conn, location| {
            let Some((generation, Some(doc))) = read_session_row(conn, location, &key)? else {
                return Ok(None);
            };
            let session = decode_session(location, &key, &doc)?;
            Ok(Some(StoredSession::new(key, session, generation)))
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
        let document = encode("a session", session)?;
        self.run(move |conn, location| {
            let db = |e| db_error(location, e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let stored = read_session_row(&tx, location, &key)?;
            // A damaged row is reported, not silently replaced.
            if let Some((_, Some(doc))) = &stored {
                decode_session(location, &key, doc)?;
            }
            let current = stored
                .as_ref()
                .and_then(|(g, doc)| doc.as_ref().map(|_| *g));
            if current != expected {
                return Err(StoreError::Conflict {
                    key,
                    expected,
                    current,
                });
            }
            let generation = stored.map_or(Generation::FIRST, |(g, _)| g.next());
            tx.execute(
                "INSERT INTO matrix_oidc_sessions (key, generation, document) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET
                     generation = excluded.generation, document = excluded.document",
                params![key.as_str(), to_sql_int(generation.get()), document],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(generation)
        })
        .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.run(move |conn, location| {
            let db = |e| db_error(location, e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let Some((_, Some(doc))) = read_session_row(&tx, location, &key)? else {
                return Ok(false);
            };
            decode_session(location, &key, &doc)?;
            // Keep the row and its generation (and nothing else) so that it never repeats.
            tx.execute(
                "UPDATE matrix_oidc_sessions SET document = NULL WHERE key = ?1",
                params![key.as_str()],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn list(&self) -> Result<Vec<StoredSession>, StoreError> {
        self.run(move |conn, location| {
            let db = |e| db_error(location, e);
            let mut statement = conn
                .prepare(
                    "SELECT key, generation, document FROM matrix_oidc_sessions
                     WHERE document IS NOT NULL ORDER BY key",
                )
                .map_err(db)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .map_err(db)?;
            let mut out = Vec::new();
            for row in rows {
                let (key, generation, doc) = row.map_err(db)?;
                let key = SessionKey::new(key);
                let generation = generation_from_sql(location, &key, generation)?;
                let session = decode_session(location, &key, &doc)?;
                out.push(StoredSession::new(key, session, generation));
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait::async_trait]
impl SessionLock for SqliteStore {
    async fn acquire(&self, key: &SessionKey) -> Result<LockGuard, StoreError> {
        match &self.inner.locks {
            Locks::Files(locks) => locks.acquire(key).await,
            Locks::Local(locks) => Ok(LockGuard::new(key.clone(), locks.acquire(key).await)),
        }
    }

    async fn try_acquire(&self, key: &SessionKey) -> Result<Option<LockGuard>, StoreError> {
        match &self.inner.locks {
            Locks::Files(locks) => locks.try_acquire(key).await,
            Locks::Local(locks) => Ok(locks
                .try_acquire(key)
                .map(|held| LockGuard::new(key.clone(), held))),
        }
    }
}
