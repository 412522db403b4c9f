//! Client of the OP's harness-only control endpoint, which switches misbehaviour on and off at
//! runtime so that one running OP serves every negative test.
//!
//! ```text
//! GET  <issuer>/__harness/config   -> the current switches (JSON object)
//! POST <issuer>/__harness/config   <- JSON object of switches to change -> the new switches
//!                                     (400 {"error": ...} for an unknown switch or a bad value)
//! POST <issuer>/__harness/reset    -> every switch back to normal
//! GET  <issuer>/__harness/token_requests?client_id=<id>
//!                                  -> {"<grant_type>": <count>, ...}: the token requests of a client
//! ```
//!
//! Switches only change what clients see: Synapse keeps the metadata it loaded at start-up and its
//! token introspection is never affected, so the homeserver keeps working while switches change.

use super::http;
use super::state::PeersState;
use crate::util::Result;
use serde_json::{Map, Value, json};

/// How the `iss` authorization-response parameter (RFC 9207) misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IssMisbehaviour {
    /// `iss` names another issuer.
    Wrong,
    /// `iss` is absent although the metadata says it is sent.
    Missing,
}

/// One misbehaviour of the OP.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Switch {
    /// Metadata served to clients names another issuer (`<issuer>/not-the-issuer`).
    WrongIssuerInMetadata,
    /// Metadata served to clients lists only `plain` in `code_challenge_methods_supported`.
    NoS256InMetadata,
    /// Metadata served to clients has no `registration_endpoint`.
    NoRegistrationEndpoint,
    /// Authorization responses carry a wrong `iss`, or none.
    IssInCallback(IssMisbehaviour),
    /// Access tokens issued from now on live this many seconds.
    AccessTokenTtl(u32),
    /// Consent rejects the Matrix device scope: tokens come without it.
    DeviceScopeNotGranted,
    /// A refresh returns the same refresh token instead of a new one.
    NoRefreshTokenRotation,
    /// Sets a metadata field served to clients; `Value::Null` removes it.
    MetadataOverride(String, Value),
    /// Device authorization responses carry `interval` (seconds); normally it is absent.
    DeviceInterval(u32),
    /// The first N token polls of each device code answer `slow_down`.
    DeviceSlowDown(u32),
}

impl Switch {
    fn add_to(&self, body: &mut Map<String, Value>) {
        let (key, value) = match self {
            Switch::WrongIssuerInMetadata => ("wrong_issuer_in_metadata", json!(true)),
            Switch::NoS256InMetadata => ("no_s256_in_metadata", json!(true)),
            Switch::NoRegistrationEndpoint => ("no_registration_endpoint", json!(true)),
            Switch::IssInCallback(IssMisbehaviour::Wrong) => ("iss_in_callback", json!("wrong")),
            Switch::IssInCallback(IssMisbehaviour::Missing) => {
                ("iss_in_callback", json!("missing"))
            }
            Switch::AccessTokenTtl(secs) => ("access_token_ttl", json!(secs)),
            Switch::DeviceScopeNotGranted => ("device_scope_not_granted", json!(true)),
            Switch::NoRefreshTokenRotation => ("no_refresh_token_rotation", json!(true)),
            Switch::DeviceInterval(secs) => ("device_interval", json!(secs)),
            Switch::DeviceSlowDown(polls) => ("device_slow_down", json!(polls)),
            Switch::MetadataOverride(field, value) => {
                let overrides = body
                    .entry("metadata_overrides")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = overrides {
                    map.insert(field.clone(), value.clone());
                }
                return;
            }
        };
        body.insert(key.to_owned(), value);
    }
}

/// The OP's control endpoint.
pub(crate) struct OpControl {
    http: reqwest::Client,
    base: String,
}

impl OpControl {
    /// The control endpoint of the OP in `state`.
    pub(crate) fn new(state: &PeersState) -> Result<OpControl> {
        Ok(OpControl {
            http: http::client(state.ca_pem.as_deref(), false)?,
            base: state.op.control_url.clone(),
        })
    }

    /// Resets every switch, then turns on `switches`.
    pub(crate) async fn set(&self, switches: &[Switch]) -> Result<Value> {
        self.reset().await?;
        let mut body = Map::new();
        for s in switches {
            s.add_to(&mut body);
        }
        self.post("config", Some(Value::Object(body))).await
    }

    /// Every switch back to normal.
    pub(crate) async fn reset(&self) -> Result {
        self.post("reset", None).await.map(drop)
    }

    /// The current switches, as the OP reports them.
    pub(crate) async fn current(&self) -> Result<Value> {
        let url = format!("{}/config", self.base);
        let res = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        json_of(res, &url).await
    }

    /// How many token endpoint requests with `grant_type` the client `client_id` has made.
    pub(crate) async fn token_requests(&self, client_id: &str, grant_type: &str) -> Result<u64> {
        let mut url = url::Url::parse(&format!("{}/token_requests", self.base))
            .map_err(|e| format!("{}: {e}", self.base))?;
        url.query_pairs_mut().append_pair("client_id", client_id);
        let res = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let counts = json_of(res, url.as_str()).await?;
        Ok(counts.get(grant_type).and_then(Value::as_u64).unwrap_or(0))
    }

    async fn post(&self, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}/{path}", self.base);
        let mut req = self.http.post(&url);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = req.send().await.map_err(|e| format!("POST {url}: {e}"))?;
        json_of(res, &url).await
    }
}

async fn json_of(res: reqwest::Response, url: &str) -> Result<Value> {
    let status = res.status();
    let text = res
        .text()
        .await
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url} answered non-JSON ({e}): {text}"))
}
