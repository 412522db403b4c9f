//! `cargo xtask record`: real HTTP exchanges with the real servers, recorded as fixtures for the
//! core's tests (`crates/core/tests/recorded*.rs`).
//!
//! ```text
//! peers up (HTTP; flavour msc3861 = Synapse 1.156.0, flavour mas = the latest Synapse)
//!   discovery ── auth_metadata (stable, unstable), auth_issuer, /.well-known/matrix/client,
//!                an unknown endpoint, GET /login, the OP's openid-configuration and JWKS
//!   registration ── 201, and a 400 for a redirect URI with a fragment
//!   code flow ── authorization in the scripted browser (its callback URL, and that of a cancelled
//!                one, go into the manifest) ─▶ code exchange ─▶ whoami ─▶ userinfo
//!                ─▶ refresh ─▶ replay of the rotated-out refresh token (invalid_grant)
//!                ─▶ whoami and userinfo with the grant's revoked access token (401s)
//!   device grant ── authorization ─▶ poll (pending) ─▶ approve ─▶ poll (tokens) ─▶ poll again
//!                ─▶ revocation; a second one denied ─▶ poll (access_denied)
//! peers down (only what this run started)
//!   ─▶ crates/core/tests/fixtures/recorded/<flavour>/<name>.http + manifest.json, recorded/README.md
//! ```
//!
//! Every request the library would send is built by the core (discovery, registration, token,
//! revocation, device grant, whoami, login flows, JWKS), so each file is the server's answer to
//! exactly what the library sends.
//!
//! A file is a whole HTTP/1.1 response: status line, headers (lower-case names, as the transport
//! hands them over), blank line, body. Changes to what the server sent, all made before anything is
//! written: every token, device code and registration access token is replaced by a fake of the same
//! length and alphabet starting with `FAKE` (so is the authorization code in the manifest's
//! callback URL); an ID token keeps its header and claims and gets a fake
//! signature of the same length; `transfer-encoding` is dropped because the body is stored
//! de-chunked. `Date` and the other headers stay as sent: the tests take "now" from `Date`.
//!
//! `--check` records into `target/record-check/` instead and compares the shape of every answer —
//! status, content type, JSON key paths and value types — with the committed recordings, so that a
//! change in the real servers shows up as a list of differences and a non-zero exit.

use crate::browser::{Browser, DeviceOutcome};
use crate::peers::{self, Flavour, Mode, PeersOptions, PeersState};
use crate::util::{self, Result};
use base64::Engine as _;
use matrix_oidc_core::callback;
use matrix_oidc_core::device_grant::{
    DeviceAuthorizationRequest, DeviceGrantError, DevicePoller, PollAction, PollStatus,
};
use matrix_oidc_core::discovery::{
    DiscoveryMethod, DiscoveryOptions, IssuerDiscovery, IssuerDiscoveryOptions, MatrixDiscovery,
    Step,
};
use matrix_oidc_core::legacy::LoginFlowsRequest;
use matrix_oidc_core::metadata::AuthorizationServerMetadata;
use matrix_oidc_core::oidc::{JwksCache, userinfo_request};
use matrix_oidc_core::registration::{ClientMetadata, MetadataRules, Registration};
use matrix_oidc_core::{
    AuthorizationRequest, DeviceId, OsRandom, OutgoingRequest, RevocationRequest, Scope, Secret,
    Timestamp, TokenRequest, TokenSet, TokenTypeHint, UrlPolicy, WhoamiRequest,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};
use url::Url;

const USAGE: &str = "usage: cargo xtask record [--msc3861|--mas] [--check]

Brings up the real OP and Synapse (plain HTTP), performs discovery, registration, the code flow,
refresh, revocation, the device grant, whoami and more, and writes every answer to
crates/core/tests/fixtures/recorded/<flavour>/ (secrets replaced by fakes of the same shape).

  --msc3861   only Synapse 1.156.0 with msc3861 delegation
  --mas       only the latest Synapse with matrix_authentication_service
              (default: both)
  --check     record into target/record-check/ and compare the shape of every answer (status,
              content type, JSON keys and types) with the committed recordings; exit non-zero on
              any difference
";

/// The redirect URI the recorder registers; RFC 8252 lets a native client use any port on it.
const REGISTERED_REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// The redirect URI of the authorization request (nothing listens: the browser stops at it).
const REDIRECT_URI: &str = "http://127.0.0.1:48765/callback";
/// A registration the OP must refuse: redirect URIs must not have a fragment (RFC 6749 §3.1.2).
const BAD_REDIRECT_URI: &str = "http://127.0.0.1/callback#fragment";
/// An endpoint Synapse does not have.
const UNKNOWN_ENDPOINT: &str = "/_matrix/client/v1/org.example.no_such_endpoint";
/// The client the recorder registers as.
const CLIENT_URI: &str = "https://matrix-oidc.example/";

/// `crates/core/tests/fixtures/recorded`.
fn recorded_dir() -> PathBuf {
    util::workspace_root().join("crates/core/tests/fixtures/recorded")
}

/// `cargo xtask record ...`.
pub(crate) fn run(args: &[String]) -> Result {
    let mut check = false;
    let mut flavours = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--check" => check = true,
            "--msc3861" => flavours.push(Flavour::Msc3861),
            "--mas" => flavours.push(Flavour::Mas),
            "-h" | "--help" | "help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    if flavours.is_empty() {
        flavours = vec![Flavour::Msc3861, Flavour::Mas];
    }
    flavours.dedup();

    let started = Instant::now();
    let committed = recorded_dir();
    let out_root = if check {
        util::workspace_root().join("target/record-check")
    } else {
        committed.clone()
    };
    let mut differences = Vec::new();
    for flavour in flavours {
        let flavour_started = Instant::now();
        println!("\n==> record ({flavour})");
        let opts = PeersOptions::new(Mode::Http, flavour);
        let recording = peers::with_peers(&opts, |state| {
            let rt = peers::runtime()?;
            rt.block_on(Recorder::new(state)?.all())
        })?;
        let dir = out_root.join(flavour.as_str());
        recording.write(&dir)?;
        println!(
            "record ({flavour}): {} answers written to {} in {:.1} s",
            recording.exchanges.len(),
            dir.display(),
            flavour_started.elapsed().as_secs_f64()
        );
        if check {
            differences.extend(compare_dirs(&committed.join(flavour.as_str()), &dir)?);
        }
    }
    if check {
        if !differences.is_empty() {
            println!("\nthe real servers' answers changed shape:");
            for d in &differences {
                println!("  {d}");
            }
            return Err(format!(
                "{} shape differences between the committed recordings and a fresh one \
                 (run `cargo xtask record` to re-record, then fix what the tests say)",
                differences.len()
            ));
        }
        println!("record --check: the fresh answers have the committed shapes");
    } else {
        write_readme(&committed)?;
    }
    println!("record: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

// -------------------------------------------------------------------------------------------------
// Recording
// -------------------------------------------------------------------------------------------------

/// One recorded answer and what produced it.
struct Exchange {
    /// File name in the flavour's folder.
    file: &'static str,
    /// The request, with `{homeserver}` / `{issuer}` for the base URLs.
    request: String,
    /// What built the request.
    built_by: &'static str,
    /// The server that answered, with its version.
    server: String,
    /// The answer as HTTP/1.1 bytes, secrets not yet replaced.
    raw: Vec<u8>,
}

/// Everything one flavour's run produced, before secrets are replaced.
struct Recording {
    exchanges: Vec<Exchange>,
    /// (real value, fake value) pairs, applied to every file.
    fakes: Vec<(String, String)>,
    /// Values that must not appear in any file (the harness's own credentials).
    forbidden: Vec<String>,
    manifest: Map<String, Value>,
}

/// Drives the exchanges against one set of running peers.
struct Recorder<'a> {
    state: &'a PeersState,
    http: reqwest::Client,
    homeserver: Url,
    synapse: String,
    op: String,
    rng: OsRandom,
    rec: Recording,
    /// How many fakes of each kind were made (numbers them: FAKE_access_token_1, _2, ...).
    counters: Vec<(&'static str, u32)>,
}

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

/// `map_err` helper: prefixes an error with what was being done.
fn ctx<E: Display>(what: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

fn parse_url(s: &str) -> Result<Url> {
    Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))
}

/// The first request of a discovery machine.
fn first_request(step: Step) -> Result<OutgoingRequest> {
    match step {
        Step::Send(request) => Ok(request),
        Step::Done(_) => Err("a discovery finished before sending anything".to_owned()),
    }
}

impl<'a> Recorder<'a> {
    fn new(state: &'a PeersState) -> Result<Recorder<'a>> {
        let op_version = oidc_provider_version()?;
        let mut forbidden = vec![state.introspection_client.client_secret.clone()];
        forbidden.extend(state.synapse.admin_token.clone());
        forbidden.extend(state.synapse.mas_secret.clone());
        forbidden.extend(state.users.iter().map(|u| u.password.clone()));
        Ok(Recorder {
            state,
            http: peers::client(state.ca_pem.as_deref(), false)?,
            homeserver: parse_url(&state.synapse.url)?,
            synapse: format!("Synapse {}", state.synapse.version),
            op: format!("oidc-provider {op_version}"),
            rng: OsRandom,
            rec: Recording {
                exchanges: Vec::new(),
                fakes: Vec::new(),
                forbidden,
                manifest: Map::new(),
            },
            counters: Vec::new(),
        })
    }

    fn fact(&mut self, key: &str, value: Value) {
        self.rec.manifest.insert(key.to_owned(), value);
    }

    /// `url` with the base URL of the homeserver or the OP replaced by `{homeserver}` / `{issuer}`.
    fn template(&self, url: &str) -> String {
        for (base, name) in [
            (&self.state.synapse.url, "{homeserver}"),
            (&self.state.op.issuer, "{issuer}"),
        ] {
            if let Some(rest) = url.strip_prefix(base.as_str()) {
                if rest.is_empty() || rest.starts_with(['/', '?']) {
                    return format!("{name}{rest}");
                }
            }
        }
        url.to_owned()
    }

    fn server_of(&self, url: &str) -> String {
        if self.template(url).starts_with("{issuer}") {
            self.op.clone()
        } else {
            self.synapse.clone()
        }
    }

    /// Sends `request` and keeps the answer as `file` (when given).
    async fn send(
        &mut self,
        file: Option<&'static str>,
        note: &str,
        built_by: &'static str,
        request: OutgoingRequest,
    ) -> Result<http::Response<Vec<u8>>> {
        let url = request.url();
        let method = request.request.method().clone();
        let req = reqwest::Request::try_from(request.request)
            .map_err(|e| format!("{method} {url}: cannot convert the core's request: {e}"))?;
        let res = self
            .http
            .execute(req)
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let mut builder = http::Response::builder().status(res.status().as_u16());
        for (name, value) in res.headers() {
            // The body is stored de-chunked, so the framing header would lie.
            if name != http::header::TRANSFER_ENCODING {
                builder = builder.header(name, value);
            }
        }
        let body = res
            .bytes()
            .await
            .map_err(|e| format!("{method} {url}: reading the answer: {e}"))?
            .to_vec();
        let response = builder
            .body(body)
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        match file {
            Some(file) => {
                println!("  {file:<42} {status}  {method} {}", self.template(&url));
                let request = match note {
                    "" => format!("{method} {}", self.template(&url)),
                    note => format!("{method} {} ({note})", self.template(&url)),
                };
                self.rec.exchanges.push(Exchange {
                    file,
                    request,
                    built_by,
                    server: self.server_of(&url),
                    raw: to_http(&response),
                });
            }
            None => println!("  {:<42} {status}  {method} {}", "-", self.template(&url)),
        }
        Ok(response)
    }

    /// A fake for the secret `real`: same length, starts with `FAKE_<kind>_<n>_`, then `x`s — all
    /// in the base64url alphabet the real tokens use.
    fn fake(&mut self, kind: &'static str, real: &str) -> String {
        let n = match self.counters.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.counters.push((kind, 1));
                1
            }
        };
        let mut fake = format!("FAKE_{kind}_{n}_");
        while fake.len() < real.len() {
            fake.push('x');
        }
        fake.truncate(real.len());
        if !self.rec.fakes.iter().any(|(r, _)| r == real) {
            self.rec.fakes.push((real.to_owned(), fake.clone()));
        }
        fake
    }

    /// Registers fakes for the tokens of `tokens`. An ID token keeps header and claims and gets a
    /// fake signature of the same length.
    fn fake_tokens(&mut self, tokens: &TokenSet) -> Result {
        self.fake("access_token", tokens.access_token.expose());
        if let Some(rt) = &tokens.refresh_token {
            self.fake("refresh_token", rt.expose());
        }
        if let Some(id) = &tokens.id_token {
            let id = id.expose();
            let (signed, signature) = id
                .rsplit_once('.')
                .ok_or("the ID token is not a compact JWS")?;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let len = b64
                .decode(signature)
                .map_err(|e| format!("the ID token's signature is not base64url: {e}"))?
                .len();
            let text = b"FAKE SIGNATURE: cargo xtask record replaced the real one. ";
            let bytes: Vec<u8> = text.iter().copied().cycle().take(len).collect();
            let fake = format!("{signed}.{}", b64.encode(bytes));
            if !self.rec.fakes.iter().any(|(r, _)| r == id) {
                self.rec.fakes.push((id.to_owned(), fake));
            }
        }
        Ok(())
    }

    async fn all(mut self) -> Result<Recording> {
        let hs = self.homeserver.clone();
        let state = self.state;
        self.fact("flavour", json!(state.flavour.as_str()));
        self.fact("recorded_on", json!(today()));
        self.fact("homeserver", json!(state.synapse.url));
        self.fact("issuer", json!(state.op.issuer));
        self.fact("server_name", json!(state.synapse.server_name));
        self.fact(
            "servers",
            json!({ "synapse": state.synapse.version, "oidc_provider": self.op.trim_start_matches("oidc-provider ") }),
        );

        let metadata = self.discovery(&hs).await?;
        let client_id = self.registration(&metadata).await?;
        self.code_flow(&hs, &metadata, &client_id).await?;
        self.device_grant(&metadata, &client_id).await?;

        let exchanges: Vec<Value> = self
            .rec
            .exchanges
            .iter()
            .map(|e| {
                json!({
                    "file": e.file,
                    "request": e.request,
                    "built_by": e.built_by,
                    "server": e.server,
                })
            })
            .collect();
        self.fact("exchanges", Value::Array(exchanges));
        Ok(self.rec)
    }

    /// The Matrix discovery endpoints one by one, the OP's documents, and `GET /login`. Returns the
    /// metadata Synapse serves at the stable endpoint (what a Matrix client uses).
    async fn discovery(&mut self, hs: &Url) -> Result<AuthorizationServerMetadata> {
        let options = |method| {
            DiscoveryOptions::default()
                .with_url_policy(UrlPolicy::AllowInsecureLoopback)
                .with_methods([method])
        };
        const BY: &str = "core: MatrixDiscovery";

        let mut stable = MatrixDiscovery::new(hs, options(DiscoveryMethod::AuthMetadata))
            .map_err(ctx("discovery"))?;
        let request = first_request(stable.start().map_err(ctx("discovery"))?)?;
        let response = self
            .send(Some("auth_metadata.http"), "", BY, request)
            .await?;
        let metadata = match stable
            .handle_response(&response, now())
            .map_err(ctx("stable auth_metadata"))?
        {
            Step::Done(d) => d.metadata,
            Step::Send(r) => {
                return Err(format!(
                    "stable auth_metadata: discovery wants more ({})",
                    r.url()
                ));
            }
        };

        for (method, file) in [
            (
                DiscoveryMethod::UnstableAuthMetadata,
                "auth_metadata_unstable.http",
            ),
            (DiscoveryMethod::AuthIssuer, "auth_issuer.http"),
            (DiscoveryMethod::WellKnown, "well_known_client.http"),
        ] {
            let mut d = MatrixDiscovery::new(hs, options(method)).map_err(ctx("discovery"))?;
            let request = first_request(d.start().map_err(ctx("discovery"))?)?;
            self.send(Some(file), "", BY, request).await?;
        }

        let unknown = hs
            .join(UNKNOWN_ENDPOINT)
            .map_err(|e| format!("{UNKNOWN_ENDPOINT}: {e}"))?;
        let request = OutgoingRequest::get_json(&unknown).map_err(ctx("unknown endpoint"))?;
        self.send(
            Some("unrecognized.http"),
            "an endpoint Synapse does not have",
            "core: OutgoingRequest::get_json",
            request,
        )
        .await?;

        let login = LoginFlowsRequest::new(hs).map_err(ctx("login flows"))?;
        self.send(
            Some("login_flows.http"),
            "",
            "core: LoginFlowsRequest",
            login.request,
        )
        .await?;

        let issuer = metadata.issuer.clone();
        let mut d = IssuerDiscovery::new(
            &issuer,
            IssuerDiscoveryOptions::default().with_url_policy(UrlPolicy::AllowInsecureLoopback),
        )
        .map_err(ctx("issuer discovery"))?;
        let request = first_request(d.start().map_err(ctx("issuer discovery"))?)?;
        let response = self
            .send(
                Some("openid_configuration.http"),
                "",
                "core: IssuerDiscovery",
                request,
            )
            .await?;
        if let Step::Send(r) = d
            .handle_response(&response, now())
            .map_err(ctx("openid-configuration"))?
        {
            return Err(format!(
                "the OP's openid-configuration was not accepted; discovery wants {}",
                r.url()
            ));
        }

        let jwks = JwksCache::from_metadata(&metadata).map_err(ctx("JWKS"))?;
        let request = jwks.fetch_request().map_err(ctx("JWKS"))?;
        self.send(Some("jwks.http"), "", "core: JwksCache", request)
            .await?;
        Ok(metadata)
    }

    /// A registration the OP accepts, and one it refuses. Returns the client ID.
    async fn registration(&mut self, metadata: &AuthorizationServerMetadata) -> Result<String> {
        let client = ClientMetadata::native(parse_url(CLIENT_URI)?)
            .with_client_name("matrix-oidc recorder")
            .with_redirect_uri(parse_url(REGISTERED_REDIRECT_URI)?)
            .with_device_code_grant();
        let registration = Registration::new(metadata, &client, MetadataRules::MatrixSpec)
            .map_err(ctx("registration"))?;
        let request = registration.request().map_err(ctx("registration"))?;
        let response = self
            .send(
                Some("registration.http"),
                "native client, loopback redirect URI, device grant",
                "core: Registration",
                request,
            )
            .await?;
        let registered = registration
            .handle_response(&response)
            .map_err(ctx("registration"))?;
        if let Some(token) = &registered.registration_access_token {
            self.fake("registration_access_token", token.expose());
        }
        self.fact("client_id", json!(registered.client_id));
        self.fact("registered_redirect_uri", json!(REGISTERED_REDIRECT_URI));

        // The core refuses this redirect URI itself; Unchecked sends it as it is.
        let bad = ClientMetadata::native(parse_url(CLIENT_URI)?)
            .with_client_name("matrix-oidc recorder")
            .with_redirect_uri(parse_url(BAD_REDIRECT_URI)?);
        let registration = Registration::new(metadata, &bad, MetadataRules::Unchecked)
            .map_err(ctx("registration"))?;
        let request = registration.request().map_err(ctx("registration"))?;
        let response = self
            .send(
                Some("registration_invalid_redirect_uri.http"),
                "redirect URI with a fragment",
                "core: Registration (MetadataRules::Unchecked)",
                request,
            )
            .await?;
        if response.status().is_success() {
            return Err("the OP registered a redirect URI with a fragment".to_owned());
        }
        self.fact("bad_redirect_uri", json!(BAD_REDIRECT_URI));
        Ok(registered.client_id)
    }

    /// Authorization in the browser, code exchange, whoami, refresh, replay of the rotated-out
    /// refresh token, whoami with the then revoked access token.
    async fn code_flow(
        &mut self,
        hs: &Url,
        metadata: &AuthorizationServerMetadata,
        client_id: &str,
    ) -> Result {
        let device = DeviceId::generate(&mut self.rng).map_err(ctx("device ID"))?;
        let scope = Scope::matrix(device.clone())
            .openid()
            .build()
            .map_err(ctx("scope"))?;
        let start = AuthorizationRequest::new(
            metadata,
            client_id.to_owned(),
            parse_url(REDIRECT_URI)?,
            scope.clone(),
        )
        .with_nonce()
        .homeserver(hs.clone())
        .build(now(), &mut self.rng)
        .map_err(ctx("authorization request"))?;
        let pending = start.pending;
        let alice = self.state.user("alice")?;
        let redirect = Browser::for_peers(self.state)
            .map_err(ctx("browser"))?
            .log_in(&start.url, &alice.username, &alice.password)
            .await
            .map_err(ctx("browser"))?;
        let code = callback::complete(redirect.as_str(), &pending).map_err(ctx("callback"))?;
        self.fake("authorization_code", code.secret().expose());

        // A second authorization, cancelled at the login page: the error callback.
        let cancelled = AuthorizationRequest::new(
            metadata,
            client_id.to_owned(),
            parse_url(REDIRECT_URI)?,
            scope.clone(),
        )
        .build(now(), &mut self.rng)
        .map_err(ctx("authorization request"))?;
        let cancelled_redirect = Browser::for_peers(self.state)
            .map_err(ctx("browser"))?
            .abort(&cancelled.url)
            .await
            .map_err(ctx("browser"))?;
        self.fact(
            "code_flow",
            json!({
                "device_id": device.as_str(),
                "scope": scope.to_string(),
                "redirect_uri": REDIRECT_URI,
                "nonce": pending.nonce.as_ref().map(Secret::expose),
                "state": pending.state,
                "user_id": alice.user_id,
                // Where the OP's 303 sent the browser (its `Location`), code replaced by a fake.
                "callback": redirect.as_str(),
                "cancelled": {
                    "state": cancelled.pending.state,
                    "callback": cancelled_redirect.as_str(),
                },
            }),
        );

        let exchange =
            TokenRequest::authorization_code(&pending, &code).map_err(ctx("code exchange"))?;
        let sent_at = now();
        let response = self
            .send(
                Some("token.http"),
                "grant_type=authorization_code",
                "core: TokenRequest::authorization_code",
                exchange.request.clone(),
            )
            .await?;
        let tokens = exchange
            .parse(&response, sent_at)
            .map_err(ctx("code exchange"))?;
        self.fake_tokens(&tokens)?;

        let whoami = WhoamiRequest::new(hs, &tokens.access_token).map_err(ctx("whoami"))?;
        let response = self
            .send(
                Some("whoami.http"),
                "",
                "core: WhoamiRequest",
                whoami.request.clone(),
            )
            .await?;
        let me = whoami.parse(&response).map_err(ctx("whoami"))?;
        me.check_device(&device).map_err(ctx("whoami"))?;

        let userinfo_endpoint = metadata
            .userinfo_endpoint
            .clone()
            .ok_or("the metadata has no userinfo_endpoint")?;
        let request = userinfo_request(&userinfo_endpoint, &tokens.access_token, false)
            .map_err(ctx("userinfo"))?;
        self.send(
            Some("userinfo.http"),
            "",
            "core: oidc::userinfo_request",
            request,
        )
        .await?;

        let refresh = TokenRequest::refresh(&metadata.token_endpoint, client_id, &tokens)
            .map_err(ctx("refresh"))?;
        let sent_at = now();
        let response = self
            .send(
                Some("token_refresh.http"),
                "grant_type=refresh_token",
                "core: TokenRequest::refresh",
                refresh.request.clone(),
            )
            .await?;
        let refreshed = refresh.parse(&response, sent_at).map_err(ctx("refresh"))?;
        self.fake_tokens(&refreshed)?;
        if refreshed.refresh_token == tokens.refresh_token {
            return Err("the refresh token did not rotate".to_owned());
        }

        // Replaying the rotated-out refresh token is refused, and oidc-provider revokes the grant.
        let replay = TokenRequest::refresh(&metadata.token_endpoint, client_id, &tokens)
            .map_err(ctx("refresh replay"))?;
        self.send(
            Some("token_refresh_invalid_grant.http"),
            "grant_type=refresh_token with the rotated-out refresh token",
            "core: TokenRequest::refresh",
            replay.request,
        )
        .await?;

        // Synapse has not seen this access token yet, so it asks the OP, which says inactive.
        let whoami = WhoamiRequest::new(hs, &refreshed.access_token).map_err(ctx("whoami"))?;
        self.send(
            Some("whoami_unknown_token.http"),
            "access token of the revoked grant",
            "core: WhoamiRequest",
            whoami.request,
        )
        .await?;
        let request = userinfo_request(&userinfo_endpoint, &refreshed.access_token, false)
            .map_err(ctx("userinfo"))?;
        self.send(
            Some("userinfo_invalid_token.http"),
            "access token of the revoked grant",
            "core: oidc::userinfo_request",
            request,
        )
        .await?;
        Ok(())
    }

    /// The device grant: pending, approved, consumed, revoked; a second one denied.
    async fn device_grant(
        &mut self,
        metadata: &AuthorizationServerMetadata,
        client_id: &str,
    ) -> Result {
        let device = DeviceId::generate(&mut self.rng).map_err(ctx("device ID"))?;
        let scope = Scope::matrix(device.clone())
            .build()
            .map_err(ctx("scope"))?;
        let request = DeviceAuthorizationRequest::new(metadata, client_id, scope.clone())
            .map_err(ctx("device authorization"))?;
        let t0 = now();
        let response = self
            .send(
                Some("device_authorization.http"),
                "",
                "core: DeviceAuthorizationRequest",
                request.request.clone(),
            )
            .await?;
        let authorization = request
            .parse(&response, t0)
            .map_err(ctx("device authorization"))?;
        self.fake("device_code", authorization.device_code.expose());
        self.fact(
            "device_grant",
            json!({ "device_id": device.as_str(), "scope": scope.to_string() }),
        );
        let device_code = authorization.device_code.clone();
        let verification_uri = authorization.verification_uri.clone();
        let user_code = authorization.user_code.clone();

        // The poller is sans-IO: a virtual clock at its due times saves waiting the interval.
        let mut poller = authorization.poller(t0);
        match self
            .poll(
                &mut poller,
                "device_token_pending.http",
                "grant_type=device_code before the user decided",
            )
            .await?
        {
            Ok(PollStatus::Pending { .. }) => {}
            other => return Err(format!("first device poll: {other:?}")),
        }
        let alice = self.state.user("alice")?;
        let outcome = Browser::for_peers(self.state)
            .map_err(ctx("browser"))?
            .approve_device(
                &verification_uri,
                Some(&user_code),
                &alice.username,
                &alice.password,
            )
            .await
            .map_err(ctx("browser"))?;
        if outcome != DeviceOutcome::Approved {
            return Err(format!("device verification ended {outcome:?}"));
        }
        let tokens = match self
            .poll(
                &mut poller,
                "device_token.http",
                "grant_type=device_code after approval",
            )
            .await?
        {
            Ok(PollStatus::Authorized(tokens)) => tokens,
            other => return Err(format!("device poll after approval: {other:?}")),
        };
        self.fake_tokens(&tokens)?;

        let again = TokenRequest::device_code(
            &metadata.token_endpoint,
            client_id,
            &device_code,
            Some(&scope),
        )
        .map_err(ctx("device poll"))?;
        self.send(
            Some("device_token_consumed.http"),
            "grant_type=device_code with a device code already exchanged",
            "core: TokenRequest::device_code",
            again.request,
        )
        .await?;

        let refresh_token = tokens
            .refresh_token
            .clone()
            .ok_or("the device grant gave no refresh token")?;
        let revoke = RevocationRequest::new(
            metadata,
            client_id,
            &refresh_token,
            Some(TokenTypeHint::RefreshToken),
        )
        .map_err(ctx("revocation"))?;
        let response = self
            .send(
                Some("revocation.http"),
                "token_type_hint=refresh_token",
                "core: RevocationRequest",
                revoke.request.clone(),
            )
            .await?;
        revoke.parse(&response).map_err(ctx("revocation"))?;

        // A second device grant, denied in the browser.
        let device = DeviceId::generate(&mut self.rng).map_err(ctx("device ID"))?;
        let scope = Scope::matrix(device).build().map_err(ctx("scope"))?;
        let request = DeviceAuthorizationRequest::new(metadata, client_id, scope)
            .map_err(ctx("device authorization"))?;
        let t0 = now();
        let response = self
            .send(
                None,
                "",
                "core: DeviceAuthorizationRequest",
                request.request.clone(),
            )
            .await?;
        let authorization = request
            .parse(&response, t0)
            .map_err(ctx("device authorization"))?;
        self.fake("device_code", authorization.device_code.expose());
        // The person scans the QR code of the complete URI when there is one.
        let (uri, code) = match &authorization.verification_uri_complete {
            Some(complete) => (complete.clone(), None),
            None => (
                authorization.verification_uri.clone(),
                Some(authorization.user_code.clone()),
            ),
        };
        let outcome = Browser::for_peers(self.state)
            .map_err(ctx("browser"))?
            .deny_device(&uri, code.as_deref())
            .await
            .map_err(ctx("browser"))?;
        if outcome != DeviceOutcome::Denied {
            return Err(format!("device denial ended {outcome:?}"));
        }
        let mut poller = authorization.poller(t0);
        match self
            .poll(
                &mut poller,
                "device_token_access_denied.http",
                "grant_type=device_code after the user denied",
            )
            .await?
        {
            Err(e) if e.is_denied() => {}
            other => return Err(format!("device poll after denial: {other:?}")),
        }
        Ok(())
    }

    /// One poll of `poller` at its due time (a virtual clock), recorded as `file`.
    async fn poll(
        &mut self,
        poller: &mut DevicePoller,
        file: &'static str,
        note: &str,
    ) -> Result<std::result::Result<PollStatus, DeviceGrantError>> {
        let at = poller.next_poll_at().unwrap_or_else(now);
        let request = match poller.poll(at).map_err(ctx("device poll"))? {
            PollAction::Send(r) => r,
            other => return Err(format!("the device poller did not send: {other:?}")),
        };
        let response = self
            .send(Some(file), note, "core: DevicePoller", request)
            .await?;
        Ok(poller.handle_response(&response, at))
    }
}

/// The installed oidc-provider's version, from its package.json.
fn oidc_provider_version() -> Result<String> {
    let path = peers::peers_dir().join("op/node_modules/oidc-provider/package.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    v["version"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} has no version", path.display()))
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

// -------------------------------------------------------------------------------------------------
// Writing
// -------------------------------------------------------------------------------------------------

/// A response as HTTP/1.1 bytes: status line, headers, blank line, body.
fn to_http(response: &http::Response<Vec<u8>>) -> Vec<u8> {
    let status = response.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in response.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(response.body());
    out
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

impl Recording {
    /// Writes the files and the manifest into `dir`, replacing what a previous run left there.
    fn write(&self, dir: &Path) -> Result {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for entry in
            std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        {
            let path = entry
                .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
                .path();
            if path.extension().is_some_and(|e| e == "http") {
                std::fs::remove_file(&path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            }
        }
        // Longest first: an ID token never contains another token, but be safe about prefixes.
        let mut fakes: Vec<&(String, String)> = self.fakes.iter().collect();
        fakes.sort_by_key(|(real, _)| std::cmp::Reverse(real.len()));
        for e in &self.exchanges {
            let mut bytes = e.raw.clone();
            for (real, fake) in &fakes {
                bytes = replace_all(&bytes, real.as_bytes(), fake.as_bytes());
            }
            let leaked = self
                .fakes
                .iter()
                .map(|(real, _)| real)
                .chain(&self.forbidden)
                .any(|s| contains(&bytes, s.as_bytes()));
            if leaked {
                return Err(format!("{}: a secret survived the replacement", e.file));
            }
            let path = dir.join(e.file);
            std::fs::write(&path, bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let mut manifest =
            serde_json::to_string_pretty(&self.manifest).map_err(|e| format!("manifest: {e}"))?;
        manifest.push('\n');
        let mut manifest = manifest.into_bytes();
        for (real, fake) in &fakes {
            manifest = replace_all(&manifest, real.as_bytes(), fake.as_bytes());
        }
        if self
            .fakes
            .iter()
            .map(|(real, _)| real)
            .chain(&self.forbidden)
            .any(|s| contains(&manifest, s.as_bytes()))
        {
            return Err("manifest.json: a secret survived the replacement".to_owned());
        }
        let path = dir.join("manifest.json");
        std::fs::write(&path, manifest).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// `recorded/README.md`: a table of every flavour's recordings, from their manifests.
fn write_readme(root: &Path) -> Result {
    let mut text = String::from(
        "# Recorded exchanges

Answers of the real servers, recorded by `cargo xtask record` (source: `xtask/src/record.rs`)
against the harness peers (`xtask/peers/README.md`) on 127.0.0.1 over plain HTTP, and replayed
through the core by `crates/core/tests/recorded.rs`. Each `.http` file is the whole HTTP/1.1
response as the transport handed it over (header names lower-case). `manifest.json` holds what the
tests rebuild their expectations from: the base URLs (the ports are random), the client ID, the
device IDs and scopes, the nonce and state of the authorization, and the authorization callback
URLs (the `Location` the OP redirected the browser to, after a login and after a cancellation).
Requests built by `core: ...` are exactly what matrix-oidc-core sends.

What differs from the wire, all changed before anything was written:

- every access, refresh and registration access token, device code and authorization code is a
  fake of the same length and alphabet starting with `FAKE_`;
- ID tokens keep their real header and claims but carry a fake signature of the same length
  (`FAKE SIGNATURE: ...` in base64url): their claims are tested, their signature cannot be;
- `transfer-encoding` is dropped (bodies are stored de-chunked).

`Date` and every other header are as sent (the tests take \"now\" from `Date`). Synapse's `server`
header names the git branch and commit of the checkout it ran in (`b=...`): Synapse adds them when
it runs inside a git work tree, as the harness's does.

Not recordable: `expired_token` (the OP's device codes live 600 s and the harness has no switch to
shorten them) and `slow_down` (oidc-provider never sends it; the harness only fakes it). Synapse
answers `GET /login` with 404 `M_UNRECOGNIZED` once authentication is delegated, so there are no
real login flows (`oauth_aware_preferred`) to record.

Re-record with `cargo xtask record` (both flavours, 5–15 s each once the servers are
installed); `cargo xtask record --check` records afresh into `target/record-check/` and compares
the shape of every answer (status, content type, JSON key paths and types) with these files.
",
    );
    for flavour in [Flavour::Msc3861, Flavour::Mas] {
        let path = root.join(flavour.as_str()).join("manifest.json");
        let Ok(raw) = std::fs::read_to_string(&path) else {
            continue;
        };
        let m: Value =
            serde_json::from_str(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
        let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
        text.push_str(&format!(
            "\n## `{}/` — Synapse {} ({}), oidc-provider {}, recorded {}\n\n\
             homeserver `{}`, issuer `{}`, server name `{}`\n\n\
             | file | request | built by | server |\n|---|---|---|---|\n",
            flavour.as_str(),
            s(&m["servers"]["synapse"]),
            match flavour {
                Flavour::Msc3861 => "experimental_features.msc3861",
                Flavour::Mas => "matrix_authentication_service, the OP playing MAS",
            },
            s(&m["servers"]["oidc_provider"]),
            s(&m["recorded_on"]),
            s(&m["homeserver"]),
            s(&m["issuer"]),
            s(&m["server_name"]),
        ));
        for e in m["exchanges"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            text.push_str(&format!(
                "| `{}` | `{}` | {} | {} |\n",
                s(&e["file"]),
                s(&e["request"]).replace('|', "\\|"),
                s(&e["built_by"]),
                s(&e["server"]),
            ));
        }
    }
    let path = root.join("README.md");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// -------------------------------------------------------------------------------------------------
// Shape comparison (--check)
// -------------------------------------------------------------------------------------------------

/// Status, content type and the body's JSON key paths with value types.
#[derive(Debug, PartialEq)]
struct Shape {
    status: u16,
    content_type: Option<String>,
    body: BTreeSet<String>,
}

fn read_shape(path: &Path) -> Result<Shape> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{}: no blank line after the headers", path.display()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{}: no status line", path.display()))?;
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_owned());
    let mut shape = BTreeSet::new();
    if body.is_empty() {
        shape.insert("(empty body)".to_owned());
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => walk(&v, "$", &mut shape),
            Err(_) => {
                shape.insert("(body is not JSON)".to_owned());
            }
        }
    }
    Ok(Shape {
        status,
        content_type,
        body: shape,
    })
}

fn walk(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(items) => {
            for item in items {
                walk(item, &format!("{path}[]"), out);
            }
            "array"
        }
        Value::Object(map) => {
            for (k, item) in map {
                walk(item, &format!("{path}.{k}"), out);
            }
            "object"
        }
    };
    out.insert(format!("{path}: {kind}"));
}

fn http_files(dir: &Path) -> Result<BTreeSet<String>> {
    let mut files = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(files);
    };
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "http") {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                files.insert(name.to_owned());
            }
        }
    }
    Ok(files)
}

/// Differences in shape between the committed recordings in `committed` and fresh ones in `fresh`.
fn compare_dirs(committed: &Path, fresh: &Path) -> Result<Vec<String>> {
    let old = http_files(committed)?;
    let new = http_files(fresh)?;
    let flavour = fresh
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut diffs = Vec::new();
    for f in old.difference(&new) {
        diffs.push(format!("{flavour}/{f}: committed, but not recorded now"));
    }
    for f in new.difference(&old) {
        diffs.push(format!("{flavour}/{f}: recorded now, but not committed"));
    }
    for f in old.intersection(&new) {
        let a = read_shape(&committed.join(f))?;
        let b = read_shape(&fresh.join(f))?;
        let name = format!("{flavour}/{f}");
        if a.status != b.status {
            diffs.push(format!("{name}: status {} → {}", a.status, b.status));
        }
        if a.content_type != b.content_type {
            diffs.push(format!(
                "{name}: content-type {:?} → {:?}",
                a.content_type, b.content_type
            ));
        }
        for gone in a.body.difference(&b.body) {
            diffs.push(format!("{name}: no longer has {gone}"));
        }
        for added in b.body.difference(&a.body) {
            diffs.push(format!("{name}: now has {added}"));
        }
    }
    Ok(diffs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn replacement_keeps_everything_else() {
        assert_eq!(replace_all(b"a tok b tok", b"tok", b"FAK"), b"a FAK b FAK");
        assert!(contains(b"xx secret yy", b"secret"));
        assert!(!contains(b"xx", b""));
    }

    #[test]
    fn shapes_list_key_paths_and_types() {
        let mut out = BTreeSet::new();
        walk(
            &json!({"a": [{"b": 1}], "c": "x", "d": null}),
            "$",
            &mut out,
        );
        let got: Vec<&str> = out.iter().map(String::as_str).collect();
        assert_eq!(
            got,
            [
                "$.a: array",
                "$.a[].b: number",
                "$.a[]: object",
                "$.c: string",
                "$.d: null",
                "$: object",
            ]
        );
    }
}
