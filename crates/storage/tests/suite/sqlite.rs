//! The SQLite store: conformance (file and in-memory databases), schema, permissions, damage.

use crate::common::{pending, refresh_of, session};
use crate::conformance::conformance_suite;
use matrix_oidc_core::Timestamp;
use matrix_oidc_storage::{
    PendingStore, SQLITE_SCHEMA_VERSION, SessionKey, SessionLock, SessionStore, SqliteStore,
    StoreError,
};
use rusqlite::Connection;

conformance_suite!(crate::common::SqliteBackend::new());

mod in_memory {
    use crate::conformance::conformance_suite;
    conformance_suite!(crate::common::SqliteMemoryBackend);
}

#[tokio::test]
async fn rows_hold_json_documents_and_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = SqliteStore::open(&path).unwrap();
    let key = SessionKey::new("alice");
    let g = store.save(&key, &session("rt-1"), None).await.unwrap();
    store.put(&pending("st", 42)).await.unwrap();

    let conn = Connection::open(&path).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let version: i64 = conn
        .query_row(
            "SELECT value FROM matrix_oidc_meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(u64::try_from(version).unwrap(), SQLITE_SCHEMA_VERSION);
    let (generation, doc): (i64, String) = conn
        .query_row(
            "SELECT generation, document FROM matrix_oidc_sessions WHERE key = 'alice'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(u64::try_from(generation).unwrap(), g.get());
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["tokens"]["refresh_token"], "rt-1");
    let (created, doc): (i64, String) = conn
        .query_row(
            "SELECT created_at, document FROM matrix_oidc_pending WHERE state = 'st'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(created, 42);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&doc).unwrap()["code_verifier"],
        "verifier-SECRET-st"
    );

    // A deleted session keeps its row, generation and no tokens.
    store.delete(&key).await.unwrap();
    let (generation, doc): (i64, Option<String>) = conn
        .query_row(
            "SELECT generation, document FROM matrix_oidc_sessions WHERE key = 'alice'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((u64::try_from(generation).unwrap(), doc), (g.get(), None));
}

#[tokio::test]
async fn lives_beside_an_applications_own_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 7;
             CREATE TABLE sessions (id INTEGER PRIMARY KEY, note TEXT);
             INSERT INTO sessions (note) VALUES ('the app''s own');",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store
        .save(&SessionKey::new("k"), &session("rt"), None)
        .await
        .unwrap();
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(user_version, 7);
    let note: String = conn
        .query_row("SELECT note FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(note, "the app's own");
    // Reopening finds its schema in place.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_newer_schema_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    drop(SqliteStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE matrix_oidc_meta SET value = 9 WHERE name = 'schema_version'",
            [],
        )
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    match &err {
        StoreError::UnsupportedVersion {
            location,
            found,
            supported,
        } => {
            assert_eq!(location, &path.display().to_string());
            assert_eq!((*found, *supported), (9, SQLITE_SCHEMA_VERSION));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), vec![b'x'; 4096]);
}

#[tokio::test]
async fn corrupt_rows_are_reported_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = SqliteStore::open(&path).unwrap();
    let key = SessionKey::new("alice");
    let g = store.save(&key, &session("rt-SECRET"), None).await.unwrap();
    store.put(&pending("st", 0)).await.unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE matrix_oidc_sessions SET document = '{\"issuer\": \"rt-SECRET' WHERE key = 'alice'",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE matrix_oidc_pending SET document = '[1,2' WHERE state = 'st'",
        [],
    )
    .unwrap();
    for err in [
        store.load(&key).await.unwrap_err(),
        store.list().await.unwrap_err(),
        store
            .save(&key, &session("rt-2"), Some(g))
            .await
            .unwrap_err(),
        store.delete(&key).await.unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("matrix_oidc_sessions"), "{err}");
        assert!(err.to_string().contains("alice"), "{err}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
    let err = store.take("st", Timestamp::UNIX_EPOCH).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("matrix_oidc_pending"), "{err}");
    let doc: String = conn
        .query_row(
            "SELECT document FROM matrix_oidc_sessions WHERE key = 'alice'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(doc, "{\"issuer\": \"rt-SECRET");
    let still_there: i64 = conn
        .query_row("SELECT count(*) FROM matrix_oidc_pending", [], |r| r.get(0))
        .unwrap();
    assert_eq!(still_there, 1);
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_database_and_its_lock_directory_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = SqliteStore::open(&path).unwrap();
    let key = SessionKey::new("k");
    store.save(&key, &session("rt"), None).await.unwrap();
    let guard = store.acquire(&key).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("app.db-wal")), 0o600);
    let locks = dir.path().join("app.db-locks");
    assert_eq!(mode(&locks), 0o700);
    for f in std::fs::read_dir(&locks).unwrap() {
        assert_eq!(mode(&f.unwrap().path()), 0o600);
    }
    drop(guard);
}

#[tokio::test]
async fn two_handles_share_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path)
        .unwrap()
        .with_busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let key = SessionKey::new("k");
    let g = a.save(&key, &session("rt-a"), None).await.unwrap();
    let g2 = b.save(&key, &session("rt-b"), Some(g)).await.unwrap();
    let loaded = a.load(&key).await.unwrap().unwrap();
    assert_eq!(
        (loaded.generation, refresh_of(&loaded.session)),
        (g2, "rt-b".into())
    );
}
