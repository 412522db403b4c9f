//! Small helpers to run commands and find the workspace.

use std::path::PathBuf;
use std::process::Command;

/// An error message for the task runner.
pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (the parent of `xtask/`).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The cargo the task was started with.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd`, echoing it first; fails with its exit status.
pub(crate) fn run(mut cmd: Command) -> Result {
    println!("$ {}", describe(&cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(&cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed with {status}", describe(&cmd)))
    }
}

/// Runs `cmd` and returns its standard output.
pub(crate) fn output(mut cmd: Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(&cmd)))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed with {}: {}",
            describe(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
