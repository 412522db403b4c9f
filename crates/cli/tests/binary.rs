//! The real binary, run as a person or a script would, on everything that needs no servers: help,
//! usage errors, the store location, exit codes and the `--json` error format. Sign-in against real
//! servers is in `cargo xtask cli-e2e` (and the demo).

// A test binary: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_matrix-oidc"));
    for var in [
        "MATRIX_OIDC_STORE",
        "MATRIX_OIDC_CA_FILE",
        "MATRIX_OIDC_SESSION",
        "MATRIX_OIDC_CLIENT_URI",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(args: &[&str], store: &Path) -> Output {
    bin().arg("--store").arg(store).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let out = bin().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("Usage: matrix-oidc"), "{help}");
    assert!(help.contains("Exit codes:"));
    let out = bin().args(["login", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--device"));
    let out = bin().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("matrix-oidc "));
}

#[test]
fn usage_errors_exit_2_on_stderr() {
    for args in [
        &["frobnicate"][..],
        &["login"],
        &["login", "--device", "--create", "example.org"],
        &["discover", "ftp://example.org"],
        &[],
    ] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn without_a_session_commands_exit_3_and_say_how_to_sign_in() {
    let store = tempfile::tempdir().unwrap();
    for command in ["whoami", "token", "refresh", "logout", "account"] {
        let out = run(&[command], store.path());
        assert_eq!(out.status.code(), Some(3), "{command}");
        assert!(out.stdout.is_empty(), "{command}: nothing on stdout");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("error: not signed in: no session is stored in "),
            "{command}: {err}"
        );
        assert!(
            err.contains("hint: sign in first: `matrix-oidc login"),
            "{err}"
        );
    }
}

#[test]
fn json_errors_are_one_object_on_stderr() {
    let store = tempfile::tempdir().unwrap();
    let out = run(&["--json", "token"], store.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(v["error"]["kind"], "no_session");
    assert_eq!(v["error"]["exit_code"], 3);
}

#[test]
fn sessions_lists_an_empty_store() {
    let store = tempfile::tempdir().unwrap();
    let out = run(&["sessions"], store.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("No sessions in {}.\n", store.path().display())
    );
    let out = run(&["--json", "sessions"], store.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sessions"], serde_json::json!([]));
}

#[cfg(target_os = "linux")]
#[test]
fn the_default_store_follows_xdg() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("xdg-data");
    let out = bin()
        .arg("sessions")
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", &data)
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        format!("No sessions in {}.\n", data.join("matrix-oidc").display())
    );
    let out = bin()
        .arg("sessions")
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        format!(
            "No sessions in {}.\n",
            home.path().join(".local/share/matrix-oidc").display()
        )
    );
}

#[test]
fn an_unreachable_server_exits_4_naming_it() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = run(
        &["--insecure-loopback-http", "discover", &url],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("error: discovering {url}/ failed: ")),
        "{err}"
    );
    // The browser flow fails the same way, before any browser is involved.
    let out = run(
        &["--insecure-loopback-http", "login", "--no-browser", &url],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
}

#[test]
fn plain_http_needs_the_development_flag() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = run(&["discover", &url], store.path());
    assert_eq!(out.status.code(), Some(5));
    assert!(text(&out.stderr).contains(
        "hint: for a local development server over plain http, add --insecure-loopback-http"
    ));
}

#[test]
fn a_bad_device_id_or_ca_file_is_refused_before_any_request() {
    let store = tempfile::tempdir().unwrap();
    let out = run(
        &["login", "--device-id", "has space", "https://127.0.0.1:1"],
        store.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--device-id"));
    let missing = store.path().join("nope.pem");
    let out = bin()
        .arg("--ca-file")
        .arg(&missing)
        .args(["discover", "https://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nope.pem"));
}
