//! `cargo xtask ci`: the gates every submission passes.
//!
//! ```text
//! cargo xtask ci [--only g1,g2] [--skip g1,g2]
//! gates: fmt clippy test doc sans-io wasm msrv fuzz conformance
//! ```

use crate::util::{self, Result, cargo, cargo_on, human, output, succeeds, timed};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// Crates whose normal dependency tree must hold no IO crate.
const SANS_IO_CRATES: &[&str] = &["matrix-oidc-core", "matrix-oidc-jose"];

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

/// Crates the core's default build must not compile: the `async-trait` macro (and `syn`'s full
/// parser behind it) belongs to the opt-in `transport` feature, which keeps the core's clean build
/// short for programs that drive it with their own IO.
const CORE_DEFAULT_FORBIDDEN: &[&str] = &["async-trait"];

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

/// Optional features whose code the default test run does not build, tested on their own.
const FEATURE_TESTS: &[(&str, &str)] = &[
    ("matrix-oidc-jose", "ring"),
    ("matrix-oidc-jose", "rustcrypto-next"),
];

/// Seconds each fuzz target runs in the smoke run: enough to load the seeds and mutate a little,
/// the point being that every target still builds and starts.
const FUZZ_SMOKE_SECONDS: u64 = 3;

/// Every gate, in the order they run (cheap and most telling first).
const GATES: &[&str] = &[
    "fmt",
    "clippy",
    "test",
    "doc",
    "sans-io",
    "wasm",
    "msrv",
    "fuzz",
    "conformance",
];

/// Which gates to run, from `--only` / `--skip`.
fn selected(args: &[String]) -> Result<Vec<&'static str>> {
    let mut only: Option<Vec<String>> = None;
    let mut skip: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let list = |v: Option<&String>| -> Result<Vec<String>> {
            let v = v.ok_or_else(|| format!("`{a}` needs a comma-separated list of gates"))?;
            Ok(v.split(',').map(|s| s.trim().to_owned()).collect())
        };
        match a.as_str() {
            "--only" => only = Some(list(it.next())?),
            "--skip" => skip.extend(list(it.next())?),
            other => return Err(format!("unknown argument `{other}` (try --only / --skip)")),
        }
    }
    for name in only.iter().flatten().chain(&skip) {
        if !GATES.contains(&name.as_str()) {
            return Err(format!("unknown gate `{name}`; gates: {}", GATES.join(" ")));
        }
    }
    Ok(GATES
        .iter()
        .copied()
        .filter(|g| only.as_ref().is_none_or(|o| o.iter().any(|x| x == g)))
        .filter(|g| !skip.iter().any(|x| x == g))
        .collect())
}

pub(crate) fn run(args: &[String]) -> Result {
    let gates = selected(args)?;
    let mut times: Vec<(&str, Duration)> = Vec::new();
    let (result, total) = timed(|| -> Result {
        for gate in &gates {
            let (r, took) = timed(|| run_gate(gate));
            times.push((gate, took));
            r?;
        }
        Ok(())
    });
    println!("\n==> timings");
    for (gate, took) in &times {
        println!("{gate:>11}  {}", human(*took));
    }
    println!("{:>11}  {}", "total", human(total));
    result?;
    println!("\nall gates passed: {}", gates.join(", "));
    Ok(())
}

fn run_gate(gate: &str) -> Result {
    match gate {
        "fmt" => {
            step("rustfmt");
            let mut c = cargo();
            c.args(["fmt", "--all", "--", "--check"]);
            util::run(c)?;
            crate::fuzz::fmt_check()
        }
        "clippy" => {
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
            // The client's tests and the workspace clippy above build it with its `oidc` feature
            // (its self dev-dependency turns it on); the default build is linted on its own.
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
            util::run(c)
        }
        "test" => tests(),
        "doc" => {
            step("docs (warnings denied)");
            let mut c = cargo();
            c.args(["doc", "--workspace", "--no-deps", "--locked"]);
            c.env("RUSTDOCFLAGS", "-D warnings");
            util::run(c)
        }
        "sans-io" => sans_io(),
        "wasm" => {
            step("wasm32-unknown-unknown module: built, and no import from `env`");
            crate::wasm::gate()
        }
        "msrv" => msrv(),
        "fuzz" => {
            step("fuzz smoke run (every target builds and runs a few seconds)");
            crate::fuzz::run_all(FUZZ_SMOKE_SECONDS)
        }
        "conformance" => {
            step("conformance against the real OP and Synapse");
            crate::conformance::run(&[])
        }
        other => Err(format!("unknown gate `{other}`")),
    }
}

/// The test suite: cargo-nextest when the machine has it (doctests then run separately, since
/// nextest does not run them), `cargo test` otherwise.
fn tests() -> Result {
    let mut probe = cargo();
    probe.args(["nextest", "--version"]);
    if succeeds(probe) {
        step("tests (cargo-nextest)");
        let mut c = cargo();
        c.args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]);
        util::run(c)?;
        for (krate, feature) in FEATURE_TESTS {
            step(&format!("tests of {krate} with `{feature}`"));
            let mut c = cargo();
            c.args([
                "nextest",
                "run",
                "-p",
                krate,
                "--features",
                feature,
                "--locked",
            ]);
            util::run(c)?;
        }
        step("doctests");
        let mut c = cargo();
        c.args(["test", "--doc", "--workspace", "--locked"]);
        util::run(c)
    } else {
        step("tests (cargo test; cargo-nextest is not installed)");
        let mut c = cargo();
        c.args(["test", "--workspace", "--locked"]);
        util::run(c)?;
        for (krate, feature) in FEATURE_TESTS {
            step(&format!("tests of {krate} with `{feature}`"));
            let mut c = cargo();
            c.args(["test", "-p", krate, "--features", feature, "--locked"]);
            util::run(c)?;
        }
        Ok(())
    }
}

fn sans_io() -> Result {
    step("sans-IO dependency trees");
    let members = workspace_packages()?;
    for krate in SANS_IO_CRATES {
        if !members.iter().any(|p| p.name == *krate) {
            println!("{krate}: not in the workspace yet");
            continue;
        }
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
            if *krate == "matrix-oidc-core" && CORE_DEFAULT_FORBIDDEN.contains(&name) {
                return Err(format!(
                    "{krate} compiles {name} without its `transport` feature"
                ));
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
    Ok(())
}

/// A workspace package, as `cargo metadata` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) publishable: bool,
    pub(crate) has_lib: bool,
    pub(crate) rust_version: Option<String>,
}

/// The workspace members.
pub(crate) fn workspace_packages() -> Result<Vec<Package>> {
    let mut c = cargo();
    c.args(["metadata", "--no-deps", "--format-version", "1", "--locked"]);
    parse_packages(&output(c)?)
}

fn parse_packages(metadata: &str) -> Result<Vec<Package>> {
    let v: serde_json::Value =
        serde_json::from_str(metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = v["packages"]
        .as_array()
        .ok_or("cargo metadata: no `packages`")?;
    Ok(packages
        .iter()
        .map(|p| Package {
            name: p["name"].as_str().unwrap_or_default().to_owned(),
            // `publish = false` appears as an empty registry list; absent means publishable.
            publishable: !p["publish"].as_array().is_some_and(|a| a.is_empty()),
            has_lib: p["targets"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "lib"))
                })
            }),
            rust_version: p["rust_version"].as_str().map(str::to_owned),
        })
        .collect())
}

/// Builds every published library crate with the `rust-version` it declares.
fn msrv() -> Result {
    let mut by_version: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in workspace_packages()? {
        if p.publishable && p.has_lib {
            let v = p
                .rust_version
                .ok_or_else(|| format!("{} declares no rust-version", p.name))?;
            by_version.entry(v).or_default().push(p.name);
        }
    }
    for (version, crates) in by_version {
        step(&format!("MSRV {version}: {}", crates.join(", ")));
        let mut probe = cargo_on(&version);
        probe.arg("--version");
        if !succeeds(probe) {
            let mut c = Command::new("rustup");
            c.args(["toolchain", "install", &version, "--profile", "minimal"]);
            util::run(c)?;
        }
        let mut c = cargo_on(&version);
        c.args(["build", "--lib", "--locked"]);
        for k in &crates {
            c.args(["-p", k]);
        }
        util::run(c)?;
    }
    Ok(())
}

fn step(name: &str) {
    println!("\n==> {name}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn gate_selection() {
        assert_eq!(selected(&[]).unwrap(), GATES);
        assert_eq!(
            selected(&args(&["--only", "wasm,msrv"])).unwrap(),
            ["wasm", "msrv"]
        );
        assert_eq!(
            selected(&args(&["--skip", "fuzz,conformance", "--skip", "msrv,doc"])).unwrap(),
            ["fmt", "clippy", "test", "sans-io", "wasm"]
        );
        assert!(selected(&args(&["--only", "lint"])).is_err());
        assert!(selected(&args(&["--only"])).is_err());
        assert!(selected(&args(&["--fast"])).is_err());
    }

    #[test]
    fn metadata_marks_library_crates_and_their_msrv() {
        let json = r#"{"packages":[
            {"name":"matrix-oidc-core","publish":null,"rust_version":"1.85",
             "targets":[{"kind":["lib"]}]},
            {"name":"xtask","publish":[],"rust_version":"1.85","targets":[{"kind":["bin"]}]},
            {"name":"matrix-oidc-cli","publish":null,"rust_version":null,
             "targets":[{"kind":["bin"]}]}]}"#;
        let p = parse_packages(json).unwrap();
        assert_eq!(
            p[0],
            Package {
                name: "matrix-oidc-core".into(),
                publishable: true,
                has_lib: true,
                rust_version: Some("1.85".into())
            }
        );
        assert!(!p[1].publishable && !p[1].has_lib);
        assert!(p[2].publishable && !p[2].has_lib && p[2].rust_version.is_none());
        assert!(parse_packages("{}").is_err());
    }
}
