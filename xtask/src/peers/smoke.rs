//! `cargo xtask peers smoke`: a raw-protocol end-to-end check of the harness, with plain HTTP calls
//! and none of the project's crates. It proves the peers work as a Matrix client will use them:
//! discovery through Synapse, registration, the code flow with PKCE through the scripted browser,
//! whoami at Synapse, refresh with rotation, revocation, the device grant, sign-up, denial, and
//! every misbehaviour switch. The conformance suite proper uses the project's API instead.

use super::{
    IssMisbehaviour, OpControl, PeersState, Switch, TestUser, client, random_string, runtime,
};
use crate::browser::{Browser, BrowserError, DeviceOutcome};
use crate::util::Result;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Instant;
use url::Url;

const STABLE_API: &str = "urn:matrix:client:api:*";
const STABLE_DEVICE: &str = "urn:matrix:client:device:";
const UNSTABLE_API: &str = "urn:matrix:org.matrix.msc2967.client:api:*";
const UNSTABLE_DEVICE: &str = "urn:matrix:org.matrix.msc2967.client:device:";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Runs the smoke check against running peers.
pub(crate) fn run(state: &PeersState) -> Result {
    let started = Instant::now();
    let instance = super::PeersOptions::new(state.mode, state.flavour);
    println!(
        "\n==> smoke ({instance}: Synapse {})",
        state.synapse.version
    );
    let rt = runtime()?;
    let mut smoke = Smoke::new(state)?;
    let result = rt.block_on(smoke.all());
    // Leave a reused OP as it was found, whatever happened.
    let reset = rt.block_on(smoke.control.reset());
    result?;
    reset?;
    println!(
        "smoke ({instance}): {} checks passed in {:.1} s",
        smoke.passed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Smoke<'a> {
    state: &'a PeersState,
    http: reqwest::Client,
    control: OpControl,
    alice: &'a TestUser,
    passed: usize,
    step_started: Instant,
}

/// What the discovery step learns.
struct Endpoints {
    authorization: Url,
    token: String,
    registration: String,
    revocation: String,
    introspection: String,
    device: String,
}

/// An authorization request in flight.
struct Pending {
    url: Url,
    state: String,
    verifier: String,
    redirect_uri: String,
}

/// How a device grant went.
struct DeviceRun {
    tokens: Option<Tokens>,
    /// `interval` in the device authorization response.
    interval: Option<u64>,
    /// Polls answered `slow_down`.
    slow_downs: u32,
}

struct Tokens {
    access: String,
    refresh: String,
    scope: String,
    expires_in: Option<u64>,
}

impl<'a> Smoke<'a> {
    fn new(state: &'a PeersState) -> Result<Smoke<'a>> {
        Ok(Smoke {
            state,
            http: client(state.ca_pem.as_deref(), false)?,
            control: OpControl::new(state)?,
            alice: state.user("alice")?,
            passed: 0,
            step_started: Instant::now(),
        })
    }

    fn begin(&mut self) {
        self.step_started = Instant::now();
    }

    fn pass(&mut self, what: &str) {
        self.passed += 1;
        println!(
            "  ok  {what} ({} ms)",
            self.step_started.elapsed().as_millis()
        );
    }

    async fn all(&mut self) -> Result {
        self.begin();
        let ep = self.discover().await?;
        self.pass("discovery through Synapse: auth_metadata names the OP with S256, registration, device grant, prompt=create");

        self.begin();
        let client_id = self.register(&ep).await?;
        self.pass("dynamic registration of a native client with a loopback redirect URI");

        // Authorization code flow with PKCE and stable scopes.
        self.begin();
        let device_id = random_string(10)?;
        let pending = self.authorization(&ep, &client_id, &device_id, false, &[])?;
        let browser = self.browser()?;
        let redirect = browser
            .log_in(&pending.url, &self.alice.username, &self.alice.password)
            .await
            .map_err(|e| e.to_string())?;
        let code = self.callback_code(&pending, &redirect, false)?;
        self.pass(
            "authorization through the scripted browser: code, state and iss in the callback",
        );

        self.begin();
        let tokens = self.exchange(&ep, &client_id, &pending, &code).await?;
        expect_scope(&tokens.scope, &format!("{STABLE_DEVICE}{device_id}"))?;
        expect_scope(&tokens.scope, STABLE_API)?;
        self.pass("code exchange: tokens whose granted scope holds the API and device scopes");

        self.begin();
        self.whoami(&tokens.access, &self.alice.user_id, &device_id)
            .await?;
        self.pass("whoami at Synapse: alice and the generated device ID");

        self.begin();
        let refreshed = self.refresh(&ep, &client_id, &tokens.refresh).await?;
        if refreshed.refresh == tokens.refresh {
            return Err("refresh did not rotate the refresh token".to_owned());
        }
        self.whoami(&refreshed.access, &self.alice.user_id, &device_id)
            .await?;
        self.pass("refresh: a new refresh token, and the new access token works at Synapse");

        self.begin();
        self.expect_grant_error(
            &ep,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &tokens.refresh),
                ("client_id", &client_id),
            ],
            "invalid_grant",
        )
        .await?;
        if self.introspect(&ep, &refreshed.access).await? {
            return Err(
                "the access token of a grant whose rotated-out refresh token was replayed is still active"
                    .to_owned(),
            );
        }
        self.pass("rotation: the old refresh token is refused, and the replay revoked the grant");

        // Device authorization grant, then revocation of its tokens.
        self.begin();
        let device2 = random_string(10)?;
        let device_tokens = self
            .device_grant(&ep, &client_id, &device2, true)
            .await?
            .tokens
            .ok_or("the approved device grant gave no tokens")?;
        expect_scope(&device_tokens.scope, &format!("{STABLE_DEVICE}{device2}"))?;
        self.whoami(&device_tokens.access, &self.alice.user_id, &device2)
            .await?;
        self.pass("device authorization grant approved in the browser; whoami at Synapse");

        self.begin();
        for token in [&device_tokens.access, &device_tokens.refresh] {
            if !self.introspect(&ep, token).await? {
                return Err("a token is inactive before revocation".to_owned());
            }
        }
        // oidc-provider revokes every token of the grant when one is revoked (RFC 7009 allows it);
        // revoking the refresh token afterwards still answers 200.
        for (token, hint) in [
            (&device_tokens.access, "access_token"),
            (&device_tokens.refresh, "refresh_token"),
        ] {
            self.revoke(&ep, &client_id, token, hint).await?;
            if self.introspect(&ep, token).await? {
                return Err(format!("the {hint} is still active after revocation"));
            }
        }
        self.pass("revocation of both tokens: introspection says inactive");

        self.begin();
        if self
            .device_grant(&ep, &client_id, &random_string(10)?, false)
            .await?
            .tokens
            .is_some()
        {
            return Err("a denied device grant gave tokens".to_owned());
        }
        self.pass("device authorization denied in the browser: polling gets access_denied");

        // Sign-up with prompt=create and the unstable scopes.
        self.begin();
        let username = format!("smoke-{}", random_string(8)?.to_ascii_lowercase());
        let device3 = random_string(10)?;
        let pending =
            self.authorization(&ep, &client_id, &device3, true, &[("prompt", "create")])?;
        let redirect = self
            .browser()?
            .sign_up(&pending.url, &username, "smoke-password-1")
            .await
            .map_err(|e| e.to_string())?;
        let code = self.callback_code(&pending, &redirect, false)?;
        let tokens = self.exchange(&ep, &client_id, &pending, &code).await?;
        expect_scope(&tokens.scope, &format!("{UNSTABLE_DEVICE}{device3}"))?;
        expect_scope(&tokens.scope, UNSTABLE_API)?;
        let user_id = format!("@{username}:{}", self.state.synapse.server_name);
        self.whoami(&tokens.access, &user_id, &device3).await?;
        self.pass("prompt=create signs up a new user (unstable scopes); whoami at Synapse");

        self.begin();
        let pending = self.authorization(
            &ep,
            &client_id,
            &random_string(10)?,
            false,
            &[("response_mode", "fragment")],
        )?;
        let redirect = self
            .browser()?
            .abort(&pending.url)
            .await
            .map_err(|e| e.to_string())?;
        let params = self.callback_params(&pending, &redirect, true)?;
        expect_param(&params, "error", Some("access_denied"))?;
        expect_param(&params, "iss", Some(&self.state.op.issuer))?;
        let pending = self.authorization(&ep, &client_id, &random_string(10)?, false, &[])?;
        let redirect = self
            .browser()?
            .log_in_and_deny(&pending.url, &self.alice.username, &self.alice.password)
            .await
            .map_err(|e| e.to_string())?;
        let params = self.callback_params(&pending, &redirect, false)?;
        expect_param(&params, "error", Some("access_denied"))?;
        self.pass("abort at login (fragment mode) and denial at consent: access_denied with iss");

        self.begin();
        let pending = self.authorization(&ep, &client_id, &random_string(10)?, false, &[])?;
        match self
            .browser()?
            .log_in(&pending.url, &self.alice.username, "not-the-password")
            .await
        {
            Err(BrowserError::LoginRejected { .. }) => {}
            other => {
                return Err(format!(
                    "a wrong password gave {:?} instead of a rejected login",
                    other.map(|u| u.to_string())
                ));
            }
        }
        self.pass("a wrong password is rejected on the login page");

        self.switches(&ep, &client_id).await
    }

    /// Each misbehaviour switch has the effect a negative test relies on.
    async fn switches(&mut self, ep: &Endpoints, client_id: &str) -> Result {
        let issuer = self.state.op.issuer.clone();
        let discovery = format!("{issuer}/.well-known/openid-configuration");

        self.begin();
        self.control
            .set(&[
                Switch::WrongIssuerInMetadata,
                Switch::NoS256InMetadata,
                Switch::NoRegistrationEndpoint,
                Switch::MetadataOverride("response_modes_supported".to_owned(), json!(["query"])),
            ])
            .await?;
        let (_, metadata) = self.get_json(&discovery, None).await?;
        if metadata["issuer"] == issuer.as_str()
            || metadata["code_challenge_methods_supported"] != json!(["plain"])
            || metadata.get("registration_endpoint").is_some()
            || metadata["response_modes_supported"] != json!(["query"])
        {
            return Err(format!("metadata switches had no effect: {metadata}"));
        }
        let synapse_metadata =
            format!("{}/_matrix/client/v1/auth_metadata", self.state.synapse.url);
        let (_, metadata) = self.get_json(&synapse_metadata, None).await?;
        if metadata["issuer"] != issuer.as_str() {
            return Err(format!(
                "Synapse serves switched metadata (issuer {})",
                metadata["issuer"]
            ));
        }
        let front_metadata = format!(
            "{}/_matrix/client/v1/auth_metadata",
            self.state.op.homeserver_front_url
        );
        let (_, metadata) = self.get_json(&front_metadata, None).await?;
        if metadata["issuer"] == issuer.as_str()
            || metadata["code_challenge_methods_supported"] != json!(["plain"])
        {
            return Err(format!(
                "the homeserver front does not serve the switched metadata: {metadata}"
            ));
        }
        let front_versions = format!(
            "{}/_matrix/client/versions",
            self.state.op.homeserver_front_url
        );
        let (status, versions) = self.get_json(&front_versions, None).await?;
        if status != 200 || !versions["versions"].is_array() {
            return Err(format!(
                "the homeserver front does not pass requests to Synapse: {status} {versions}"
            ));
        }
        self.pass("switches: wrong issuer, no S256, no registration endpoint, overrides (OP and homeserver front, not Synapse)");

        self.begin();
        for (misbehaviour, expected) in [
            (IssMisbehaviour::Missing, None),
            (
                IssMisbehaviour::Wrong,
                Some(format!("{issuer}/not-the-issuer")),
            ),
        ] {
            self.control
                .set(&[Switch::IssInCallback(misbehaviour)])
                .await?;
            let pending = self.authorization(ep, client_id, &random_string(10)?, false, &[])?;
            let redirect = self
                .browser()?
                .log_in(&pending.url, &self.alice.username, &self.alice.password)
                .await
                .map_err(|e| e.to_string())?;
            let params = self.callback_params(&pending, &redirect, false)?;
            expect_param(&params, "iss", expected.as_deref())?;
            if !params.iter().any(|(k, _)| k == "code") {
                return Err(format!("no code in {redirect}"));
            }
        }
        self.pass("switches: missing and wrong iss in the callback");

        self.begin();
        self.control
            .set(&[
                Switch::AccessTokenTtl(5),
                Switch::DeviceScopeNotGranted,
                Switch::NoRefreshTokenRotation,
            ])
            .await?;
        let device_id = random_string(10)?;
        let pending = self.authorization(ep, client_id, &device_id, false, &[])?;
        let redirect = self
            .browser()?
            .log_in(&pending.url, &self.alice.username, &self.alice.password)
            .await
            .map_err(|e| e.to_string())?;
        let code = self.callback_code(&pending, &redirect, false)?;
        let tokens = self.exchange(ep, client_id, &pending, &code).await?;
        if tokens.expires_in != Some(5) {
            return Err(format!(
                "expires_in is {:?} with a 5-second access-token lifetime",
                tokens.expires_in
            ));
        }
        if tokens
            .scope
            .split(' ')
            .any(|s| s.starts_with(STABLE_DEVICE))
        {
            return Err(format!(
                "the device scope was granted although switched off: {}",
                tokens.scope
            ));
        }
        let refreshed = self.refresh(ep, client_id, &tokens.refresh).await?;
        if refreshed.refresh != tokens.refresh {
            return Err("the refresh token rotated although rotation is switched off".to_owned());
        }
        self.pass("switches: 5-second access tokens, device scope not granted, no rotation");

        self.begin();
        self.control
            .set(&[Switch::DeviceInterval(1), Switch::DeviceSlowDown(1)])
            .await?;
        let run = self
            .device_grant(ep, client_id, &random_string(10)?, true)
            .await?;
        if run.interval != Some(1) || run.slow_downs != 1 || run.tokens.is_none() {
            return Err(format!(
                "device pacing switches: interval {:?}, {} slow_down answers, tokens {}",
                run.interval,
                run.slow_downs,
                run.tokens.is_some()
            ));
        }
        self.control.reset().await?;
        if self.control.current().await?
            != json!({
                "wrong_issuer_in_metadata": false,
                "no_s256_in_metadata": false,
                "no_registration_endpoint": false,
                "iss_in_callback": null,
                "access_token_ttl": null,
                "device_scope_not_granted": false,
                "no_refresh_token_rotation": false,
                "metadata_overrides": {},
                "device_interval": null,
                "device_slow_down": 0,
            })
        {
            return Err("reset did not restore the normal switches".to_owned());
        }
        self.pass("switches: device interval and slow_down; reset restores every switch");
        Ok(())
    }

    fn browser(&self) -> Result<Browser> {
        Browser::for_peers(self.state).map_err(|e| e.to_string())
    }

    async fn discover(&self) -> Result<Endpoints> {
        let url = format!("{}/_matrix/client/v1/auth_metadata", self.state.synapse.url);
        let (_, m) = self.get_json(&url, None).await?;
        if m["issuer"] != self.state.op.issuer.as_str() {
            return Err(format!("{url}: issuer {} is not the OP's", m["issuer"]));
        }
        for (field, value) in [
            ("code_challenge_methods_supported", "S256"),
            ("response_modes_supported", "query"),
            ("response_modes_supported", "fragment"),
            ("grant_types_supported", "refresh_token"),
            ("grant_types_supported", DEVICE_GRANT),
            ("prompt_values_supported", "create"),
        ] {
            let listed = m[field]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == value));
            if !listed {
                return Err(format!("{url}: {field} lacks {value}: {}", m[field]));
            }
        }
        if m["authorization_response_iss_parameter_supported"] != true {
            return Err(format!("{url}: RFC 9207 iss is not announced"));
        }
        let field = |name: &str| {
            m[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{url}: no {name}"))
        };
        let authorization = field("authorization_endpoint")?;
        Ok(Endpoints {
            authorization: Url::parse(&authorization)
                .map_err(|e| format!("authorization_endpoint {authorization}: {e}"))?,
            token: field("token_endpoint")?,
            registration: field("registration_endpoint")?,
            revocation: field("revocation_endpoint")?,
            introspection: field("introspection_endpoint")?,
            device: field("device_authorization_endpoint")?,
        })
    }

    async fn register(&self, ep: &Endpoints) -> Result<String> {
        let body = json!({
            "client_name": "matrix-oidc xtask smoke",
            "client_uri": "https://matrix-oidc.example/",
            "application_type": "native",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token", DEVICE_GRANT],
            "response_types": ["code"],
        });
        let res = self
            .http
            .post(&ep.registration)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("POST {}: {e}", ep.registration))?;
        let (status, v) = json_response(res, &ep.registration).await?;
        if status != 201 {
            return Err(format!("registration answered {status}: {v}"));
        }
        v["client_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("registration gave no client_id: {v}"))
    }

    /// A code-flow authorization URL with PKCE S256 and the Matrix scopes for `device_id`.
    fn authorization(
        &self,
        ep: &Endpoints,
        client_id: &str,
        device_id: &str,
        unstable: bool,
        extra: &[(&str, &str)],
    ) -> Result<Pending> {
        let (api, device) = if unstable {
            (UNSTABLE_API, UNSTABLE_DEVICE)
        } else {
            (STABLE_API, STABLE_DEVICE)
        };
        let verifier = random_string(64)?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let state = random_string(16)?;
        // Native clients may use any port on the registered loopback redirect URI (RFC 8252).
        let port = 20000 + getrandom::u32().map_err(|e| format!("no randomness: {e}"))? % 40000;
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let scope = format!("{api} {device}{device_id}");
        let mut url = ep.authorization.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .extend_pairs(extra.iter());
        Ok(Pending {
            url,
            state,
            verifier,
            redirect_uri,
        })
    }

    /// The callback parameters (query or fragment), after checking the redirect URI and `state`.
    fn callback_params(
        &self,
        pending: &Pending,
        redirect: &Url,
        fragment: bool,
    ) -> Result<Vec<(String, String)>> {
        let base = redirect
            .as_str()
            .split(['?', '#'])
            .next()
            .unwrap_or_default();
        if base != pending.redirect_uri {
            return Err(format!(
                "callback {redirect} is not at {}",
                pending.redirect_uri
            ));
        }
        let raw = if fragment {
            redirect.fragment()
        } else {
            redirect.query()
        }
        .ok_or_else(|| format!("callback {redirect} has no parameters where expected"))?;
        let params: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
            .into_owned()
            .collect();
        expect_param(&params, "state", Some(&pending.state))?;
        Ok(params)
    }

    /// The code of a successful callback, after checking `state` and `iss`.
    fn callback_code(&self, pending: &Pending, redirect: &Url, fragment: bool) -> Result<String> {
        let params = self.callback_params(pending, redirect, fragment)?;
        expect_param(&params, "iss", Some(&self.state.op.issuer))?;
        params
            .into_iter()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v)
            .ok_or_else(|| format!("no code in the callback {redirect}"))
    }

    async fn exchange(
        &self,
        ep: &Endpoints,
        client_id: &str,
        pending: &Pending,
        code: &str,
    ) -> Result<Tokens> {
        self.token_request(
            ep,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &pending.redirect_uri),
                ("client_id", client_id),
                ("code_verifier", &pending.verifier),
            ],
        )
        .await
    }

    async fn refresh(
        &self,
        ep: &Endpoints,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<Tokens> {
        self.token_request(
            ep,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ],
        )
        .await
    }

    async fn token_request(&self, ep: &Endpoints, fields: &[(&str, &str)]) -> Result<Tokens> {
        let (status, v) = self.post_form(&ep.token, fields, false).await?;
        if status != 200 {
            return Err(format!("token endpoint answered {status}: {v}"));
        }
        tokens_of(&v)
    }

    async fn expect_grant_error(
        &self,
        ep: &Endpoints,
        fields: &[(&str, &str)],
        error: &str,
    ) -> Result {
        let (status, v) = self.post_form(&ep.token, fields, false).await?;
        if status != 400 || v["error"] != error {
            return Err(format!("expected 400 {error}, got {status}: {v}"));
        }
        Ok(())
    }

    /// Runs a device authorization grant with a browser that approves or denies it. The tokens are
    /// there when approved, absent when polling answered `access_denied`.
    async fn device_grant(
        &self,
        ep: &Endpoints,
        client_id: &str,
        device_id: &str,
        approve: bool,
    ) -> Result<DeviceRun> {
        let scope = format!("{STABLE_API} {STABLE_DEVICE}{device_id}");
        let (status, v) = self
            .post_form(
                &ep.device,
                &[("client_id", client_id), ("scope", &scope)],
                false,
            )
            .await?;
        if status != 200 {
            return Err(format!("device authorization answered {status}: {v}"));
        }
        let field = |name: &str| {
            v[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("device authorization response lacks {name}: {v}"))
        };
        let device_code = field("device_code")?;
        let user_code = field("user_code")?;
        let mut run = DeviceRun {
            tokens: None,
            interval: v["interval"].as_u64(),
            slow_downs: 0,
        };
        let parse = |s: String| Url::parse(&s).map_err(|e| format!("{s}: {e}"));
        let browser = self.browser()?;
        let outcome = if approve {
            // The person types the code shown on the device.
            let uri = parse(field("verification_uri")?)?;
            browser
                .approve_device(
                    &uri,
                    Some(&user_code),
                    &self.alice.username,
                    &self.alice.password,
                )
                .await
        } else {
            // The person scans the QR code of the complete URI.
            let uri = parse(field("verification_uri_complete")?)?;
            browser.deny_device(&uri, None).await
        }
        .map_err(|e| e.to_string())?;
        let expected = if approve {
            DeviceOutcome::Approved
        } else {
            DeviceOutcome::Denied
        };
        if outcome != expected {
            return Err(format!("device verification ended {outcome:?}"));
        }
        let fields = [
            ("grant_type", DEVICE_GRANT),
            ("device_code", &device_code),
            ("client_id", client_id),
        ];
        for _ in 0..10 {
            let (status, v) = self.post_form(&ep.token, &fields, false).await?;
            match (status, v["error"].as_str()) {
                (200, _) => {
                    run.tokens = Some(tokens_of(&v)?);
                    return Ok(run);
                }
                (400, Some("access_denied")) if !approve => return Ok(run),
                (400, Some(error @ ("authorization_pending" | "slow_down"))) => {
                    if error == "slow_down" {
                        run.slow_downs += 1;
                    }
                    // The smoke checks the OP, not a client's manners: no need to wait the interval.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                _ => return Err(format!("device token polling answered {status}: {v}")),
            }
        }
        Err("device token polling never finished".to_owned())
    }

    async fn whoami(&self, access_token: &str, user_id: &str, device_id: &str) -> Result {
        let url = format!(
            "{}/_matrix/client/v3/account/whoami",
            self.state.synapse.url
        );
        let (status, v) = self.get_json(&url, Some(access_token)).await?;
        if status != 200 || v["user_id"] != user_id || v["device_id"] != device_id {
            return Err(format!(
                "whoami answered {status}: {v}; expected {user_id} with device {device_id}"
            ));
        }
        Ok(())
    }

    async fn revoke(&self, ep: &Endpoints, client_id: &str, token: &str, hint: &str) -> Result {
        let (status, v) = self
            .post_form(
                &ep.revocation,
                &[
                    ("token", token),
                    ("token_type_hint", hint),
                    ("client_id", client_id),
                ],
                false,
            )
            .await?;
        if status != 200 {
            return Err(format!("revocation answered {status}: {v}"));
        }
        Ok(())
    }

    /// Whether the OP says the token is active (asked as Synapse's confidential client).
    async fn introspect(&self, ep: &Endpoints, token: &str) -> Result<bool> {
        let (status, v) = self
            .post_form(&ep.introspection, &[("token", token)], true)
            .await?;
        if status != 200 {
            return Err(format!("introspection answered {status}: {v}"));
        }
        v["active"]
            .as_bool()
            .ok_or_else(|| format!("introspection answer without active: {v}"))
    }

    async fn post_form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        as_synapse: bool,
    ) -> Result<(u16, Value)> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if as_synapse {
            let c = &self.state.introspection_client;
            req = req.basic_auth(&c.client_id, Some(&c.client_secret));
        }
        let res = req.send().await.map_err(|e| format!("POST {url}: {e}"))?;
        json_response(res, url).await
    }

    async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<(u16, Value)> {
        let mut req = self.http.get(url);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.map_err(|e| format!("GET {url}: {e}"))?;
        json_response(res, url).await
    }
}

async fn json_response(res: reqwest::Response, url: &str) -> Result<(u16, Value)> {
    let status = res.status().as_u16();
    let text = res
        .text()
        .await
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    if text.is_empty() {
        return Ok((status, Value::Null));
    }
    let v = serde_json::from_str(&text)
        .map_err(|e| format!("{url} answered {status} with non-JSON ({e}): {text}"))?;
    Ok((status, v))
}

fn tokens_of(v: &Value) -> Result<Tokens> {
    let field = |name: &str| {
        v[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("token response without {name}"))
    };
    if !v["token_type"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
    {
        return Err(format!("token_type is {}", v["token_type"]));
    }
    Ok(Tokens {
        access: field("access_token")?,
        refresh: field("refresh_token")?,
        scope: field("scope")?,
        expires_in: v["expires_in"].as_u64(),
    })
}

fn expect_scope(granted: &str, scope: &str) -> Result {
    if granted.split(' ').any(|s| s == scope) {
        Ok(())
    } else {
        Err(format!("granted scope `{granted}` lacks `{scope}`"))
    }
}

fn expect_param(params: &[(String, String)], name: &str, expected: Option<&str>) -> Result {
    let got = params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    if got == expected {
        Ok(())
    } else {
        Err(format!(
            "callback parameter {name} is {got:?}, expected {expected:?}"
        ))
    }
}
