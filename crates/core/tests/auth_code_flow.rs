//! End to end, deterministically: discovery → registration → authorization → callback → code exchange → whoami →
//! refresh (proactive and after `M_UNKNOWN_TOKEN`) → revocation, against an in-memory authorization
//! server and homeserver, with a fake clock and a seeded random source.
//!
//! The fake server checks what a real one checks (PKCE S256, redirect URI, client id, refresh token
//! rotation, revocation of the whole grant), so the test fails if the client sends the wrong thing.
//!
//! It starts where an application starts: discovery from the homeserver URL and dynamic client
//! registration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use matrix_oidc_core::callback;
use matrix_oidc_core::discovery::{DiscoveryOptions, DiscoverySource, MatrixDiscovery, Step};
use matrix_oidc_core::pkce::s256_challenge;
use matrix_oidc_core::refresh::{
    RefreshCoordinator, RefreshDecision, RefreshOutcome, RefreshPolicy,
};
use matrix_oidc_core::registration::{ClientMetadata, MetadataRules, Registration};
use matrix_oidc_core::{
    AuthorizationRequest, AuthorizationServerMetadata, DeviceId, OutgoingRequest, ResponseMode,
    RevocationRequest, Scope, SeededRandom, Session, Timestamp, TokenRequest, WhoamiError,
    WhoamiRequest,
};
use std::collections::HashMap;
use std::time::Duration;
use url::Url;

const ISSUER: &str = "https://account.example.com/";
const HOMESERVER: &str = "https://matrix.example.com/";
const CLIENT_ID: &str = "01JCLIENT";
const USER: &str = "@alice:example.com";
const TOKEN_LIFETIME: u64 = 300;

const METADATA: &str = r#"{
            "issuer": "https://account.example.com/",
            "authorization_endpoint": "https://account.example.com/authorize",
            "token_endpoint": "https://account.example.com/oauth2/token",
            "revocation_endpoint": "https://account.example.com/oauth2/revoke",
            "registration_endpoint": "https://account.example.com/oauth2/registration",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["create"],
            "authorization_response_iss_parameter_supported": true
        }"#;

fn metadata() -> AuthorizationServerMetadata {
    serde_json::from_str(METADATA).unwrap()
}

#[derive(Clone)]
struct Grant {
    scope: String,
    device: String,
}

#[derive(Default)]
struct FakeServer {
    /// code → (challenge, redirect_uri, grant)
    codes: HashMap<String, (String, String, Grant)>,
    refresh: HashMap<String, Grant>,
    access: HashMap<String, (Grant, Timestamp)>,
    issued: u32,
    requests: Vec<String>,
}

fn reply(status: u16, body: &str) -> http::Response<Vec<u8>> {
    let mut b = http::Response::builder().status(status);
    if !body.is_empty() {
        b = b.header("content-type", "application/json");
    }
    b.body(body.as_bytes().to_vec()).unwrap()
}

impl FakeServer {
    /// The browser part: the user signs in and consents; the server redirects to the client.
    fn authorize(&mut self, url: &Url) -> String {
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], CLIENT_ID);
        assert_eq!(q["code_challenge_method"], "S256");
        let scope = Scope::parse(&q["scope"]).unwrap();
        let device = scope.device_id().unwrap().to_string();
        let code = format!("code{}", self.codes.len());
        self.codes.insert(
            code.clone(),
            (
                q["code_challenge"].clone(),
                q["redirect_uri"].clone(),
                Grant {
                    scope: q["scope"].clone(),
                    device,
                },
            ),
        );
        let sep = if q["response_mode"] == "fragment" {
            '#'
        } else {
            '?'
        };
        let params = form_urlencoded::Serializer::new(String::new())
            .append_pair("state", &q["state"])
            .append_pair("code", &code)
            .append_pair("iss", ISSUER)
            .finish();
        format!("{}{sep}{params}", q["redirect_uri"])
    }

    fn issue(&mut self, grant: Grant, now: Timestamp) -> http::Response<Vec<u8>> {
        self.issued += 1;
        let (at, rt) = (
            format!("mat_{}", self.issued),
            format!("mar_{}", self.issued),
        );
        self.access.insert(
            at.clone(),
            (grant.clone(), now + Duration::from_secs(TOKEN_LIFETIME)),
        );
        self.refresh.insert(rt.clone(), grant.clone());
        reply(
            200,
            &serde_json::json!({
                "access_token": at, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME,
                "refresh_token": rt, "scope": grant.scope,
            })
            .to_string(),
        )
    }

    fn handle(&mut self, out: OutgoingRequest, now: Timestamp) -> http::Response<Vec<u8>> {
        let req = out.request;
        assert!(!out.expect.follow_redirects);
        let path = req.uri().path().to_owned();
        self.requests.push(format!("{} {}", req.method(), path));
        let form: HashMap<String, String> =
            form_urlencoded::parse(req.body()).into_owned().collect();
        let invalid_grant = || reply(400, r#"{"error":"invalid_grant"}"#);
        match path.as_str() {
            "/_matrix/client/v1/auth_metadata" => reply(200, METADATA),
            "/oauth2/registration" => {
                let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
                assert_eq!(body["token_endpoint_auth_method"], "none");
                assert_eq!(body["redirect_uris"][0], "https://app.example.com/callback");
                reply(
                    201,
                    &serde_json::json!({"client_id": CLIENT_ID}).to_string(),
                )
            }
            "/oauth2/token" => {
                assert_eq!(
                    req.headers()["content-type"],
                    "application/x-www-form-urlencoded"
                );
                if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
                    return reply(401, r#"{"error":"invalid_client"}"#);
                }
                match form["grant_type"].as_str() {
                    "authorization_code" => {
                        let Some((challenge, redirect, grant)) = self.codes.remove(&form["code"])
                        else {
                            return invalid_grant();
                        };
                        if form["redirect_uri"] != redirect
                            || s256_challenge(&form["code_verifier"]) != challenge
                        {
                            return invalid_grant();
                        }
                        self.issue(grant, now)
                    }
                    "refresh_token" => match self.refresh.remove(&form["refresh_token"]) {
                        Some(grant) => self.issue(grant, now),
                        None => invalid_grant(),
                    },
                    _ => reply(400, r#"{"error":"unsupported_grant_type"}"#),
                }
            }
            "/oauth2/revoke" => {
                if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
                    return reply(401, r#"{"error":"invalid_client"}"#);
                }
                let token = &form["token"];
                let device = self
                    .refresh
                    .get(token)
                    .or(self.access.get(token).map(|(g, _)| g))
                    .map(|g| g.device.clone());
                // Revoking either token ends the whole grant (access and refresh).
                if let Some(device) = device {
                    self.refresh.retain(|_, g| g.device != device);
                    self.access.retain(|_, (g, _)| g.device != device);
                }
                reply(200, "")
            }
            "/_matrix/client/v3/account/whoami" => {
                let auth = req.headers()["authorization"].to_str().unwrap();
                let token = auth.strip_prefix("Bearer ").unwrap();
                match self.access.get(token) {
                    Some((grant, expires)) if now < *expires => reply(
                        200,
                        &serde_json::json!({"user_id": USER, "device_id": grant.device})
                            .to_string(),
                    ),
                    _ => reply(
                        401,
                        r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Token expired","soft_logout":false}"#,
                    ),
                }
            }
            other => panic!("unexpected request to {other}"),
        }
    }
}

fn run(seed: u64) -> (Vec<String>, Session) {
    let mut server = FakeServer::default();
    let mut rng = SeededRandom::new(seed);
    let mut now = Timestamp::from_unix_seconds(1_700_000_000);
    let homeserver = Url::parse(HOMESERVER).unwrap();

    // Discovery from the homeserver URL.
    let mut discovery = MatrixDiscovery::new(&homeserver, DiscoveryOptions::default()).unwrap();
    let mut step = discovery.start().unwrap();
    let discovered = loop {
        match step {
            Step::Send(request) => {
                let response = server.handle(request, now);
                step = discovery.handle_response(&response, now).unwrap();
            }
            Step::Done(discovered) => break discovered,
        }
    };
    assert_eq!(discovered.source, DiscoverySource::AuthMetadata);
    let metadata = discovered.metadata;

    // Dynamic registration, at the start of every login.
    let client = ClientMetadata::web(Url::parse("https://app.example.com/").unwrap())
        .with_client_name("End-to-end test")
        .with_redirect_uri(Url::parse("https://app.example.com/callback").unwrap());
    let registration = Registration::new(&metadata, &client, MetadataRules::MatrixSpec).unwrap();
    let response = server.handle(registration.request().unwrap(), now);
    let client_id = registration.handle_response(&response).unwrap().client_id;

    // Authorization request.
    let device = DeviceId::generate(&mut rng).unwrap();
    device.check_mas_rules().unwrap();
    let scope = Scope::matrix(device.clone()).build().unwrap();
    let start = AuthorizationRequest::new(
        &metadata,
        client_id,
        Url::parse("https://app.example.com/callback").unwrap(),
        scope,
    )
    .homeserver(homeserver.clone())
    .build(now, &mut rng)
    .unwrap();
    assert_eq!(start.pending.response_mode, ResponseMode::Fragment);
    assert!(start.pending.require_iss);
    // The pending authorization survives a restart (serialized to a store and read back).
    let stored = serde_json::to_string(&start.pending).unwrap();
    let pending: matrix_oidc_core::PendingAuthorization = serde_json::from_str(&stored).unwrap();

    // The user approves in the browser; the app receives the redirect.
    now = now + Duration::from_secs(20);
    let redirect = server.authorize(&start.url.to_url().unwrap());
    let code = callback::complete(&redirect, &pending).unwrap();

    // Code exchange: expiry counts from when the request was sent.
    let exchange = TokenRequest::authorization_code(&pending, &code).unwrap();
    let sent_at = now;
    now = now + Duration::from_millis(300);
    let response = server.handle(exchange.request.clone(), now);
    let tokens = exchange.parse(&response, sent_at).unwrap();
    assert_eq!(
        tokens.expires_at,
        Some(sent_at + Duration::from_secs(TOKEN_LIFETIME))
    );
    // The same code cannot be used twice.
    let replay = server.handle(exchange.request.clone(), now);
    assert!(!exchange.parse(&replay, now).unwrap_err().is_logout());

    // whoami names the user; the device is the one requested.
    let mut session = Session::from_pending(&pending, tokens);
    let who = WhoamiRequest::new(&homeserver, &session.tokens.access_token).unwrap();
    let me = who.parse(&server.handle(who.request.clone(), now)).unwrap();
    me.check_device(&device).unwrap();
    me.apply_to(&mut session).unwrap();
    assert_eq!(session.user_id.as_deref(), Some(USER));

    // Proactive refresh shortly before expiry; two callers race, one refreshes.
    let mut coordinator = RefreshCoordinator::new(session.tokens.clone(), RefreshPolicy::default());
    now = now + Duration::from_secs(TOKEN_LIFETIME - 20);
    let RefreshDecision::Refresh(ticket) = coordinator.before_request(now) else {
        panic!("the token is within the margin");
    };
    let RefreshDecision::Use { generation: 0, .. } = coordinator.before_request(now) else {
        panic!("the loser keeps using the still-valid token");
    };
    let refresh = ticket
        .token_request(&metadata.token_endpoint, &session.client_id)
        .unwrap();
    let sent_at = now;
    let result = refresh.parse(&server.handle(refresh.request.clone(), now), sent_at);
    let RefreshOutcome::Refreshed {
        generation: 1,
        tokens,
    } = coordinator.finish(ticket, result, now)
    else {
        panic!("refresh failed");
    };
    assert_ne!(
        tokens.refresh_token, session.tokens.refresh_token,
        "rotated"
    );
    session.tokens = tokens;
    // Persist before use.
    let persisted: Session =
        serde_json::from_str(&serde_json::to_string(&session).unwrap()).unwrap();
    assert_eq!(persisted, session);

    // The token expires unnoticed (no proactive check); the homeserver says M_UNKNOWN_TOKEN.
    now = now + Duration::from_secs(TOKEN_LIFETIME + 1);
    let who = WhoamiRequest::new(&homeserver, &session.tokens.access_token).unwrap();
    let WhoamiError::UnknownToken { soft_logout, .. } = who
        .parse(&server.handle(who.request.clone(), now))
        .unwrap_err()
    else {
        panic!("expected M_UNKNOWN_TOKEN");
    };
    let RefreshDecision::Refresh(ticket) = coordinator.on_unknown_token(1, soft_logout, now) else {
        panic!("expected a refresh");
    };
    // A second request made with generation 1 fails the same way and waits.
    assert!(matches!(
        coordinator.on_unknown_token(1, false, now),
        RefreshDecision::Wait
    ));
    let refresh = ticket
        .token_request(&metadata.token_endpoint, &session.client_id)
        .unwrap();
    let result = refresh.parse(&server.handle(refresh.request.clone(), now), now);
    let RefreshOutcome::Refreshed { tokens, .. } = coordinator.finish(ticket, result, now) else {
        panic!("refresh failed");
    };
    session.tokens = tokens;
    // The waiter adopts the new token instead of refreshing with the spent one.
    let RefreshDecision::Use {
        generation: 2,
        access_token,
    } = coordinator.on_unknown_token(1, false, now)
    else {
        panic!("expected the new token");
    };
    let who = WhoamiRequest::new(&homeserver, &access_token).unwrap();
    assert!(who.parse(&server.handle(who.request.clone(), now)).is_ok());

    // Logout: one revocation ends the grant; a later refresh is a logout.
    let revoke = RevocationRequest::for_session(&metadata, &session).unwrap();
    revoke
        .parse(&server.handle(revoke.request.clone(), now))
        .unwrap();
    let after = TokenRequest::refresh(
        &metadata.token_endpoint,
        &session.client_id,
        &session.tokens,
    )
    .unwrap();
    let e = after
        .parse(&server.handle(after.request.clone(), now), now)
        .unwrap_err();
    assert!(e.is_logout(), "{e}");
    let who = WhoamiRequest::new(&homeserver, &session.tokens.access_token).unwrap();
    assert!(matches!(
        who.parse(&server.handle(who.request.clone(), now)),
        Err(WhoamiError::UnknownToken { .. })
    ));

    (server.requests, session)
}

#[test]
fn full_flow_is_deterministic() {
    let (requests, session) = run(2024);
    assert_eq!(
        requests,
        [
            "GET /_matrix/client/v1/auth_metadata",
            "POST /oauth2/registration",
            "POST /oauth2/token",
            "POST /oauth2/token",
            "GET /_matrix/client/v3/account/whoami",
            "POST /oauth2/token",
            "GET /_matrix/client/v3/account/whoami",
            "POST /oauth2/token",
            "GET /_matrix/client/v3/account/whoami",
            "POST /oauth2/revoke",
            "POST /oauth2/token",
            "GET /_matrix/client/v3/account/whoami",
        ]
    );
    assert_eq!(session.issuer.as_str(), ISSUER);
    assert_eq!(session.client_id, CLIENT_ID);
    assert_eq!(
        session.homeserver.as_ref().map(Url::as_str),
        Some(HOMESERVER)
    );
    // Same seed, same everything.
    let (_, again) = run(2024);
    assert_eq!(again, session);
    let (_, other) = run(2025);
    assert_ne!(other.device_id, session.device_id);
}

#[test]
fn a_forged_callback_never_reaches_the_token_endpoint() {
    let metadata = metadata();
    let mut server = FakeServer::default();
    let mut rng = SeededRandom::new(1);
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    let scope = Scope::matrix(DeviceId::generate(&mut rng).unwrap())
        .build()
        .unwrap();
    let start = AuthorizationRequest::new(
        &metadata,
        CLIENT_ID,
        Url::parse("https://app.example.com/callback").unwrap(),
        scope,
    )
    .build(now, &mut rng)
    .unwrap();
    let genuine = server.authorize(&start.url.to_url().unwrap());
    // Another issuer (mix-up), another state (CSRF), another redirect target.
    let iss_forged = genuine.replace(
        "iss=https%3A%2F%2Faccount.example.com%2F",
        "iss=https%3A%2F%2Fevil.example.com%2F",
    );
    let csrf = genuine.replace(&start.pending.state, "attacker-state-attacker-state-00");
    let elsewhere = genuine.replace("app.example.com", "evil.example.com");
    for (input, expected) in [
        (iss_forged, "IssuerMismatch"),
        (csrf, "UnknownState"),
        (elsewhere, "RedirectUriMismatch"),
    ] {
        let e = callback::complete(&input, &start.pending).unwrap_err();
        assert!(format!("{e:?}").starts_with(expected), "{e:?}");
    }
    let without_iss = genuine.split("&iss=").next().unwrap().to_owned();
    assert!(matches!(
        callback::complete(&without_iss, &start.pending),
        Err(callback::CallbackError::MissingIssuer { .. })
    ));
    assert!(server.requests.is_empty());
}
