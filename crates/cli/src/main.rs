//! `matrix-oidc`: sign in to a Matrix homeserver through its OAuth 2.0 API. See `--help`.

use clap::Parser;
use matrix_oidc_cli::args::Cli;
use matrix_oidc_cli::env::{real_var, stderr_colours};
use matrix_oidc_cli::error::{CliError, ExitStatus};
use matrix_oidc_cli::output::Printer;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitStatus::Usage.into()
            } else {
                ExitStatus::Success.into()
            };
        }
    };
    matrix_oidc_cli::logging::init(
        cli.global.verbose,
        cli.global.json,
        stderr_colours(real_var),
    );
    let printer = Printer::new(cli.global.json);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let error = CliError::io("starting the async runtime", &e);
            printer.error(&error);
            return error.exit_code().into();
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = matrix_oidc_cli::run::run(cli) => outcome,
            _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted),
        }
    });
    match outcome {
        Ok(()) => ExitStatus::Success.into(),
        Err(error) => {
            printer.error(&error);
            error.exit_code().into()
        }
    }
}
