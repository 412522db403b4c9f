//! Server processes: started detached in a process group of their own, recognised later by PID and
//! start time, stopped by signalling their group.

use super::state::ProcessId;
use crate::util::Result;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Children started by this xtask process, kept so that stopping one also reaps it (a child that
/// exited but was never waited for would still look alive).
static CHILDREN: Mutex<Option<HashMap<u32, Child>>> = Mutex::new(None);

/// Starts `cmd` as the leader of a new process group, stdin closed, stdout and stderr appended to
/// `log`; it keeps running after xtask exits.
pub(crate) fn spawn(mut cmd: Command, log: &Path, banner: &str) -> Result<ProcessId> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    writeln!(file, "\n===== {banner} =====")
        .map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .process_group(0);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    let pid = child.id();
    if let Ok(mut children) = CHILDREN.lock() {
        children.get_or_insert_with(HashMap::new).insert(pid, child);
    }
    let start_time = start_time(pid).ok_or_else(|| {
        format!(
            "`{program}` (pid {pid}) exited immediately; see {}",
            log.display()
        )
    })?;
    Ok(ProcessId { pid, start_time })
}

/// Whether the process is still the one the harness started (same PID, same start time, not a zombie).
pub(crate) fn is_alive(id: ProcessId) -> bool {
    reap(id.pid);
    start_time(id.pid) == Some(id.start_time)
}

/// Stops the process group `id` leads: SIGTERM, then SIGKILL after `grace`. Does nothing when the
/// process is gone or the PID now belongs to another process.
pub(crate) fn stop(id: ProcessId, grace: Duration) -> Result {
    if !is_alive(id) {
        return Ok(());
    }
    signal_group(id.pid, "TERM")?;
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_alive(id) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(id.pid, "KILL")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !is_alive(id) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("process {} survived SIGKILL", id.pid))
}

fn signal_group(pid: u32, signal: &str) -> Result {
    // std has no kill(2) and the workspace forbids unsafe code: use kill(1) on the negative PID,
    // which addresses the whole process group.
    // A non-zero exit means the group is already gone, which is what we want.
    Command::new("kill")
        .args([format!("-{signal}"), "--".to_owned(), format!("-{pid}")])
        .stderr(Stdio::null())
        .status()
        .map(drop)
        .map_err(|e| format!("cannot run kill: {e}"))
}

/// Waits for a child of this process that has exited, so that it does not linger as a zombie.
fn reap(pid: u32) {
    if let Ok(mut children) = CHILDREN.lock() {
        if let Some(map) = children.as_mut() {
            if let Some(child) = map.get_mut(&pid) {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    map.remove(&pid);
                }
            }
        }
    }
}

/// Field 22 of `/proc/<pid>/stat`, or `None` if there is no such process or it is a zombie.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // `rest` starts at field 3 (state); field 22 is 19 further.
    fields.nth(18)?.parse().ok()
}

/// A port on 127.0.0.1 that is free right now.
pub(crate) fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Whether something already listens on `127.0.0.1:port`.
pub(crate) fn port_in_use(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err()
}

/// The last `lines` lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let tail = &all[all.len().saturating_sub(lines)..];
    let mut out = format!("--- last lines of {} ---\n", path.display());
    for line in tail {
        out.push_str(line);
        out.push('\n');
    }
    out
}
