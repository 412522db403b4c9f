//! Installs of the two servers into `.peers/`, from the package registries through npm and pip,
//! pinned by committed files: `xtask/peers/op/package-lock.json` and
//! `xtask/peers/synapse/constraints*.txt`. A stamp file holding a hash of the pins marks a finished
//! install; a matching stamp skips the install.

use super::state::Flavour;
use crate::util::{self, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A pinned Synapse release and where it is installed.
pub(crate) struct SynapseRelease {
    /// The version, e.g. `1.156.0`.
    pub(crate) version: &'static str,
    /// What pip installs; the constraints file pins everything it pulls in.
    requirement: &'static str,
    /// The constraints file in `xtask/peers/synapse/`.
    constraints: &'static str,
    /// The venv folder in `.peers/`.
    venv: &'static str,
}

/// Flavour msc3861: the last release with `experimental_features.msc3861` (it needs the `oidc` extra).
const SYNAPSE_MSC3861: SynapseRelease = SynapseRelease {
    version: "1.156.0",
    requirement: "matrix-synapse[oidc]==1.156.0",
    constraints: "constraints.txt",
    venv: "venv",
};

/// Flavour mas: the latest release when the harness was last updated.
const SYNAPSE_LATEST: SynapseRelease = SynapseRelease {
    version: "1.163.2",
    requirement: "matrix-synapse==1.163.2",
    constraints: "constraints-latest.txt",
    venv: "venv-latest",
};

/// The Synapse release of a flavour.
pub(crate) fn synapse_release(flavour: Flavour) -> &'static SynapseRelease {
    match flavour {
        Flavour::Msc3861 => &SYNAPSE_MSC3861,
        Flavour::Mas => &SYNAPSE_LATEST,
    }
}

/// Where the installs live.
pub(crate) struct Installs {
    /// `.peers/op`: package.json, package-lock.json, node_modules and the server script.
    pub(crate) op_dir: PathBuf,
    peers_dir: PathBuf,
}

impl Installs {
    /// The installs under `peers_dir` (`.peers/`).
    pub(crate) fn under(peers_dir: &Path) -> Installs {
        Installs {
            op_dir: peers_dir.join("op"),
            peers_dir: peers_dir.to_owned(),
        }
    }

    /// The venv of a flavour's Synapse (`.peers/venv`, `.peers/venv-latest`).
    pub(crate) fn venv(&self, flavour: Flavour) -> PathBuf {
        self.peers_dir.join(synapse_release(flavour).venv)
    }

    /// The Python of a flavour's venv.
    pub(crate) fn python(&self, flavour: Flavour) -> PathBuf {
        self.venv(flavour).join("bin").join("python")
    }
}

/// The committed OP files: `xtask/peers/op`.
pub(crate) fn op_sources() -> PathBuf {
    util::workspace_root()
        .join("xtask")
        .join("peers")
        .join("op")
}

/// The committed Synapse files: `xtask/peers/synapse`.
pub(crate) fn synapse_sources() -> PathBuf {
    util::workspace_root()
        .join("xtask")
        .join("peers")
        .join("synapse")
}

/// Installs oidc-provider and the flavour's Synapse unless the pinned installs are already there.
pub(crate) fn ensure(installs: &Installs, flavour: Flavour) -> Result {
    ensure_op(&installs.op_dir)?;
    ensure_synapse(&installs.venv(flavour), synapse_release(flavour))
}

fn ensure_op(dir: &Path) -> Result {
    let src = op_sources();
    let package = read(&src.join("package.json"))?;
    let lock = read(&src.join("package-lock.json"))?;
    let stamp = hash(&[&package, &lock]);
    let stamp_file = dir.join(".installed");
    if read(&stamp_file).ok().as_deref() == Some(stamp.as_bytes()) {
        return Ok(());
    }
    let started = Instant::now();
    println!(
        "peers: installing oidc-provider (npm ci) into {}",
        dir.display()
    );
    remove_dir(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write(&dir.join("package.json"), &package)?;
    write(&dir.join("package-lock.json"), &lock)?;
    let mut npm = Command::new("npm");
    npm.current_dir(dir).args([
        "ci",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]);
    util::run(npm).map_err(|e| format!("{e}\n(is Node.js with npm on the PATH?)"))?;
    write(&stamp_file, stamp.as_bytes())?;
    println!(
        "peers: oidc-provider installed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn ensure_synapse(venv: &Path, release: &SynapseRelease) -> Result {
    let constraints_path = synapse_sources().join(release.constraints);
    let constraints = read(&constraints_path)?;
    let stamp = hash(&[release.requirement.as_bytes(), &constraints]);
    let stamp_file = venv.join(".installed");
    if read(&stamp_file).ok().as_deref() == Some(stamp.as_bytes()) {
        return Ok(());
    }
    let started = Instant::now();
    println!(
        "peers: installing {} (pip) into {}",
        release.requirement,
        venv.display()
    );
    remove_dir(venv)?;
    let mut mkvenv = Command::new("python3");
    mkvenv.args(["-m", "venv"]).arg(venv);
    util::run(mkvenv).map_err(|e| format!("{e}\n(is Python 3 with the venv module installed?)"))?;
    let mut pip = Command::new(venv.join("bin").join("python"));
    pip.args([
        "-m",
        "pip",
        "install",
        // Byte-compiling everything doubles the install time; Python compiles what Synapse imports
        // on its first start instead.
        "--no-compile",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "--quiet",
        "--only-binary",
        ":all:",
        "--constraint",
    ])
    .arg(&constraints_path)
    .arg(release.requirement);
    util::run(pip)?;
    write(&stamp_file, stamp.as_bytes())?;
    println!(
        "peers: Synapse {} installed in {:.1} s",
        release.version,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, contents: &[u8]) -> Result {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn remove_dir(dir: &Path) -> Result {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", dir.display())),
    }
}
