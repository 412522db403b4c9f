//! The cases that drive the async client, [`matrix_oidc::OAuthClient`].

use super::env::{
    Env, Trust, Via, app, describe_err, describe_result, ensure, expect_eq, has_scope, params, send,
};
use super::{Case, CaseFuture, Run, Set, by_hand, cli};
use crate::browser::DeviceOutcome;
use crate::peers::{IssMisbehaviour, Switch, random_string};
use matrix_oidc::core::callback::CallbackError;
use matrix_oidc::core::discovery::{DiscoveryError, DiscoveryOptions, DiscoverySource};
use matrix_oidc::core::registration::NotSupportedReason;
use matrix_oidc::core::{
    AuthorizeError, MetadataError, MetadataField, Profile, RefreshPolicy, ScopeFlavor, TokenError,
    TokenRequest, TokenSet, TransportError, WhoamiError, WhoamiRequest,
};
use matrix_oidc::storage::FileStore;
use matrix_oidc::{
    AccessToken, AuthSession, ClientConfig, DeviceLoginOptions, Error, ManualClock, Operation,
    ResponseMode, Secret, Timestamp, TokenTypeHint, TokioSleep,
};
use std::time::{Duration, SystemTime};

const STABLE_API: &str = "urn:matrix:client:api:*";
const STABLE_DEVICE: &str = "urn:matrix:client:device:";
const UNSTABLE_API: &str = "urn:matrix:org.matrix.msc2967.client:api:*";
const UNSTABLE_DEVICE: &str = "urn:matrix:org.matrix.msc2967.client:device:";

/// How many tasks ask for a token at once in the single-flight cases.
const CONCURRENT_CALLERS: usize = 8;

const ALL: &[Set] = &[Set::Http, Set::Https, Set::Mas];
const MSC3861: &[Set] = &[Set::Http, Set::Https];
const HTTP: &[Set] = &[Set::Http];
const HTTPS: &[Set] = &[Set::Https];

/// Every case, in the order they run.
pub(crate) fn all() -> Vec<Case> {
    use Via::{Hyper, Reqwest};
    type AsyncCase = for<'a> fn(&'a Env<'a>, Via) -> CaseFuture<'a>;
    let case = |name: &'static str, via: Via, sets: &'static [Set], run: AsyncCase| Case {
        name,
        via,
        sets,
        run: Run::Async(run),
    };
    vec![
        case(
            "login from the homeserver URL: discovery, registration, PKCE, whoami",
            Reqwest,
            ALL,
            login,
        ),
        case(
            "login from the homeserver URL: discovery, registration, PKCE, whoami",
            Hyper,
            ALL,
            login,
        ),
        case(
            "core driven by hand: discovery to revocation",
            Hyper,
            ALL,
            by_hand::full_login,
        ),
        case(
            "core driven by hand: discovery to revocation",
            Reqwest,
            HTTPS,
            by_hand::full_login,
        ),
        case(
            "core driven by hand: device grant, default interval and slow_down on a virtual clock",
            Reqwest,
            MSC3861,
            by_hand::device_grant,
        ),
        case("unstable MSC2967 scopes", Reqwest, MSC3861, unstable_scopes),
        case(
            "response modes query and fragment",
            Hyper,
            MSC3861,
            response_modes,
        ),
        case(
            "prompt=create signs up a new user",
            Reqwest,
            MSC3861,
            sign_up,
        ),
        case(
            "refresh rotates the refresh token; the old one is refused; a refused refresh logs out",
            Reqwest,
            ALL,
            refresh_rotation,
        ),
        case(
            "expiry-driven refresh of a 5-second token at half its life; M_UNKNOWN_TOKEN for the expired one",
            Hyper,
            HTTP,
            expiry_refresh,
        ),
        case(
            "concurrent callers share one refresh",
            Reqwest,
            MSC3861,
            concurrent_refresh,
        ),
        case(
            "two clients sharing a FileStore make one refresh",
            Hyper,
            MSC3861,
            shared_store_refresh,
        ),
        case(
            "logout revokes both tokens (introspection: inactive)",
            Reqwest,
            ALL,
            logout_revokes,
        ),
        case(
            "device authorization grant approved in the browser",
            Hyper,
            ALL,
            device_approved,
        ),
        case(
            "device authorization denied: Cancelled",
            Reqwest,
            MSC3861,
            device_denied,
        ),
        case(
            "user denies at consent or cancels at login: Cancelled",
            Reqwest,
            MSC3861,
            user_denies,
        ),
        case(
            "wrong issuer in metadata via the homeserver: callback IssuerMismatch",
            Reqwest,
            MSC3861,
            wrong_issuer_homeserver,
        ),
        case(
            "wrong issuer in metadata via issuer discovery: Metadata IssuerMismatch",
            Hyper,
            MSC3861,
            wrong_issuer_discovery,
        ),
        case(
            "issuer changed after login: IssuerChanged, no refresh",
            Reqwest,
            MSC3861,
            issuer_changed,
        ),
        case(
            "no S256 in metadata: refused before the browser",
            Hyper,
            MSC3861,
            no_s256,
        ),
        case(
            "no registration endpoint: per profile, and a pre-registered client still logs in",
            Reqwest,
            MSC3861,
            no_registration_endpoint,
        ),
        case(
            "wrong iss in the callback: IssuerMismatch",
            Hyper,
            MSC3861,
            wrong_iss,
        ),
        case(
            "missing iss in the callback: MissingIssuer",
            Reqwest,
            MSC3861,
            missing_iss,
        ),
        case(
            "device scope not granted: DeviceScopeDropped",
            Hyper,
            MSC3861,
            device_scope_not_granted,
        ),
        case(
            "no refresh-token rotation: the old refresh token is kept and keeps working",
            Reqwest,
            MSC3861,
            no_rotation,
        ),
        case(
            "http homeserver refused unless insecure loopback is allowed",
            Reqwest,
            HTTP,
            http_needs_opt_in,
        ),
        case(
            "untrusted CA: TLS error, no fallback",
            Reqwest,
            HTTPS,
            untrusted_ca,
        ),
        case(
            "untrusted CA: TLS error, no fallback",
            Hyper,
            HTTPS,
            untrusted_ca,
        ),
        Case {
            name: "login --device approved in the browser, whoami, token, refresh, logout",
            via: Via::Cli,
            sets: ALL,
            run: Run::Blocking(cli::device_session),
        },
        Case {
            name: "a wrong iss in the browser login's callback exits 5, nothing stored",
            via: Via::Cli,
            sets: MSC3861,
            run: Run::Blocking(cli::mix_up_refused),
        },
    ]
}

/// A full login as alice from Synapse's URL, checked at every step.
fn login<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let client = env.client(via)?;
        let discovered = client
            .discover(&env.homeserver)
            .await
            .map_err(|e| format!("discover: {}", describe_err(&e)))?;
        expect_eq(
            "the discovered issuer",
            &discovered.metadata.issuer,
            &env.issuer,
        )?;
        expect_eq(
            "the discovery source",
            &discovered.source,
            &DiscoverySource::AuthMetadata,
        )?;

        let options = env.login_options(&env.homeserver)?;
        let alice = env.user("alice")?;
        let (start, callback) = env.authorize(&client, &options, alice).await?;
        let sent = params(start.url.query());
        for (name, value) in [
            ("response_type", "code"),
            ("code_challenge_method", "S256"),
            ("response_mode", "query"),
            ("client_id", start.client_id.as_str()),
            ("state", start.state.as_str()),
        ] {
            expect_eq(
                &format!("the authorization URL's {name}"),
                sent.get(name).map(String::as_str),
                Some(value),
            )?;
        }
        let challenge = sent.get("code_challenge").map(String::len);
        expect_eq("the length of code_challenge", &challenge, &Some(43))?;
        let device = start
            .device_id
            .clone()
            .ok_or("start_login generated no device id")?;
        let requested = sent.get("scope").cloned().unwrap_or_default();
        let device_token = format!("{STABLE_DEVICE}{device}");
        ensure(
            has_scope(&requested, STABLE_API) && has_scope(&requested, &device_token),
            || format!("requested scope {requested:?} lacks the API or device token"),
        )?;

        let back = params(callback.query());
        expect_eq(
            "the callback's iss",
            back.get("iss").map(String::as_str),
            Some(env.state.op.issuer.as_str()),
        )?;
        ensure(back.contains_key("code"), || {
            format!("no code in the callback's query: {callback}")
        })?;
        let session = client
            .finish_login(callback.as_str())
            .await
            .map_err(|e| format!("finish_login: {}", describe_err(&e)))?;
        expect_eq(
            "the session's user",
            &session.user_id(),
            &Some(alice.user_id.clone()),
        )?;
        expect_eq(
            "the session's device",
            &session.device_id(),
            &Some(device.to_string()),
        )?;
        let granted = session.session().tokens.scope.unwrap_or_default();
        ensure(
            has_scope(&granted, &device_token) && has_scope(&granted, STABLE_API),
            || format!("granted scope {granted:?} lacks {device_token} or the API scope"),
        )?;
        let me = whoami_on_device(&session, Some(device.to_string()), "whoami").await?;
        expect_eq("whoami's user_id", &me.user_id, &alice.user_id)?;
        Ok(format!(
            "whoami at Synapse: {} on device {device}; granted `{granted}`",
            me.user_id
        ))
    })
}

fn unstable_scopes<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let client = env.client(via)?;
        let options = env
            .login_options(&env.homeserver)?
            .scope_flavor(ScopeFlavor::Unstable);
        let (start, session) = env.log_in(&client, &options).await?;
        let requested = params(start.url.query())
            .get("scope")
            .cloned()
            .unwrap_or_default();
        ensure(
            has_scope(&requested, UNSTABLE_API) && !has_scope(&requested, STABLE_API),
            || format!("requested scope {requested:?} is not the unstable one"),
        )?;
        let device = start.device_id.ok_or("no device id")?;
        let granted = session.session().tokens.scope.unwrap_or_default();
        let device_token = format!("{UNSTABLE_DEVICE}{device}");
        ensure(has_scope(&granted, &device_token), || {
            format!("granted scope {granted:?} lacks {device_token}")
        })?;
        let me = whoami_on_device(&session, Some(device.to_string()), "whoami").await?;
        Ok(format!("granted `{granted}`; whoami {}", me.user_id))
    })
}

fn response_modes<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let client = env.client(via)?;
        let mut seen = Vec::new();
        for mode in [ResponseMode::Query, ResponseMode::Fragment] {
            let options = env.login_options(&env.homeserver)?.response_mode(mode);
            let (start, callback) = env.authorize(&client, &options, env.user("alice")?).await?;
            expect_eq(
                "the authorization URL's response_mode",
                params(start.url.query())
                    .get("response_mode")
                    .map(String::as_str),
                Some(mode.as_str()),
            )?;
            let (here, elsewhere) = match mode {
                ResponseMode::Query => (callback.query(), callback.fragment()),
                _ => (callback.fragment(), callback.query()),
            };
            ensure(
                params(here).contains_key("code") && elsewhere.is_none(),
                || {
                    format!(
                        "response_mode={mode:?}: the callback {callback} has its parameters elsewhere"
                    )
                },
            )?;
            let session = client
                .finish_login(callback.as_str())
                .await
                .map_err(|e| format!("finish_login ({mode:?}): {}", describe_err(&e)))?;
            whoami_on_device(&session, session.device_id(), "whoami").await?;
            seen.push(mode.as_str());
        }
        Ok(format!(
            "signed in with response_mode {}",
            seen.join(" and ")
        ))
    })
}

fn sign_up<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let client = env.client(via)?;
        let username = format!("conf-{}", random_string(8)?.to_ascii_lowercase());
        let options = env.login_options(&env.homeserver)?.prompt_create();
        let start = client
            .start_login(&options)
            .await
            .map_err(|e| format!("start_login: {}", describe_err(&e)))?;
        expect_eq(
            "the authorization URL's prompt",
            params(start.url.query()).get("prompt").map(String::as_str),
            Some("create"),
        )?;
        let callback = env
            .browser()?
            .sign_up(&start.url, &username, "conformance-password-1")
            .await
            .map_err(|e| format!("browser: {e}"))?;
        let session = client
            .finish_login(callback.as_str())
            .await
            .map_err(|e| format!("finish_login: {}", describe_err(&e)))?;
        let user_id = env.user_id(&username);
        expect_eq(
            "the session's user",
            &session.user_id(),
            &Some(user_id.clone()),
        )?;
        let me = session
            .whoami()
            .await
            .map_err(|e| format!("whoami: {}", describe_err(&e)))?;
        expect_eq("whoami's user_id", &me.user_id, &user_id)?;
        Ok(format!("signed up; whoami at Synapse: {}", me.user_id))
    })
}

/// The session's refresh token.
fn refresh_token_of(session: &AuthSession) -> Result<Secret, String> {
    session
        .session()
        .tokens
        .refresh_token
        .ok_or_else(|| "the session has no refresh token".to_owned())
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

fn refresh_rotation<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        // The client's clock is moved past the token's lifetime instead of waiting 300 s.
        let clock = ManualClock::new(now());
        let client = env.builder(via)?.clock(clock.clone()).build();
        let (start, session) = env
            .log_in(&client, &env.login_options(&env.homeserver)?)
            .await?;
        let first = session
            .access_token()
            .await
            .map_err(|e| format!("access_token: {}", describe_err(&e)))?;
        expect_eq("the first token's generation", &first.generation(), &0)?;
        let old_refresh = refresh_token_of(&session)?;

        clock.advance(Duration::from_secs(301));
        let second = session
            .access_token()
            .await
            .map_err(|e| format!("access_token after expiry: {}", describe_err(&e)))?;
        expect_eq("the refreshed token's generation", &second.generation(), &1)?;
        ensure(second.secret() != first.secret(), || {
            "the refresh returned the same access token".to_owned()
        })?;
        let new_refresh = refresh_token_of(&session)?;
        ensure(new_refresh != old_refresh, || {
            "the refresh token did not rotate".to_owned()
        })?;
        expect_eq(
            "refreshes at the OP",
            &env.refreshes(&start.client_id).await?,
            &1,
        )?;
        whoami_on_device(
            &session,
            session.device_id(),
            "whoami with the refreshed token",
        )
        .await?;

        // The rotated-out refresh token, replayed with the core's own request: refused.
        let discovered = client
            .discover(&env.homeserver)
            .await
            .map_err(|e| format!("discover: {}", describe_err(&e)))?;
        let replay = TokenRequest::refresh(
            &discovered.metadata.token_endpoint,
            &start.client_id,
            &TokenSet::new(first.secret().clone()).with_refresh_token(Some(old_refresh)),
        )
        .map_err(|e| format!("building the replay: {e}"))?;
        let http = env.transport(via, Trust::HarnessCa)?;
        let answer = send(&*http, replay.request.clone())
            .await
            .map_err(|e| format!("sending the replay: {e}"))?;
        match replay.parse(&answer, now()) {
            Err(e @ TokenError::Rejected { .. })
                if e.oauth_error().is_some_and(|b| b.error == "invalid_grant") && e.is_logout() => {
            }
            other => {
                return Err(format!(
                    "replaying the rotated-out refresh token gave {}, expected Rejected(invalid_grant)",
                    describe_result(&other)
                ));
            }
        }

        // oidc-provider revokes the whole grant on a replay: the session's next refresh is refused
        // for good, which the client reports as LoggedOut and removes the session from the store.
        clock.advance(Duration::from_secs(301));
        match session.access_token().await {
            Err(Error::LoggedOut {
                source: Some(ref e),
                ..
            }) if e.oauth_error().is_some_and(|b| b.error == "invalid_grant") => {}
            other => {
                return Err(format!(
                    "refreshing a revoked grant gave {}, expected LoggedOut(invalid_grant)",
                    describe_result(&other)
                ));
            }
        }
        let stored = client
            .restore(session.key())
            .await
            .map_err(|e| format!("restore: {}", describe_err(&e)))?;
        ensure(stored.is_none(), || {
            "the logged-out session is still in the store".to_owned()
        })?;
        Ok("rotated; replay refused with invalid_grant; then LoggedOut and removed".to_owned())
    })
}

/// Sleeps until `at` (real time).
async fn sleep_until(at: Timestamp) {
    let delay = at.duration_since(now());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

fn expiry_refresh<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        // The default policy: a 30-second margin, capped at half a token's lifetime.
        env.control.set(&[Switch::AccessTokenTtl(5)]).await?;
        let client = env.client(via)?;
        let (start, session) = env
            .log_in(&client, &env.login_options(&env.homeserver)?)
            .await?;
        let first = session
            .access_token()
            .await
            .map_err(|e| format!("access_token: {}", describe_err(&e)))?;
        let expires_at = first.expires_at().ok_or("the token has no expiry")?;
        ensure(first.generation() == 0, || {
            format!(
                "the login's token was refreshed at once: the login took longer than half the \
                 token's life (it expires in {:?})",
                expires_at.duration_since(now())
            )
        })?;
        let left = expires_at.duration_since(now());
        ensure(left <= Duration::from_secs(5), || {
            format!("a 5-second token expires in {left:?}")
        })?;
        let margin = session
            .session()
            .tokens
            .refresh_margin(RefreshPolicy::default().margin);
        expect_eq("the refresh margin", margin, Duration::from_millis(2_500))?;

        // Inside the margin, before the token expires: the next caller refreshes.
        sleep_until(expires_at.saturating_sub(margin) + Duration::from_millis(200)).await;
        let ahead = expires_at.duration_since(now());
        let second = session
            .access_token()
            .await
            .map_err(|e| format!("access_token near expiry: {}", describe_err(&e)))?;
        expect_eq("the refreshed token's generation", &second.generation(), &1)?;
        expect_eq(
            "refreshes at the OP",
            &env.refreshes(&start.client_id).await?,
            &1,
        )?;
        let me = session
            .whoami()
            .await
            .map_err(|e| format!("whoami with the refreshed token: {}", describe_err(&e)))?;
        expect_eq("whoami's user_id", &Some(me.user_id), &session.user_id())?;

        // Once expired, Synapse refuses the old token; the client hands out the newer one for it
        // without refreshing again.
        sleep_until(expires_at + Duration::from_millis(300)).await;
        let http = env.transport(via, Trust::HarnessCa)?;
        let who = WhoamiRequest::new(&env.homeserver, first.secret())
            .map_err(|e| format!("whoami request: {e}"))?;
        let answer = send(&*http, who.request.clone())
            .await
            .map_err(|e| format!("whoami: {e}"))?;
        let soft_logout = match who.parse(&answer) {
            Err(WhoamiError::UnknownToken { soft_logout, .. }) => soft_logout,
            other => {
                return Err(format!(
                    "Synapse's answer to the expired token parsed as {}, expected UnknownToken",
                    describe_result(&other)
                ));
            }
        };
        let retry = session
            .handle_unknown_token(&first, soft_logout)
            .await
            .map_err(|e| format!("handle_unknown_token: {}", describe_err(&e)))?;
        expect_eq("the retry token", retry.secret(), second.secret())?;
        expect_eq(
            "refreshes at the OP",
            &env.refreshes(&start.client_id).await?,
            &1,
        )?;
        Ok(format!(
            "refreshed {:.1} s before expiry; Synapse answers M_UNKNOWN_TOKEN to the expired token, \
             for which the client hands out the new one without a second refresh",
            ahead.as_secs_f64()
        ))
    })
}

/// Asks for a token from [`CONCURRENT_CALLERS`] tasks at once; all must get the same one.
async fn race_for_token(sessions: Vec<AuthSession>) -> Result<AccessToken, String> {
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|s| tokio::spawn(async move { s.access_token().await }))
        .collect();
    let mut tokens = Vec::new();
    for task in tasks {
        let token = task
            .await
            .map_err(|e| format!("a caller panicked: {e}"))?
            .map_err(|e| format!("access_token: {}", describe_err(&e)))?;
        tokens.push(token);
    }
    let first = tokens.first().cloned().ok_or("no caller")?;
    ensure(tokens.iter().all(|t| t.secret() == first.secret()), || {
        format!(
            "the callers got different tokens (generations {:?})",
            tokens
                .iter()
                .map(AccessToken::generation)
                .collect::<Vec<_>>()
        )
    })?;
    Ok(first)
}

fn concurrent_refresh<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let clock = ManualClock::new(now());
        let client = env.builder(via)?.clock(clock.clone()).build();
        let (start, session) = env
            .log_in(&client, &env.login_options(&env.homeserver)?)
            .await?;
        let login_token = session.session().tokens.access_token;
        // Every caller finds the token expired.
        clock.advance(Duration::from_secs(301));
        let token = race_for_token(vec![session.clone(); CONCURRENT_CALLERS]).await?;
        expect_eq("the shared token's generation", &token.generation(), &1)?;
        ensure(token.secret() != &login_token, || {
            "the callers got the login token back".to_owned()
        })?;
        expect_eq(
            "refreshes at the OP",
            &env.refreshes(&start.client_id).await?,
            &1,
        )?;
        session
            .whoami()
            .await
            .map_err(|e| format!("whoami: {}", describe_err(&e)))?;
        Ok(format!("{CONCURRENT_CALLERS} callers, 1 refresh at the OP"))
    })
}

fn shared_store_refresh<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let clock = ManualClock::new(now());
        let dir = crate::peers::peers_dir()
            .join("conformance-stores")
            .join(random_string(12)?);
        let result = async {
            let store = || FileStore::open(&dir).map_err(|e| format!("FileStore: {e}"));
            // Two clients with their own memory and one store: two processes of one application.
            let one = env
                .builder(via)?
                .store(store()?)
                .clock(clock.clone())
                .build();
            let two = env
                .builder(via)?
                .store(store()?)
                .clock(clock.clone())
                .build();
            let (start, session) = env
                .log_in(&one, &env.login_options(&env.homeserver)?)
                .await?;
            clock.advance(Duration::from_secs(301));
            let other = two
                .restore(session.key())
                .await
                .map_err(|e| format!("restore: {}", describe_err(&e)))?
                .ok_or("the second client does not find the session in the store")?;
            let mut callers = vec![session.clone(); CONCURRENT_CALLERS / 2];
            callers.extend(vec![other.clone(); CONCURRENT_CALLERS / 2]);
            let token = race_for_token(callers).await?;
            expect_eq(
                "refreshes at the OP",
                &env.refreshes(&start.client_id).await?,
                &1,
            )?;
            let again = other
                .access_token()
                .await
                .map_err(|e| format!("access_token: {}", describe_err(&e)))?;
            expect_eq("the second client's token", again.secret(), token.secret())?;
            Ok(format!(
                "{CONCURRENT_CALLERS} callers in 2 clients, 1 refresh at the OP"
            ))
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    })
}

fn logout_revokes<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let client = env.client(via)?;
        let (_, session) = env
            .log_in(&client, &env.login_options(&env.homeserver)?)
            .await?;
        let tokens = session.session().tokens;
        let access = tokens.access_token.expose().to_owned();
        let refresh = refresh_token_of(&session)?.expose().to_owned();
        for (what, token) in [("access", &access), ("refresh", &refresh)] {
            ensure(env.introspect(token).await?, || {
                format!("the {what} token is inactive before logout")
            })?;
        }
        let report = session
            .logout()
            .await
            .map_err(|e| format!("logout: {}", describe_err(&e)))?;
        ensure(report.is_complete(), || {
            format!("logout failures: {:?}", report.failures)
        })?;
        for hint in [TokenTypeHint::RefreshToken, TokenTypeHint::AccessToken] {
            ensure(report.revoked.contains(&hint), || {
                format!("the logout did not revoke the {hint:?}")
            })?;
        }
        for (what, token) in [("access", &access), ("refresh", &refresh)] {
            ensure(!env.introspect(token).await?, || {
                format!("the {what} token is still active after logout")
            })?;
        }
        let stored = client
            .restore(session.key())
            .await
            .map_err(|e| format!("restore: {}", describe_err(&e)))?;
        ensure(stored.is_none(), || {
            "the session is still in the store".to_owned()
        })?;
        match session.access_token().await {
            Err(Error::LoggedOut { .. }) => {}
            other => {
                return Err(format!(
                    "access_token after logout gave {}, expected LoggedOut",
                    describe_result(&other)
                ));
            }
        }
        Ok("both revoked; introspection says inactive; session gone".to_owned())
    })
}

fn device_approved<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        env.control.set(&[Switch::DeviceInterval(1)]).await?;
        let client = env.client(via)?;
        let device = client
            .start_device_login(&DeviceLoginOptions::new(env.homeserver.clone(), app()?))
            .await
            .map_err(|e| format!("start_device_login: {}", describe_err(&e)))?;
        let device_id = device.device_id().cloned().ok_or("no device id")?;
        let user_code = device.user_code().to_owned();
        let uri = device.verification_uri().clone();
        ensure(uri.origin() == env.issuer.origin(), || {
            format!("verification URI {uri} is not at the OP")
        })?;
        let alice = env.user("alice")?;
        let browser = env.browser()?;
        let (session, approval) = futures_util::future::join(
            device.wait(&TokioSleep),
            browser.approve_device(&uri, Some(&user_code), &alice.username, &alice.password),
        )
        .await;
        let approval = approval.map_err(|e| format!("browser: {e}"))?;
        expect_eq("the browser's outcome", &approval, &DeviceOutcome::Approved)?;
        let session = session.map_err(|e| format!("wait: {}", describe_err(&e)))?;
        expect_eq(
            "the session's user",
            &session.user_id(),
            &Some(alice.user_id.clone()),
        )?;
        let granted = session.session().tokens.scope.unwrap_or_default();
        let device_token = format!("{STABLE_DEVICE}{device_id}");
        ensure(has_scope(&granted, &device_token), || {
            format!("granted scope {granted:?} lacks {device_token}")
        })?;
        let me = whoami_on_device(&session, Some(device_id.to_string()), "whoami").await?;
        Ok(format!(
            "user code {user_code} approved; whoami {} on device {device_id}",
            me.user_id
        ))
    })
}

fn device_denied<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        env.control.set(&[Switch::DeviceInterval(1)]).await?;
        let client = env.client(via)?;
        let device = client
            .start_device_login(&DeviceLoginOptions::new(env.homeserver.clone(), app()?))
            .await
            .map_err(|e| format!("start_device_login: {}", describe_err(&e)))?;
        let uri = device
            .verification_uri_complete()
            .cloned()
            .ok_or("no verification_uri_complete")?;
        let browser = env.browser()?;
        let (result, outcome) =
            futures_util::future::join(device.wait(&TokioSleep), browser.deny_device(&uri, None))
                .await;
        let outcome = outcome.map_err(|e| format!("browser: {e}"))?;
        expect_eq("the browser's outcome", &outcome, &DeviceOutcome::Denied)?;
        match result {
            Err(Error::Cancelled { ref error }) if error.error == "access_denied" => {
                Ok("polling ended with Error::Cancelled(access_denied)".to_owned())
            }
            other => Err(format!(
                "a denied device login gave {}, expected Cancelled(access_denied)",
                describe_result(&other)
            )),
        }
    })
}

fn user_denies<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let client = env.client(via)?;
        let alice = env.user("alice")?;
        // Denied at the consent page (query mode), then cancelled at the login page (fragment).
        let options = env.login_options(&env.homeserver)?;
        let start = client
            .start_login(&options)
            .await
            .map_err(|e| format!("start_login: {}", describe_err(&e)))?;
        let denied = env
            .browser()?
            .log_in_and_deny(&start.url, &alice.username, &alice.password)
            .await
            .map_err(|e| format!("browser: {e}"))?;
        let options = options.response_mode(ResponseMode::Fragment);
        let start = client
            .start_login(&options)
            .await
            .map_err(|e| format!("start_login: {}", describe_err(&e)))?;
        let cancelled = env
            .browser()?
            .abort(&start.url)
            .await
            .map_err(|e| format!("browser: {e}"))?;
        for (what, callback) in [("consent denied", &denied), ("login cancelled", &cancelled)] {
            match client.finish_login(callback.as_str()).await {
                Err(Error::Cancelled { ref error }) if error.error == "access_denied" => {}
                other => {
                    return Err(format!(
                        "{what}: finish_login gave {}, expected Cancelled(access_denied)",
                        describe_result(&other)
                    ));
                }
            }
            // The pending login is used up.
            match client.finish_login(callback.as_str()).await {
                Err(Error::StateNotFound) => {}
                other => {
                    return Err(format!(
                        "{what}: a second finish_login gave {}, expected StateNotFound",
                        describe_result(&other)
                    ));
                }
            }
        }
        Ok("Error::Cancelled(access_denied) both times; the pending login is gone".to_owned())
    })
}

fn wrong_issuer_homeserver<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        env.control.set(&[Switch::WrongIssuerInMetadata]).await?;
        let client = env.client(via)?;
        let options = env.login_options(&env.front)?;
        // Matrix discovery has no issuer to compare with; RFC 9207's `iss` catches the mix-up.
        let (_, callback) = env.authorize(&client, &options, env.user("alice")?).await?;
        match client.finish_login(callback.as_str()).await {
            Err(Error::Callback(CallbackError::IssuerMismatch {
                ref expected,
                ref found,
            })) if expected.ends_with("/not-the-issuer") && found == &env.state.op.issuer => {
                Ok(format!("iss {found} is not the advertised {expected}"))
            }
            other => Err(format!(
                "finish_login gave {}, expected Callback(IssuerMismatch)",
                describe_result(&other)
            )),
        }
    })
}

fn wrong_issuer_discovery<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        env.control.set(&[Switch::WrongIssuerInMetadata]).await?;
        let client = env.client(via)?;
        match client.discover_issuer(&env.issuer).await {
            Err(Error::Discovery(DiscoveryError::Metadata {
                error: MetadataError::IssuerMismatch { ref found, .. },
                ..
            })) if found.ends_with("/not-the-issuer") => {
                Ok(format!("metadata names {found}: refused"))
            }
            other => Err(format!(
                "discover_issuer gave {}, expected Discovery(Metadata(IssuerMismatch))",
                describe_result(&other)
            )),
        }
    })
}

fn issuer_changed<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let client = env.client(via)?;
        let (start, session) = env.log_in(&client, &env.login_options(&env.front)?).await?;
        let token = session
            .access_token()
            .await
            .map_err(|e| format!("access_token: {}", describe_err(&e)))?;
        env.control.set(&[Switch::WrongIssuerInMetadata]).await?;
        client.invalidate_metadata(&env.front);
        match session.handle_unknown_token(&token, false).await {
            Err(Error::IssuerChanged { ref found, .. }) if found.ends_with("/not-the-issuer") => {}
            other => {
                return Err(format!(
                    "a refresh after the issuer changed gave {}, expected IssuerChanged",
                    describe_result(&other)
                ));
            }
        }
        expect_eq(
            "refreshes at the OP",
            &env.refreshes(&start.client_id).await?,
            &0,
        )?;
        Ok("refresh refused before any request; 0 refreshes at the OP".to_owned())
    })
}

fn no_s256<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        env.control.set(&[Switch::NoS256InMetadata]).await?;
        let options = env.login_options(&env.front)?;
        // The Matrix profile refuses the metadata itself.
        let client = env.client(via)?;
        match client.start_login(&options).await {
            Err(Error::Discovery(DiscoveryError::Metadata {
                error:
                    MetadataError::MissingValue {
                        field: MetadataField::CodeChallengeMethodsSupported,
                        value: "S256",
                    },
                ..
            })) => {}
            other => {
                return Err(format!(
                    "Matrix profile: start_login gave {}, expected Discovery(Metadata(MissingValue(code_challenge_methods_supported, S256)))",
                    describe_result(&other)
                ));
            }
        }
        // A client on the generic OAuth profile accepts the metadata; the authorization request
        // still refuses to go without S256.
        let client = env
            .builder_with(
                via,
                DiscoveryOptions::default().with_profile(Profile::OAuth),
            )?
            .build();
        match client.start_login(&options).await {
            Err(Error::Authorize(AuthorizeError::PkceS256NotSupported { .. })) => {}
            other => {
                return Err(format!(
                    "OAuth profile: start_login gave {}, expected Authorize(PkceS256NotSupported)",
                    describe_result(&other)
                ));
            }
        }
        Ok("Matrix profile: MissingValue(S256); OAuth profile: PkceS256NotSupported".to_owned())
    })
}

fn no_registration_endpoint<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        // A client id registered beforehand, while the endpoint was still advertised.
        let tolerant = || {
            env.builder_with(
                via,
                DiscoveryOptions::default().with_profile(Profile::MatrixTolerant),
            )
            .map(|b| b.build())
        };
        let registered = tolerant()?
            .register_client(&env.front, &app()?)
            .await
            .map_err(|e| format!("register_client: {}", describe_err(&e)))?;
        env.control.set(&[Switch::NoRegistrationEndpoint]).await?;
        let options = env.login_options(&env.front)?;

        match env.client(via)?.start_login(&options).await {
            Err(Error::Discovery(DiscoveryError::Metadata {
                error:
                    MetadataError::MissingField {
                        field: MetadataField::RegistrationEndpoint,
                    },
                ..
            })) => {}
            other => {
                return Err(format!(
                    "Matrix profile: start_login gave {}, expected Discovery(Metadata(MissingField(registration_endpoint)))",
                    describe_result(&other)
                ));
            }
        }
        match tolerant()?.start_login(&options).await {
            Err(Error::RegistrationNotSupported {
                reason: NotSupportedReason::NoRegistrationEndpoint,
                ..
            }) => {}
            other => {
                return Err(format!(
                    "tolerant profile: start_login gave {}, expected RegistrationNotSupported(NoRegistrationEndpoint)",
                    describe_result(&other)
                ));
            }
        }
        let client = tolerant()?;
        let options = env.login_options_for(
            &env.front,
            ClientConfig::registered(registered.client_id.clone()),
        )?;
        let (start, session) = env.log_in(&client, &options).await?;
        expect_eq(
            "the client id used",
            &start.client_id,
            &registered.client_id,
        )?;
        let me = session
            .whoami()
            .await
            .map_err(|e| format!("whoami: {}", describe_err(&e)))?;
        Ok(format!(
            "MissingField / RegistrationNotSupported; pre-registered client signs in {}",
            me.user_id
        ))
    })
}

/// A login whose callback carries a misbehaving `iss`; returns what `finish_login` gave.
async fn login_with_iss(
    env: &Env<'_>,
    via: Via,
    misbehaviour: IssMisbehaviour,
) -> Result<Result<AuthSession, Error>, String> {
    env.control
        .set(&[Switch::IssInCallback(misbehaviour)])
        .await?;
    let client = env.client(via)?;
    let (_, callback) = env
        .authorize(
            &client,
            &env.login_options(&env.homeserver)?,
            env.user("alice")?,
        )
        .await?;
    Ok(client.finish_login(callback.as_str()).await)
}

fn wrong_iss<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        match login_with_iss(env, via, IssMisbehaviour::Wrong).await? {
            Err(Error::Callback(CallbackError::IssuerMismatch {
                ref expected,
                ref found,
            })) if found.ends_with("/not-the-issuer") => {
                Ok(format!("iss {found} refused; expected {expected}"))
            }
            other => Err(format!(
                "finish_login gave {}, expected Callback(IssuerMismatch)",
                describe_result(&other)
            )),
        }
    })
}

fn missing_iss<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        match login_with_iss(env, via, IssMisbehaviour::Missing).await? {
            Err(Error::Callback(CallbackError::MissingIssuer { .. })) => {
                Ok("a callback without iss refused (the OP advertises it)".to_owned())
            }
            other => Err(format!(
                "finish_login gave {}, expected Callback(MissingIssuer)",
                describe_result(&other)
            )),
        }
    })
}

fn device_scope_not_granted<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        env.control.set(&[Switch::DeviceScopeNotGranted]).await?;
        let client = env.client(via)?;
        let (start, callback) = env
            .authorize(
                &client,
                &env.login_options(&env.homeserver)?,
                env.user("alice")?,
            )
            .await?;
        let requested = start.device_id.ok_or("no device id")?;
        match client.finish_login(callback.as_str()).await {
            Err(Error::Token(TokenError::DeviceScopeDropped {
                ref device_id,
                ref granted,
                ..
            })) if device_id == requested.as_str() => Ok(format!(
                "granted `{granted}` without device {device_id}: refused"
            )),
            other => Err(format!(
                "finish_login gave {}, expected Token(DeviceScopeDropped)",
                describe_result(&other)
            )),
        }
    })
}

fn no_rotation<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        env.control.set(&[Switch::NoRefreshTokenRotation]).await?;
        let clock = ManualClock::new(now());
        let client = env.builder(via)?.clock(clock.clone()).build();
        let (start, session) = env
            .log_in(&client, &env.login_options(&env.homeserver)?)
            .await?;
        let refresh = refresh_token_of(&session)?;
        let mut last = session.session().tokens.access_token;
        for generation in 1..=2 {
            clock.advance(Duration::from_secs(301));
            let token = session
                .access_token()
                .await
                .map_err(|e| format!("refresh {generation}: {}", describe_err(&e)))?;
            expect_eq("the generation", &token.generation(), &generation)?;
            ensure(token.secret() != &last, || {
                format!("refresh {generation} returned the same access token")
            })?;
            ensure(refresh_token_of(&session)? == refresh, || {
                format!("refresh {generation}: the session's refresh token changed")
            })?;
            last = token.secret().clone();
        }
        expect_eq(
            "refreshes at the OP",
            &env.refreshes(&start.client_id).await?,
            &2,
        )?;
        session
            .whoami()
            .await
            .map_err(|e| format!("whoami: {}", describe_err(&e)))?;
        Ok("2 refreshes with the same refresh token; whoami still works".to_owned())
    })
}

fn http_needs_opt_in<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let strict = matrix_oidc::OAuthClient::new(env.transport(via, Trust::HarnessCa)?);
        match strict.discover(&env.homeserver).await {
            Err(Error::Discovery(DiscoveryError::InvalidHomeserverUrl { ref url, .. })) => {
                Ok(format!("{url} refused under the https-only policy"))
            }
            other => Err(format!(
                "discover without allow_insecure_loopback gave {}, expected Discovery(InvalidHomeserverUrl)",
                describe_result(&other)
            )),
        }
    })
}

fn untrusted_ca<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let client = matrix_oidc::OAuthClient::new(env.transport(via, Trust::PlatformOnly)?);
        match client.discover(&env.homeserver).await {
            Err(Error::Transport {
                operation: Operation::Discovery,
                source: TransportError::Tls { ref reason, .. },
            }) => Ok(format!("TLS error: {reason}")),
            other => Err(format!(
                "discover without the harness CA gave {}, expected Transport(Discovery, Tls)",
                describe_result(&other)
            )),
        }
    })
}

/// `whoami` at the homeserver with the session's token, which must answer for `device`.
async fn whoami_on_device(
    session: &AuthSession,
    device: Option<String>,
    what: &str,
) -> Result<matrix_oidc::core::Whoami, String> {
    let me = session
        .whoami()
        .await
        .map_err(|e| format!("{what}: {}", describe_err(&e)))?;
    expect_eq("whoami's device_id", &me.device_id, &device)?;
    Ok(me)
}
