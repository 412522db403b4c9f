//! Drives the real `matrix-oidc` binary against running peers: for the demo and for the
//! command-line end-to-end cases.

use crate::browser::{Browser, DeviceOutcome};
use crate::peers::{Mode, PeersState, runtime};
use crate::util::{self, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Builds the binary (debug profile) and returns its path.
pub(crate) fn build_binary() -> Result<PathBuf> {
    let mut cmd = util::cargo();
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "matrix-oidc-cli",
        "--bin",
        "matrix-oidc",
    ]);
    util::run(cmd)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::workspace_root().join("target"));
    let bin = target
        .join("debug")
        .join(format!("matrix-oidc{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("the build did not produce {}", bin.display()))
    }
}

/// A finished run of the binary.
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// The exit code (`-1` when killed by a signal).
    pub(crate) fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Fails unless the exit code is `want`.
    pub(crate) fn expect_code(&self, want: i32, what: &str) -> Result<&Self> {
        if self.code() == want {
            Ok(self)
        } else {
            Err(format!(
                "{what}: exit code {} instead of {want}\nstdout: {}\nstderr: {}",
                self.code(),
                self.stdout.trim(),
                self.stderr.trim()
            ))
        }
    }

    /// stdout as one JSON value.
    pub(crate) fn json(&self) -> Result<Value> {
        serde_json::from_str(self.stdout.trim())
            .map_err(|e| format!("stdout is not JSON ({e}): {}", self.stdout.trim()))
    }
}

/// The binary with the options every command needs to reach the peers and use a private store.
pub(crate) struct CliUnderTest {
    bin: PathBuf,
    global: Vec<String>,
    /// The homeserver URL of the peers.
    pub(crate) homeserver: String,
}

impl CliUnderTest {
    /// The binary `bin`, storing sessions in `store`, talking to the peers of `state`.
    pub(crate) fn new(bin: &Path, store: &Path, state: &PeersState) -> Self {
        let mut global = vec!["--store".to_owned(), store.display().to_string()];
        match (state.mode, &state.ca_pem) {
            (Mode::Https, Some(ca)) => {
                global.push("--ca-file".to_owned());
                global.push(ca.display().to_string());
            }
            _ => global.push("--insecure-loopback-http".to_owned()),
        }
        Self {
            bin: bin.to_owned(),
            global,
            homeserver: state.synapse.url.clone(),
        }
    }

    /// How the commands are shown to a person: `matrix-oidc` stands for this.
    pub(crate) fn alias(&self) -> String {
        format!("{} {}", self.bin.display(), self.global.join(" "))
    }

    /// A command with the global options and `args`.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.global).args(args);
        // The tool's own environment fallbacks must not leak in from the caller's shell.
        for var in [
            "MATRIX_OIDC_STORE",
            "MATRIX_OIDC_CA_FILE",
            "MATRIX_OIDC_SESSION",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `args` and captures both outputs.
    pub(crate) fn run(&self, args: &[&str]) -> Result<Run> {
        let out = self
            .command(args)
            .output()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        Ok(Run {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Starts `--json login …` with stdout piped (JSON Lines) and stderr either inherited (a person
    /// watches) or captured.
    pub(crate) fn spawn_login(&self, args: &[&str], show_stderr: bool) -> Result<LoginProcess> {
        let mut cmd = self.command(&[&["--json", "login"], args].concat());
        cmd.stdout(Stdio::piped());
        cmd.stderr(if show_stderr {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the login process has no stdout")?;
        Ok(LoginProcess {
            child,
            lines: BufReader::new(stdout),
        })
    }
}

/// A running `matrix-oidc --json login`.
pub(crate) struct LoginProcess {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl LoginProcess {
    /// The next JSON line on stdout (`None` at the end).
    pub(crate) fn next_json(&mut self) -> Result<Option<Value>> {
        let mut line = String::new();
        let n = self
            .lines
            .read_line(&mut line)
            .map_err(|e| format!("reading the login output: {e}"))?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(line.trim())
            .map(Some)
            .map_err(|e| format!("the login printed a line that is not JSON ({e}): {line}"))
    }

    /// The first line, which must be the progress event `name`.
    pub(crate) fn expect_event(&mut self, name: &str) -> Result<Value> {
        match self.next_json()? {
            Some(v) if v["event"] == name => Ok(v),
            Some(v) => Err(format!("expected the {name} event, got {v}")),
            None => {
                let run = self.collect()?;
                Err(format!(
                    "the login ended before the {name} event (exit code {}): {}",
                    run.code(),
                    run.stderr.trim()
                ))
            }
        }
    }

    /// Waits for the process and returns what is left on its outputs.
    pub(crate) fn finish(mut self) -> Result<Run> {
        self.collect()
    }

    fn collect(&mut self) -> Result<Run> {
        let mut stdout = String::new();
        self.lines
            .read_to_string(&mut stdout)
            .map_err(|e| format!("reading the login output: {e}"))?;
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        let status = self
            .child
            .wait()
            .map_err(|e| format!("waiting for the login: {e}"))?;
        Ok(Run {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for LoginProcess {
    fn drop(&mut self) {
        // A failed step must not leave a login waiting for a browser that never comes.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Approves a device authorization event (`verification_uri[_complete]`, `user_code`) in the
/// scripted browser as `username`.
pub(crate) fn approve_device(state: &PeersState, event: &Value, username: &str) -> Result {
    let user = state.user(username)?;
    let (uri, code) = device_uri(event)?;
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        let browser = Browser::for_peers(state).map_err(|e| e.to_string())?;
        browser
            .approve_device(&uri, code.as_deref(), &user.username, &user.password)
            .await
            .map_err(|e| e.to_string())
    })?;
    match outcome {
        DeviceOutcome::Approved => Ok(()),
        other => Err(format!("the scripted browser did not approve: {other:?}")),
    }
}

/// Denies a device authorization event in the scripted browser.
pub(crate) fn deny_device(state: &PeersState, event: &Value) -> Result {
    let (uri, code) = device_uri(event)?;
    let rt = runtime()?;
    rt.block_on(async {
        let browser = Browser::for_peers(state).map_err(|e| e.to_string())?;
        browser
            .deny_device(&uri, code.as_deref())
            .await
            .map_err(|e| e.to_string())
    })
    .map(drop)
}

fn device_uri(event: &Value) -> Result<(url::Url, Option<String>)> {
    let complete = event["verification_uri_complete"].as_str();
    let plain = event["verification_uri"]
        .as_str()
        .ok_or("the device event has no verification_uri")?;
    let code = event["user_code"]
        .as_str()
        .ok_or("the device event has no user_code")?;
    let (uri, code) = match complete {
        Some(c) => (c, None),
        None => (plain, Some(code.to_owned())),
    };
    let uri = url::Url::parse(uri).map_err(|e| format!("bad verification URI {uri}: {e}"))?;
    Ok((uri, code))
}

/// What the scripted person does on the provider's pages.
pub(crate) enum BrowserAction<'a> {
    /// Signs in as the test user and approves.
    LogIn(&'a str),
    /// Signs in as the test user and declines at the consent page.
    LogInAndDeny(&'a str),
    /// Creates the account with this username (and a password) and approves.
    SignUp(&'a str),
}

/// Plays the browser for a waiting `matrix-oidc login`: opens `authorization_url`, does `action`
/// on the provider's pages, and follows the final redirect to the tool's loopback listener.
/// Returns the status and body of the page the listener answered with.
pub(crate) fn browser_to_loopback(
    state: &PeersState,
    authorization_url: &str,
    action: BrowserAction<'_>,
) -> Result<(u16, String)> {
    let url = url::Url::parse(authorization_url)
        .map_err(|e| format!("bad authorization URL {authorization_url}: {e}"))?;
    let rt = runtime()?;
    rt.block_on(async {
        let browser = Browser::for_peers(state).map_err(|e| e.to_string())?;
        let redirect = match action {
            BrowserAction::LogIn(username) => {
                let user = state.user(username)?;
                browser.log_in(&url, &user.username, &user.password).await
            }
            BrowserAction::LogInAndDeny(username) => {
                let user = state.user(username)?;
                browser
                    .log_in_and_deny(&url, &user.username, &user.password)
                    .await
            }
            BrowserAction::SignUp(username) => {
                browser.sign_up(&url, username, "cli-e2e-password-1").await
            }
        }
        .map_err(|e| e.to_string())?;
        // The loopback listener is plain http on 127.0.0.1 in every mode.
        let plain = crate::peers::client(None, false)?;
        let response = plain
            .get(redirect)
            .send()
            .await
            .map_err(|e| format!("the loopback listener did not answer: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| format!("reading the loopback page: {e}"))?;
        Ok((status, body))
    })
}

/// A loopback port nothing listens on (bound and released at once).
pub(crate) fn closed_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| format!("cannot bind 127.0.0.1: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A private, empty store directory that is removed on drop.
pub(crate) struct TempStore(PathBuf);

impl TempStore {
    /// A new directory under the system's temp dir.
    pub(crate) fn new(purpose: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "matrix-oidc-{purpose}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Self(dir))
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `mat_abcd…` (N characters): enough to tell tokens apart, not enough to use one.
pub(crate) fn mask(token: &str) -> String {
    let head: String = token.chars().take(6).collect();
    format!("{head}… ({} characters)", token.chars().count())
}

/// Seconds with one decimal.
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
