//! The file store: conformance, the on-disk format, permissions and damage.

use crate::common::{pending, refresh_of, session};
use crate::conformance::conformance_suite;
use matrix_oidc_core::Timestamp;
use matrix_oidc_storage::{
    FILE_FORMAT_VERSION, FileStore, PendingStore, SessionKey, SessionLock, SessionStore, StoreError,
};
use std::path::{Path, PathBuf};

conformance_suite!(crate::common::FileBackend::new());

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn only_file(dir: &Path) -> PathBuf {
    let files = files_in(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[tokio::test]
async fn documents_are_versioned_json_under_hashed_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let key = SessionKey::new("../../outside");
    let g = store.save(&key, &session("rt-1"), None).await.unwrap();
    store.put(&pending("../state", 7)).await.unwrap();

    // Nothing escaped the store directory, whatever the key and state said.
    let top: Vec<String> = files_in(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top, ["locks", "pending", "sessions", "write.lock"]);

    let file = only_file(&dir.path().join("sessions"));
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name.len(), 64 + ".json".len(), "{name}");
    assert!(
        name.trim_end_matches(".json")
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["version"], FILE_FORMAT_VERSION);
    assert_eq!(doc["key"], "../../outside");
    assert_eq!(doc["generation"], g.get());
    assert_eq!(doc["session"]["tokens"]["refresh_token"], "rt-1");
    assert_eq!(doc["session"]["user_id"], "@alice:example.org");

    let file = only_file(&dir.path().join("pending"));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["version"], FILE_FORMAT_VERSION);
    assert_eq!(doc["pending"]["state"], "../state");
    assert_eq!(doc["pending"]["code_verifier"], "verifier-SECRET-../state");
    assert_eq!(doc["pending"]["created_at"], 7);

    // A deleted session leaves its generation and no tokens.
    store.delete(&key).await.unwrap();
    let file = only_file(&dir.path().join("sessions"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("rt-1"), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["generation"], g.get());
    assert!(doc["session"].is_null());
}

#[cfg(unix)]
#[tokio::test]
async fn files_and_directories_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("store");
    // An existing, too open directory is tightened.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = FileStore::open(&dir).unwrap();
    let key = SessionKey::new("k");
    store.save(&key, &session("rt"), None).await.unwrap();
    store.put(&pending("s", 0)).await.unwrap();
    let guard = store.acquire(&key).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for sub in ["pending", "sessions", "locks"] {
        let sub = dir.join(sub);
        assert_eq!(mode(&sub), 0o700, "{}", sub.display());
        for f in files_in(&sub) {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    assert_eq!(mode(&dir.join("write.lock")), 0o600);
    drop(guard);
}

fn assert_names(err: &StoreError, path: &Path) {
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err} does not name {}",
        path.display()
    );
}

#[tokio::test]
async fn a_corrupt_session_is_reported_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let key = SessionKey::new("k");
    let g = store.save(&key, &session("rt-SECRET"), None).await.unwrap();
    let file = only_file(&dir.path().join("sessions"));
    let original = std::fs::read_to_string(&file).unwrap();

    for damaged in [
        original[..original.len() / 2].to_owned(), // torn
        "not json".to_owned(),
        original.replace("\"access_token\"", "\"access_tokn\""),
        original.replace("\"refresh_token\": \"rt-SECRET\"", "\"refresh_token\": 5"),
        String::new(),
        // A secret where a number belongs: the message must not quote it.
        original.replace("\"generation\": 1", "\"generation\": \"rt-SECRET\""),
    ] {
        std::fs::write(&file, &damaged).unwrap();
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
            assert_names(&err, &file);
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
        // Never repaired by deletion or overwrite.
        assert_eq!(std::fs::read_to_string(&file).unwrap(), damaged);
    }
    std::fs::write(&file, &original).unwrap();
    assert_eq!(
        refresh_of(&store.load(&key).await.unwrap().unwrap().session),
        "rt-SECRET"
    );
}

#[tokio::test]
async fn an_unknown_version_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let key = SessionKey::new("k");
    store.save(&key, &session("rt"), None).await.unwrap();
    let file = only_file(&dir.path().join("sessions"));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("\"version\": 1", "\"version\": 2")).unwrap();
    let err = store.load(&key).await.unwrap_err();
    match &err {
        StoreError::UnsupportedVersion {
            found, supported, ..
        } => assert_eq!((*found, *supported), (2, FILE_FORMAT_VERSION)),
        other => panic!("{other:?}"),
    }
    assert_names(&err, &file);

    std::fs::write(&file, text.replace("\"version\": 1,", "")).unwrap();
    let err = store.load(&key).await.unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
    assert_names(&err, &file);
}

#[tokio::test]
async fn a_document_under_the_wrong_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let (alice, mallory) = (SessionKey::new("alice"), SessionKey::new("mallory"));
    store.save(&alice, &session("rt-a"), None).await.unwrap();
    let alice_file = only_file(&dir.path().join("sessions"));
    store.save(&mallory, &session("rt-m"), None).await.unwrap();
    let mallory_file = files_in(&dir.path().join("sessions"))
        .into_iter()
        .find(|p| p != &alice_file)
        .unwrap();
    // Someone copies mallory's document over alice's.
    std::fs::copy(&mallory_file, &alice_file).unwrap();
    let err = store.load(&alice).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_names(&err, &alice_file);
    assert!(store.list().await.is_err());
}

#[tokio::test]
async fn a_corrupt_pending_entry_is_reported_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    store.put(&pending("s", 0)).await.unwrap();
    let file = only_file(&dir.path().join("pending"));
    std::fs::write(&file, b"{\"version\":1,\"pending\":{\"state\":").unwrap();
    let err = store.take("s", Timestamp::UNIX_EPOCH).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_names(&err, &file);
    let err = store
        .purge_expired(Timestamp::from_unix_seconds(u64::from(u32::MAX)))
        .await
        .unwrap_err();
    assert_names(&err, &file);
    assert!(file.exists());
}

#[tokio::test]
async fn abandoned_temporary_files_are_ignored_then_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let key = SessionKey::new("k");
    store.save(&key, &session("rt"), None).await.unwrap();
    // What a writer killed between creating and renaming its temporary file leaves.
    let sessions = dir.path().join("sessions");
    let temp = sessions.join(".tmp-99999-0");
    std::fs::write(&temp, b"{\"version\":1,\"ke").unwrap();
    assert_eq!(store.list().await.unwrap().len(), 1);
    assert!(store.load(&key).await.unwrap().is_some());
    assert_eq!(store.purge_expired(Timestamp::UNIX_EPOCH).await.unwrap(), 0);
    assert!(!temp.exists());
    assert_eq!(files_in(&sessions).len(), 1);
}
