//! `cargo xtask bench`: the benchmarks against the anchors, written to `docs/performance.md`.
//!
//! ```text
//! cargo xtask bench [--quick] [--no-build-times] [--no-instructions] [--no-write]
//!                   [--regenerate-fixtures]
//! ```
//!
//! 1. Runs the `compare` bench of `matrix-oidc-bench` (criterion; ours and `openidconnect`/`oauth2` in
//!    one run on the committed fixtures), which leaves a JSON report of medians, allocations and
//!    target checks.
//! 2. Counts the instructions per call of every contender under callgrind (when valgrind is
//!    installed): a figure that, unlike times, does not move with the load of a shared machine.
//! 3. Counts the normal dependencies of `matrix-oidc-core` and of `openidconnect` (default features
//!    off), and times a clean release build of each in its own target directory.
//! 4. Prints the table and writes it, with the machine and the date, between the markers of
//!    `docs/performance.md`.

use crate::util::{
    self, Result, cargo, human, machine_description, output, target_dir, today_utc, workspace_root,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BENCH_PACKAGE: &str = "matrix-oidc-bench";
const CORE: &str = "matrix-oidc-core";
const RECORD_MARKER: &str = "bench-results";
/// The anchor whose build and dependency tree the core is compared with, as the bench pins it.
const ANCHOR: &str = "openidconnect";
/// Targets of the issue for the core crate itself.
const MAX_CORE_PACKAGES: usize = 62;
const MAX_BUILD_TIME_RATIO: f64 = 0.25;
/// The design card's own dependencies of the core: built alone, they are the floor under the
/// core's clean build that no change to the core can go below.
const CARD_DEPENDENCIES: &[&str] = &[
    "http",
    "serde",
    "serde_json",
    "url",
    "sha2",
    "base64",
    "getrandom",
    "thiserror",
];

struct Options {
    quick: bool,
    build_times: bool,
    write: bool,
    instructions: bool,
}

pub(crate) fn run(args: &[String]) -> Result {
    let mut o = Options {
        quick: false,
        build_times: true,
        write: true,
        instructions: true,
    };
    for a in args {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--no-build-times" => o.build_times = false,
            "--no-write" => o.write = false,
            "--no-instructions" => o.instructions = false,
            "--regenerate-fixtures" => return regenerate_fixtures(),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }

    let criterion_home = target_dir().join("criterion");
    let report_path = criterion_home.join("matrix-oidc-report.json");
    let _ = std::fs::remove_file(&report_path);
    let mut c = cargo();
    c.args([
        "bench",
        "-p",
        BENCH_PACKAGE,
        "--bench",
        "compare",
        "--locked",
        "--",
    ]);
    if o.quick {
        c.args(["--warm-up-time", "1", "--measurement-time", "2"]);
    }
    c.env("CRITERION_HOME", &criterion_home);
    c.env("MATRIX_OIDC_BENCH_REPORT", &report_path);
    util::run(c)?;
    let mut report: Value = serde_json::from_str(&util::read(&report_path)?)
        .map_err(|e| format!("{}: {e}", report_path.display()))?;
    if o.instructions {
        if util::succeeds({
            let mut v = Command::new("valgrind");
            v.arg("--version");
            v
        }) {
            count_instructions(&mut report)?;
        } else {
            println!("valgrind is not installed: no instruction counts");
        }
    }

    let mut build = Vec::new();
    build.push(dependency_counts()?);
    if o.build_times {
        build.push(build_times()?);
    }
    let body = render(&report, &build, o.quick);
    println!("\n{body}");
    if o.write {
        let path = workspace_root().join("docs/performance.md");
        let doc = util::read(&path)?;
        util::write(&path, &util::replace_marked(&doc, RECORD_MARKER, &body)?)?;
        println!("written to {}", path.display());
    }
    Ok(())
}

/// The compiled `compare` bench binary.
fn bench_executable() -> Result<std::path::PathBuf> {
    let mut c = cargo();
    c.args([
        "bench",
        "-p",
        BENCH_PACKAGE,
        "--bench",
        "compare",
        "--locked",
        "--no-run",
        "--message-format=json",
    ]);
    let out = output(c)?;
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "compare")
        .find_map(|v| v["executable"].as_str().map(std::path::PathBuf::from))
        .ok_or_else(|| "cargo did not report the compare bench executable".to_owned())
}

/// Instructions retired by `calls` calls of one contender under callgrind (whole process).
fn callgrind_total(exe: &Path, which: &str, calls: u64) -> Result<u64> {
    let mut v = Command::new("valgrind");
    v.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"]);
    v.arg(exe);
    v.args(["--profile", which, &calls.to_string()]);
    let out = v
        .output()
        .map_err(|e| format!("cannot start valgrind: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("valgrind on `{which}` failed: {log}"));
    }
    collected(&log).ok_or_else(|| format!("no instruction count for `{which}` in: {log}"))
}

/// The `Collected : N` line of callgrind's summary.
fn collected(log: &str) -> Option<u64> {
    log.lines().find_map(|l| {
        let rest = l.split("Collected :").nth(1)?;
        rest.trim().parse().ok()
    })
}

/// Adds `instructions` (per call, under callgrind) to both sides of every row. Instruction counts do
/// not move with the load of a shared machine, unlike times; they leave out time spent in the kernel
/// (the `getrandom` system call) and see the CPU extensions valgrind emulates, not all the host has.
fn count_instructions(report: &mut Value) -> Result {
    let exe = bench_executable()?;
    let Some(rows) = report["rows"].as_array_mut() else {
        return Ok(());
    };
    // The setup (fixtures, checks) is the same whichever contender is profiled: measure it once.
    let first = rows
        .first()
        .and_then(|r| {
            Some(format!(
                "{}/{}",
                r["group"].as_str()?,
                r["ours"]["id"].as_str()?
            ))
        })
        .ok_or("the report has no rows")?;
    let baseline = callgrind_total(&exe, &first, 0)?;
    for row in rows.iter_mut() {
        let group = row["group"].as_str().unwrap_or_default().to_owned();
        for side in ["ours", "reference"] {
            let Some(id) = row[side]["id"].as_str().map(str::to_owned) else {
                continue;
            };
            let which = format!("{group}/{id}");
            // A short probe decides how many calls give a count well above the noise.
            let probe = callgrind_total(&exe, &which, 20)?.saturating_sub(baseline) / 20;
            let per_call = if probe > 200_000 {
                probe
            } else {
                callgrind_total(&exe, &which, 400)?.saturating_sub(baseline) / 400
            };
            println!("{which:<40} {per_call:>10} instructions per call");
            row[side]["instructions"] = Value::from(per_call);
        }
    }
    Ok(())
}

fn regenerate_fixtures() -> Result {
    let mut c = cargo();
    c.args([
        "bench",
        "-p",
        BENCH_PACKAGE,
        "--bench",
        "fixtures",
        "--locked",
        "--",
        "--write",
    ]);
    util::run(c)
}

/// Package names in a `cargo tree --prefix none` listing, without duplicates.
fn tree_packages(tree: &str) -> std::collections::BTreeSet<String> {
    tree.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let version = words.next()?;
            Some(format!("{name} {version}"))
        })
        .collect()
}

/// `(packages besides the root)` for the core and for the anchor.
fn dependency_counts() -> Result<Fact> {
    let count = |package: &str, edges: &str| -> Result<usize> {
        let mut c = cargo();
        c.args([
            "tree", "-p", package, "-e", edges, "--prefix", "none", "--locked",
        ]);
        Ok(tree_packages(&output(c)?).len().saturating_sub(1))
    };
    let ours = count(CORE, "normal")?;
    // The anchor is only a dev-dependency of the bench: its own dev-dependencies are never resolved,
    // and the dev edge must be followed to reach it.
    let theirs = count(ANCHOR, "normal,dev")?;
    Ok(Fact::Deps { ours, theirs })
}

/// Clean release builds of the core, of the card's dependencies alone and of the anchor, each in a
/// target directory of its own.
fn build_times() -> Result<Fact> {
    let base = target_dir().join("buildtime");
    let core_dir = base.join("core");
    let _ = std::fs::remove_dir_all(&core_dir);
    let mut c = cargo();
    c.args(["build", "--release", "--locked", "-p", CORE, "--target-dir"]);
    c.arg(&core_dir);
    let ours = timed_build(c)?;

    // The card's dependencies alone, with the workspace's requirements.
    let root_manifest = util::read(&workspace_root().join("Cargo.toml"))?;
    let mut requirements = String::new();
    for name in CARD_DEPENDENCIES {
        requirements.push_str(&workspace_requirement(&root_manifest, name)?);
        requirements.push('\n');
    }
    let floor = scratch_build(
        &base.join("card"),
        "card-floor",
        &requirements,
        &format!("pub use {{{}}};\n", CARD_DEPENDENCIES.join(", ")),
    )?;

    // The anchor alone, without default features.
    let version = anchor_version()?;
    let theirs = scratch_build(
        &base.join("anchor"),
        "anchor-build",
        &format!("{ANCHOR} = {{ version = \"={version}\", default-features = false }}\n"),
        &format!("pub use {ANCHOR};\n"),
    )?;
    Ok(Fact::Build {
        ours,
        floor,
        theirs,
    })
}

/// A clean release build of a scratch crate in `dir` with these `[dependencies]` lines and this
/// `lib.rs`, using the workspace's lock file so that it builds the same versions.
fn scratch_build(dir: &Path, name: &str, dependencies: &str, lib: &str) -> Result<BuildTime> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    util::write(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\n{dependencies}\n[workspace]\n"
        ),
    )?;
    util::write(&dir.join("src/lib.rs"), lib)?;
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock"))
        .map_err(|e| e.to_string())?;
    let mut c = cargo();
    c.current_dir(dir);
    c.args(["build", "--release", "--target-dir"]);
    c.arg(dir.join("target"));
    timed_build(c)
}

/// The `name = …` line of `[workspace.dependencies]` in the root manifest.
fn workspace_requirement(manifest: &str, name: &str) -> Result<String> {
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[workspace.dependencies]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .find(|l| l.split_once('=').is_some_and(|(key, _)| key.trim() == name))
        .map(|l| l.trim().to_owned())
        .ok_or_else(|| format!("{name} is not in [workspace.dependencies]"))
}

/// The version of the anchor in the workspace's lock file.
fn anchor_version() -> Result<String> {
    let lock = util::read(&workspace_root().join("Cargo.lock"))?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("name = \"{ANCHOR}\"") {
            if let Some(v) = lines
                .next()
                .and_then(|v| v.trim().strip_prefix("version = "))
            {
                return Ok(v.trim_matches('"').to_owned());
            }
        }
    }
    Err(format!("{ANCHOR} is not in Cargo.lock"))
}

/// Wall time and CPU time (user + system, from `/usr/bin/time` when present) of a build.
#[derive(Debug, Clone, Copy)]
struct BuildTime {
    wall: Duration,
    cpu: Option<Duration>,
}

fn timed_build(cmd: Command) -> Result<BuildTime> {
    let time = Path::new("/usr/bin/time");
    let (result, wall) = if time.exists() {
        let mut t = Command::new(time);
        t.args(["-f", "cpu-seconds %U %S"]);
        t.arg(cmd.get_program());
        t.args(cmd.get_args());
        if let Some(dir) = cmd.get_current_dir() {
            t.current_dir(dir);
        }
        t.stderr(std::process::Stdio::piped());
        println!("$ {}", util::describe(&t));
        util::timed(|| t.output())
    } else {
        let mut cmd = cmd;
        cmd.stderr(std::process::Stdio::piped());
        println!("$ {}", util::describe(&cmd));
        util::timed(|| cmd.output())
    };
    let out = result.map_err(|e| format!("cannot start the build: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("the build failed: {stderr}"));
    }
    let cpu = stderr.lines().rev().find_map(|l| {
        let rest = l.strip_prefix("cpu-seconds ")?;
        let mut parts = rest.split_whitespace().map(|p| p.parse::<f64>().ok());
        let (user, sys) = (parts.next()??, parts.next()??);
        Some(Duration::from_secs_f64(user + sys))
    });
    println!(
        "  {} wall{}",
        human(wall),
        cpu.map_or_else(String::new, |c| format!(", {} CPU", human(c)))
    );
    Ok(BuildTime { wall, cpu })
}

enum Fact {
    Deps {
        ours: usize,
        theirs: usize,
    },
    Build {
        ours: BuildTime,
        floor: BuildTime,
        theirs: BuildTime,
    },
}

/// `1.23 µs`, `456 ns`, `186 µs`, `1.20 ms`.
pub(crate) fn format_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

fn verdict(met: &Value) -> &'static str {
    match met.as_bool() {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "n/a",
    }
}

fn allocs(side: &Value) -> String {
    match (
        side["allocations"].as_f64(),
        side["allocated_bytes"].as_f64(),
    ) {
        (Some(n), Some(b)) => format!("{n:.0} ({b:.0} B)"),
        _ => "—".to_owned(),
    }
}

fn instructions(side: &Value) -> String {
    match side["instructions"].as_u64() {
        Some(n) if n >= 100_000 => format!("{:.0}k", n as f64 / 1000.0),
        Some(n) if n >= 1_000 => format!("{:.1}k", n as f64 / 1000.0),
        Some(n) => n.to_string(),
        None => "—".to_owned(),
    }
}

/// `ours / reference`, or just ours when there is no reference.
fn pair(ours: String, reference: String) -> String {
    if reference == "—" {
        ours
    } else {
        format!("{ours} / {reference}")
    }
}

fn render(report: &Value, build: &[Fact], quick: bool) -> String {
    let mut s = format!(
        "Measured {} on {}{}.\n\n",
        today_utc(),
        machine_description(),
        if quick {
            " (`--quick`: short measurement, rough figures)"
        } else {
            ""
        }
    );
    s.push_str(
        "| operation | ours | openidconnect / reference | ratio | target | verdict | allocations ours / ref. | instructions ours / ref. |\n\
         |---|---:|---:|---:|---|---|---:|---:|\n",
    );
    let empty = Vec::new();
    let rows = report["rows"].as_array().unwrap_or(&empty);
    for r in rows {
        let ours = r["ours"]["median_ns"]
            .as_f64()
            .map_or("—".into(), format_ns);
        let reference = &r["reference"];
        let theirs = if reference.is_null() {
            "—".to_owned()
        } else {
            format!(
                "{} ({})",
                reference["median_ns"]
                    .as_f64()
                    .map_or("—".into(), format_ns),
                reference["id"].as_str().unwrap_or("?")
            )
        };
        let ratio = r["ratio"]
            .as_f64()
            .map_or("—".into(), |x| format!("{x:.2}×"));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["operation"].as_str().unwrap_or("?"),
            ours,
            theirs,
            ratio,
            r["target"].as_str().unwrap_or(""),
            verdict(&r["met"]),
            pair(allocs(&r["ours"]), allocs(reference)),
            pair(instructions(&r["ours"]), instructions(reference)),
        ));
    }
    s.push_str(
        "\nTimes: criterion medians. Ratio: the median of 201 paired rounds, each timing about 2 ms of \
         ours and of the reference back to back (alternating which goes first), so that the load of a \
         shared machine, which moves the two medians apart by ±10–20 %, moves both sides of a round \
         alike; targets stated as a ratio are judged on it. \
         Allocations: count (bytes requested) per call, from a counting global allocator. \
         Instructions: per call under callgrind, which does not move with the machine's load \
         (kernel time, such as the `getrandom` system call, is not in it).\n\nWhat each side runs:\n\n",
    );
    for r in rows {
        s.push_str(&format!(
            "- {}: ours = {}",
            r["operation"].as_str().unwrap_or("?"),
            r["ours"]["label"].as_str().unwrap_or("?")
        ));
        if !r["reference"].is_null() {
            s.push_str(&format!(
                "; {} = {}",
                r["reference"]["id"].as_str().unwrap_or("?"),
                r["reference"]["label"].as_str().unwrap_or("?")
            ));
        }
        s.push('\n');
    }
    s.push_str("\n| figure | ours | openidconnect | target | verdict |\n|---|---:|---:|---|---|\n");
    for f in report["facts"].as_array().unwrap_or(&empty) {
        s.push_str(&format!(
            "| {} | {} {} | — | — | — |\n",
            f["name"].as_str().unwrap_or("?"),
            f["value"],
            f["unit"].as_str().unwrap_or("")
        ));
    }
    for f in build {
        match f {
            Fact::Deps { ours, theirs } => s.push_str(&format!(
                "| normal dependencies (packages, the crate itself excluded) | {ours} (`{CORE}`) | {theirs} | ≤ {MAX_CORE_PACKAGES} | {} |\n",
                if *ours <= MAX_CORE_PACKAGES { "met" } else { "**missed**" }
            )),
            Fact::Build {
                ours,
                floor,
                theirs,
            } => {
                let ratio = ours.wall.as_secs_f64() / theirs.wall.as_secs_f64().max(f64::EPSILON);
                let cpu = |b: &BuildTime| {
                    b.cpu.map_or_else(String::new, |c| format!(" ({} CPU)", human(c)))
                };
                s.push_str(&format!(
                    "| clean release build, wall time | {}{} | {}{} | ≤ {:.0}% of openidconnect's | {} ({:.0}%) |\n",
                    human(ours.wall),
                    cpu(ours),
                    human(theirs.wall),
                    cpu(theirs),
                    MAX_BUILD_TIME_RATIO * 100.0,
                    if ratio <= MAX_BUILD_TIME_RATIO { "met" } else { "**missed**" },
                    ratio * 100.0
                ));
                let floor_ratio =
                    floor.wall.as_secs_f64() / theirs.wall.as_secs_f64().max(f64::EPSILON);
                s.push_str(&format!(
                    "| clean release build of the card's dependencies alone ({}), wall time | {}{} | {}{} | floor under the line above | n/a ({:.0}%) |\n",
                    CARD_DEPENDENCIES.join(", "),
                    human(floor.wall),
                    cpu(floor),
                    human(theirs.wall),
                    cpu(theirs),
                    floor_ratio * 100.0
                ));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_requirements_come_from_the_workspace_table_only() {
        let manifest = "[package]\nurl = \"9\"\n\n[workspace.dependencies]\nhttp = \"1\"\nurl = { version = \"2\", features = [\"serde\"] }\nurl-extra = \"3\"\n\n[lints]\nsha2 = \"0\"\n";
        assert_eq!(
            workspace_requirement(manifest, "url").unwrap(),
            "url = { version = \"2\", features = [\"serde\"] }"
        );
        assert_eq!(
            workspace_requirement(manifest, "http").unwrap(),
            "http = \"1\""
        );
        assert!(workspace_requirement(manifest, "sha2").is_err());
        // The real manifest has every card dependency.
        let root = util::read(&workspace_root().join("Cargo.toml")).unwrap();
        for name in CARD_DEPENDENCIES {
            assert!(workspace_requirement(&root, name).is_ok(), "{name}");
        }
    }

    #[test]
    fn nanoseconds_are_shown_at_a_readable_scale() {
        assert_eq!(format_ns(456.4), "456 ns");
        assert_eq!(format_ns(1_234.0), "1.23 µs");
        assert_eq!(format_ns(186_400.0), "186.4 µs");
        assert_eq!(format_ns(1_200_000.0), "1.20 ms");
    }

    #[test]
    fn callgrind_summaries_are_read() {
        let log = "==1== Events    : Ir\n==1== Collected : 51566215\n==1==\n==1== I   refs:      51,566,215\n";
        assert_eq!(collected(log), Some(51_566_215));
        assert_eq!(collected("nothing"), None);
    }

    #[test]
    fn tree_listings_count_each_package_once() {
        let tree = "matrix-oidc-core v0.1.0 (/w/crates/core)\nserde v1.0.1\nurl v2.5.0\nserde v1.0.1 (*)\n\n";
        let p = tree_packages(tree);
        assert_eq!(p.len(), 3);
        assert!(p.contains("serde v1.0.1"));
    }

    #[test]
    fn rows_render_with_verdicts() {
        let report = serde_json::json!({"rows": [{
            "operation": "op", "ours": {"median_ns": 900.0, "allocations": 3.0, "allocated_bytes": 120.0, "label": "x", "instructions": 12345},
            "reference": {"id": "openidconnect", "median_ns": 1800.0, "allocations": 9.0, "allocated_bytes": 400.0, "label": "y"},
            "ratio": 0.5, "target": "≤ 1 µs", "met": true
        }], "facts": [{"name": "pending", "value": 412, "unit": "bytes"}]});
        let out = render(
            &report,
            &[Fact::Deps {
                ours: 57,
                theirs: 117,
            }],
            false,
        );
        assert!(out.contains("| op | 900 ns | 1.80 µs (openidconnect) | 0.50× | ≤ 1 µs | met | 3 (120 B) / 9 (400 B) | 12.3k / — |") || out.contains("| op | 900 ns | 1.80 µs (openidconnect) | 0.50× | ≤ 1 µs | met | 3 (120 B) / 9 (400 B) | 12.3k |"), "{out}");
        assert!(out.contains("| pending | 412 bytes |"), "{out}");
        assert!(
            out.contains("| 57 (`matrix-oidc-core`) | 117 | ≤ 62 | met |"),
            "{out}"
        );
    }
}
