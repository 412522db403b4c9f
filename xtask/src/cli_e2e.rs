//! The `matrix-oidc` binary end to end against the real peers: every command, both sign-in flows
//! (the loopback flow through the scripted browser, the device flow approved by it), the exit codes
//! of the failure cases. `cargo xtask cli-e2e [--https] [--mas]` runs it alone; [`cases`] is what a wider
//! conformance run calls with its own peers.

use crate::cli_driver::{self, BrowserAction, CliUnderTest, TempStore};
use crate::peers::{self, Flavour, Mode, PeersOptions, PeersState};
use crate::util::Result;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// One case's outcome.
pub(crate) struct CaseResult {
    /// What it checks.
    pub(crate) name: &'static str,
    /// `Err` with the reason when it failed.
    pub(crate) outcome: Result,
}

/// `cargo xtask cli-e2e [--https] [--mas]`: peers up, the cases, peers down, one line per case and a
/// summary line `N passed, M failed`.
pub(crate) fn run(args: &[String]) -> Result {
    let mut mode = Mode::Http;
    let mut flavour = Flavour::default();
    for arg in args {
        match arg.as_str() {
            "--https" => mode = Mode::Https,
            "--mas" => flavour = Flavour::Mas,
            other => {
                return Err(format!(
                    "usage: cargo xtask cli-e2e [--https] [--mas] (unknown option {other})"
                ));
            }
        }
    }
    let bin = cli_driver::build_binary()?;
    let results = peers::with_peers(&PeersOptions::new(mode, flavour), |state| {
        Ok(cases(&bin, state))
    })?;
    let failed = results.iter().filter(|r| r.outcome.is_err()).count();
    println!(
        "cli-e2e ({mode}, {flavour}): {} passed, {failed} failed",
        results.len() - failed
    );
    if failed == 0 {
        Ok(())
    } else {
        let names: Vec<&str> = results
            .iter()
            .filter(|r| r.outcome.is_err())
            .map(|r| r.name)
            .collect();
        Err(format!("failed: {}", names.join("; ")))
    }
}

/// Runs every case against the peers of `state` with the binary `bin`, printing one line each.
pub(crate) fn cases(bin: &Path, state: &PeersState) -> Vec<CaseResult> {
    let mut results = Vec::new();
    let mut case = |name: &'static str, f: &dyn Fn() -> Result| {
        let started = Instant::now();
        let outcome = f();
        match &outcome {
            Ok(()) => println!("ok    {name} ({})", cli_driver::secs(started.elapsed())),
            Err(e) => println!("FAIL  {name}: {e}"),
        }
        results.push(CaseResult { name, outcome });
    };
    case("discover shows the OP's metadata through Synapse", &|| {
        discover(bin, state)
    });
    case("without a session, commands exit 3", &|| {
        no_session(bin, state)
    });
    case("an unreachable homeserver exits 4", &|| {
        unreachable(bin, state)
    });
    match state.mode {
        Mode::Http => case(
            "plain http without --insecure-loopback-http exits 5",
            &|| http_refused(bin, state),
        ),
        Mode::Https => case(
            "an untrusted certificate exits 4 with a --ca-file hint",
            &|| untrusted(bin, state),
        ),
    }
    case(
        "browser login through the loopback listener, whoami, token, refresh, logout",
        &|| browser_session(bin, state),
    );
    case("device login approved in the scripted browser", &|| {
        device_login(bin, state, &[])
    });
    case(
        "device login with unstable scopes and a chosen device id",
        &|| {
            device_login(
                bin,
                state,
                &["--scopes", "unstable", "--device-id", "CLIE2EDEVICE1"],
            )
        },
    );
    case("a declined browser login exits 6", &|| {
        browser_denied(bin, state)
    });
    case("a declined device login exits 6", &|| {
        device_denied(bin, state)
    });
    case("login --create signs up a new user", &|| {
        sign_up(bin, state)
    });
    case("two sessions need --session", &|| two_sessions(bin, state));
    results
}

fn cli(bin: &Path, state: &PeersState) -> Result<(TempStore, CliUnderTest)> {
    let store = TempStore::new("cli-e2e")?;
    let cli = CliUnderTest::new(bin, store.path(), state);
    Ok((store, cli))
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result {
    if cond { Ok(()) } else { Err(what()) }
}

fn discover(bin: &Path, state: &PeersState) -> Result {
    let (_store, cli) = cli(bin, state)?;
    let run = cli.run(&["--json", "discover", &cli.homeserver])?;
    run.expect_code(0, "discover")?;
    let v = run.json()?;
    let issuer = v["issuer"].as_str().unwrap_or_default();
    expect(issuer.trim_end_matches('/') == state.op.issuer, || {
        format!("issuer {issuer} is not the OP {}", state.op.issuer)
    })?;
    for feature in [
        "device_authorization_grant",
        "sign_up",
        "pkce_s256",
        "revocation",
    ] {
        expect(v["supports"][feature] == true, || {
            format!("discover says {feature} is not supported: {v}")
        })?;
    }
    let human = cli.run(&["discover", &cli.homeserver])?;
    human.expect_code(0, "discover (text)")?;
    expect(human.stdout.contains("Authorization server"), || {
        format!("unexpected text: {}", human.stdout)
    })
}

fn no_session(bin: &Path, state: &PeersState) -> Result {
    let (_store, cli) = cli(bin, state)?;
    for command in ["whoami", "token", "refresh", "logout"] {
        let run = cli.run(&[command])?;
        run.expect_code(3, command)?;
        expect(run.stderr.contains("matrix-oidc login"), || {
            format!("{command}: no hint to sign in: {}", run.stderr)
        })?;
    }
    let run = cli.run(&["--json", "sessions"])?;
    run.expect_code(0, "sessions")?;
    expect(run.json()?["sessions"] == Value::Array(vec![]), || {
        format!("sessions in an empty store: {}", run.stdout)
    })
}

fn unreachable(bin: &Path, state: &PeersState) -> Result {
    let (_store, cli) = cli(bin, state)?;
    // A port that was free a moment ago: nothing listens there.
    let port = cli_driver::closed_port()?;
    let scheme = match state.mode {
        Mode::Http => "http",
        Mode::Https => "https",
    };
    let run = cli.run(&[
        "--json",
        "discover",
        &format!("{scheme}://127.0.0.1:{port}"),
    ])?;
    run.expect_code(4, "discover of a closed port")?;
    let err: Value = serde_json::from_str(run.stderr.trim())
        .map_err(|e| format!("--json error is not JSON ({e}): {}", run.stderr))?;
    expect(err["error"]["kind"] == "network", || format!("{err}"))
}

fn http_refused(bin: &Path, state: &PeersState) -> Result {
    let run = std::process::Command::new(bin)
        .args(["discover", &state.synapse.url])
        .env_remove("MATRIX_OIDC_STORE")
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&run.stderr);
    expect(run.status.code() == Some(5), || {
        format!("exit code {:?}: {stderr}", run.status.code())
    })?;
    expect(stderr.contains("--insecure-loopback-http"), || {
        format!("no hint: {stderr}")
    })
}

fn untrusted(bin: &Path, state: &PeersState) -> Result {
    let store = TempStore::new("cli-e2e")?;
    let run = std::process::Command::new(bin)
        .args(["--store", &store.path().display().to_string()])
        .args(["discover", &state.synapse.url])
        .env_remove("MATRIX_OIDC_CA_FILE")
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&run.stderr);
    expect(run.status.code() == Some(4), || {
        format!("exit code {:?}: {stderr}", run.status.code())
    })?;
    expect(stderr.contains("--ca-file"), || {
        format!("no hint: {stderr}")
    })
}

/// Signs in through the loopback flow as `user`; returns the session JSON.
fn browser_login(cli: &CliUnderTest, state: &PeersState, extra: &[&str]) -> Result<Value> {
    let alice = state.user("alice")?;
    let mut args = vec!["--no-browser", "--timeout", "60"];
    args.extend_from_slice(extra);
    args.push(&cli.homeserver);
    let mut login = cli.spawn_login(&args, false)?;
    let event = login.expect_event("authorization_url")?;
    let url = event["url"].as_str().ok_or("no url in the event")?;
    let redirect_uri = event["redirect_uri"].as_str().unwrap_or_default();
    expect(redirect_uri.starts_with("http://127.0.0.1:"), || {
        format!("redirect URI {redirect_uri} is not on loopback with a port")
    })?;
    let (status, page) =
        cli_driver::browser_to_loopback(state, url, BrowserAction::LogIn(&alice.username))?;
    let run = login.finish()?;
    run.expect_code(0, "login")?;
    expect(
        status == 200 && page.contains(&format!("Signed in as {}", alice.user_id)),
        || format!("the browser tab got {status}: {page}"),
    )?;
    let session: Value = serde_json::from_str(run.stdout.trim())
        .map_err(|e| format!("login result is not JSON ({e}): {}", run.stdout))?;
    expect(session["user_id"] == alice.user_id.as_str(), || {
        format!("signed in as {}", session["user_id"])
    })?;
    Ok(session)
}

fn browser_session(bin: &Path, state: &PeersState) -> Result {
    let (_store, cli) = cli(bin, state)?;
    let session = browser_login(&cli, state, &[])?;
    let device = session["device_id"].as_str().unwrap_or_default().to_owned();

    let who = cli.run(&["--json", "whoami"])?;
    who.expect_code(0, "whoami")?;
    let who = who.json()?;
    expect(who["device_id"] == device.as_str(), || {
        format!(
            "whoami device {} is not the login's {device}",
            who["device_id"]
        )
    })?;

    let token = cli.run(&["token"])?;
    token.expect_code(0, "token")?;
    let first = token.stdout.trim().to_owned();
    expect(!first.is_empty() && !first.contains(' '), || {
        format!("token printed {:?}", token.stdout)
    })?;
    synapse_whoami(state, &first, 200)?;

    cli.run(&["refresh"])?.expect_code(0, "refresh")?;
    // Twice in a row: a refresh right after another is still a refresh, not a logout.
    cli.run(&["refresh"])?.expect_code(0, "second refresh")?;
    let second = cli.run(&["token"])?;
    second.expect_code(0, "token after refresh")?;
    let second = second.stdout.trim().to_owned();
    expect(second != first, || {
        "refresh kept the same access token".into()
    })?;
    synapse_whoami(state, &second, 200)?;

    let account = cli.run(&["account", "device-view"])?;
    account.expect_code(0, "account device-view")?;
    expect(
        account.stdout.contains("action=org.matrix.device_view")
            && account.stdout.contains(&format!("device_id={device}")),
        || format!("account URL {}", account.stdout.trim()),
    )?;

    let out = cli.run(&["--json", "logout"])?;
    out.expect_code(0, "logout")?;
    expect(out.json()?["revoked"] == true, || {
        format!("logout did not revoke: {}", out.stdout)
    })?;
    cli.run(&["token"])?.expect_code(3, "token after logout")?;
    Ok(())
}

/// `GET /account/whoami` at Synapse with `token`, expecting `status`.
fn synapse_whoami(state: &PeersState, token: &str, status: u16) -> Result {
    let rt = peers::runtime()?;
    let got = rt.block_on(async {
        let http = peers::client(state.ca_pem.as_deref(), false)?;
        http.get(format!(
            "{}/_matrix/client/v3/account/whoami",
            state.synapse.url
        ))
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("whoami at Synapse: {e}"))
    })?;
    expect(got == status, || {
        format!("Synapse answered {got} to the token, not {status}")
    })
}

fn device_login(bin: &Path, state: &PeersState, extra: &[&str]) -> Result {
    let (_store, cli) = cli(bin, state)?;
    let alice = state.user("alice")?;
    let mut args = vec!["--device", "--timeout", "60"];
    args.extend_from_slice(extra);
    args.push(&cli.homeserver);
    let mut login = cli.spawn_login(&args, false)?;
    let event = login.expect_event("device_authorization")?;
    cli_driver::approve_device(state, &event, &alice.username)?;
    let run = login.finish()?;
    run.expect_code(0, "login --device")?;
    expect(run.stderr.contains("enter the code"), || {
        format!("no instructions on stderr: {}", run.stderr)
    })?;
    let session: Value = serde_json::from_str(run.stdout.trim())
        .map_err(|e| format!("login result is not JSON ({e}): {}", run.stdout))?;
    expect(session["user_id"] == alice.user_id.as_str(), || {
        format!("signed in as {}", session["user_id"])
    })?;
    if let Some(i) = extra.iter().position(|a| *a == "--device-id") {
        let want = extra.get(i + 1).copied().unwrap_or_default();
        expect(session["device_id"] == want, || {
            format!("device {} instead of {want}", session["device_id"])
        })?;
    }
    if extra.contains(&"unstable") {
        let scope = session["scope"].as_str().unwrap_or_default();
        expect(
            scope.contains("urn:matrix:org.matrix.msc2967.client:api:*"),
            || format!("granted scope {scope} is not the unstable one"),
        )?;
    }
    cli.run(&["whoami"])?
        .expect_code(0, "whoami after device login")?;
    Ok(())
}

fn browser_denied(bin: &Path, state: &PeersState) -> Result {
    let (_store, cli) = cli(bin, state)?;
    let alice = state.user("alice")?;
    let mut login =
        cli.spawn_login(&["--no-browser", "--timeout", "60", &cli.homeserver], false)?;
    let event = login.expect_event("authorization_url")?;
    let url = event["url"].as_str().ok_or("no url in the event")?;
    let (_, page) =
        cli_driver::browser_to_loopback(state, url, BrowserAction::LogInAndDeny(&alice.username))?;
    let run = login.finish()?;
    run.expect_code(6, "declined login")?;
    expect(page.contains("cancelled"), || {
        format!("the tab shows: {page}")
    })?;
    cli.run(&["whoami"])?
        .expect_code(3, "whoami after a declined login")?;
    Ok(())
}

fn device_denied(bin: &Path, state: &PeersState) -> Result {
    let (_store, cli) = cli(bin, state)?;
    let mut login = cli.spawn_login(&["--device", "--timeout", "60", &cli.homeserver], false)?;
    let event = login.expect_event("device_authorization")?;
    cli_driver::deny_device(state, &event)?;
    let run = login.finish()?;
    run.expect_code(6, "declined device login")?;
    Ok(())
}

fn sign_up(bin: &Path, state: &PeersState) -> Result {
    let (_store, cli) = cli(bin, state)?;
    let mut login = cli.spawn_login(
        &[
            "--create",
            "--no-browser",
            "--timeout",
            "60",
            &cli.homeserver,
        ],
        false,
    )?;
    let event = login.expect_event("authorization_url")?;
    let url = event["url"].as_str().ok_or("no url in the event")?;
    expect(url.contains("prompt=create"), || {
        format!("no prompt=create in {url}")
    })?;
    let username = format!("cli{}", peers::random_string(8)?.to_lowercase());
    let (status, page) =
        cli_driver::browser_to_loopback(state, url, BrowserAction::SignUp(&username))?;
    let run = login.finish()?;
    run.expect_code(0, "login --create")?;
    let session: Value = serde_json::from_str(run.stdout.trim())
        .map_err(|e| format!("login result is not JSON ({e}): {}", run.stdout))?;
    let want = format!("@{username}:{}", state.synapse.server_name);
    expect(session["user_id"] == want.as_str(), || {
        format!("signed up as {} instead of {want}", session["user_id"])
    })?;
    expect(status == 200 && page.contains(&want), || {
        format!("the tab got {status}: {page}")
    })
}

fn two_sessions(bin: &Path, state: &PeersState) -> Result {
    let (_store, cli) = cli(bin, state)?;
    let first = browser_login(&cli, state, &[])?;
    let second = browser_login(&cli, state, &[])?;
    let run = cli.run(&["whoami"])?;
    run.expect_code(2, "whoami with two sessions")?;
    expect(run.stderr.contains("--session"), || {
        format!("no --session hint: {}", run.stderr)
    })?;
    for session in [&first, &second] {
        let device = session["device_id"].as_str().unwrap_or_default();
        let run = cli.run(&["--json", "--session", device, "whoami"])?;
        run.expect_code(0, "whoami --session")?;
        expect(run.json()?["device_id"] == device, || {
            format!("--session {device} chose {}", run.stdout)
        })?;
    }
    let list = cli.run(&["--json", "sessions"])?;
    expect(
        list.json()?["sessions"].as_array().map(Vec::len) == Some(2),
        || format!("sessions: {}", list.stdout),
    )
}
