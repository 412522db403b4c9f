//! The state file of a running set of peers: `.peers/<instance>/state.json`.
//!
//! It is what a test needs to talk to the peers (URLs, the CA to trust, the test users, the admin token)
//! and what `peers down` needs to stop exactly the processes `peers up` started (PID + start time).

use crate::util::Result;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Version of the state-file format; bumped when a field changes meaning.
pub(crate) const STATE_VERSION: u32 = 2;

/// Plain HTTP on 127.0.0.1, or HTTPS with the harness's own CA.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Both servers speak plain HTTP.
    Http,
    /// Both servers speak HTTPS with certificates signed by the harness CA.
    Https,
}

impl Mode {
    /// Both modes.
    pub(crate) const ALL: [Mode; 2] = [Mode::Http, Mode::Https];

    /// `http` or `https`: the URL scheme and the name of the mode's folder.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Http => "http",
            Mode::Https => "https",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which Synapse, and how it delegates authentication to the OP.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Flavour {
    /// Synapse 1.156.0 with `experimental_features.msc3861` (generic OAuth delegation; the default).
    #[default]
    Msc3861,
    /// The latest Synapse with `matrix_authentication_service`: the OP plays the part of MAS
    /// (introspection with a shared secret, provisioning through `/_synapse/mas/*`).
    Mas,
}

impl Flavour {
    /// `msc3861` or `mas`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Flavour::Msc3861 => "msc3861",
            Flavour::Mas => "mas",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A process the harness started: enough to tell it from a later process that reuses the PID.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct ProcessId {
    /// The PID, which is also the process group the server leads.
    pub(crate) pid: u32,
    /// Start time of the process in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    pub(crate) start_time: u64,
}

/// The OpenID Provider.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct OpState {
    /// The issuer, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub(crate) issuer: String,
    /// The port it listens on (127.0.0.1).
    pub(crate) port: u16,
    /// The harness control endpoint base, `<issuer>/__harness`.
    pub(crate) control_url: String,
    /// The homeserver front, served by the OP process: a homeserver URL for negative tests of
    /// discovery. Its `auth_metadata` is the OP's metadata with the switches applied (Synapse itself
    /// caches the metadata it loaded at start-up); every other request goes through to Synapse.
    pub(crate) homeserver_front_url: String,
    /// The port of the homeserver front (127.0.0.1).
    pub(crate) homeserver_front_port: u16,
    /// The running process, if any.
    pub(crate) process: Option<ProcessId>,
    /// Its log file.
    pub(crate) log: PathBuf,
}

/// The homeserver.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SynapseState {
    /// The homeserver base URL, e.g. `http://127.0.0.1:41235` (no trailing slash).
    pub(crate) url: String,
    /// The port it listens on (127.0.0.1).
    pub(crate) port: u16,
    /// The server name in user IDs (`@alice:<server_name>`).
    pub(crate) server_name: String,
    /// The Synapse version installed.
    pub(crate) version: String,
    /// Flavour msc3861: the `admin_token`, a bearer token with admin rights on Synapse's admin API.
    pub(crate) admin_token: Option<String>,
    /// Flavour mas: the secret shared between Synapse and the OP (`matrix_authentication_service`);
    /// it authorizes `/_synapse/mas/*` calls.
    pub(crate) mas_secret: Option<String>,
    /// The running process, if any.
    pub(crate) process: Option<ProcessId>,
    /// Its log file.
    pub(crate) log: PathBuf,
}

/// Credentials of a confidential client registered statically at the OP.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ClientCredentials {
    /// The client ID.
    pub(crate) client_id: String,
    /// The client secret (`client_secret_basic`).
    pub(crate) client_secret: String,
}

/// A user that exists both at the OP (with a password) and in Synapse.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct TestUser {
    /// The login name at the OP and the Matrix localpart.
    pub(crate) username: String,
    /// The password at the OP.
    pub(crate) password: String,
    /// The Matrix user ID, `@<username>:<server_name>`.
    pub(crate) user_id: String,
    /// The display name.
    pub(crate) displayname: String,
}

/// Everything about one running set of peers.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PeersState {
    /// [`STATE_VERSION`].
    pub(crate) version: u32,
    /// HTTP or HTTPS.
    pub(crate) mode: Mode,
    /// How Synapse delegates authentication.
    pub(crate) flavour: Flavour,
    /// The OpenID Provider.
    pub(crate) op: OpState,
    /// The homeserver.
    pub(crate) synapse: SynapseState,
    /// The client Synapse introspects tokens with; tests may introspect with it too.
    pub(crate) introspection_client: ClientCredentials,
    /// In HTTPS mode, the PEM file of the CA that signed both servers' certificates: add it to the
    /// client's trusted roots (never disable verification).
    pub(crate) ca_pem: Option<PathBuf>,
    /// Users that exist at the OP and in Synapse.
    pub(crate) users: Vec<TestUser>,
}

impl PeersState {
    /// The test user called `username` (`alice`, `bob`).
    pub(crate) fn user(&self, username: &str) -> Result<&TestUser> {
        self.users
            .iter()
            .find(|u| u.username == username)
            .ok_or_else(|| format!("no test user `{username}` in the peers state"))
    }

    /// Reads a state file.
    pub(crate) fn load(path: &Path) -> Result<Option<PeersState>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let state: PeersState = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a peers state file ({e}); run `cargo xtask peers down` or delete it",
                path.display()
            )
        })?;
        if state.version != STATE_VERSION {
            return Err(format!(
                "{} has format version {}, this harness writes {STATE_VERSION}; stop those peers by hand and delete it",
                path.display(),
                state.version
            ));
        }
        Ok(Some(state))
    }

    /// Writes the state file (atomically: a reader never sees half a file).
    pub(crate) fn save(&self, path: &Path) -> Result {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| format!("cannot serialize the peers state: {e}"))?;
        write_atomically(path, text.as_bytes())
    }
}

/// Writes `contents` to `path` through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The processes recorded in a state file, read leniently so that `down` can stop peers recorded by
/// another version of the harness.
pub(crate) fn recorded_processes(path: &Path) -> Result<Option<Vec<ProcessId>>> {
    #[derive(Deserialize)]
    struct Server {
        #[serde(default)]
        process: Option<ProcessId>,
    }
    #[derive(Deserialize)]
    struct Processes {
        op: Option<Server>,
        synapse: Option<Server>,
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let recorded: Processes = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a peers state file: {e}", path.display()))?;
    // Synapse first: it calls the OP while shutting down, never the other way round.
    Ok(Some(
        [recorded.synapse, recorded.op]
            .into_iter()
            .flatten()
            .filter_map(|s| s.process)
            .collect(),
    ))
}
