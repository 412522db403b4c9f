//! What can go wrong, as a person reads it, and the exit code a script reads.
//!
//! Every [`CliError`] says what failed and where (which server, which file), and most carry a hint
//! of what to try. [`CliError::exit_code`] maps it to one of the documented [`ExitStatus`] codes.

use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// The process exit codes, documented in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// 0: it worked.
    Success,
    /// 1: a local failure (store, files, ports, the terminal).
    Local,
    /// 2: the command line is wrong.
    Usage,
    /// 3: not signed in: no stored session, or the server ended it.
    NotSignedIn,
    /// 4: a server could not be reached (connection, TLS, timeout).
    Network,
    /// 5: a server answered with an error or with something this tool cannot accept.
    Server,
    /// 6: the person cancelled, or the sign-in was not completed in time.
    Cancelled,
    /// 130: interrupted (Ctrl-C).
    Interrupted,
}

impl ExitStatus {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Local => 1,
            ExitStatus::Usage => 2,
            ExitStatus::NotSignedIn => 3,
            ExitStatus::Network => 4,
            ExitStatus::Server => 5,
            ExitStatus::Cancelled => 6,
            ExitStatus::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The arguments make no sense together (beyond what the parser checks).
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
    },
    /// No session is stored.
    #[error("not signed in: no session is stored in {}", store.display())]
    NoSession {
        /// The store that was searched.
        store: PathBuf,
    },
    /// `--session` matches no stored session.
    #[error("no stored session matches {query:?} (in {})", store.display())]
    UnknownSession {
        /// What was asked for.
        query: String,
        /// The store that was searched.
        store: PathBuf,
    },
    /// Several sessions are stored and none was chosen, or the choice matches several.
    #[error("{} sessions match{}; choose one with --session", candidates.len(), query.as_ref().map(|q| format!(" {q:?}")).unwrap_or_default())]
    AmbiguousSession {
        /// What was asked for, if anything.
        query: Option<String>,
        /// The keys of the matching sessions.
        candidates: Vec<String>,
    },
    /// The server no longer accepts the session (refresh refused, token revoked).
    #[error("the session at {server} has ended: {reason}")]
    SessionEnded {
        /// The homeserver (or issuer) of the session.
        server: String,
        /// What the server said.
        reason: String,
    },
    /// A server could not be reached.
    #[error("{doing} failed: {reason}")]
    Network {
        /// What was being done, naming the server (`discovering https://matrix.example.org/`).
        doing: String,
        /// What went wrong, naming the URL.
        reason: String,
        /// What to try, when something specific helps.
        hint: Option<String>,
    },
    /// A server answered, but with an error or something unusable.
    #[error("{doing} failed: {reason}")]
    Server {
        /// What was being done, naming the server (`signing in at https://matrix.example.org/`).
        doing: String,
        /// What was wrong, naming the URL.
        reason: String,
        /// What to try, when something specific helps.
        hint: Option<String>,
    },
    /// The person refused at the server, or the server refused on their behalf.
    #[error("sign-in cancelled{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Cancelled {
        /// What the server said, if anything.
        detail: Option<String>,
    },
    /// Nobody completed the sign-in in time.
    #[error("{what} was not completed within {}", human_duration(*after))]
    TimedOut {
        /// What was waited for.
        what: String,
        /// How long it waited.
        after: Duration,
    },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// A local failure: store, file, socket.
    #[error("{what}: {reason}")]
    Local {
        /// What was being done (names the file or address).
        what: String,
        /// Why it failed.
        reason: String,
    },
}

impl CliError {
    /// A [`CliError::Local`] from an I/O error.
    pub fn io(what: impl Into<String>, error: &std::io::Error) -> Self {
        CliError::Local {
            what: what.into(),
            reason: error.to_string(),
        }
    }

    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitStatus {
        match self {
            CliError::Usage { .. } | CliError::AmbiguousSession { .. } => ExitStatus::Usage,
            CliError::NoSession { .. }
            | CliError::UnknownSession { .. }
            | CliError::SessionEnded { .. } => ExitStatus::NotSignedIn,
            CliError::Network { .. } => ExitStatus::Network,
            CliError::Server { .. } => ExitStatus::Server,
            CliError::Cancelled { .. } | CliError::TimedOut { .. } => ExitStatus::Cancelled,
            CliError::Interrupted => ExitStatus::Interrupted,
            CliError::Local { .. } => ExitStatus::Local,
        }
    }

    /// A short machine-readable name of the error class (the `kind` field of `--json` errors).
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::Usage { .. } => "usage",
            CliError::NoSession { .. } => "no_session",
            CliError::UnknownSession { .. } => "unknown_session",
            CliError::AmbiguousSession { .. } => "ambiguous_session",
            CliError::SessionEnded { .. } => "session_ended",
            CliError::Network { .. } => "network",
            CliError::Server { .. } => "server",
            CliError::Cancelled { .. } => "cancelled",
            CliError::TimedOut { .. } => "timed_out",
            CliError::Interrupted => "interrupted",
            CliError::Local { .. } => "local",
        }
    }

    /// What the person could try next.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Usage { .. } => Some("see `matrix-oidc --help`".into()),
            CliError::NoSession { .. } => {
                Some("sign in first: `matrix-oidc login <homeserver>`".into())
            }
            CliError::UnknownSession { .. } => {
                Some("`matrix-oidc sessions` lists the stored sessions".into())
            }
            CliError::AmbiguousSession { candidates, .. } => Some(format!(
                "pass one of these to --session: {}",
                candidates.join(", ")
            )),
            CliError::SessionEnded { .. } => {
                Some("sign in again: `matrix-oidc login <homeserver>`".into())
            }
            CliError::Network {
                hint: Some(hint), ..
            }
            | CliError::Server {
                hint: Some(hint), ..
            } => Some(hint.clone()),
            CliError::Network { .. } => {
                Some("check the address and your connection; -v shows each request".into())
            }
            CliError::Server { hint: None, .. } => None,
            CliError::Cancelled { .. } => Some("run `matrix-oidc login` again to retry".into()),
            CliError::TimedOut { .. } => Some(
                "run the command again; --timeout gives more time to finish in the browser".into(),
            ),
            CliError::Interrupted | CliError::Local { .. } => None,
        }
    }

    /// The `--json` form: `{"error": {"kind", "message", "hint", "exit_code"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "kind": self.kind(),
                "message": self.to_string(),
                "hint": self.hint(),
                "exit_code": self.exit_code().code(),
            }
        })
    }

    /// The human form: `error: <message>` and, on a second line, `hint: <hint>`.
    pub fn to_human(&self) -> String {
        match self.hint() {
            Some(hint) => format!("error: {self}\n  hint: {hint}"),
            None => format!("error: {self}"),
        }
    }
}

/// `90 s`, `5 min`, `1 min 30 s`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<CliError> {
        vec![
            CliError::Usage {
                message: "x".into(),
            },
            CliError::NoSession { store: "/s".into() },
            CliError::UnknownSession {
                query: "bob".into(),
                store: "/s".into(),
            },
            CliError::AmbiguousSession {
                query: None,
                candidates: vec!["a".into(), "b".into()],
            },
            CliError::SessionEnded {
                server: "https://auth.example.org/".into(),
                reason: "invalid_grant".into(),
            },
            CliError::Network {
                doing: "discovering https://matrix.example.org/".into(),
                reason: "connection refused".into(),
                hint: None,
            },
            CliError::Server {
                doing: "discovering https://matrix.example.org/".into(),
                reason: "bad metadata".into(),
                hint: None,
            },
            CliError::Cancelled { detail: None },
            CliError::TimedOut {
                what: "the browser sign-in".into(),
                after: Duration::from_secs(90),
            },
            CliError::Interrupted,
            CliError::Local {
                what: "x".into(),
                reason: "y".into(),
            },
        ]
    }

    #[test]
    fn every_error_maps_to_its_documented_exit_code() {
        let codes: Vec<(&str, u8)> = all()
            .iter()
            .map(|e| (e.kind(), e.exit_code().code()))
            .collect();
        assert_eq!(
            codes,
            [
                ("usage", 2),
                ("no_session", 3),
                ("unknown_session", 3),
                ("ambiguous_session", 2),
                ("session_ended", 3),
                ("network", 4),
                ("server", 5),
                ("cancelled", 6),
                ("timed_out", 6),
                ("interrupted", 130),
                ("local", 1),
            ]
        );
        assert_eq!(ExitStatus::Success.code(), 0);
    }

    #[test]
    fn messages_name_the_server_and_say_what_to_try() {
        let e = CliError::Network {
            doing: "discovering https://matrix.example.org/".into(),
            reason: "cannot connect to https://matrix.example.org/: connection refused".into(),
            hint: None,
        };
        let human = e.to_human();
        assert!(
            human.starts_with(
                "error: discovering https://matrix.example.org/ failed: cannot connect to \
                 https://matrix.example.org/: connection refused\n"
            ),
            "{human}"
        );
        assert!(human.contains("hint: check the address"), "{human}");
        let tls = CliError::Network {
            doing: "x".into(),
            reason: "y".into(),
            hint: Some("pass --ca-file".into()),
        };
        assert_eq!(tls.hint().as_deref(), Some("pass --ca-file"));
        let amb = CliError::AmbiguousSession {
            query: Some("alice".into()),
            candidates: vec!["k1".into(), "k2".into()],
        };
        assert_eq!(
            amb.to_string(),
            "2 sessions match \"alice\"; choose one with --session"
        );
        assert!(amb.hint().unwrap().contains("k1, k2"));
        let t = CliError::TimedOut {
            what: "the browser sign-in".into(),
            after: Duration::from_secs(600),
        };
        assert_eq!(
            t.to_string(),
            "the browser sign-in was not completed within 10 min"
        );
        assert_eq!(
            CliError::Cancelled {
                detail: Some("access_denied".into())
            }
            .to_string(),
            "sign-in cancelled: access_denied"
        );
    }

    #[test]
    fn json_errors_carry_kind_message_hint_and_code() {
        let v = CliError::NoSession {
            store: "/data/matrix-oidc".into(),
        }
        .to_json();
        assert_eq!(v["error"]["kind"], "no_session");
        assert_eq!(v["error"]["exit_code"], 3);
        assert_eq!(
            v["error"]["message"],
            "not signed in: no session is stored in /data/matrix-oidc"
        );
        assert!(
            v["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("matrix-oidc login")
        );
        assert!(CliError::Interrupted.to_json()["error"]["hint"].is_null());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(human_duration(Duration::from_secs(120)), "2 min");
        assert_eq!(human_duration(Duration::from_secs(90)), "1 min 30 s");
    }
}
