//! `cargo xtask fuzz`: runs every cargo-fuzz target of `fuzz/` for a while.
//!
//! ```text
//! cargo xtask fuzz [--seconds N] [--target NAME]... [--record]
//! ```
//!
//! Installs what it needs on a fresh machine (the nightly toolchain through rustup, cargo-fuzz through
//! `cargo install`), builds all targets once, then runs each on its committed seeds
//! (`fuzz/seeds/<target>`) plus its working corpus (`fuzz/corpus/<target>`, not committed). A crash
//! stops the run with the path of the reproducing input under `fuzz/artifacts/`. `--record` writes the
//! executions per target into `docs/security.md`.

use crate::util::{self, Result, cargo, cargo_on, human, succeeds, timed, workspace_root};
use std::process::{Command, Stdio};

/// The toolchain cargo-fuzz builds with (sanitizers and `-Zbuild-std` want nightly).
const NIGHTLY: &str = "nightly";
/// The marker pair in `docs/security.md` between which `--record` writes.
const RECORD_MARKER: &str = "fuzz-results";
/// libFuzzer's limits for every target: the largest input, a per-input time limit (a hang is a bug
/// too), and memory.
const LIBFUZZER_LIMITS: &[&str] = &["-max_len=65536", "-timeout=10", "-rss_limit_mb=2048"];

/// What one target did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetRun {
    pub(crate) target: String,
    pub(crate) execs: u64,
    pub(crate) seconds: u64,
    pub(crate) corpus: usize,
}

pub(crate) fn run(args: &[String]) -> Result {
    let mut seconds = 60;
    let mut only = Vec::new();
    let mut record = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|s| *s > 0)
                    .ok_or("`--seconds` needs a positive number")?;
            }
            "--target" => only.push(it.next().ok_or("`--target` needs a name")?.clone()),
            "--record" => record = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let runs = fuzz(seconds, &only)?;
    if record {
        let path = workspace_root().join("docs/security.md");
        let doc = util::read(&path)?;
        let table = record_table(&runs, seconds);
        util::write(&path, &util::replace_marked(&doc, RECORD_MARKER, &table)?)?;
        println!("recorded in {}", path.display());
    }
    Ok(())
}

/// Every target for `seconds` each (the CI smoke run).
pub(crate) fn run_all(seconds: u64) -> Result {
    fuzz(seconds, &[]).map(|_| ())
}

/// `cargo fmt --check` on the fuzz crate, which is its own workspace and so not reached by
/// `cargo fmt --all`.
pub(crate) fn fmt_check() -> Result {
    let mut c = cargo();
    c.args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]);
    util::run(c)
}

fn fuzz(seconds: u64, only: &[String]) -> Result<Vec<TargetRun>> {
    ensure_tools()?;
    let targets = list_targets()?;
    for t in only {
        if !targets.contains(t) {
            return Err(format!(
                "no fuzz target `{t}`; targets: {}",
                targets.join(" ")
            ));
        }
    }
    let chosen: Vec<&String> = targets
        .iter()
        .filter(|t| only.is_empty() || only.contains(t))
        .collect();

    let mut c = cargo_on(NIGHTLY);
    c.args(["fuzz", "build", "--fuzz-dir", "fuzz"]);
    util::run(c)?;

    let mut runs = Vec::new();
    for target in chosen {
        let (r, took) = timed(|| run_target(target, seconds));
        let r = r?;
        println!(
            "{:<24} {:>12} execs in {:>3}s ({:>9}/s), corpus {:>5}  [{}]",
            r.target,
            r.execs,
            r.seconds,
            r.execs / r.seconds.max(1),
            r.corpus,
            human(took)
        );
        runs.push(r);
    }
    Ok(runs)
}

fn run_target(target: &str, seconds: u64) -> Result<TargetRun> {
    let root = workspace_root();
    let corpus = root.join("fuzz/corpus").join(target);
    let seeds = root.join("fuzz/seeds").join(target);
    std::fs::create_dir_all(&corpus)
        .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
    let mut c = cargo_on(NIGHTLY);
    c.args(["fuzz", "run", "--fuzz-dir", "fuzz", target]);
    c.arg(&corpus);
    if seeds.is_dir() {
        c.arg(&seeds);
    }
    c.arg("--");
    c.arg(format!("-max_total_time={seconds}"));
    c.args(LIBFUZZER_LIMITS);
    c.arg("-print_final_stats=1");
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let cmdline = util::describe(&c);
    let out = c
        .output()
        .map_err(|e| format!("cannot start `{cmdline}`: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "fuzz target `{target}` failed ({}); the input is under fuzz/artifacts/{target}/\n$ {cmdline}\n{}",
            out.status,
            tail.join("\n")
        ));
    }
    let execs = final_stat(&log, "stat::number_of_executed_units")
        .ok_or_else(|| format!("`{target}`: libFuzzer printed no execution count"))?;
    let corpus_len = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
    Ok(TargetRun {
        target: target.to_owned(),
        execs,
        seconds,
        corpus: corpus_len,
    })
}

/// A `stat::name: value` line of libFuzzer's final statistics.
fn final_stat(log: &str, name: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        let rest = l
            .trim()
            .strip_prefix(name)?
            .trim_start()
            .strip_prefix(':')?;
        rest.trim().parse().ok()
    })
}

fn ensure_tools() -> Result {
    let mut probe = cargo_on(NIGHTLY);
    probe.arg("--version");
    if !succeeds(probe) {
        let mut c = Command::new("rustup");
        c.args(["toolchain", "install", NIGHTLY, "--profile", "minimal"]);
        util::run(c)?;
    }
    let mut probe = cargo_on(NIGHTLY);
    probe.args(["fuzz", "--version"]);
    if !succeeds(probe) {
        let mut c = cargo();
        c.args(["install", "cargo-fuzz", "--locked"]);
        util::run(c)?;
    }
    Ok(())
}

fn list_targets() -> Result<Vec<String>> {
    let manifest = util::read(&workspace_root().join("fuzz/Cargo.toml"))?;
    let targets = bin_names(&manifest);
    if targets.is_empty() {
        return Err("fuzz/Cargo.toml declares no [[bin]] target".into());
    }
    Ok(targets)
}

/// The `name` of every `[[bin]]` table of a manifest (the format cargo-fuzz itself writes).
fn bin_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if in_bin {
            if let Some(v) = line.strip_prefix("name") {
                if let Some(v) = v.trim_start().strip_prefix('=') {
                    names.push(v.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    names
}

fn record_table(runs: &[TargetRun], seconds: u64) -> String {
    let mut s = format!(
        "Last recorded: {} on {} — `cargo xtask fuzz --seconds {seconds} --record` \
         (libFuzzer, AddressSanitizer, one core).\n\n\
         | target | executions | per second | corpus files |\n|---|---:|---:|---:|\n",
        util::today_utc(),
        util::machine_description(),
    );
    for r in runs {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.target,
            r.execs,
            r.execs / r.seconds.max(1),
            r.corpus
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_names_are_read_from_the_manifest() {
        let m = r#"
[package]
name = "matrix-oidc-fuzz"

[[bin]]
name = "metadata"
path = "fuzz_targets/metadata.rs"
test = false

[dependencies]
name-like = "1"

[[bin]]
name    =   "jws"
"#;
        assert_eq!(bin_names(m), ["metadata", "jws"]);
    }

    #[test]
    fn final_stats_are_parsed() {
        let log = "#1024 pulse\nDone 5000 runs in 3 second(s)\n\
                   stat::number_of_executed_units: 5012\nstat::peak_rss_mb: 40\n";
        assert_eq!(
            final_stat(log, "stat::number_of_executed_units"),
            Some(5012)
        );
        assert_eq!(final_stat(log, "stat::peak_rss_mb"), Some(40));
        assert_eq!(final_stat(log, "stat::new_units_added"), None);
    }
}
