//! Project tasks: `cargo xtask <task>`.
//!
//! * `ci` — every gate CI runs (the README's test command), the conformance suite last.
//! * `conformance` — the project's public API against the real OP and Synapse.
//! * `demo` — the main job: a full sign-in with the real `matrix-oidc` binary against a real
//!   Synapse and OpenID Provider started locally (the README's first command).
//! * `fuzz` — every fuzz target for a while.
//! * `bench` — the benchmarks against the anchors, written to `docs/performance.md`.
//! * `peers` — the real OpenID Provider and Synapse that conformance tests and the demo run against
//!   (`up`, `down`, `status`, `install`, `smoke`).
//!
//! Each task prints what it runs and stops at the first failure with a non-zero exit code.

mod bench;
mod browser;
mod ci;
mod cli_driver;
mod cli_e2e;
mod conformance;
mod demo;
mod fuzz;
mod peers;
mod record;
mod util;
mod wasm;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task> [options]

tasks:
  demo      the main job: sign in with the matrix-oidc tool against a local Synapse and OP,
            use the session, sign out [--interactive] [--https] [--mas]
  cli-e2e   the matrix-oidc binary end to end against the local peers [--https] [--mas]
  ci [--only g1,g2] [--skip g1,g2]
            run every CI gate (the README's test command):
            fmt clippy test doc sans-io wasm msrv fuzz conformance
  conformance
            the client, the core and the matrix-oidc binary against the real OP and Synapse:
            [--http] [--https] [--mas] [--only <text>] [--list]   (cargo xtask conformance help)
  fuzz [--seconds N] [--target NAME]... [--record]
            run every fuzz target N seconds (default 60); --record writes the
            executions per target into docs/security.md
  bench [--quick] [--no-build-times] [--no-instructions] [--no-write]
            run the benchmarks against openidconnect/oauth2 and write the
            table to docs/performance.md
  peers     the real OP and Synapse for conformance and the demo: up [--https] [--mas] | down |
            status | install | smoke [--https|--all] [--mas]   (cargo xtask peers help)
  record    record the real servers' answers as the core's test fixtures [--msc3861|--mas] [--check]
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match task.as_str() {
        "ci" => ci::run(rest),
        "conformance" => conformance::run(rest),
        "demo" => demo::run(rest),
        "cli-e2e" => cli_e2e::run(rest),
        "fuzz" => fuzz::run(rest),
        "bench" => bench::run(rest),
        "peers" => peers::run(rest),
        "record" => record::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("unknown task `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}
