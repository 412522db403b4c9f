//! `cargo xtask peers`: the real servers that conformance tests and the demo run against.
//!
//! * an OpenID Provider — `oidc-provider` (npm, pinned) configured for Matrix by
//!   `xtask/peers/op/server.mjs`, with switches for negative tests ([`OpControl`]);
//! * a homeserver — Synapse (PyPI, pinned) delegating authentication to that OP, configured from
//!   `xtask/peers/synapse/homeserver.yaml.in`: by default 1.156.0 through
//!   `experimental_features.msc3861`; with `--mas`, the latest Synapse through
//!   `matrix_authentication_service`, the OP playing the part of MAS ([`Flavour`]).
//!
//! Both listen on 127.0.0.1 on ports chosen when they start, over plain HTTP or (`--https`) over
//! HTTPS with certificates from a CA the harness generates. Each mode and flavour is an independent
//! set of peers ([`PeersOptions`]) with its own folder `.peers/<instance>/` (`http`, `https`,
//! `http-mas`, `https-mas`) and state file `.peers/<instance>/state.json` ([`PeersState`]); several
//! may run at once. Installs live in `.peers/op` and `.peers/venv*`, logs in `.peers/logs`.
//!
//! The lifecycle is idempotent: `up` installs what is missing, starts what is not running, waits
//! until each server answers and records PIDs; `down` stops only processes it recorded (matching PID
//! and start time), by process group. [`with_peers`] wraps a closure in up/down for tasks such as
//! conformance and the demo.

mod control;
mod http;
mod install;
mod process;
mod smoke;
mod state;
mod tls;

pub(crate) use control::{IssMisbehaviour, OpControl, Switch};
pub(crate) use http::{client, runtime};
pub(crate) use state::{Flavour, Mode, PeersState, TestUser};

use crate::util::{self, Result};
use install::Installs;
use serde_json::json;
use state::{ClientCredentials, OpState, ProcessId, SynapseState, write_atomically};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Matrix server name of the harness homeserver.
const SERVER_NAME: &str = "localhost";

/// Users created at the OP and in Synapse at start-up: (username, password, display name).
const TEST_USERS: &[(&str, &str, &str)] = &[
    ("alice", "alice-password-1", "Alice"),
    ("bob", "bob-password-1", "Bob"),
];

/// Normal lifetime of access tokens, in seconds (a switch shortens it).
const ACCESS_TOKEN_TTL_SECS: u32 = 300;

/// The client ID of the confidential client Synapse introspects with.
const SYNAPSE_CLIENT_ID: &str = "synapse";

/// How long each server may take to answer after it starts.
const OP_START_TIMEOUT: Duration = Duration::from_secs(30);
const SYNAPSE_START_TIMEOUT: Duration = Duration::from_secs(90);

/// How long a server may take to exit on SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: cargo xtask peers <command> [options]

commands:
  up [--https] [--mas]      install if needed, start the OP and Synapse unless running, wait until
                            they answer; write .peers/<instance>/state.json
  down [--http|--https] [--msc3861|--mas]
                            stop the peers this harness started (default: every mode and flavour)
  status                    show what runs, where, and whether it answers
  install [--mas]           install oidc-provider and Synapse only
  smoke [--https|--all] [--mas]
                            raw-protocol end-to-end check against the peers (brings them up and, if
                            it started them, down again); --all runs HTTP and HTTPS

Modes: HTTP (default) or --https (certificates from a generated CA, .peers/tls/ca.pem).
Flavours: Synapse 1.156.0 with msc3861 delegation (default), or --mas: the latest Synapse with
matrix_authentication_service, the OP playing MAS. Logs are in .peers/logs/.
";

/// Which set of peers: the mode and the flavour. Each has its own folder, ports and state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeersOptions {
    /// HTTP or HTTPS.
    pub(crate) mode: Mode,
    /// Synapse 1.156.0 with msc3861, or the latest Synapse with MAS delegation.
    pub(crate) flavour: Flavour,
}

impl PeersOptions {
    /// Every combination, in the order `status` and `down` walk them.
    pub(crate) const ALL: [PeersOptions; 4] = [
        PeersOptions::new(Mode::Http, Flavour::Msc3861),
        PeersOptions::new(Mode::Https, Flavour::Msc3861),
        PeersOptions::new(Mode::Http, Flavour::Mas),
        PeersOptions::new(Mode::Https, Flavour::Mas),
    ];

    /// The peers of `mode` and `flavour`.
    pub(crate) const fn new(mode: Mode, flavour: Flavour) -> PeersOptions {
        PeersOptions { mode, flavour }
    }

    /// The instance name: `http`, `https`, `http-mas`, `https-mas` (folder and log names).
    pub(crate) fn name(self) -> String {
        match self.flavour {
            Flavour::Msc3861 => self.mode.as_str().to_owned(),
            Flavour::Mas => format!("{}-{}", self.mode, self.flavour),
        }
    }
}

impl std::fmt::Display for PeersOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Which servers an [`up`] call started (the others were already running).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Started {
    /// The OP was started by this call.
    pub(crate) op: bool,
    /// Synapse was started by this call.
    pub(crate) synapse: bool,
}

/// `cargo xtask peers ...`.
pub(crate) fn run(args: &[String]) -> Result {
    let Some(command) = args.first() else {
        eprint!("{USAGE}");
        return Err("no peers command given".to_owned());
    };
    let flags = &args[1..];
    match command.as_str() {
        "up" => {
            let sel = Selection::parse(flags, false)?;
            let opts = PeersOptions::new(
                sel.mode.unwrap_or(Mode::Http),
                sel.flavour.unwrap_or_default(),
            );
            let started_at = Instant::now();
            let (state, started) = up(&opts)?;
            print_state(&state, started);
            println!(
                "peers ({opts}) ready in {:.1} s",
                started_at.elapsed().as_secs_f64()
            );
            Ok(())
        }
        "down" => {
            let sel = Selection::parse(flags, false)?;
            let mut stopped = false;
            for opts in PeersOptions::ALL {
                if sel.mode.is_some_and(|m| m != opts.mode)
                    || sel.flavour.is_some_and(|f| f != opts.flavour)
                {
                    continue;
                }
                if down(opts)? {
                    println!("peers ({opts}) stopped");
                    stopped = true;
                }
            }
            if !stopped {
                println!("no peers were running");
            }
            Ok(())
        }
        "status" => {
            no_flags(flags)?;
            status()
        }
        "install" => {
            let sel = Selection::parse(flags, false)?;
            if sel.mode.is_some() {
                return Err("install takes no mode".to_owned());
            }
            install::ensure(
                &Installs::under(&peers_dir()),
                sel.flavour.unwrap_or_default(),
            )?;
            println!("peers installed");
            Ok(())
        }
        "smoke" => {
            let sel = Selection::parse(flags, true)?;
            let flavour = sel.flavour.unwrap_or_default();
            let modes = match (sel.all, sel.mode) {
                (true, _) => Mode::ALL.to_vec(),
                (false, mode) => vec![mode.unwrap_or(Mode::Http)],
            };
            for mode in modes {
                with_peers(&PeersOptions::new(mode, flavour), smoke::run)?;
            }
            Ok(())
        }
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            Err(format!("unknown peers command `{other}`"))
        }
    }
}

/// Mode and flavour flags of a command; `None` where none was given.
struct Selection {
    mode: Option<Mode>,
    flavour: Option<Flavour>,
    all: bool,
}

impl Selection {
    fn parse(flags: &[String], allow_all: bool) -> Result<Selection> {
        let mut sel = Selection {
            mode: None,
            flavour: None,
            all: false,
        };
        for flag in flags {
            match flag.as_str() {
                "--http" => set_once(&mut sel.mode, Mode::Http)?,
                "--https" => set_once(&mut sel.mode, Mode::Https)?,
                "--msc3861" => set_once(&mut sel.flavour, Flavour::Msc3861)?,
                "--mas" => set_once(&mut sel.flavour, Flavour::Mas)?,
                "--all" if allow_all => sel.all = true,
                other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
            }
        }
        if sel.all && sel.mode.is_some() {
            return Err("--all runs both modes; give no mode with it".to_owned());
        }
        Ok(sel)
    }
}

fn set_once<T: PartialEq>(slot: &mut Option<T>, value: T) -> Result {
    if slot.as_ref().is_some_and(|old| *old != value) {
        return Err("give one mode and one flavour only".to_owned());
    }
    *slot = Some(value);
    Ok(())
}

fn no_flags(flags: &[String]) -> Result {
    match flags.first() {
        Some(flag) => Err(format!("unknown option `{flag}`\n\n{USAGE}")),
        None => Ok(()),
    }
}

/// Brings the peers `opts` selects up, runs `f`, and stops what it started — also when `f` fails or
/// panics. Peers that were already running stay up (a developer's `peers up` survives a test run),
/// and their switches are reset before `f` runs.
pub(crate) fn with_peers<T>(
    opts: &PeersOptions,
    f: impl FnOnce(&PeersState) -> Result<T>,
) -> Result<T> {
    let (state, started) = up(opts)?;
    let mut guard = StopOnDrop {
        opts: *opts,
        started: Some(started),
    };
    let out = f(&state);
    let stopped = guard.stop();
    let value = out?;
    stopped?;
    Ok(value)
}

struct StopOnDrop {
    opts: PeersOptions,
    started: Option<Started>,
}

impl StopOnDrop {
    fn stop(&mut self) -> Result {
        match self.started.take() {
            Some(started) => stop_started(self.opts, started),
            None => Ok(()),
        }
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("peers ({}): {e}", self.opts);
        }
    }
}

/// Stops the servers `started` says this process started.
fn stop_started(opts: PeersOptions, started: Started) -> Result {
    if started.op && started.synapse {
        return down(opts).map(drop);
    }
    if !started.op && !started.synapse {
        return Ok(());
    }
    let path = state_path(opts);
    let Some(mut state) = PeersState::load(&path)? else {
        return Ok(());
    };
    if started.synapse {
        if let Some(p) = state.synapse.process.take() {
            process::stop(p, STOP_GRACE)?;
        }
    }
    if started.op {
        if let Some(p) = state.op.process.take() {
            process::stop(p, STOP_GRACE)?;
        }
    }
    state.save(&path)
}

/// `.peers/` at the workspace root.
pub(crate) fn peers_dir() -> PathBuf {
    util::workspace_root().join(".peers")
}

fn instance_dir(opts: PeersOptions) -> PathBuf {
    peers_dir().join(opts.name())
}

/// `.peers/<instance>/state.json`.
pub(crate) fn state_path(opts: PeersOptions) -> PathBuf {
    instance_dir(opts).join("state.json")
}

/// The state of the peers `opts` selects, if they were brought up.
pub(crate) fn current_state(opts: PeersOptions) -> Result<Option<PeersState>> {
    PeersState::load(&state_path(opts))
}

/// Installs if needed and starts whatever of the OP and Synapse is not running, then waits until both
/// answer. Returns the state and which servers this call started.
pub(crate) fn up(opts: &PeersOptions) -> Result<(PeersState, Started)> {
    match up_once(opts) {
        // A server that is alive but never answers (seen once on a fresh machine: the OP logged its
        // start and nothing more for 30 s) gets one more start on new ports; its log keeps both.
        Err(e) if e.contains(NOT_READY) => {
            eprintln!("peers ({opts}): {e}\npeers ({opts}): stopped; starting them once more");
            up_once(opts)
        }
        other => other,
    }
}

/// What [`wait_for`] says of a live server that did not answer in time.
const NOT_READY: &str = "did not answer within";

fn up_once(opts: &PeersOptions) -> Result<(PeersState, Started)> {
    let opts = *opts;
    let mode = opts.mode;
    let dir = instance_dir(opts);
    let logs = peers_dir().join("logs");
    for d in [&dir, &logs] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let path = state_path(opts);
    let existing = PeersState::load(&path)?;
    let alive = |p: Option<ProcessId>| p.is_some_and(process::is_alive);
    let mut state = match existing {
        Some(s) if alive(s.op.process) || alive(s.synapse.process) => {
            if mode == Mode::Https && s.ca_pem.as_deref().is_none_or(|p| !p.is_file()) {
                // The CA the running servers use is gone: start both anew with a new one.
                down(opts)?;
                fresh_state(opts, &logs)?
            } else {
                s
            }
        }
        _ => fresh_state(opts, &logs)?,
    };
    let op_running = alive(state.op.process);
    let synapse_running = alive(state.synapse.process);
    let mut started = Started::default();

    let tls = match mode {
        Mode::Https => Some(tls::ensure(&peers_dir().join("tls"))?),
        Mode::Http => None,
    };
    state.ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());

    if !op_running || !synapse_running {
        install::ensure(&Installs::under(&peers_dir()), opts.flavour)?;
    }
    if !op_running {
        state.op.process = Some(start_op(&state, &dir, tls.as_ref())?);
        started.op = true;
        state.save(&path)?;
    }
    if !synapse_running {
        state.synapse.process = match start_synapse(&state, &dir, tls.as_ref()) {
            Ok(p) => Some(p),
            Err(e) => {
                let _ = stop_started(opts, started);
                return Err(e);
            }
        };
        started.synapse = true;
        state.save(&path)?;
    }

    let rt = runtime()?;
    let ready = rt.block_on(wait_until_ready(&state, started));
    if let Err(e) = ready {
        if let Err(stop) = stop_started(opts, started) {
            eprintln!("peers ({opts}): {stop}");
        }
        return Err(e);
    }
    state.save(&path)?;
    Ok((state, started))
}

/// Ports, secrets and users for peers that are not running.
fn fresh_state(opts: PeersOptions, logs: &Path) -> Result<PeersState> {
    let PeersOptions { mode, flavour } = opts;
    let scheme = mode.as_str();
    let [op_port, synapse_port, front_port] = distinct_free_ports()?;
    let issuer = format!("{scheme}://127.0.0.1:{op_port}");
    let secret = |prefix: &str| -> Result<String> { Ok(format!("{prefix}{}", random_string(32)?)) };
    Ok(PeersState {
        version: state::STATE_VERSION,
        mode,
        flavour,
        op: OpState {
            control_url: format!("{issuer}/__harness"),
            homeserver_front_url: format!("{scheme}://127.0.0.1:{front_port}"),
            homeserver_front_port: front_port,
            issuer,
            port: op_port,
            process: None,
            log: logs.join(format!("op-{opts}.log")),
        },
        synapse: SynapseState {
            url: format!("{scheme}://127.0.0.1:{synapse_port}"),
            port: synapse_port,
            server_name: SERVER_NAME.to_owned(),
            version: install::synapse_release(flavour).version.to_owned(),
            admin_token: match flavour {
                Flavour::Msc3861 => Some(secret("syt_admin_")?),
                Flavour::Mas => None,
            },
            mas_secret: match flavour {
                Flavour::Msc3861 => None,
                Flavour::Mas => Some(secret("mas_")?),
            },
            process: None,
            log: logs.join(format!("synapse-{opts}.log")),
        },
        introspection_client: ClientCredentials {
            client_id: SYNAPSE_CLIENT_ID.to_owned(),
            client_secret: random_string(40)?,
        },
        ca_pem: None,
        users: TEST_USERS
            .iter()
            .map(|(username, password, displayname)| TestUser {
                username: (*username).to_owned(),
                password: (*password).to_owned(),
                user_id: format!("@{username}:{SERVER_NAME}"),
                displayname: (*displayname).to_owned(),
            })
            .collect(),
    })
}

fn distinct_free_ports<const N: usize>() -> Result<[u16; N]> {
    let mut ports = [0; N];
    let mut found = 0;
    while found < N {
        let port = process::free_port()?;
        if !ports[..found].contains(&port) {
            ports[found] = port;
            found += 1;
        }
    }
    Ok(ports)
}

fn ensure_port_free(port: u16, what: &str) -> Result {
    if process::port_in_use(port) {
        return Err(format!(
            "port {port} for the {what} is taken by another process; run `cargo xtask peers down` \
             (or stop whatever listens there) and try again"
        ));
    }
    Ok(())
}

fn start_op(state: &PeersState, dir: &Path, tls: Option<&tls::TlsFiles>) -> Result<ProcessId> {
    ensure_port_free(state.op.port, "OP")?;
    ensure_port_free(state.op.homeserver_front_port, "homeserver front")?;
    let installs = Installs::under(&peers_dir());
    // The script runs from the install folder so that it resolves oidc-provider there.
    let script = installs.op_dir.join("server.mjs");
    let source = install::op_sources().join("server.mjs");
    std::fs::copy(&source, &script).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            source.display(),
            script.display()
        )
    })?;
    let config = json!({
        "issuer": state.op.issuer,
        "host": "127.0.0.1",
        "port": state.op.port,
        "tls": tls.map(|t| json!({ "cert": t.cert_pem, "key": t.key_pem })),
        "front_port": state.op.homeserver_front_port,
        "homeserver_url": state.synapse.url,
        // How the OP creates users and devices in Synapse: the admin API (msc3861) or MAS's API.
        "synapse_api": match (&state.synapse.admin_token, &state.synapse.mas_secret) {
            (Some(token), _) => json!({ "kind": "admin", "token": token }),
            (None, Some(secret)) => json!({ "kind": "mas", "token": secret }),
            (None, None) => return Err("the peers state has neither an admin token nor a MAS secret".to_owned()),
        },
        "server_name": state.synapse.server_name,
        "synapse_client": {
            "client_id": state.introspection_client.client_id,
            "client_secret": state.introspection_client.client_secret,
        },
        "users": state.users.iter().map(|u| json!({
            "username": u.username,
            "password": u.password,
            "displayname": u.displayname,
        })).collect::<Vec<_>>(),
        "access_token_ttl": ACCESS_TOKEN_TTL_SECS,
    });
    let config_path = dir.join("op-config.json");
    write_atomically(&config_path, config.to_string().as_bytes())?;
    let mut cmd = Command::new("node");
    cmd.current_dir(&installs.op_dir)
        .arg(&script)
        .arg(&config_path);
    if let Some(t) = tls {
        // The OP calls Synapse's admin API over HTTPS too.
        cmd.env("NODE_EXTRA_CA_CERTS", &t.ca_pem);
    }
    process::spawn(
        cmd,
        &state.op.log,
        &format!(
            "oidc-provider {} ({}, {})",
            state.op.issuer, state.mode, state.flavour
        ),
    )
}

fn start_synapse(state: &PeersState, dir: &Path, tls: Option<&tls::TlsFiles>) -> Result<ProcessId> {
    ensure_port_free(state.synapse.port, "homeserver")?;
    let data = dir.join("synapse");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let signing_key = data.join("signing.key");
    if !signing_key.is_file() {
        write_atomically(&signing_key, synapse_signing_key()?.as_bytes())?;
    }
    let read_template = |name: &str| {
        let path = install::synapse_sources().join(name);
        std::fs::read_to_string(&path)
            .map(|text| (path.clone(), text))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let (template_path, template) = read_template("homeserver.yaml.in")?;
    let (_, auth) = read_template(&format!("auth-{}.yaml.in", state.flavour))?;
    let data_str = path_str(&data)?;
    let tls_files = match tls {
        Some(t) => format!(
            "tls_certificate_path: \"{}\"\ntls_private_key_path: \"{}\"\n",
            path_str(&t.cert_pem)?,
            path_str(&t.key_pem)?
        ),
        None => String::new(),
    };
    let values: [(&str, String); 14] = [
        ("AUTH", auth),
        ("SERVER_NAME", state.synapse.server_name.clone()),
        ("HOMESERVER_URL", state.synapse.url.clone()),
        ("DATA_DIR", data_str),
        ("PORT", state.synapse.port.to_string()),
        ("TLS", tls.is_some().to_string()),
        ("TLS_FILES", tls_files),
        ("MACAROON_SECRET", random_string(40)?),
        ("FORM_SECRET", random_string(40)?),
        ("OP_ISSUER", state.op.issuer.clone()),
        ("CLIENT_ID", state.introspection_client.client_id.clone()),
        (
            "CLIENT_SECRET",
            state.introspection_client.client_secret.clone(),
        ),
        (
            "ADMIN_TOKEN",
            state.synapse.admin_token.clone().unwrap_or_default(),
        ),
        (
            "MAS_SECRET",
            state.synapse.mas_secret.clone().unwrap_or_default(),
        ),
    ];
    let mut config = template;
    for (name, value) in &values {
        config = config.replace(&format!("{{{{{name}}}}}"), value);
    }
    if let Some(at) = config.find("{{") {
        let rest: String = config[at..].chars().take(40).collect();
        return Err(format!(
            "{} has a placeholder the harness does not fill: {rest}",
            template_path.display()
        ));
    }
    let config_path = data.join("homeserver.yaml");
    write_atomically(&config_path, config.as_bytes())?;

    let installs = Installs::under(&peers_dir());
    let mut cmd = Command::new(installs.python(state.flavour));
    cmd.current_dir(&data)
        .args(["-m", "synapse.app.homeserver", "--config-path"])
        .arg(&config_path)
        // The install skips byte-compiling (it halves its time); the first start writes the
        // bytecode of what Synapse imports, and later starts reuse it — unless the environment
        // forbids writing bytecode, which would make every start compile Synapse anew.
        .env_remove("PYTHONDONTWRITEBYTECODE");
    if let Some(t) = tls {
        // Synapse's HTTP clients (Twisted and its Rust one) trust the system roots plus our CA.
        cmd.env("SSL_CERT_FILE", &t.bundle_pem);
    }
    process::spawn(
        cmd,
        &state.synapse.log,
        &format!(
            "Synapse {} {} ({}, {})",
            state.synapse.version, state.synapse.url, state.mode, state.flavour
        ),
    )
}

/// A path to put between double quotes in YAML.
fn path_str(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))?;
    if s.contains(['"', '\\', '\n']) {
        return Err(format!(
            "{s} holds a character the Synapse config cannot quote"
        ));
    }
    Ok(s.to_owned())
}

/// A new ed25519 signing key in Synapse's file format: `ed25519 <key id> <unpadded base64 seed>`.
fn synapse_signing_key() -> Result<String> {
    use base64::Engine as _;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let seed = base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed);
    Ok(format!("ed25519 a_{} {seed}\n", random_string(4)?))
}

/// `len` random characters from `[A-Za-z0-9]`.
pub(crate) fn random_string(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| format!("no randomness: {e}"))?;
        // 248 = 4 * 62: rejecting larger bytes keeps every character equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b % 62)]));
        }
    }
    Ok(out)
}

/// Waits until the OP and Synapse answer, Synapse has loaded the OP's metadata, and the test users
/// exist in Synapse. Resets the switches of an OP that was already running.
async fn wait_until_ready(state: &PeersState, started: Started) -> Result {
    let http = client(state.ca_pem.as_deref(), false)?;
    let discovery = format!("{}/.well-known/openid-configuration", state.op.issuer);
    let op_process = state.op.process.ok_or("the OP has no process")?;
    let metadata = wait_for_json(
        &http,
        &discovery,
        op_process,
        &state.op.log,
        OP_START_TIMEOUT,
    )
    .await?;
    if metadata["issuer"] != state.op.issuer.as_str() {
        return Err(format!(
            "{discovery} names issuer {} instead of {}; is another OP on that port?",
            metadata["issuer"], state.op.issuer
        ));
    }
    if !started.op {
        OpControl::new(state)?.reset().await?;
    }

    let synapse_process = state.synapse.process.ok_or("Synapse has no process")?;
    let health = format!("{}/health", state.synapse.url);
    wait_for(
        &http,
        &health,
        synapse_process,
        &state.synapse.log,
        SYNAPSE_START_TIMEOUT,
    )
    .await?;
    // Makes Synapse load (and cache) the OP's metadata now, before any test switches it.
    let auth_metadata = format!("{}/_matrix/client/v1/auth_metadata", state.synapse.url);
    let metadata = wait_for_json(
        &http,
        &auth_metadata,
        synapse_process,
        &state.synapse.log,
        Duration::from_secs(10),
    )
    .await?;
    if metadata["issuer"] != state.op.issuer.as_str() {
        return Err(format!(
            "{auth_metadata} names issuer {} instead of {}\n{}",
            metadata["issuer"],
            state.op.issuer,
            process::log_tail(&state.synapse.log, 30)
        ));
    }
    let front = format!(
        "{}/_matrix/client/v1/auth_metadata",
        state.op.homeserver_front_url
    );
    let metadata =
        wait_for_json(&http, &front, op_process, &state.op.log, OP_START_TIMEOUT).await?;
    if metadata["issuer"] != state.op.issuer.as_str() {
        return Err(format!(
            "{front} names issuer {} instead of {}",
            metadata["issuer"], state.op.issuer
        ));
    }
    for user in &state.users {
        let (url, token, body) = match (&state.synapse.admin_token, &state.synapse.mas_secret) {
            (Some(token), _) => (
                format!(
                    "{}/_synapse/admin/v2/users/{}",
                    state.synapse.url,
                    form_urlencoded::byte_serialize(user.user_id.as_bytes()).collect::<String>()
                ),
                token,
                json!({ "displayname": user.displayname }),
            ),
            (None, Some(secret)) => (
                format!("{}/_synapse/mas/provision_user", state.synapse.url),
                secret,
                json!({ "localpart": user.username, "set_displayname": user.displayname }),
            ),
            (None, None) => return Err("the peers state has no Synapse credentials".to_owned()),
        };
        let request = match state.synapse.admin_token {
            Some(_) => http.put(&url),
            None => http.post(&url),
        };
        let res = request
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = res.status();
        if !status.is_success() {
            let body = res.text().await.unwrap_or_default();
            return Err(format!(
                "creating {} in Synapse: {url} answered {status}: {body}",
                user.user_id
            ));
        }
    }
    Ok(())
}

async fn wait_for(
    http: &reqwest::Client,
    url: &str,
    process: ProcessId,
    log: &Path,
    timeout: Duration,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if !process::is_alive(process) {
            return Err(format!(
                "the server process (pid {}) exited before {url} answered\n{}",
                process.pid,
                process::log_tail(log, 40)
            ));
        }
        let last = match http.get(url).timeout(Duration::from_secs(5)).send().await {
            Ok(res) if res.status().is_success() => {
                return res
                    .text()
                    .await
                    .map_err(|e| format!("reading the answer of {url}: {e}"));
            }
            Ok(res) => format!("status {}", res.status()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{url} {NOT_READY} {} s (last: {last})\n{}",
                timeout.as_secs(),
                process::log_tail(log, 40)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_json(
    http: &reqwest::Client,
    url: &str,
    process: ProcessId,
    log: &Path,
    timeout: Duration,
) -> Result<serde_json::Value> {
    let text = wait_for(http, url, process, log, timeout).await?;
    serde_json::from_str(&text).map_err(|e| format!("{url} answered non-JSON ({e}): {text}"))
}

/// Stops the peers `opts` selects and removes their state file. Returns whether anything ran.
pub(crate) fn down(opts: PeersOptions) -> Result<bool> {
    let path = state_path(opts);
    let Some(processes) = state::recorded_processes(&path)? else {
        return Ok(false);
    };
    let mut any = false;
    for p in processes {
        if process::is_alive(p) {
            any = true;
            process::stop(p, STOP_GRACE)?;
        }
    }
    std::fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    Ok(any)
}

fn status() -> Result {
    let rt = runtime()?;
    let mut any = false;
    for opts in PeersOptions::ALL {
        let Some(state) = current_state(opts)? else {
            continue;
        };
        any = true;
        println!(
            "peers ({opts}): Synapse {}, {}",
            state.synapse.version,
            state_path(opts).display()
        );
        let http = client(state.ca_pem.as_deref(), false)?;
        let probes = [
            (
                "OP",
                state.op.process,
                format!("{}/.well-known/openid-configuration", state.op.issuer),
                &state.op.issuer,
                &state.op.log,
            ),
            (
                "Synapse",
                state.synapse.process,
                format!("{}/health", state.synapse.url),
                &state.synapse.url,
                &state.synapse.log,
            ),
        ];
        for (name, process, probe, url, log) in probes {
            let running = match process {
                Some(p) if process::is_alive(p) => format!("pid {}", p.pid),
                Some(_) => "exited".to_owned(),
                None => "not started".to_owned(),
            };
            let answer = rt.block_on(async {
                match http
                    .get(&probe)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                {
                    Ok(res) => res.status().to_string(),
                    Err(_) => "no answer".to_owned(),
                }
            });
            println!(
                "  {name:<8} {url:<28} {running:<12} {answer:<10} log {}",
                log.display()
            );
        }
        println!("  front    {}", state.op.homeserver_front_url);
        if let Some(ca) = &state.ca_pem {
            println!("  CA       {}", ca.display());
        }
    }
    if !any {
        println!("no peers running (cargo xtask peers up [--https] [--mas])");
    }
    Ok(())
}

fn print_state(state: &PeersState, started: Started) {
    let how = |s: bool| if s { "started" } else { "already running" };
    let pid = |p: Option<ProcessId>| p.map(|p| p.pid).unwrap_or_default();
    println!(
        "OP       {}  pid {} ({})",
        state.op.issuer,
        pid(state.op.process),
        how(started.op)
    );
    println!(
        "Synapse  {}  pid {} ({}), {} ({}), server name {}",
        state.synapse.url,
        pid(state.synapse.process),
        how(started.synapse),
        state.synapse.version,
        state.flavour,
        state.synapse.server_name
    );
    println!(
        "front    {}  (auth_metadata with the OP's switches, the rest proxied to Synapse)",
        state.op.homeserver_front_url
    );
    if let Some(ca) = &state.ca_pem {
        println!("CA       {}", ca.display());
    }
    println!(
        "state    {}",
        state_path(PeersOptions::new(state.mode, state.flavour)).display()
    );
}
