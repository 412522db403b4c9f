//! File system helpers shared by the file and SQLite stores: private directories, atomic
//! replacement, hashed file names and advisory file locks.

// The SQLite store uses only the directory and lock helpers.
#![cfg_attr(not(feature = "file"), allow(dead_code))]

use crate::memory::{LocalGuard, LocalLocks};
use crate::{LockGuard, SessionKey, StoreError};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of temporary files; never the prefix of a document name (those are hex digests).
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        location: path.display().to_string(),
        source,
    }
}

/// The file name for `name` in `namespace`: lowercase hex SHA-256, so that keys and states
/// (which an attacker may choose, e.g. `state` from a callback URL) never become paths, and
/// names do not collide on case-insensitive file systems.
pub(crate) fn hashed_name(namespace: &str, name: &str, extension: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(namespace.as_bytes());
    hasher.update([0]);
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut out = String::with_capacity(64 + 1 + extension.len());
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out.push('.');
    out.push_str(extension);
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Creates `dir` (and missing parents) if needed, and makes it owner-only on Unix.
///
/// Only directories this crate owns are passed here; the caller's parent directories keep their
/// permissions.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| io_error(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // An existing directory keeps its mode through `create`; tighten it.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(dir, e))?;
    }
    Ok(())
}

/// Options for creating a file readable and writable by its owner only.
pub(crate) fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Makes a finished rename or removal in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(dir, e))?;
    }
    // Windows cannot open a directory as a file; NTFS journals the rename itself.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Replaces `path` (in `dir`) with `bytes` so that readers and crash survivors see either the
/// old or the new content: write a temporary file in the same directory, fsync it, rename it
/// over `path`, fsync the directory.
pub(crate) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = private_file_options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(&temp, e));
    }
    if let Err(e) = std::fs::rename(&temp, path) {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(path, e));
    }
    sync_dir(dir)
}

/// Removes `path` and makes the removal durable; `Ok(false)` if it did not exist.
pub(crate) fn remove_durably(dir: &Path, path: &Path) -> Result<bool, StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Documents are small; anything bigger than this is not one of ours.
const MAX_DOCUMENT_BYTES: u64 = 1 << 20;

/// Reads a whole document; `Ok(None)` if it does not exist.
pub(crate) fn read_document(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_DOCUMENT_BYTES {
        return Err(StoreError::Corrupt {
            location: path.display().to_string(),
            reason: format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
        });
    }
    Ok(Some(bytes))
}

/// Opens (creating) the lock file at `path` and takes its exclusive advisory lock, waiting.
/// The lock is released when the returned file is closed, including when the process dies.
pub(crate) fn lock_file_blocking(path: &Path) -> Result<File, StoreError> {
    let file = open_lock_file(path)?;
    fs4::FileExt::lock(&file).map_err(|e| io_error(path, e))?;
    Ok(file)
}

/// Like [`lock_file_blocking`] but gives up at once: `Ok(None)` if another holder has it.
pub(crate) fn try_lock_file(path: &Path) -> Result<Option<File>, StoreError> {
    let file = open_lock_file(path)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(Some(file)),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => Err(io_error(path, e)),
    }
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    private_file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error(path, e))
}

/// Per-key advisory file locks in one directory, one lock file per key (named by hash).
///
/// Within a process, waiters first queue on an async mutex per key, so at most one thread per
/// key blocks in the operating system's lock call; across processes the `flock`/`LockFileEx`
/// lock decides. Lock files are never removed (removing a lock file races with another process
/// opening it); each is empty.
pub(crate) struct FileLocks {
    dir: PathBuf,
    local: LocalLocks,
}

/// What a [`LockGuard`] from [`FileLocks`] holds. Field order matters: the file lock is
/// released before the next local waiter is woken.
struct FileLockHeld {
    _file: File,
    _local: LocalGuard,
}

impl FileLocks {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            local: LocalLocks::default(),
        }
    }

    fn path(&self, key: &SessionKey) -> PathBuf {
        self.dir
            .join(hashed_name("session-lock", key.as_str(), "lock"))
    }

    pub(crate) async fn acquire(&self, key: &SessionKey) -> Result<LockGuard, StoreError> {
        let local = self.local.acquire(key).await;
        let path = self.path(key);
        // The OS lock call blocks the thread until the other process lets go, so it runs on
        // `blocking`'s thread pool, never on the caller's executor.
        let file = blocking::unblock(move || lock_file_blocking(&path)).await?;
        Ok(LockGuard::new(
            key.clone(),
            FileLockHeld {
                _file: file,
                _local: local,
            },
        ))
    }

    pub(crate) async fn try_acquire(
        &self,
        key: &SessionKey,
    ) -> Result<Option<LockGuard>, StoreError> {
        let Some(local) = self.local.try_acquire(key) else {
            return Ok(None);
        };
        let path = self.path(key);
        let file = blocking::unblock(move || try_lock_file(&path)).await?;
        Ok(file.map(|file| {
            LockGuard::new(
                key.clone(),
                FileLockHeld {
                    _file: file,
                    _local: local,
                },
            )
        }))
    }
}
