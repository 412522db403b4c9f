//! Two processes share one file store and one session; both ask for a token when it is due. The
//! store's cross-process lock makes one of them refresh and the other pick up the result.
//!
//! The children are this test binary re-executed to run only [`child_process`] (ignored in normal
//! runs), configured through environment variables; they talk to the parent's in-process server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use matrix_oidc::storage::{FileStore, SessionKey, SessionLock};
use matrix_oidc::{Clock, ManualClock, Timestamp};
use std::process::Stdio;
use std::time::Duration;
use support::server::FakeServer;
use support::{T0, builder, login};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const ROLE: &str = "MATRIX_OIDC_CLIENT_TEST_ROLE";
const STORE: &str = "MATRIX_OIDC_CLIENT_TEST_STORE";
const KEY: &str = "MATRIX_OIDC_CLIENT_TEST_KEY";
const NOW: &str = "MATRIX_OIDC_CLIENT_TEST_NOW_MS";

/// The body of every child: restore the session, say READY, wait for GO, ask for a token, print it.
#[test]
#[ignore = "entry point of the child processes of the multi-process test"]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    assert_eq!(role, "refresher");
    let store = FileStore::open(std::env::var(STORE).unwrap()).unwrap();
    let key = SessionKey::new(std::env::var(KEY).unwrap());
    let now: u64 = std::env::var(NOW).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = ManualClock::new(Timestamp::from_unix_millis(now));
        let client = builder(&clock).store(store).build();
        let session = client.restore(&key).await.unwrap().unwrap();
        println!("READY");
        let mut line = String::new();
        BufReader::new(tokio::io::stdin())
            .read_line(&mut line)
            .await
            .unwrap();
        assert_eq!(line.trim(), "GO");
        let token = session.access_token().await.unwrap();
        println!("TOKEN {} {}", token.generation(), token.expose());
    });
}

fn spawn_child(store: &std::path::Path, key: &SessionKey, now: Timestamp) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(ROLE, "refresher")
        .env(STORE, store)
        .env(KEY, key.as_str())
        .env(NOW, now.as_unix_millis().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    prefix: &str,
) -> String {
    loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("child exited before printing {prefix}"));
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.trim().to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_file_store_refresh_once() {
    let server = FakeServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let clock = ManualClock::new(T0);
    let key = {
        let client = builder(&clock).store(store.clone()).build();
        login(&client, &server).await.key().clone()
    };
    // Both children see the same instant, past the refresh margin.
    let due = clock.now() + Duration::from_secs(280);

    server.pause_token_endpoint();
    let mut children = Vec::new();
    for _ in 0..2 {
        let mut child = spawn_child(dir.path(), &key, due);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        read_until(&mut lines, "READY").await;
        children.push((child, lines));
    }
    for (child, _) in &mut children {
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b"GO\n").await.unwrap();
        stdin.flush().await.unwrap();
    }
    // One child is refreshing, and holds the store's lock while it waits for the answer.
    server.token_requests_held(1).await;
    assert!(
        store.try_acquire(&key).await.unwrap().is_none(),
        "the refreshing process holds the lock"
    );
    server.resume_token_endpoint();

    let mut tokens = Vec::new();
    for (mut child, mut lines) in children {
        tokens.push(read_until(&mut lines, "TOKEN").await);
        assert!(child.wait().await.unwrap().success());
    }
    assert_eq!(tokens[0], tokens[1], "both use the one refreshed token");
    assert!(tokens[0].starts_with("1 "), "generation 1: {}", tokens[0]);
    assert_eq!(server.count("token:refresh_token"), 1);
    let token = tokens[0].split(' ').nth(1).unwrap();
    assert!(server.access_token_valid(token));
}
