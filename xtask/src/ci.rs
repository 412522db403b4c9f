//! `cargo xtask ci`: the gates every submission passes.

use crate::util::{self, Result, cargo, output};
use std::process::Command;

/// Crates that must build for `wasm32-unknown-unknown`.
const WASM_CRATES: &[&str] = &["matrix-oidc-core", "matrix-oidc-jose"];

/// Crates whose normal dependency tree must hold no IO crate.
const SANS_IO_CRATES: &[&str] = &["matrix-oidc-core"];

/// Crates that would mean IO in a sans-IO crate's tree.
const IO_CRATES: &[&str] = &[
    "tokio",
    "reqwest",
    "hyper",
    "mio",
    "socket2",
    "async-std",
    "smol",
];

/// Crypto crates the core must not depend on: signature verification lives in matrix-oidc-jose, so
/// Matrix users do not pay for OpenID Connect.
const CORE_FORBIDDEN: &[&str] = &["rsa", "p256", "p384", "ed25519-dalek", "ring", "aws-lc-rs"];

/// The same for the async client without its `oidc` feature (the JOSE crate included).
const CLIENT_FORBIDDEN: &[&str] = &[
    "matrix-oidc-jose",
    "rsa",
    "p256",
    "p384",
    "ed25519-dalek",
    "ring",
    "aws-lc-rs",
];

pub(crate) fn run_gates(_args: &[String]) -> Result {
    step("rustfmt");
    let mut c = cargo();
    c.args(["fmt", "--all", "--", "--check"]);
    util::run(c)?;

    step("clippy (warnings denied)");
    let mut c = cargo();
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    util::run(c)?;

    step("tests");
    let mut c = cargo();
    c.args(["test", "--workspace", "--locked"]);
    util::run(c)?;

    // The client's tests run with its `oidc` feature (its self dev-dependency turns it on), and so
    // does the workspace clippy above; the default build is linted here on its own.
    step("clippy of matrix-oidc without the oidc feature");
    let mut c = cargo();
    c.args([
        "clippy",
        "-p",
        "matrix-oidc",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    util::run(c)?;

    step("tests of the optional ring backend");
    let mut c = cargo();
    c.args([
        "test",
        "-p",
        "matrix-oidc-jose",
        "--features",
        "ring",
        "--locked",
    ]);
    util::run(c)?;

    step("docs (warnings denied)");
    let mut c = cargo();
    c.args(["doc", "--workspace", "--no-deps", "--locked"]);
    c.env("RUSTDOCFLAGS", "-D warnings");
    util::run(c)?;

    step("sans-IO dependency trees");
    for krate in SANS_IO_CRATES {
        let mut c = cargo();
        c.args([
            "tree", "-p", krate, "-e", "normal", "--prefix", "none", "--locked",
        ]);
        let tree = output(c)?;
        for line in tree.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if IO_CRATES.contains(&name) {
                return Err(format!("{krate} depends on the IO crate {name}"));
            }
            if *krate == "matrix-oidc-core" && CORE_FORBIDDEN.contains(&name) {
                return Err(format!("{krate} depends on the crypto crate {name}"));
            }
        }
        println!("{krate}: no IO crate in its normal dependencies");
    }

    step("matrix-oidc without oidc: no JOSE crate");
    let mut c = cargo();
    c.args([
        "tree",
        "-p",
        "matrix-oidc",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--locked",
    ]);
    let tree = output(c)?;
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if CLIENT_FORBIDDEN.contains(&name) {
            return Err(format!(
                "matrix-oidc depends on {name} without its `oidc` feature"
            ));
        }
    }
    println!("matrix-oidc: no JOSE crate without the oidc feature");

    step("wasm32-unknown-unknown build");
    let mut c = Command::new("rustup");
    c.args(["target", "add", "wasm32-unknown-unknown"]);
    util::run(c)?;
    for krate in WASM_CRATES {
        let mut c = cargo();
        c.args([
            "build",
            "-p",
            krate,
            "--target",
            "wasm32-unknown-unknown",
            "--locked",
        ]);
        util::run(c)?;
    }

    step("conformance against the real OP and Synapse");
    crate::conformance::run(&[])?;
    Ok(())
}

pub(crate) fn run(args: &[String]) -> Result {
    run_gates(args)?;
    println!("\nall gates passed");
    Ok(())
}

fn step(name: &str) {
    println!("\n==> {name}");
}
