//! What the tool learns from its environment: where the store lives, whether a browser can be
//! opened, whether stderr is a terminal and may have colours.
//!
//! The decisions are pure functions of an environment lookup, so tests pass their own.

use crate::error::CliError;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The application's folder name under the user's data directory.
pub const APP_DIR: &str = "matrix-oidc";

/// The store directory: `--store` / `MATRIX_OIDC_STORE` when given, else `matrix-oidc` under the
/// user's data directory (`$XDG_DATA_HOME` or `~/.local/share` on Linux, `~/Library/Application
/// Support` on macOS, `%APPDATA%` on Windows).
pub fn store_dir(explicit: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_owned());
    }
    dirs::data_dir()
        .map(|d| d.join(APP_DIR))
        .ok_or_else(|| CliError::Usage {
            message: "cannot find your data directory (is $HOME set?); pass --store <dir>".into(),
        })
}

/// Whether opening a browser can work here, from the environment variables seen through `var`.
///
/// On Linux and the BSDs a browser needs a graphical session (`DISPLAY` or `WAYLAND_DISPLAY`) or
/// an explicit `BROWSER`; elsewhere one is assumed unless this is an SSH session. When this says
/// no, the tool prints the address instead.
pub fn browser_available(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    if set("BROWSER") {
        return true;
    }
    let graphical = set("DISPLAY") || set("WAYLAND_DISPLAY");
    if cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )) {
        return graphical;
    }
    graphical || !(set("SSH_CONNECTION") || set("SSH_TTY"))
}

/// Whether ANSI colours may be used on stderr: it is a terminal and `NO_COLOR` is not set.
pub fn stderr_colours(var: impl Fn(&str) -> Option<String>) -> bool {
    std::io::stderr().is_terminal() && var("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether stderr is a terminal (for the live countdown).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Reads a real environment variable (the `var` argument of the functions above).
pub fn real_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn an_explicit_store_wins() {
        assert_eq!(
            store_dir(Some(Path::new("/tmp/x"))).unwrap(),
            PathBuf::from("/tmp/x")
        );
    }

    #[test]
    fn the_default_store_is_under_the_data_directory() {
        if let Some(data) = dirs::data_dir() {
            assert_eq!(store_dir(None).unwrap(), data.join("matrix-oidc"));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn on_linux_a_browser_needs_a_display_or_browser() {
        assert!(!browser_available(env(&[])));
        assert!(!browser_available(env(&[(
            "SSH_CONNECTION",
            "1.2.3.4 5 6.7.8.9 22"
        )])));
        assert!(!browser_available(env(&[("DISPLAY", "")])));
        assert!(browser_available(env(&[("DISPLAY", ":0")])));
        assert!(browser_available(env(&[("WAYLAND_DISPLAY", "wayland-0")])));
        assert!(browser_available(env(&[("BROWSER", "lynx")])));
        // SSH with X forwarding has a display.
        assert!(browser_available(env(&[
            ("SSH_TTY", "/dev/pts/1"),
            ("DISPLAY", "localhost:10.0")
        ])));
    }
}
