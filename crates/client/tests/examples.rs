//! Runs the programs in `examples/` against the in-process server, playing the user: read the
//! authorization URL they print, approve it, type the callback URL back.
//!
//! `cargo test` builds the examples before running tests; this test finds them next to its own
//! binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use support::server::FakeServer;

fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let path = deps
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test -p matrix-oidc`, which builds the examples",
        path.display()
    );
    path
}

/// Runs `name` against `server`, approves the login, and returns everything it printed.
fn run(name: &str, server: &FakeServer) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(example(name))
        .arg(server.base.as_str())
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "exited early:\n{printed}"
        );
        printed.push_str(&line);
        if line.starts_with("http") {
            break line.trim().to_owned();
        }
    };
    let callback = server.approve(&url);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{callback}").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    printed.push_str(&rest);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{name} failed:\n{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reqwest_login_example_signs_in() {
    let server = FakeServer::start().await;
    let printed = tokio::task::spawn_blocking({
        let server = std::sync::Arc::new(server);
        let s = server.clone();
        move || (run("login", &s), s)
    })
    .await
    .unwrap();
    let (printed, server) = printed;
    assert!(
        printed.contains("Signed in as @alice:localhost on device "),
        "{printed}"
    );
    assert_eq!(server.count("token:authorization_code"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_core_example_runs_the_whole_life_cycle() {
    let server = std::sync::Arc::new(FakeServer::start().await);
    let s = server.clone();
    let printed = tokio::task::spawn_blocking(move || run("blocking_core", &s))
        .await
        .unwrap();
    for line in [
        "Authorization server: http://127.0.0.1:",
        "Signed in as @alice:localhost on device ",
        "Refreshed the access token",
        "Logged out",
    ] {
        assert!(printed.contains(line), "{line:?} missing from:\n{printed}");
    }
    assert_eq!(server.count("token:refresh_token"), 1);
    assert_eq!(server.count("revoke"), 1);
    assert_eq!(server.revocations().len(), 1);
}
