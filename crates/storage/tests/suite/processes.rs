//! Tests with several processes: crash safety under SIGKILL and the cross-process lock.
//!
//! Child processes are this test binary re-executed to run only [`child_process`] (ignored in
//! normal runs), told what to do through environment variables.

use crate::common::{refresh_of, session};
use matrix_oidc_core::{RandomSource, Secret, SeededRandom};
use matrix_oidc_storage::{FileStore, SessionKey, SessionLock, SessionStore, SqliteStore};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROLE: &str = "MATRIX_OIDC_STORAGE_TEST_ROLE";
const KIND: &str = "MATRIX_OIDC_STORAGE_TEST_KIND";
const PATH: &str = "MATRIX_OIDC_STORAGE_TEST_PATH";
const LOG: &str = "MATRIX_OIDC_STORAGE_TEST_LOG";
const ID: &str = "MATRIX_OIDC_STORAGE_TEST_ID";

type Stores = (Arc<dyn SessionStore>, Arc<dyn SessionLock>);

fn open(kind: &str, path: &Path) -> Stores {
    match kind {
        "file" => {
            let s = FileStore::open(path).unwrap();
            (Arc::new(s.clone()), Arc::new(s))
        }
        "sqlite" => {
            let s = SqliteStore::open(path).unwrap();
            (Arc::new(s.clone()), Arc::new(s))
        }
        other => panic!("unknown store kind {other}"),
    }
}

fn child(role: &str, kind: &str, path: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--ignored",
        "--exact",
        "processes::child_process",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(ROLE, role)
    .env(KIND, kind)
    .env(PATH, path)
    .stdin(Stdio::null())
    .stderr(Stdio::inherit());
    c
}

/// The body of every child process; does nothing unless a parent test set [`ROLE`].
#[test]
#[ignore = "entry point of the child processes of the multi-process tests"]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let kind = std::env::var(KIND).unwrap();
    let path = std::path::PathBuf::from(std::env::var(PATH).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (store, lock) = open(&kind, &path);
        match role.as_str() {
            "crash-writer" => crash_writer(&*store).await,
            "lock-contender" => {
                let log = std::env::var(LOG).unwrap();
                let id = std::env::var(ID).unwrap();
                lock_contender(&*lock, Path::new(&log), &id).await
            }
            "lock-holder" => {
                let _guard = lock.acquire(&SessionKey::new("shared")).await.unwrap();
                println!("LOCKED");
                std::io::stdout().flush().unwrap();
                std::thread::sleep(Duration::from_secs(60));
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// A session whose tokens are large enough that a document spans several disk blocks, so a
/// non-atomic write would have room to tear.
fn big_session(n: u64) -> matrix_oidc_core::Session {
    let mut s = session(&format!("rt-{n}"));
    s.tokens.id_token = Some(Secret::new(format!("{n:0>12}.").repeat(1_000)));
    s
}

fn counter_of(refresh: &str) -> u64 {
    refresh.trim_start_matches("rt-").parse().unwrap()
}

/// Rotates the refresh token forever, printing `ACK <n> <generation>` after each save returns.
async fn crash_writer(store: &dyn SessionStore) {
    let key = SessionKey::new("crash");
    let mut out = std::io::stdout().lock();
    loop {
        let current = store.load(&key).await.unwrap();
        let (n, expected) = match &current {
            Some(s) => (counter_of(&refresh_of(&s.session)) + 1, Some(s.generation)),
            None => (1, None),
        };
        let g = store.save(&key, &big_session(n), expected).await.unwrap();
        writeln!(out, "ACK {n} {g}").unwrap();
        out.flush().unwrap();
    }
}

fn run_crash_rounds(kind: &str, path: &Path) {
    const ROUNDS: usize = 25;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = SeededRandom::new(seed);
    let mut acknowledged_total = 0;
    let mut last_acked = 0u64;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for round in 0..ROUNDS {
        let mut c = child("crash-writer", kind, path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = c.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split_whitespace();
                if parts.next() == Some("ACK") {
                    let n: u64 = parts.next().unwrap().parse().unwrap();
                    let g: u64 = parts.next().unwrap().parse().unwrap();
                    if tx.send((n, g)).is_err() {
                        break;
                    }
                }
            }
        });
        // Kill it at a random moment once it is writing.
        let first = rx.recv_timeout(Duration::from_secs(30));
        let mut delay = [0u8; 1];
        rng.fill(&mut delay).unwrap();
        std::thread::sleep(Duration::from_micros(u64::from(delay[0]) * 160));
        c.kill().unwrap(); // SIGKILL on Unix
        c.wait().unwrap();
        reader.join().unwrap();
        let first = first.unwrap_or_else(|e| {
            panic!("round {round} (seed {seed}): the writer never acknowledged: {e}")
        });
        let mut acked = vec![first];
        acked.extend(rx.try_iter());
        let (n, g) = *acked.iter().max().unwrap();
        assert!(
            n > last_acked || round == 0,
            "round {round}: counter went back"
        );
        acknowledged_total += acked.len();
        last_acked = n;

        // Every document parses, and the newest acknowledged value (or a newer one) is there.
        let (store, _) = open(kind, path);
        let listed = runtime.block_on(store.list()).unwrap_or_else(|e| {
            panic!("round {round} (seed {seed}): the store is damaged after SIGKILL: {e}")
        });
        assert_eq!(listed.len(), 1);
        let stored = &listed[0];
        let on_disk = counter_of(&refresh_of(&stored.session));
        assert!(
            on_disk >= n && stored.generation.get() >= g,
            "round {round} (seed {seed}): acknowledged rt-{n} (generation {g}) but the store has \
             rt-{on_disk} (generation {})",
            stored.generation
        );
        assert_eq!(
            stored.session,
            big_session(on_disk),
            "round {round}: torn document"
        );
        last_acked = last_acked.max(on_disk);
    }
    // The child wrote many times in all: kills landed among writes, not only before them.
    assert!(
        acknowledged_total > ROUNDS,
        "only {acknowledged_total} writes"
    );
    eprintln!("{kind}: {acknowledged_total} acknowledged writes, newest rt-{last_acked}");
}

#[test]
fn file_store_survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    run_crash_rounds("file", &dir.path().join("store"));
    // Documents are exactly the session plus, at most, temporary files from killed writers.
    for entry in std::fs::read_dir(dir.path().join("store/sessions")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name.ends_with(".json") || name.starts_with(".tmp-"),
            "{name}"
        );
    }
}

#[test]
fn sqlite_store_survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    run_crash_rounds("sqlite", &dir.path().join("app.db"));
}

/// Takes the shared lock `ROUNDS` times, logging `enter`/`leave` around a pause.
async fn lock_contender(lock: &dyn SessionLock, log: &Path, id: &str) {
    const ROUNDS: usize = 15;
    let key = SessionKey::new("shared");
    let append = |line: String| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .unwrap();
        f.write_all(line.as_bytes()).unwrap();
    };
    for _ in 0..ROUNDS {
        let guard = lock.acquire(&key).await.unwrap();
        append(format!("enter {id}\n"));
        std::thread::sleep(Duration::from_millis(3));
        append(format!("leave {id}\n"));
        drop(guard);
    }
}

fn wait_with_deadline(mut c: Child, deadline: Instant) {
    loop {
        if let Some(status) = c.try_wait().unwrap() {
            assert!(status.success(), "child failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("child did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run_lock_contention(kind: &str, path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let children: Vec<Child> = ["a", "b"]
        .iter()
        .map(|id| {
            child("lock-contender", kind, path)
                .env(LOG, &log)
                .env(ID, id)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for c in children {
        wait_with_deadline(c, deadline);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * 2 * 15, "{text}");
    for pair in lines.chunks(2) {
        let [enter, leave] = pair else { unreachable!() };
        let who = enter.strip_prefix("enter ").expect(&text);
        assert_eq!(*leave, format!("leave {who}"), "interleaved:\n{text}");
    }
}

#[test]
fn file_lock_excludes_another_process() {
    let dir = tempfile::tempdir().unwrap();
    run_lock_contention("file", &dir.path().join("store"));
}

#[test]
fn sqlite_lock_excludes_another_process() {
    let dir = tempfile::tempdir().unwrap();
    run_lock_contention("sqlite", &dir.path().join("app.db"));
}

/// A process killed while holding the lock releases it (no stale lock needs clearing).
fn run_killed_holder(kind: &str, path: &Path) {
    let mut c = child("lock-holder", kind, path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Skip the test harness's own lines.
    let locked = BufReader::new(c.stdout.take().unwrap())
        .lines()
        .any(|line| line.unwrap() == "LOCKED");
    assert!(locked, "the holder exited without taking the lock");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (_, lock) = open(kind, path);
    let key = SessionKey::new("shared");
    assert!(runtime.block_on(lock.try_acquire(&key)).unwrap().is_none());
    c.kill().unwrap();
    c.wait().unwrap();
    assert!(runtime.block_on(lock.try_acquire(&key)).unwrap().is_some());
}

#[test]
fn file_lock_is_released_when_its_holder_dies() {
    let dir = tempfile::tempdir().unwrap();
    run_killed_holder("file", &dir.path().join("store"));
}

#[test]
fn sqlite_lock_is_released_when_its_holder_dies() {
    let dir = tempfile::tempdir().unwrap();
    run_killed_holder("sqlite", &dir.path().join("app.db"));
}
