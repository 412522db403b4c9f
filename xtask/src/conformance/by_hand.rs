//! The sans-IO core driven by hand, with no async client: every request the core hands out is sent
//! with a transport, every answer handed back, the time and the randomness passed in.

use super::CaseFuture;
use super::env::{Env, Trust, Via, ensure, expect_eq, has_scope, params};
use crate::browser::DeviceOutcome;
use crate::peers::Switch;
use matrix_oidc_core::callback;
use matrix_oidc_core::device_grant::{DEFAULT_INTERVAL, SLOW_DOWN_STEP};
use matrix_oidc_core::discovery::{MatrixDiscovery, Step};
use matrix_oidc_core::registration::{MetadataRules, Registration};
use matrix_oidc_core::{
    AuthorizationRequest, AuthorizationServerMetadata, ClientMetadata, DeviceAuthorizationRequest,
    DeviceId, DiscoveryOptions, HttpClient, OsRandom, OutgoingRequest, PollAction, PollStatus,
    RevocationRequest, Scope, Session, Timestamp, TokenRequest, TokenTypeHint, UrlPolicy,
    WhoamiRequest,
};
use std::time::SystemTime;

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

async fn send(
    http: &dyn HttpClient,
    request: OutgoingRequest,
    what: &str,
) -> Result<http::Response<Vec<u8>>, String> {
    http.send(request).await.map_err(|e| format!("{what}: {e}"))
}

/// Matrix discovery from Synapse's URL, then dynamic registration of `app`.
async fn discover_and_register(
    env: &Env<'_>,
    http: &dyn HttpClient,
    app: &ClientMetadata,
) -> Result<(AuthorizationServerMetadata, String), String> {
    let mut options = DiscoveryOptions::default();
    if env.state.mode == crate::peers::Mode::Http {
        options = options.with_url_policy(UrlPolicy::AllowInsecureLoopback);
    }
    let mut discovery =
        MatrixDiscovery::new(&env.homeserver, options).map_err(|e| format!("discovery: {e}"))?;
    let mut step = discovery.start().map_err(|e| format!("discovery: {e}"))?;
    let discovered = loop {
        match step {
            Step::Send(request) => {
                let response = send(http, request, "discovery").await?;
                step = discovery
                    .handle_response(&response, now())
                    .map_err(|e| format!("discovery: {e}"))?;
            }
            Step::Done(discovered) => break discovered,
        }
    };
    let metadata = discovered.metadata;
    expect_eq("the issuer", &metadata.issuer, &env.issuer)?;

    let registration = Registration::new(&metadata, app, MetadataRules::MatrixSpec)
        .map_err(|e| format!("registration: {e}"))?;
    let request = registration
        .request()
        .map_err(|e| format!("registration: {e}"))?;
    let response = send(http, request, "registration").await?;
    let client_id = registration
        .handle_response(&response)
        .map_err(|e| format!("registration: {e}"))?
        .client_id;
    Ok((metadata, client_id))
}

/// Discovery, registration, authorization with PKCE, callback, code exchange, whoami, refresh and
/// revocation of both tokens.
pub(super) fn full_login<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        let http = env.transport(via, Trust::HarnessCa)?;
        let mut rng = OsRandom;
        let (metadata, client_id) = discover_and_register(env, &*http, &super::env::app()?).await?;

        let device = DeviceId::generate(&mut rng).map_err(|e| format!("device id: {e}"))?;
        let scope = Scope::matrix(device.clone())
            .build()
            .map_err(|e| format!("scope: {e}"))?;
        let start = AuthorizationRequest::new(
            &metadata,
            client_id.clone(),
            super::env::parse_url("http://127.0.0.1:48765/callback")?,
            scope,
        )
        .homeserver(env.homeserver.clone())
        .build(now(), &mut rng)
        .map_err(|e| format!("authorization request: {e}"))?;
        let pending = start.pending;
        ensure(pending.require_iss, || {
            "the OP advertises RFC 9207 iss but the pending login does not require it".to_owned()
        })?;
        expect_eq(
            "code_challenge_method",
            params(start.url.query())
                .get("code_challenge_method")
                .map(String::as_str),
            Some("S256"),
        )?;

        let alice = env.user("alice")?;
        let redirect = env
            .browser()?
            .log_in(&start.url, &alice.username, &alice.password)
            .await
            .map_err(|e| format!("browser: {e}"))?;
        let code = callback::complete(redirect.as_str(), &pending)
            .map_err(|e| format!("callback: {e}"))?;

        let exchange = TokenRequest::authorization_code(&pending, &code)
            .map_err(|e| format!("code exchange: {e}"))?;
        let sent_at = now();
        let response = send(&*http, exchange.request.clone(), "code exchange").await?;
        let tokens = exchange
            .parse(&response, sent_at)
            .map_err(|e| format!("code exchange: {e}"))?;
        let granted = tokens.scope.clone().unwrap_or_default();
        let device_token = format!("urn:matrix:client:device:{device}");
        ensure(has_scope(&granted, &device_token), || {
            format!("granted scope {granted:?} lacks {device_token}")
        })?;
        let mut session = Session::from_pending(&pending, tokens);

        let whoami = WhoamiRequest::new(&env.homeserver, &session.tokens.access_token)
            .map_err(|e| format!("whoami: {e}"))?;
        let response = send(&*http, whoami.request.clone(), "whoami").await?;
        let me = whoami
            .parse(&response)
            .map_err(|e| format!("whoami: {e}"))?;
        me.check_device(&device)
            .map_err(|e| format!("whoami: {e}"))?;
        me.apply_to(&mut session)
            .map_err(|e| format!("whoami: {e}"))?;
        expect_eq("whoami's user_id", &me.user_id, &alice.user_id)?;

        let refresh = TokenRequest::refresh(&metadata.token_endpoint, &client_id, &session.tokens)
            .map_err(|e| format!("refresh: {e}"))?;
        let sent_at = now();
        let response = send(&*http, refresh.request.clone(), "refresh").await?;
        let refreshed = refresh
            .parse(&response, sent_at)
            .map_err(|e| format!("refresh: {e}"))?;
        ensure(
            refreshed.refresh_token != session.tokens.refresh_token,
            || "the refresh token did not rotate".to_owned(),
        )?;
        session.tokens = refreshed;

        let access = session.tokens.access_token.clone();
        let refresh_token = session
            .tokens
            .refresh_token
            .clone()
            .ok_or("no refresh token after the refresh")?;
        for (token, hint) in [
            (&refresh_token, TokenTypeHint::RefreshToken),
            (&access, TokenTypeHint::AccessToken),
        ] {
            let revoke = RevocationRequest::new(&metadata, &client_id, token, Some(hint))
                .map_err(|e| format!("revocation: {e}"))?;
            let response = send(&*http, revoke.request.clone(), "revocation").await?;
            revoke
                .parse(&response)
                .map_err(|e| format!("revocation of the {hint:?}: {e}"))?;
            ensure(!env.introspect(token.expose()).await?, || {
                format!("the {hint:?} is still active after its revocation")
            })?;
        }
        Ok(format!(
            "{} on device {device}; refreshed, both tokens revoked",
            me.user_id
        ))
    })
}

/// The device authorization grant with the core alone: the OP omits `interval` (the default applies)
/// and answers the first poll with `slow_down`. The poller runs on a virtual clock — each poll is
/// sent the moment the poller says it is due, without real waiting — which a sans-IO state machine
/// allows.
pub(super) fn device_grant<'a>(env: &'a Env<'a>, via: Via) -> CaseFuture<'a> {
    Box::pin(async move {
        env.control.set(&[Switch::DeviceSlowDown(1)]).await?;
        let http = env.transport(via, Trust::HarnessCa)?;
        let mut rng = OsRandom;
        let app = super::env::app()?.with_device_code_grant();
        let (metadata, client_id) = discover_and_register(env, &*http, &app).await?;

        let device = DeviceId::generate(&mut rng).map_err(|e| format!("device id: {e}"))?;
        let scope = Scope::matrix(device.clone())
            .build()
            .map_err(|e| format!("scope: {e}"))?;
        let request = DeviceAuthorizationRequest::new(&metadata, &client_id, scope)
            .map_err(|e| format!("device authorization: {e}"))?;
        let started = now();
        let response = send(&*http, request.request.clone(), "device authorization").await?;
        let authorization = request
            .parse(&response, started)
            .map_err(|e| format!("device authorization: {e}"))?;
        expect_eq(
            "the polling interval",
            authorization.interval,
            DEFAULT_INTERVAL,
        )?;

        let alice = env.user("alice")?;
        let outcome = env
            .browser()?
            .approve_device(
                &authorization.verification_uri,
                Some(&authorization.user_code),
                &alice.username,
                &alice.password,
            )
            .await
            .map_err(|e| format!("browser: {e}"))?;
        expect_eq("the browser's outcome", outcome, DeviceOutcome::Approved)?;

        let mut clock = started;
        let mut poller = authorization.poller(clock);
        let mut polls = 0;
        let mut slow_downs = Vec::new();
        let tokens = loop {
            let request = match poller.poll(clock).map_err(|e| format!("poll: {e}"))? {
                PollAction::Wait { until } => {
                    clock = until;
                    continue;
                }
                PollAction::Send(request) => request,
                other => return Err(format!("the poller answered {other:?}")),
            };
            polls += 1;
            let response = send(&*http, request, "device token poll").await?;
            match poller
                .handle_response(&response, clock)
                .map_err(|e| format!("poll {polls}: {e}"))?
            {
                PollStatus::Authorized(tokens) => break tokens,
                PollStatus::SlowDown { interval, .. } => slow_downs.push(interval),
                PollStatus::Pending { .. } => {}
                other => return Err(format!("poll {polls}: {other:?}")),
            }
        };
        let slowed = DEFAULT_INTERVAL + SLOW_DOWN_STEP;
        expect_eq(
            "the intervals after slow_down",
            slow_downs.as_slice(),
            &[slowed][..],
        )?;
        expect_eq("the number of polls", polls, 2)?;
        expect_eq(
            "the virtual time polling took",
            clock.duration_since(started),
            DEFAULT_INTERVAL + slowed,
        )?;

        let whoami = WhoamiRequest::new(&env.homeserver, &tokens.access_token)
            .map_err(|e| format!("whoami: {e}"))?;
        let response = send(&*http, whoami.request.clone(), "whoami").await?;
        let me = whoami
            .parse(&response)
            .map_err(|e| format!("whoami: {e}"))?;
        me.check_device(&device)
            .map_err(|e| format!("whoami: {e}"))?;
        expect_eq("whoami's user_id", &me.user_id, &alice.user_id)?;
        Ok(format!(
            "polled after {} s, slow_down, then after {} s more (virtual time); {} on device {device}",
            DEFAULT_INTERVAL.as_secs(),
            slowed.as_secs(),
            me.user_id
        ))
    })
}
