//! `cargo xtask conformance`: the project's public API against software nobody here wrote — a real
//! OpenID Provider (`oidc-provider`) and a real Synapse, run by the [`peers`] harness.
//!
//! ```text
//! for each set of peers (http, https, http-mas) with a selected case:
//!     peers up ──▶ for each case: reset the OP's switches ─▶ run (timeout) ─▶ "ok"/"FAILED" line
//!              └─▶ peers down (what this run started)
//! "N passed, M failed"   (exit status 1 if M > 0)
//! ```
//!
//! Each case drives the async client [`matrix_oidc::OAuthClient`] over one transport
//! (`matrix-oidc-reqwest` or `matrix-oidc-hyper`), or the sans-IO core by hand, and asserts what
//! the library promises: the user and device Synapse reports, the granted scope, the tokens the OP
//! says are active, the number of refreshes the OP saw, and — for the misbehaving OP — the exact
//! error variant. The cases are in [`cases`] (async client), [`by_hand`] (the core alone) and
//! [`cli`] (the `matrix-oidc` binary as a process, checked from the servers' side); [`mod@env`] holds
//! what they share.
//!
//! By default every set runs: HTTP and HTTPS with Synapse 1.156.0 (msc3861), and HTTP with the
//! latest Synapse in `matrix_authentication_service` mode. Flags narrow the run:
//! `--http`, `--https`, `--mas` pick sets (several may be given), `--only <text>` keeps the cases
//! whose `<set> <name> [<transport>]` contains `<text>` (case-insensitive), `--list` prints the
//! cases without running anything.

mod by_hand;
mod cases;
mod cli;
mod env;

use crate::peers::{self, Flavour, Mode, PeersOptions};
use crate::util::Result;
use env::{Env, Via};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

/// Longest a case may run: the slowest waits about 6 s for tokens to expire.
const CASE_TIMEOUT: Duration = Duration::from_secs(90);

/// Longest a reason is printed on a case's line.
const MAX_REASON_CHARS: usize = 600;

const USAGE: &str =
    "usage: cargo xtask conformance [--http] [--https] [--mas] [--only <text>] [--list]

Runs the conformance suite against the real OP and Synapse (cargo xtask peers): brings each set of
peers up, runs its cases, brings down what it started. One line per case, then `N passed, M failed`.

  --http         the HTTP set (Synapse 1.156.0, msc3861)
  --https        the HTTPS set (same servers, certificates from the harness CA)
  --mas          the MAS set (latest Synapse with matrix_authentication_service, over HTTP)
                 (no set flag: all three)
  --only <text>  only cases whose `<set> <name> [<transport>]` contains <text> (case-insensitive)
  --list         print the selected cases and exit
";

/// A set of peers the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Set {
    /// Synapse 1.156.0 (msc3861) and the OP over HTTP.
    Http,
    /// The same over HTTPS, with the harness CA.
    Https,
    /// The latest Synapse with `matrix_authentication_service`, over HTTP.
    Mas,
}

impl Set {
    const ALL: [Set; 3] = [Set::Http, Set::Https, Set::Mas];

    fn name(self) -> &'static str {
        match self {
            Set::Http => "http",
            Set::Https => "https",
            Set::Mas => "http-mas",
        }
    }

    fn peers(self) -> PeersOptions {
        match self {
            Set::Http => PeersOptions::new(Mode::Http, Flavour::Msc3861),
            Set::Https => PeersOptions::new(Mode::Https, Flavour::Msc3861),
            Set::Mas => PeersOptions::new(Mode::Http, Flavour::Mas),
        }
    }
}

/// What a case returns: a short note of what it observed, or why it failed.
pub(crate) type Outcome = std::result::Result<String, String>;

/// A running case.
pub(crate) type CaseFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

/// How a case runs.
pub(crate) enum Run {
    /// In the suite's Tokio runtime.
    Async(for<'a> fn(&'a Env<'a>, Via) -> CaseFuture<'a>),
    /// Outside any runtime: it drives the `matrix-oidc` binary (the path given) as a process, and
    /// the helpers it shares with `cargo xtask demo` start runtimes of their own.
    Blocking(fn(&Env<'_>, &Path) -> Outcome),
}

/// One conformance case.
pub(crate) struct Case {
    /// What it checks.
    pub(crate) name: &'static str,
    /// The transport under the client (or under the core, for the cases that drive it by hand), or
    /// the command-line tool.
    pub(crate) via: Via,
    /// The sets it runs in.
    pub(crate) sets: &'static [Set],
    /// The case.
    pub(crate) run: Run,
}

impl Case {
    fn label(&self) -> String {
        format!("{} [{}]", self.name, self.via)
    }
}

struct Options {
    sets: Vec<Set>,
    only: Option<String>,
    list: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut sets = Vec::new();
        let mut only = None;
        let mut list = false;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--http" => sets.push(Set::Http),
                "--https" => sets.push(Set::Https),
                "--mas" => sets.push(Set::Mas),
                "--only" => {
                    let text = args.next().ok_or("--only needs a text")?;
                    only = Some(text.to_lowercase());
                }
                "--list" => list = true,
                "-h" | "--help" | "help" => {
                    print!("{USAGE}");
                    return Err("help shown".to_owned());
                }
                other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
            }
        }
        if sets.is_empty() {
            sets = Set::ALL.to_vec();
        }
        Ok(Options { sets, only, list })
    }

    fn selects(&self, set: Set, case: &Case) -> bool {
        case.sets.contains(&set)
            && self.only.as_ref().is_none_or(|text| {
                format!("{} {}", set.name(), case.label())
                    .to_lowercase()
                    .contains(text)
            })
    }
}

/// Tally of a run.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
}

impl Tally {
    fn record(&mut self, set: Set, case: &Case, outcome: &Outcome, took: Duration) {
        let label = case.label();
        match outcome {
            Ok(note) => {
                self.passed += 1;
                println!(
                    "ok      {:<8} {label}: {} ({:.1} s)",
                    set.name(),
                    one_line(note),
                    took.as_secs_f64()
                );
            }
            Err(reason) => {
                self.failed.push(format!("{} {label}", set.name()));
                println!(
                    "FAILED  {:<8} {label}: {} ({:.1} s)",
                    set.name(),
                    one_line(reason),
                    took.as_secs_f64()
                );
            }
        }
    }
}

fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX_REASON_CHARS {
        flat
    } else {
        let cut: String = flat.chars().take(MAX_REASON_CHARS).collect();
        format!("{cut}…")
    }
}

/// `cargo xtask conformance ...`.
pub(crate) fn run(args: &[String]) -> Result {
    let options = match Options::parse(args) {
        Err(e) if e == "help shown" => return Ok(()),
        other => other?,
    };
    let all = cases::all();
    let plan: Vec<(Set, Vec<&Case>)> = options
        .sets
        .iter()
        .map(|&set| {
            let selected = all.iter().filter(|c| options.selects(set, c)).collect();
            (set, selected)
        })
        .filter(|(_, cases): &(Set, Vec<&Case>)| !cases.is_empty())
        .collect();
    if plan.is_empty() {
        return Err("no conformance case matches the options".to_owned());
    }
    if options.list {
        for (set, cases) in &plan {
            for case in cases {
                println!("{:<8} {}", set.name(), case.label());
            }
        }
        return Ok(());
    }

    let started = Instant::now();
    let mut tally = Tally::default();
    // The command-line cases need the binary; a failed build fails them, not the others.
    let needs_binary = plan
        .iter()
        .any(|(_, cases)| cases.iter().any(|c| matches!(c.run, Run::Blocking(_))));
    let binary = if needs_binary {
        println!("\n==> building the matrix-oidc binary");
        crate::cli_driver::build_binary()
    } else {
        Err("not built".to_owned())
    };
    for (set, cases) in &plan {
        run_set(*set, cases, binary.as_ref(), &mut tally);
    }
    println!(
        "\nconformance: {} cases in {:.1} s",
        tally.passed + tally.failed.len(),
        started.elapsed().as_secs_f64()
    );
    for failed in &tally.failed {
        println!("  failed: {failed}");
    }
    println!("{} passed, {} failed", tally.passed, tally.failed.len());
    if tally.failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} conformance case(s) failed", tally.failed.len()))
    }
}

/// Brings the peers of `set` up, runs `cases` one after the other (the OP's switches are global),
/// and brings down what it started. A set whose peers do not come up fails each of its cases.
fn run_set(
    set: Set,
    cases: &[&Case],
    binary: std::result::Result<&PathBuf, &String>,
    tally: &mut Tally,
) {
    let opts = set.peers();
    println!("\n==> conformance ({}): {} cases", set.name(), cases.len());
    let up_started = Instant::now();
    let mut ran = 0;
    let result = peers::with_peers(&opts, |state| {
        println!(
            "peers ({}) ready in {:.1} s: OP {}, Synapse {} at {}",
            set.name(),
            up_started.elapsed().as_secs_f64(),
            state.op.issuer,
            state.synapse.version,
            state.synapse.url
        );
        // Two workers: the concurrency cases race real threads, as an application would.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a Tokio runtime: {e}"))?;
        let env = Env::new(state)?;
        for case in cases {
            let case_started = Instant::now();
            let reset = rt
                .block_on(env.control.reset())
                .map_err(|e| format!("resetting the OP's switches: {e}"));
            let outcome = match (reset, &case.run) {
                (Err(e), _) => Err(e),
                (Ok(()), Run::Async(run)) => rt.block_on(async {
                    tokio::time::timeout(CASE_TIMEOUT, run(&env, case.via))
                        .await
                        .unwrap_or_else(|_| {
                            Err(format!("no result within {} s", CASE_TIMEOUT.as_secs()))
                        })
                }),
                // The binary's own `--timeout` bounds these.
                (Ok(()), Run::Blocking(run)) => match binary {
                    Ok(bin) => run(&env, bin),
                    Err(e) => Err(format!("the matrix-oidc binary: {e}")),
                },
            };
            ran += 1;
            tally.record(set, case, &outcome, case_started.elapsed());
        }
        // Leave peers that were already running as they were found.
        rt.block_on(env.control.reset())
    });
    if let Err(e) = result {
        let reason = format!("peers ({}): {e}", set.name());
        for case in cases.iter().skip(ran) {
            tally.record(set, case, &Err(reason.clone()), Duration::ZERO);
        }
        if ran == cases.len() {
            // Every case ran; the failure was in bringing the peers down or resetting them.
            eprintln!("{reason}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_set_runs_by_default_and_flags_narrow_it() {
        let all = Options::parse(&[]).unwrap();
        assert_eq!(all.sets, Set::ALL.to_vec());
        let some = Options::parse(&args(&["--https", "--mas"])).unwrap();
        assert_eq!(some.sets, vec![Set::Https, Set::Mas]);
        assert!(Options::parse(&args(&["--only"])).is_err());
        assert!(Options::parse(&args(&["--nope"])).is_err());
    }

    #[test]
    fn only_matches_set_name_and_transport() {
        let cases = cases::all();
        let login = cases
            .iter()
            .find(|c| c.name.starts_with("login from the homeserver URL") && c.via == Via::Hyper)
            .unwrap();
        let options = Options::parse(&args(&["--only", "HTTPS LOGIN FROM"])).unwrap();
        assert!(options.selects(Set::Https, login));
        assert!(!options.selects(Set::Http, login));
        let options = Options::parse(&args(&["--only", "[hyper]"])).unwrap();
        assert!(options.selects(Set::Http, login));
    }

    #[test]
    fn every_case_runs_somewhere_and_names_are_unique() {
        let cases = cases::all();
        let mut labels: Vec<String> = cases.iter().map(Case::label).collect();
        assert!(cases.iter().all(|c| !c.sets.is_empty()));
        labels.sort();
        let before = labels.len();
        labels.dedup();
        assert_eq!(before, labels.len(), "duplicate case labels");
        // Both transports under the client, and the core by hand, in every set.
        for set in Set::ALL {
            let here: Vec<&Case> = cases.iter().filter(|c| c.sets.contains(&set)).collect();
            assert!(here.iter().any(|c| c.via == Via::Reqwest), "{set:?}");
            assert!(here.iter().any(|c| c.via == Via::Hyper), "{set:?}");
        }
    }

    #[test]
    fn reasons_are_printed_on_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        let long = "x".repeat(MAX_REASON_CHARS + 10);
        assert_eq!(one_line(&long).chars().count(), MAX_REASON_CHARS + 1);
    }
}
