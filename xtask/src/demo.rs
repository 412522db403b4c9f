//! `cargo xtask demo`: the project's main job. Brings up a real OpenID Provider and a real Synapse
//! on 127.0.0.1, then uses the real `matrix-oidc` binary against that homeserver the way a person
//! would — discover, sign in, whoami, token, refresh, logout — printing each step; then stops the
//! servers it started.
//!
//! By default the sign-in uses the device authorization grant and the harness's scripted browser
//! approves it as the test user `alice`, so the demo runs unattended (CI, SSH). With
//! `--interactive` it uses the browser flow (loopback redirect) and a person signs in.

use crate::cli_driver::{self, CliUnderTest, TempStore, mask, secs};
use crate::peers::{self, Flavour, Mode, PeersOptions, PeersState};
use crate::util::Result;
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask demo [--interactive] [--https] [--mas]

  Brings up the local OpenID Provider and Synapse (installing them on first use), signs in with
  the real `matrix-oidc` binary, uses the session, signs out, and stops the servers.

  --interactive   sign in yourself in a browser (the loopback flow) instead of letting the
                  scripted browser approve a device code
  --https         run the servers over HTTPS with a generated CA (passed with --ca-file)
  --mas           the latest Synapse, delegating as to the Matrix Authentication Service
                  (default: Synapse 1.156.0 with MSC3861 delegation)
";

struct Options {
    interactive: bool,
    mode: Mode,
    flavour: Flavour,
}

fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut options = Options {
        interactive: false,
        mode: Mode::Http,
        flavour: Flavour::default(),
    };
    for arg in args {
        match arg.as_str() {
            "--interactive" => options.interactive = true,
            "--https" => options.mode = Mode::Https,
            "--mas" => options.flavour = Flavour::Mas,
            "-h" | "--help" | "help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    Ok(Some(options))
}

/// `cargo xtask demo …`.
pub(crate) fn run(args: &[String]) -> Result {
    let Some(options) = parse(args)? else {
        return Ok(());
    };
    let started = Instant::now();
    step("Building the matrix-oidc command-line tool");
    let bin = cli_driver::build_binary()?;
    println!("  built {} in {}", bin.display(), secs(started.elapsed()));

    step("Starting a local OpenID Provider and Synapse (installed on first use)");
    let peers_started = Instant::now();
    peers::with_peers(&PeersOptions::new(options.mode, options.flavour), |state| {
        println!(
            "  OP at {}, Synapse at {} (server name {}), ready in {}",
            state.op.issuer,
            state.synapse.url,
            state.synapse.server_name,
            secs(peers_started.elapsed())
        );
        let demo_started = Instant::now();
        let result = demo(&bin, state, &options);
        if result.is_ok() {
            step(&format!(
                "Done: signed in, used and signed out in {}; stopping the servers",
                secs(demo_started.elapsed())
            ));
        }
        result
    })?;
    println!("\nThe demo took {} in all.", secs(started.elapsed()));
    Ok(())
}

/// From now on Ctrl-C no longer ends this process: it reaches the `matrix-oidc login` child
/// (same process group), which stops with exit code 130, and the demo then fails normally, so
/// that `with_peers` stops the servers. Keep the returned value alive while that matters.
#[cfg(unix)]
fn survive_ctrl_c() -> Result<(tokio::runtime::Runtime, tokio::signal::unix::Signal)> {
    let rt = peers::runtime()?;
    let signal = {
        let _entered = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?
    };
    Ok((rt, signal))
}

#[cfg(not(unix))]
fn survive_ctrl_c() -> Result<()> {
    Ok(())
}

fn step(title: &str) {
    println!("\n== {title}");
}

/// Prints a command as the person would type it.
fn show(args: &[&str]) {
    println!("\n$ matrix-oidc {}", args.join(" "));
}

fn indent(text: &str) {
    for line in text.lines() {
        println!("  {line}");
    }
}

fn demo(bin: &std::path::Path, state: &PeersState, options: &Options) -> Result {
    let store = TempStore::new("demo")?;
    let cli = CliUnderTest::new(bin, store.path(), state);
    let alice = state.user("alice")?;
    let hs = cli.homeserver.clone();
    println!(
        "\nBelow, `matrix-oidc` stands for:\n  {}\n(a throw-away session store, and the local servers' {})",
        cli.alias(),
        match state.mode {
            Mode::Http => "plain http, allowed on loopback by --insecure-loopback-http",
            Mode::Https => "HTTPS certificates, trusted through --ca-file",
        }
    );

    step("1. What does the homeserver support?");
    show(&["discover", &hs]);
    let run = cli.run(&["discover", &hs])?;
    run.expect_code(0, "discover")?;
    indent(&run.stdout);

    let login_started = Instant::now();
    if options.interactive {
        step("2. Sign in with your browser");
        println!(
            "  Sign in at the provider's page as `{}` with the password `{}`, then approve.",
            alice.username, alice.password
        );
        show(&["login", &hs]);
        println!("  (Ctrl-C gives up; the servers are stopped all the same.)");
        let _keep_running = survive_ctrl_c()?;
        let status = cli
            .command(&["login", &hs])
            .stdin(std::process::Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot start the login: {e}"))?;
        if !status.success() {
            return Err(format!("the login failed ({status})"));
        }
    } else {
        step("2. Sign in with a device code, approved on \"another device\"");
        println!(
            "  The tool shows a code and a QR code; the demo's scripted browser plays the other\n  \
             device: it opens the address, signs in as `{}` and approves.",
            alice.username
        );
        show(&["login", "--device", &hs]);
        let mut login = cli.spawn_login(&["--device", "--timeout", "120", &hs], true)?;
        let event = login.expect_event("device_authorization")?;
        cli_driver::approve_device(state, &event, &alice.username)?;
        let run = login.finish()?;
        run.expect_code(0, "login --device")?;
        let session = run.json()?;
        println!(
            "  Approved by the scripted browser; signed in as {} on device {}.",
            session["user_id"].as_str().unwrap_or("?"),
            session["device_id"].as_str().unwrap_or("?")
        );
        if session["user_id"] != alice.user_id.as_str() {
            return Err(format!(
                "signed in as {} instead of {}",
                session["user_id"], alice.user_id
            ));
        }
    }
    println!("  (sign-in took {})", secs(login_started.elapsed()));

    step("3. Who am I, according to Synapse?");
    show(&["whoami"]);
    let run = cli.run(&["whoami"])?;
    run.expect_code(0, "whoami")?;
    indent(&run.stdout);

    step("4. The stored session");
    show(&["sessions"]);
    let run = cli.run(&["sessions"])?;
    run.expect_code(0, "sessions")?;
    indent(&run.stdout);

    step("5. An access token for scripts");
    show(&["token"]);
    let run = cli.run(&["token"])?;
    run.expect_code(0, "token")?;
    let first = run.stdout.trim().to_owned();
    println!(
        "  {}   (masked here; the tool prints it whole)",
        mask(&first)
    );

    step("6. Refresh the tokens");
    show(&["refresh"]);
    let run = cli.run(&["refresh"])?;
    run.expect_code(0, "refresh")?;
    indent(&run.stdout);
    let run = cli.run(&["token"])?;
    run.expect_code(0, "token after refresh")?;
    let second = run.stdout.trim().to_owned();
    if second == first {
        return Err("the access token did not change on refresh".into());
    }
    println!("  The access token is now {}: a new one.", mask(&second));

    step("7. Sign out: revoke both tokens and forget the session");
    show(&["logout"]);
    let run = cli.run(&["logout"])?;
    run.expect_code(0, "logout")?;
    indent(&run.stdout);
    show(&["whoami"]);
    let run = cli.run(&["whoami"])?;
    run.expect_code(3, "whoami after logout")?;
    indent(&run.stderr);
    println!("  (exit code {}: not signed in)", run.code());
    Ok(())
}
