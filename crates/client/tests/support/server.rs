//! An in-process HTTP server that plays a Matrix homeserver and its OAuth 2.0 authorization server
//! (in the manner of Synapse + MAS), for the client's integration tests.
//!
//! It keeps real protocol state: registered clients (deduplicated by metadata, like MAS),
//! authorization codes bound to PKCE challenges and redirect URIs, sessions with access and refresh
//! tokens, **strict** refresh-token rotation (a refresh token works once; its replay is
//! `invalid_grant`), revocation of a whole session by either token, device authorizations, and
//! `whoami`. The test plays the browser: [`FakeServer::approve`] takes the authorization URL the
//! client built and returns the callback URL the browser would be sent to.
//!
//! Every request is counted per endpoint, and the token endpoint can be held open
//! ([`FakeServer::pause_token_endpoint`]) to cancel a client in the middle of a refresh.
//!
//! With [`FakeServer::enable_oidc`] it is also an OpenID Provider: it publishes a key set
//! (`/oauth2/keys`), signs ID tokens for logins that asked for `openid` (with the request's
//! `nonce`, `at_hash`, the provider's clock), answers userinfo, advertises an end-session endpoint
//! and serves its metadata at `/.well-known/openid-configuration` for issuer discovery. Keys can
//! be rotated, and refresh responses can carry ID tokens that keep or break OpenID Connect's rules
//! ([`RefreshIdToken`]).

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use url::Url;

use super::keys::TestKey;
use matrix_oidc::Clock as _;
use matrix_oidc::ManualClock;

/// What the provider puts in the token response of a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshIdToken {
    /// No ID token (the most common provider behaviour).
    Omit,
    /// A new ID token for the same subject, without a nonce.
    Issue,
    /// A new ID token carrying the login's nonce (allowed by §12.2).
    WithOriginalNonce,
    /// A new ID token with another nonce (refused by §12.2).
    WithNonce(String),
    /// A new ID token for another subject (refused by §12.2).
    OtherSubject(String),
}

/// The OpenID Provider side of the server.
pub struct Provider {
    /// The keys published in the key set, in order.
    pub published: Vec<TestKey>,
    /// The key that signs ID tokens (normally one of `published`).
    pub signer: TestKey,
    /// The provider's clock for `iat`, `exp` and `auth_time`.
    pub clock: ManualClock,
    /// Lifetime of issued ID tokens, in seconds.
    pub id_token_lifetime: u64,
    /// The subject of new logins.
    pub sub: String,
    /// What refresh responses carry.
    pub on_refresh: RefreshIdToken,
    /// The `sub` the userinfo endpoint answers with (`None`: the session's).
    pub userinfo_sub: Option<String>,
    /// The `Cache-Control` of the key set.
    pub jwks_cache_control: Option<String>,
    /// Advertise `end_session_endpoint`.
    pub end_session: bool,
    /// Leave the ID token out of code-exchange responses (a broken provider).
    pub omit_login_id_token: bool,
}

/// What the server does; change it with [`FakeServer::configure`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Serve `auth_metadata` (else 404 `M_UNRECOGNIZED` everywhere, a legacy-only homeserver).
    pub oauth: bool,
    /// The `Cache-Control` header of the metadata response.
    pub metadata_cache_control: Option<String>,
    /// `expires_in` of issued access tokens.
    pub expires_in: u64,
    /// Advertise and serve the device authorization grant.
    pub device_grant: bool,
    /// Advertise a registration endpoint.
    pub registration: bool,
    /// The user every login signs in as.
    pub user_id: String,
    /// Flows of the legacy `GET /_matrix/client/v3/login` (`None`: 404 `M_UNRECOGNIZED`).
    pub legacy_flows: Option<Value>,
    /// The status the revocation endpoint answers with instead of revoking (`None`: revoke).
    pub revocation_failure: Option<u16>,
    /// The status of device-grant polling errors (400 per RFC 8628; MAS uses 403).
    pub device_error_status: u16,
    /// Errors the device-grant poll answers with, in order, before it looks at the approval.
    pub device_poll_script: VecDeque<&'static str>,
    /// Whether to send RFC 9207 `iss` on the callback.
    pub send_iss: bool,
    /// The status the token endpoint answers every request with (`None`: work).
    pub token_failure: Option<u16>,
    /// Every endpoint answers 503 (the server is down behind its proxy).
    pub unavailable: bool,
    /// The device grant's polling interval, in seconds.
    pub device_interval: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            oauth: true,
            metadata_cache_control: Some("public, max-age=600".to_owned()),
            expires_in: 300,
            device_grant: true,
            registration: true,
            user_id: "@alice:localhost".to_owned(),
            legacy_flows: None,
            revocation_failure: None,
            device_error_status: 400,
            device_poll_script: VecDeque::new(),
            send_iss: false,
            token_failure: None,
            unavailable: false,
            device_interval: 5,
        }
    }
}

#[derive(Debug, Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
    nonce: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct SessionInfo {
    client_id: String,
    scope: String,
    device_id: Option<String>,
    revoked: bool,
    nonce: Option<String>,
    sub: String,
    /// When the user authenticated (the login's time; refreshes keep it).
    auth_time: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    Exchanged,
}

#[derive(Debug, Clone)]
struct DeviceGrant {
    client_id: String,
    scope: String,
    user_code: String,
    status: DeviceStatus,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<String, Value>,
    clients_by_metadata: HashMap<String, String>,
    next: u64,
    codes: HashMap<String, CodeGrant>,
    sessions: HashMap<u64, SessionInfo>,
    access: HashMap<String, u64>,
    refresh: HashMap<String, (u64, bool)>,
    device: HashMap<String, DeviceGrant>,
    revocations: Vec<(String, Option<String>)>,
    /// Every secret issued or received: tokens, codes, verifiers, device codes, states.
    secrets: Vec<String>,
}

impl State {
    fn next(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn issue(&mut self, session: u64, config: &Config) -> Value {
        let n = self.next();
        let at = format!("mat_{session}_{n}");
        let rt = format!("mar_{session}_{n}");
        self.access.insert(at.clone(), session);
        self.refresh.insert(rt.clone(), (session, false));
        self.secrets.push(at.clone());
        self.secrets.push(rt.clone());
        let scope = self
            .sessions
            .get(&session)
            .map(|s| s.scope.clone())
            .unwrap_or_default();
        json!({
            "access_token": at,
            "refresh_token": rt,
            "token_type": "Bearer",
            "expires_in": config.expires_in,
            "scope": scope,
        })
    }

    fn new_session(&mut self, client_id: &str, scope: &str) -> u64 {
        let id = self.next();
        let device_id = scope
            .split(' ')
            .find_map(|t| t.strip_prefix("urn:matrix:client:device:"))
            .map(str::to_owned);
        self.sessions.insert(
            id,
            SessionInfo {
                client_id: client_id.to_owned(),
                scope: scope.to_owned(),
                device_id,
                ..SessionInfo::default()
            },
        );
        id
    }
}

/// Paused token requests: a request that arrives while paused is processed (tokens rotate), then
/// its answer is held back until [`FakeServer::resume_token_endpoint`].
#[derive(Debug)]
struct Gate {
    paused: Mutex<bool>,
    release: Semaphore,
    arrived: watch::Sender<usize>,
}

/// The running server. Dropping it stops accepting connections.
pub struct FakeServer {
    /// `http://127.0.0.1:<port>/`: homeserver base URL and issuer at once.
    pub base: Url,
    state: Arc<Mutex<State>>,
    config: Arc<Mutex<Config>>,
    counters: Arc<Mutex<HashMap<String, usize>>>,
    gate: Arc<Gate>,
    stop: Arc<Notify>,
    provider: Arc<Mutex<Option<Provider>>>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.notify_waiters();
    }
}

struct Shared {
    base: Url,
    state: Arc<Mutex<State>>,
    config: Arc<Mutex<Config>>,
    counters: Arc<Mutex<HashMap<String, usize>>>,
    gate: Arc<Gate>,
    provider: Arc<Mutex<Option<Provider>>>,
}

impl FakeServer {
    /// Starts a server with the default [`Config`] on an ephemeral loopback port.
    pub async fn start() -> Self {
        Self::start_with(Config::default()).await
    }

    /// Starts a server with `config`.
    pub async fn start_with(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let (arrived, _) = watch::channel(0);
        let server = FakeServer {
            base: base.clone(),
            state: Arc::default(),
            config: Arc::new(Mutex::new(config)),
            counters: Arc::default(),
            gate: Arc::new(Gate {
                paused: Mutex::new(false),
                release: Semaphore::new(0),
                arrived,
            }),
            stop: Arc::new(Notify::new()),
            provider: Arc::default(),
        };
        let shared = Arc::new(Shared {
            base,
            state: server.state.clone(),
            config: server.config.clone(),
            counters: server.counters.clone(),
            gate: server.gate.clone(),
            provider: server.provider.clone(),
        });
        let stop = server.stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = stop.notified() => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(shared.handle(req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        server
    }

    /// Changes the configuration.
    pub fn configure(&self, f: impl FnOnce(&mut Config)) {
        f(&mut self.config.lock().unwrap());
    }

    /// How many requests `endpoint` received (`"auth_metadata"`, `"register"`, `"token"`,
    /// `"token:refresh_token"`, `"token:authorization_code"`, `"token:device_code"`, `"revoke"`,
    /// `"device"`, `"whoami"`, `"login"`, …).
    pub fn count(&self, endpoint: &str) -> usize {
        self.counters
            .lock()
            .unwrap()
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// The issuer (the same as the base URL).
    pub fn issuer(&self) -> Url {
        self.base.clone()
    }

    /// Plays the browser: the user approves the authorization request at `authorization_url`.
    /// Returns the callback URL the server redirects to.
    pub fn approve(&self, authorization_url: &str) -> String {
        self.respond_to_authorization(authorization_url, true)
    }

    /// Plays the browser: the user declines.
    pub fn deny(&self, authorization_url: &str) -> String {
        self.respond_to_authorization(authorization_url, false)
    }

    fn respond_to_authorization(&self, authorization_url: &str, approve: bool) -> String {
        let url = Url::parse(authorization_url).unwrap();
        assert!(url.as_str().starts_with(self.base.as_str()), "{url}");
        assert_eq!(url.path(), "/oauth2/auth");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let get = |k: &str| {
            q.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("authorization URL lacks {k}: {url}"))
        };
        assert_eq!(get("response_type"), "code");
        assert_eq!(get("code_challenge_method"), "S256");
        let client_id = get("client_id");
        let redirect_uri = get("redirect_uri");
        let mut state = self.state.lock().unwrap();
        let client = state
            .clients
            .get(&client_id)
            .unwrap_or_else(|| panic!("unknown client {client_id}"));
        // Loopback redirect URIs match whatever the port (Matrix spec, RFC 8252 §7.3).
        let without_port = |u: &str| {
            let mut u = Url::parse(u).unwrap();
            if u.scheme() == "http" && u.host_str() == Some("127.0.0.1") {
                u.set_port(None).unwrap();
            }
            u
        };
        let registered = client["redirect_uris"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u.as_str())
            .any(|u| without_port(u) == without_port(&redirect_uri));
        assert!(registered, "{redirect_uri} not registered");
        let scope = get("scope");
        // Matrix logins always ask for the API; only an OpenID Connect login at the issuer may not.
        assert!(
            scope.contains("urn:matrix:client:api:*") || scope.split(' ').any(|t| t == "openid"),
            "{scope}"
        );
        let nonce = q.get("nonce").cloned();
        if let Some(n) = &nonce {
            state.secrets.push(n.clone());
        }
        let mode = q.get("response_mode").map_or("query", String::as_str);
        let mut params = form_urlencoded::Serializer::new(String::new());
        params.append_pair("state", &get("state"));
        state.secrets.push(get("state"));
        if approve {
            let code = format!("code_{}", state.next());
            state.codes.insert(
                code.clone(),
                CodeGrant {
                    client_id,
                    redirect_uri: redirect_uri.clone(),
                    challenge: get("code_challenge"),
                    scope,
                    nonce,
                },
            );
            params.append_pair("code", &code);
            state.secrets.push(code);
        } else {
            params.append_pair("error", "access_denied");
            params.append_pair("error_description", "The user declined");
        }
        if self.config.lock().unwrap().send_iss {
            params.append_pair("iss", self.base.as_str());
        }
        let sep = if mode == "fragment" { '#' } else { '?' };
        format!("{redirect_uri}{sep}{}", params.finish())
    }

    /// Plays the user on another device: approves the device authorization with `user_code`.
    pub fn approve_device(&self, user_code: &str) {
        self.set_device(user_code, DeviceStatus::Approved);
    }

    /// Plays the user on another device: declines the device authorization with `user_code`.
    pub fn deny_device(&self, user_code: &str) {
        self.set_device(user_code, DeviceStatus::Denied);
    }

    fn set_device(&self, user_code: &str, status: DeviceStatus) {
        let mut state = self.state.lock().unwrap();
        let grant = state
            .device
            .values_mut()
            .find(|g| g.user_code == user_code)
            .unwrap_or_else(|| panic!("no device authorization with user code {user_code}"));
        grant.status = status;
    }

    /// Whether `access_token` is currently accepted by the homeserver.
    pub fn access_token_valid(&self, access_token: &str) -> bool {
        let state = self.state.lock().unwrap();
        state
            .access
            .get(access_token)
            .and_then(|s| state.sessions.get(s))
            .is_some_and(|s| !s.revoked)
    }

    /// Whether `refresh_token` would be accepted by the token endpoint.
    pub fn refresh_token_valid(&self, refresh_token: &str) -> bool {
        let state = self.state.lock().unwrap();
        match state.refresh.get(refresh_token) {
            Some((s, used)) => !used && state.sessions.get(s).is_some_and(|s| !s.revoked),
            None => false,
        }
    }

    /// Ends every session on the server side (an administrator signed the user out).
    pub fn revoke_all_sessions(&self) {
        let mut state = self.state.lock().unwrap();
        for s in state.sessions.values_mut() {
            s.revoked = true;
        }
    }

    /// Forgets every access token while keeping refresh tokens (they all "expired").
    pub fn expire_access_tokens(&self) {
        self.state.lock().unwrap().access.clear();
    }

    /// The `(token, token_type_hint)` pairs the revocation endpoint received.
    pub fn revocations(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().revocations.clone()
    }

    /// Every secret the server issued or received so far.
    pub fn secrets(&self) -> Vec<String> {
        self.state.lock().unwrap().secrets.clone()
    }

    /// How many distinct clients registered.
    pub fn registered_clients(&self) -> usize {
        self.state.lock().unwrap().clients.len()
    }

    /// Makes the server an OpenID Provider that signs with `key` (published), on `clock`.
    pub fn enable_oidc(&self, clock: &ManualClock, key: TestKey) {
        *self.provider.lock().unwrap() = Some(Provider {
            published: vec![key.clone()],
            signer: key,
            clock: clock.clone(),
            id_token_lifetime: 3600,
            sub: "248289761001".to_owned(),
            on_refresh: RefreshIdToken::Issue,
            userinfo_sub: None,
            jwks_cache_control: Some("public, max-age=86400".to_owned()),
            end_session: true,
            omit_login_id_token: false,
        });
    }

    /// Changes the provider.
    pub fn provider(&self, f: impl FnOnce(&mut Provider)) {
        f(self
            .provider
            .lock()
            .unwrap()
            .as_mut()
            .expect("enable_oidc first"));
    }

    /// Key rotation: publishes `key` next to the current keys and signs with it from now on.
    pub fn rotate_key(&self, key: TestKey) {
        self.provider(|p| {
            p.published.push(key.clone());
            p.signer = key;
        });
    }

    /// Holds every token request after processing it (tokens rotate) and before answering.
    pub fn pause_token_endpoint(&self) {
        *self.gate.paused.lock().unwrap() = true;
    }

    /// Waits until `n` token requests have arrived while paused.
    pub async fn token_requests_held(&self, n: usize) {
        let mut rx = self.gate.arrived.subscribe();
        rx.wait_for(|&c| c >= n).await.unwrap();
    }

    /// Answers the held token requests and stops holding new ones.
    pub fn resume_token_endpoint(&self) {
        *self.gate.paused.lock().unwrap() = false;
        self.gate.release.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn unrecognized() -> Response<Full<Bytes>> {
    json_response(
        404,
        &json!({"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}),
    )
}

fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

impl Shared {
    fn count(&self, endpoint: &str) {
        *self
            .counters
            .lock()
            .unwrap()
            .entry(endpoint.to_owned())
            .or_default() += 1;
    }

    fn url(&self, path: &str) -> String {
        self.base.join(path).unwrap().to_string()
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let path = parts.uri.path().to_owned();
        let bearer = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        if self.config.lock().unwrap().unavailable {
            self.count("unavailable");
            return Response::builder()
                .status(503)
                .header("content-type", "text/html")
                .body(Full::new(Bytes::from_static(
                    b"<h1>503 Service Unavailable</h1>",
                )))
                .unwrap();
        }
        match (parts.method.as_str(), path.as_str()) {
            ("GET", "/_matrix/client/v1/auth_metadata") => {
                self.count("auth_metadata");
                self.metadata()
            }
            ("GET", "/.well-known/openid-configuration") => {
                self.count("openid_configuration");
                if self.provider.lock().unwrap().is_some() {
                    self.metadata()
                } else {
                    json_response(404, &json!({"error": "not_found"}))
                }
            }
            ("GET", "/.well-known/oauth-authorization-server") => {
                self.count("oauth_authorization_server");
                json_response(404, &json!({"error": "not_found"}))
            }
            ("GET", "/oauth2/keys") => {
                self.count("jwks");
                self.jwks()
            }
            ("GET", "/oauth2/userinfo") => {
                self.count("userinfo");
                self.userinfo(bearer.as_deref())
            }
            ("GET", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata") => {
                self.count("unstable_auth_metadata");
                unrecognized()
            }
            ("GET", "/_matrix/client/unstable/org.matrix.msc2965/auth_issuer") => {
                self.count("auth_issuer");
                unrecognized()
            }
            ("GET", "/.well-known/matrix/client") => {
                self.count("well_known");
                json_response(404, &json!({}))
            }
            ("GET", "/_matrix/client/v3/login") => {
                self.count("login");
                match self.config.lock().unwrap().legacy_flows.clone() {
                    Some(flows) => json_response(200, &json!({ "flows": flows })),
                    None => unrecognized(),
                }
            }
            ("GET", "/_matrix/client/v3/account/whoami") => {
                self.count("whoami");
                self.whoami(bearer.as_deref())
            }
            ("POST", "/oauth2/register") => {
                self.count("register");
                self.register(&body)
            }
            ("POST", "/oauth2/token") => {
                self.count("token");
                let response = self.token(&form(&body));
                let paused = *self.gate.paused.lock().unwrap();
                if paused {
                    self.gate.arrived.send_modify(|c| *c += 1);
                    let _ = self.gate.release.acquire().await;
                }
                response
            }
            ("POST", "/oauth2/revoke") => {
                self.count("revoke");
                self.revoke(&form(&body))
            }
            ("POST", "/oauth2/device") => {
                self.count("device");
                self.device(&form(&body))
            }
            _ => {
                self.count("other");
                unrecognized()
            }
        }
    }

    fn metadata(&self) -> Response<Full<Bytes>> {
        let config = self.config.lock().unwrap().clone();
        if !config.oauth {
            return unrecognized();
        }
        let mut grants = vec!["authorization_code", "refresh_token"];
        let mut doc = json!({
            "issuer": self.base.as_str(),
            "authorization_endpoint": self.url("oauth2/auth"),
            "token_endpoint": self.url("oauth2/token"),
            "revocation_endpoint": self.url("oauth2/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["create"],
            "account_management_uri": self.url("account"),
            "account_management_actions_supported": [
                "org.matrix.profile", "org.matrix.devices_list", "org.matrix.device_view",
                "org.matrix.device_delete", "org.matrix.cross_signing_reset"
            ],
        });
        if config.registration {
            doc["registration_endpoint"] = json!(self.url("oauth2/register"));
        }
        if config.device_grant {
            grants.push("urn:ietf:params:oauth:grant-type:device_code");
            doc["device_authorization_endpoint"] = json!(self.url("oauth2/device"));
        }
        doc["grant_types_supported"] = json!(grants);
        if let Some(p) = &*self.provider.lock().unwrap() {
            doc["jwks_uri"] = json!(self.url("oauth2/keys"));
            doc["userinfo_endpoint"] = json!(self.url("oauth2/userinfo"));
            doc["id_token_signing_alg_values_supported"] = json!(["RS256", "ES256"]);
            doc["subject_types_supported"] = json!(["public"]);
            doc["scopes_supported"] = json!(["openid", "profile", "email"]);
            if p.end_session {
                doc["end_session_endpoint"] = json!(self.url("oauth2/logout"));
            }
        }
        let mut response = json_response(200, &doc);
        if let Some(cc) = config.metadata_cache_control {
            response
                .headers_mut()
                .insert("cache-control", cc.parse().unwrap());
        }
        response
    }

    fn register(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let Ok(Value::Object(metadata)) = serde_json::from_slice::<Value>(body) else {
            return oauth_error(400, "invalid_request", "not a JSON object");
        };
        let redirects = metadata.get("redirect_uris").and_then(Value::as_array);
        let grants: Vec<&str> = metadata
            .get("grant_types")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_else(|| vec!["authorization_code"]);
        if grants.contains(&"authorization_code") && redirects.is_none_or(|r| r.is_empty()) {
            return oauth_error(400, "invalid_redirect_uri", "missing redirect_uris");
        }
        if metadata
            .get("token_endpoint_auth_method")
            .and_then(Value::as_str)
            != Some("none")
        {
            return oauth_error(400, "invalid_client_metadata", "public clients only");
        }
        // serde_json's map is ordered by key, so identical metadata serializes identically.
        let canonical = Value::Object(metadata.clone()).to_string();
        let mut state = self.state.lock().unwrap();
        let client_id = match state.clients_by_metadata.get(&canonical) {
            Some(id) => id.clone(),
            None => {
                let id = format!("client_{}", state.next());
                state
                    .clients
                    .insert(id.clone(), Value::Object(metadata.clone()));
                state.clients_by_metadata.insert(canonical, id.clone());
                id
            }
        };
        let mut answer = metadata;
        answer.insert("client_id".to_owned(), json!(client_id));
        json_response(201, &Value::Object(answer))
    }

    fn token(&self, f: &HashMap<String, String>) -> Response<Full<Bytes>> {
        let config = self.config.lock().unwrap().clone();
        let grant = f.get("grant_type").map(String::as_str).unwrap_or("");
        self.count(&format!("token:{grant}"));
        if let Some(status) = config.token_failure {
            return oauth_error(status, "temporarily_unavailable", "try later");
        }
        let Some(client_id) = f.get("client_id") else {
            return oauth_error(401, "invalid_client", "client_id is required");
        };
        let mut state = self.state.lock().unwrap();
        if !state.clients.contains_key(client_id) {
            return oauth_error(401, "invalid_client", "unknown client");
        }
        match grant {
            "authorization_code" => {
                let Some(code) = f.get("code").and_then(|c| state.codes.remove(c)) else {
                    return oauth_error(400, "invalid_grant", "unknown or used code");
                };
                if &code.client_id != client_id {
                    return oauth_error(401, "unauthorized_client", "code of another client");
                }
                if f.get("redirect_uri") != Some(&code.redirect_uri) {
                    return oauth_error(400, "invalid_grant", "redirect_uri mismatch");
                }
                let verifier = f.get("code_verifier").map(String::as_str).unwrap_or("");
                state.secrets.push(verifier.to_owned());
                if s256(verifier) != code.challenge {
                    return oauth_error(400, "invalid_grant", "PKCE verification failed");
                }
                let session = state.new_session(client_id, &code.scope);
                let mut body = state.issue(session, &config);
                if code.scope.split(' ').any(|t| t == "openid") {
                    self.add_login_id_token(&mut state, session, code.nonce, &mut body);
                }
                json_response(200, &body)
            }
            "refresh_token" => {
                let rt = f.get("refresh_token").cloned().unwrap_or_default();
                let Some((session, used)) = state.refresh.get(&rt).copied() else {
                    return oauth_error(400, "invalid_grant", "unknown refresh token");
                };
                let Some(info) = state.sessions.get(&session).cloned() else {
                    return oauth_error(400, "invalid_grant", "no session");
                };
                if used || info.revoked {
                    return oauth_error(400, "invalid_grant", "refresh token already used");
                }
                if &info.client_id != client_id {
                    return oauth_error(401, "unauthorized_client", "another client's token");
                }
                state.refresh.insert(rt, (session, true));
                state.access.retain(|_, s| *s != session);
                let mut body = state.issue(session, &config);
                if info.scope.split(' ').any(|t| t == "openid") {
                    self.add_refresh_id_token(&mut state, &info, &mut body);
                }
                json_response(200, &body)
            }
            "urn:ietf:params:oauth:grant-type:device_code" => {
                let status = config.device_error_status;
                let dc = f.get("device_code").cloned().unwrap_or_default();
                let Some(grant) = state.device.get(&dc).cloned() else {
                    return oauth_error(400, "invalid_grant", "unknown device code");
                };
                drop(state);
                let scripted = self.config.lock().unwrap().device_poll_script.pop_front();
                if let Some(error) = scripted {
                    return oauth_error(status, error, "scripted");
                }
                let mut state = self.state.lock().unwrap();
                match grant.status {
                    DeviceStatus::Pending => {
                        oauth_error(status, "authorization_pending", "not yet")
                    }
                    DeviceStatus::Denied => oauth_error(status, "access_denied", "declined"),
                    DeviceStatus::Exchanged => {
                        oauth_error(400, "invalid_grant", "device code already used")
                    }
                    DeviceStatus::Approved => {
                        if let Some(g) = state.device.get_mut(&dc) {
                            g.status = DeviceStatus::Exchanged;
                        }
                        let session = state.new_session(&grant.client_id, &grant.scope);
                        json_response(200, &state.issue(session, &config))
                    }
                }
            }
            _ => oauth_error(400, "unsupported_grant_type", "unknown grant"),
        }
    }

    fn revoke(&self, f: &HashMap<String, String>) -> Response<Full<Bytes>> {
        let config = self.config.lock().unwrap().clone();
        if let Some(status) = config.revocation_failure {
            return oauth_error(status, "temporarily_unavailable", "try later");
        }
        let Some(client_id) = f.get("client_id") else {
            return oauth_error(401, "invalid_client", "client_id is required");
        };
        let Some(token) = f.get("token") else {
            return oauth_error(400, "invalid_request", "token is required");
        };
        let mut state = self.state.lock().unwrap();
        state
            .revocations
            .push((token.clone(), f.get("token_type_hint").cloned()));
        let session = state
            .access
            .get(token)
            .copied()
            .or_else(|| state.refresh.get(token).map(|(s, _)| *s));
        if let Some(session) = session {
            if let Some(info) = state.sessions.get_mut(&session) {
                if &info.client_id != client_id {
                    return oauth_error(401, "unauthorized_client", "another client's token");
                }
                info.revoked = true;
            }
        }
        Response::builder()
            .status(200)
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    fn device(&self, f: &HashMap<String, String>) -> Response<Full<Bytes>> {
        if !self.config.lock().unwrap().device_grant {
            return unrecognized();
        }
        let Some(client_id) = f.get("client_id") else {
            return oauth_error(401, "invalid_client", "client_id is required");
        };
        let interval = self.config.lock().unwrap().device_interval;
        let mut state = self.state.lock().unwrap();
        if !state.clients.contains_key(client_id) {
            return oauth_error(401, "invalid_client", "unknown client");
        }
        let n = state.next();
        let device_code = format!("dc_{n}_GmRhmhcxhwAzkoEqiMEg");
        let user_code = format!("WDJB-{n:04}");
        state.secrets.push(device_code.clone());
        state.device.insert(
            device_code.clone(),
            DeviceGrant {
                client_id: client_id.clone(),
                scope: f.get("scope").cloned().unwrap_or_default(),
                user_code: user_code.clone(),
                status: DeviceStatus::Pending,
            },
        );
        json_response(
            200,
            &json!({
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": self.url("link"),
                "verification_uri_complete": format!("{}?code={user_code}", self.url("link")),
                "expires_in": 1200,
                "interval": interval,
            }),
        )
    }

    /// Signs an ID token for `session` with the provider's current signer.
    fn id_token(
        &self,
        p: &Provider,
        client_id: &str,
        sub: &str,
        nonce: Option<&str>,
        auth_time: u64,
        access_token: &str,
    ) -> String {
        let now = p.clock.now().as_unix_seconds();
        let mut claims = json!({
            "iss": self.base.as_str(),
            "sub": sub,
            "aud": client_id,
            "iat": now,
            "exp": now + p.id_token_lifetime,
            "auth_time": auth_time,
            "at_hash": matrix_oidc::core::oidc::token_hash(
                matrix_oidc::core::oidc::HashAlgorithm::Sha256,
                access_token,
            ),
            "name": "Alice Liddell",
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        p.signer.sign(&claims)
    }

    fn add_login_id_token(
        &self,
        state: &mut State,
        session: u64,
        nonce: Option<String>,
        body: &mut Value,
    ) {
        let provider = self.provider.lock().unwrap();
        let Some(p) = &*provider else { return };
        let Some(info) = state.sessions.get_mut(&session) else {
            return;
        };
        if p.omit_login_id_token {
            return;
        }
        info.sub = p.sub.clone();
        info.nonce = nonce;
        info.auth_time = p.clock.now().as_unix_seconds();
        let at = body["access_token"].as_str().unwrap_or_default().to_owned();
        let token = self.id_token(
            p,
            &info.client_id,
            &p.sub,
            info.nonce.as_deref(),
            info.auth_time,
            &at,
        );
        state.secrets.push(token.clone());
        body["id_token"] = json!(token);
    }

    fn add_refresh_id_token(&self, state: &mut State, info: &SessionInfo, body: &mut Value) {
        let provider = self.provider.lock().unwrap();
        let Some(p) = &*provider else { return };
        let at = body["access_token"].as_str().unwrap_or_default().to_owned();
        let (sub, nonce) = match &p.on_refresh {
            RefreshIdToken::Omit => return,
            RefreshIdToken::Issue => (info.sub.clone(), None),
            RefreshIdToken::WithOriginalNonce => (info.sub.clone(), info.nonce.clone()),
            RefreshIdToken::WithNonce(n) => (info.sub.clone(), Some(n.clone())),
            RefreshIdToken::OtherSubject(s) => (s.clone(), None),
        };
        let token = self.id_token(
            p,
            &info.client_id,
            &sub,
            nonce.as_deref(),
            info.auth_time,
            &at,
        );
        state.secrets.push(token.clone());
        body["id_token"] = json!(token);
    }

    fn jwks(&self) -> Response<Full<Bytes>> {
        let provider = self.provider.lock().unwrap();
        let Some(p) = &*provider else {
            return json_response(404, &json!({"error": "not_found"}));
        };
        let keys: Vec<Value> = p.published.iter().map(TestKey::jwk).collect();
        let mut response = json_response(200, &json!({ "keys": keys }));
        if let Some(cc) = &p.jwks_cache_control {
            response
                .headers_mut()
                .insert("cache-control", cc.parse().unwrap());
        }
        response
    }

    fn userinfo(&self, bearer: Option<&str>) -> Response<Full<Bytes>> {
        let override_sub = self
            .provider
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|p| p.userinfo_sub.clone());
        let state = self.state.lock().unwrap();
        let session = bearer
            .and_then(|t| state.access.get(t))
            .and_then(|s| state.sessions.get(s))
            .filter(|s| !s.revoked && s.scope.split(' ').any(|t| t == "openid"));
        match session {
            Some(s) => json_response(
                200,
                &json!({
                    "sub": override_sub.unwrap_or_else(|| s.sub.clone()),
                    "name": "Alice Liddell",
                    "email": "alice@example.org",
                    "email_verified": true,
                }),
            ),
            None => Response::builder()
                .status(401)
                .header(
                    "www-authenticate",
                    r#"Bearer error="invalid_token", error_description="unknown token""#,
                )
                .body(Full::new(Bytes::new()))
                .unwrap(),
        }
    }

    fn whoami(&self, bearer: Option<&str>) -> Response<Full<Bytes>> {
        let config = self.config.lock().unwrap().clone();
        let state = self.state.lock().unwrap();
        let session = bearer
            .and_then(|t| state.access.get(t))
            .and_then(|s| state.sessions.get(s))
            .filter(|s| !s.revoked);
        match session {
            Some(s) => {
                let mut body = json!({ "user_id": config.user_id });
                if let Some(d) = &s.device_id {
                    body["device_id"] = json!(d);
                }
                json_response(200, &body)
            }
            None => json_response(
                401,
                &json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token", "soft_logout": false}),
            ),
        }
    }
}

/// A status code name for assertions in tests.
pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}
