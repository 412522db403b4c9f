//! The file store's documents, which another process (or a damaged disk) may have written: each input
//! replaces the document of a known session or pending login, which is then read back through the
//! public API (`load`, `list`, `take`).
#![no_main]

use futures_lite::future::block_on;
use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::{ResponseMode, Secret, Session, Timestamp, TokenSet};
use matrix_oidc_storage::{FileStore, PendingStore, SessionKey, SessionStore, StoreError};
use std::path::PathBuf;
use std::sync::OnceLock;

struct Fixture {
    store: FileStore,
    session_file: PathBuf,
    pending_file: PathBuf,
    state: String,
}

/// The only `.json` file in `dir`.
fn only_document(dir: PathBuf) -> PathBuf {
    let mut docs = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"));
    match (docs.next(), docs.next()) {
        (Some(p), None) => p,
        _ => panic!("expected exactly one document in {}", dir.display()),
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("matrix-oidc-fuzz-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = FileStore::open(&dir).unwrap_or_else(|e| panic!("open store: {e}"));
        let pending = matrix_oidc_fuzz::pending(ResponseMode::Fragment);
        let session = Session::from_pending(pending, TokenSet::new(Secret::new("mat_access")));
        block_on(store.save(&key(), &session, None)).unwrap_or_else(|e| panic!("save: {e}"));
        block_on(store.put(pending)).unwrap_or_else(|e| panic!("put: {e}"));
        Fixture {
            session_file: only_document(dir.join("sessions")),
            pending_file: only_document(dir.join("pending")),
            state: pending.state.clone(),
            store,
        }
    })
}

fn key() -> SessionKey {
    SessionKey::new("fuzz")
}

fn expected(e: &StoreError) {
    assert!(
        matches!(
            e,
            StoreError::Corrupt { .. } | StoreError::UnsupportedVersion { .. }
        ),
        "a damaged document must be reported as such, got {e:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, doc)) = data.split_first() else {
        return;
    };
    let f = fixture();
    if which & 1 == 0 {
        std::fs::write(&f.session_file, doc).unwrap_or_else(|e| panic!("write: {e}"));
        match block_on(f.store.load(&key())) {
            Ok(Some(stored)) => assert_eq!(stored.key, key()),
            Ok(None) => {}
            Err(e) => expected(&e),
        }
        if let Err(e) = block_on(f.store.list()) {
            expected(&e);
        }
    } else {
        std::fs::write(&f.pending_file, doc).unwrap_or_else(|e| panic!("write: {e}"));
        let now = Timestamp::from_unix_seconds(1_700_000_100);
        match block_on(f.store.take(&f.state, now)) {
            Ok(Some(p)) => assert_eq!(p.state, f.state),
            Ok(None) => {}
            Err(e) => expected(&e),
        }
    }
});
