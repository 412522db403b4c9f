//! The `matrix-oidc` command-line tool as a user runs it, checked from the servers' side: Synapse
//! says who its tokens belong to, the OP counts its refreshes and says which tokens are still active.
//! The process plumbing is shared with `cargo xtask demo` and `cargo xtask cli-e2e`
//! ([`crate::cli_driver`]).

use super::Outcome;
use super::env::{Env, Trust, Via, ensure, expect_eq, has_scope};
use crate::cli_driver::{self, CliUnderTest, TempStore};
use crate::peers::{self, Switch};
use matrix_oidc::core::{Secret, WhoamiRequest};
use serde_json::Value;
use std::path::Path;

/// `login --device` approved in the scripted browser, then `whoami`, `token`, `refresh`, `logout`.
pub(super) fn device_session(env: &Env<'_>, bin: &Path) -> Outcome {
    let rt = peers::runtime()?;
    // The OP omits `interval` unless told: the tool would wait the default 5 s before each poll.
    rt.block_on(env.control.set(&[Switch::DeviceInterval(1)]))?;
    let store = TempStore::new("conformance")?;
    let cli = CliUnderTest::new(bin, store.path(), env.state);
    let alice = env.user("alice")?;

    let mut login = cli.spawn_login(&["--device", "--timeout", "60", &cli.homeserver], false)?;
    let event = login.expect_event("device_authorization")?;
    cli_driver::approve_device(env.state, &event, &alice.username)?;
    let run = login.finish()?;
    run.expect_code(0, "login --device")?;
    let session: Value = serde_json::from_str(run.stdout.trim())
        .map_err(|e| format!("the login result is not JSON ({e}): {}", run.stdout.trim()))?;
    let field = |name: &str| {
        session[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the login result has no {name}: {session}"))
    };
    expect_eq(
        "the session's user",
        field("user_id")?,
        alice.user_id.clone(),
    )?;
    let device = field("device_id")?;
    let client_id = field("client_id")?;
    let scope = field("scope")?;
    ensure(
        has_scope(&scope, &format!("urn:matrix:client:device:{device}")),
        || format!("granted scope {scope:?} lacks device {device}"),
    )?;

    let who = cli.run(&["--json", "whoami"])?;
    who.expect_code(0, "whoami")?;
    let who = who.json()?;
    expect_eq(
        "whoami's device_id",
        who["device_id"].as_str(),
        Some(device.as_str()),
    )?;

    let token = |what: &str| -> Outcome {
        let run = cli.run(&["token"])?;
        run.expect_code(0, what)?;
        Ok(run.stdout.trim().to_owned())
    };
    let first = token("token")?;
    let synapse_device = |token: &str| -> Outcome {
        rt.block_on(async {
            let http = env.transport(Via::Reqwest, Trust::HarnessCa)?;
            let request = WhoamiRequest::new(&env.homeserver, &Secret::new(token))
                .map_err(|e| format!("whoami request: {e}"))?;
            let response = http
                .send(request.request.clone())
                .await
                .map_err(|e| format!("whoami at Synapse: {e}"))?;
            let me = request
                .parse(&response)
                .map_err(|e| format!("whoami at Synapse: {e}"))?;
            me.device_id
                .ok_or_else(|| "Synapse names no device".to_owned())
        })
    };
    expect_eq(
        "Synapse's device for the printed token",
        synapse_device(&first)?,
        device.clone(),
    )?;

    cli.run(&["refresh"])?.expect_code(0, "refresh")?;
    let second = token("token after refresh")?;
    ensure(second != first, || {
        "refresh printed the same token".to_owned()
    })?;
    expect_eq(
        "refreshes at the OP",
        rt.block_on(env.refreshes(&client_id))?,
        1,
    )?;
    expect_eq(
        "Synapse's device for the new token",
        synapse_device(&second)?,
        device.clone(),
    )?;

    let out = cli.run(&["--json", "logout"])?;
    out.expect_code(0, "logout")?;
    expect_eq(
        "logout's revoked",
        out.json()?["revoked"].as_bool(),
        Some(true),
    )?;
    ensure(!rt.block_on(env.introspect(&second))?, || {
        "the OP says the access token is still active after logout".to_owned()
    })?;
    cli.run(&["token"])?.expect_code(3, "token after logout")?;
    Ok(format!(
        "{} on device {device}; 1 refresh at the OP; logout revoked (introspection: inactive); then exit 3",
        alice.user_id
    ))
}

/// A browser login whose callback names another issuer (a mix-up): the tool refuses it with the
/// server-problem exit code and stores nothing.
pub(super) fn mix_up_refused(env: &Env<'_>, bin: &Path) -> Outcome {
    let rt = peers::runtime()?;
    rt.block_on(
        env.control
            .set(&[Switch::IssInCallback(peers::IssMisbehaviour::Wrong)]),
    )?;
    let store = TempStore::new("conformance")?;
    let cli = CliUnderTest::new(bin, store.path(), env.state);
    let alice = env.user("alice")?;
    let mut login =
        cli.spawn_login(&["--no-browser", "--timeout", "60", &cli.homeserver], false)?;
    let event = login.expect_event("authorization_url")?;
    let url = event["url"].as_str().ok_or("no url in the event")?;
    let (status, page) = cli_driver::browser_to_loopback(
        env.state,
        url,
        cli_driver::BrowserAction::LogIn(&alice.username),
    )?;
    let run = login.finish()?;
    run.expect_code(5, "login with a wrong iss")?;
    // The instructions for the person come first on stderr; the error is its last line.
    let last = run.stderr.trim().lines().last().unwrap_or_default();
    let error: Value = serde_json::from_str(last)
        .map_err(|e| format!("the --json error is not JSON ({e}): {last}"))?;
    let message = error["error"]["message"].as_str().unwrap_or_default();
    ensure(message.contains("iss"), || {
        format!("the error does not name iss: {error}")
    })?;
    ensure(
        page.contains("Sign-in failed") && page.contains("iss"),
        || format!("the browser tab got {status}: {page}"),
    )?;
    cli.run(&["whoami"])?
        .expect_code(3, "whoami after the refused login")?;
    Ok(format!("exit 5: {message}"))
}
