//! `-v` diagnostics: `tracing` events on stderr.
//!
//! Without `-v` nothing below `error` is printed (the command's own error message says what went
//! wrong), and with `--json` nothing at all, so that stderr holds only the JSON error. Only this
//! project's crates are raised by `-v` (`-v` warn+info, `-vv` debug, `-vvv` trace); other crates
//! stay at `warn`, because HTTP libraries at debug level may print request details this project
//! does not control. Our own events never carry a secret ([`matrix_oidc_core::Secret`]
//! prints redacted). `RUST_LOG`, when set, replaces the filter entirely (at your own risk).

use tracing_subscriber::EnvFilter;

/// The crates whose level `-v` raises.
pub const OWN_CRATES: [&str; 5] = [
    "matrix_oidc",
    "matrix_oidc_cli",
    "matrix_oidc_core",
    "matrix_oidc_storage",
    "matrix_oidc_reqwest",
];

/// The filter directives for a verbosity count (and `--json`).
pub fn directives(verbose: u8, json: bool) -> String {
    let level = match verbose {
        0 if json => return "off".into(),
        0 => return "error".into(),
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let mut out = String::from("warn");
    for krate in OWN_CRATES {
        out.push_str(&format!(",{krate}={level}"));
    }
    out
}

/// Installs the stderr subscriber (once; later calls do nothing).
pub fn init(verbose: u8, json: bool, colours: bool) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(directives(verbose, json)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .with_target(verbose >= 2)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_raises_only_our_crates() {
        assert_eq!(directives(0, false), "error");
        assert_eq!(directives(0, true), "off");
        assert!(directives(1, true).contains("matrix_oidc_cli=info"));
        assert!(directives(2, false).contains("matrix_oidc=debug"));
        assert!(directives(7, false).contains("matrix_oidc_core=trace"));
        // Other crates (HTTP libraries) stay at warn whatever the count.
        assert!(directives(3, false).starts_with("warn,"));
        for d in [
            directives(0, false),
            directives(0, true),
            directives(3, false),
        ] {
            EnvFilter::try_new(&d).unwrap();
        }
    }
}
