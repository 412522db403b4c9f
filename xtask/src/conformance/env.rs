//! What the conformance cases share: the running peers, transports and clients built the way an
//! application builds them, the scripted browser, and the OP-side checks (introspection, counters).

use crate::browser::Browser;
use crate::peers::{self, Mode, OpControl, PeersState, TestUser};
use crate::util::Result;
use matrix_oidc::core::discovery::DiscoveryOptions;
use matrix_oidc::core::{HttpClient, OutgoingRequest, TransportError};
use matrix_oidc::{
    AuthSession, ClientConfig, ClientMetadata, LoginOptions, LoginStart, OAuthClient,
};
use matrix_oidc_hyper::HyperTransport;
use matrix_oidc_reqwest::ReqwestTransport;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use url::Url;

/// The transport a case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// `matrix-oidc-reqwest`.
    Reqwest,
    /// `matrix-oidc-hyper`.
    Hyper,
    /// The `matrix-oidc` command-line tool, run as a process (it brings its own transport).
    Cli,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Reqwest => "reqwest",
            Via::Hyper => "hyper",
            Via::Cli => "matrix-oidc binary",
        })
    }
}

/// Which roots a transport trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trust {
    /// The platform's roots plus, in HTTPS mode, the harness CA (through the extra-root option).
    HarnessCa,
    /// The platform's roots alone: the harness CA is unknown.
    PlatformOnly,
}

/// A registered loopback redirect URI; the browser's redirect to it is read, never followed.
const REGISTERED_REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// The redirect URI a login uses (RFC 8252: any port on the registered loopback URI).
const REDIRECT_URI: &str = "http://127.0.0.1:48765/callback";

/// The peers of one set, seen from the cases.
pub(crate) struct Env<'a> {
    /// The state file of the running peers.
    pub(crate) state: &'a PeersState,
    /// Synapse's base URL.
    pub(crate) homeserver: Url,
    /// The homeserver front: a homeserver URL whose `auth_metadata` shows the OP's switches.
    pub(crate) front: Url,
    /// The OP's issuer as the client parses it.
    pub(crate) issuer: Url,
    /// The OP's control endpoint.
    pub(crate) control: OpControl,
    ca_pem: Option<Vec<u8>>,
    /// The harness's own HTTP client (introspection as Synapse's confidential client).
    http: reqwest::Client,
}

impl<'a> Env<'a> {
    pub(crate) fn new(state: &'a PeersState) -> Result<Env<'a>> {
        let ca_pem = match &state.ca_pem {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Env {
            state,
            homeserver: parse_url(&state.synapse.url)?,
            front: parse_url(&state.op.homeserver_front_url)?,
            issuer: parse_url(&state.op.issuer)?,
            control: OpControl::new(state)?,
            ca_pem,
            http: peers::client(state.ca_pem.as_deref(), false)?,
        })
    }

    /// A test user (`alice`, `bob`).
    pub(crate) fn user(&self, name: &str) -> Result<&'a TestUser> {
        self.state.user(name)
    }

    /// The Matrix user id of `localpart` on this homeserver.
    pub(crate) fn user_id(&self, localpart: &str) -> String {
        format!("@{localpart}:{}", self.state.synapse.server_name)
    }

    /// A transport as an application configures it: redirects off, the platform's roots, and the
    /// harness CA added through the transport's extra-root option in HTTPS mode.
    pub(crate) fn transport(&self, via: Via, trust: Trust) -> Result<Arc<dyn HttpClient>> {
        let ca = match trust {
            Trust::HarnessCa => self.ca_pem.as_deref(),
            Trust::PlatformOnly => None,
        };
        Ok(match via {
            Via::Reqwest => {
                let mut builder = ReqwestTransport::builder();
                if let Some(pem) = ca {
                    builder = builder
                        .add_root_certificates_pem(pem)
                        .map_err(|e| format!("the harness CA: {e}"))?;
                }
                Arc::new(
                    builder
                        .build()
                        .map_err(|e| format!("building the reqwest transport: {e}"))?,
                )
            }
            Via::Hyper => {
                let mut builder = HyperTransport::builder();
                if let Some(pem) = ca {
                    builder = builder
                        .add_root_certificates_pem(pem)
                        .map_err(|e| format!("the harness CA: {e}"))?;
                }
                Arc::new(
                    builder
                        .build()
                        .map_err(|e| format!("building the hyper transport: {e}"))?,
                )
            }
            Via::Cli => return Err("the matrix-oidc binary brings its own transport".to_owned()),
        })
    }

    /// A client builder over `via` with the default discovery options; plain `http` on loopback is
    /// allowed in HTTP mode only, so the HTTPS set runs under the default (https-only) policy.
    pub(crate) fn builder(&self, via: Via) -> Result<matrix_oidc::OAuthClientBuilder> {
        self.builder_with(via, DiscoveryOptions::default())
    }

    /// Like [`Env::builder`] with other discovery options (profile, methods).
    pub(crate) fn builder_with(
        &self,
        via: Via,
        discovery: DiscoveryOptions,
    ) -> Result<matrix_oidc::OAuthClientBuilder> {
        let builder = OAuthClient::builder(self.transport(via, Trust::HarnessCa)?)
            .discovery_options(discovery);
        Ok(match self.state.mode {
            Mode::Http => builder.allow_insecure_loopback(),
            Mode::Https => builder,
        })
    }

    /// A client with every default but the transport.
    pub(crate) fn client(&self, via: Via) -> Result<OAuthClient> {
        Ok(self.builder(via)?.build())
    }

    /// A new browser profile (no OP session yet).
    pub(crate) fn browser(&self) -> Result<Browser> {
        Browser::for_peers(self.state).map_err(|e| format!("browser: {e}"))
    }

    /// Login options for this homeserver (or another homeserver URL) with the app's metadata.
    pub(crate) fn login_options(&self, homeserver: &Url) -> Result<LoginOptions> {
        Ok(LoginOptions::new(
            homeserver.clone(),
            parse_url(REDIRECT_URI)?,
            app()?,
        ))
    }

    /// Login options for `homeserver` with another client configuration (a pre-registered id).
    pub(crate) fn login_options_for(
        &self,
        homeserver: &Url,
        client: ClientConfig,
    ) -> Result<LoginOptions> {
        Ok(LoginOptions::new(
            homeserver.clone(),
            parse_url(REDIRECT_URI)?,
            client,
        ))
    }

    /// Starts a login and lets `user` sign in and consent in the browser; returns the start and the
    /// redirect the browser was sent to (not yet finished).
    pub(crate) async fn authorize(
        &self,
        client: &OAuthClient,
        options: &LoginOptions,
        user: &TestUser,
    ) -> Result<(LoginStart, Url)> {
        let start = client
            .start_login(options)
            .await
            .map_err(|e| format!("start_login: {}", describe_err(&e)))?;
        let callback = self
            .browser()?
            .log_in(&start.url, &user.username, &user.password)
            .await
            .map_err(|e| format!("browser: {e}"))?;
        Ok((start, callback))
    }

    /// A whole login as `alice`: start, browser, finish.
    pub(crate) async fn log_in(
        &self,
        client: &OAuthClient,
        options: &LoginOptions,
    ) -> Result<(LoginStart, AuthSession)> {
        let (start, callback) = self.authorize(client, options, self.user("alice")?).await?;
        let session = client
            .finish_login(callback.as_str())
            .await
            .map_err(|e| format!("finish_login: {}", describe_err(&e)))?;
        Ok((start, session))
    }

    /// Whether the OP says `token` is active, asked at its introspection endpoint as Synapse's
    /// confidential client.
    pub(crate) async fn introspect(&self, token: &str) -> Result<bool> {
        let url = format!("{}/oauth2/introspect", self.state.op.issuer);
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish();
        let c = &self.state.introspection_client;
        let res = self
            .http
            .post(&url)
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| format!("reading {url}: {e}"))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{url} answered {status} with non-JSON ({e})"))?;
        value["active"]
            .as_bool()
            .ok_or_else(|| format!("{url} answered {status} without `active`: {value}"))
    }

    /// How many refreshes (token requests with `grant_type=refresh_token`) the OP saw from
    /// `client_id`.
    pub(crate) async fn refreshes(&self, client_id: &str) -> Result<u64> {
        self.control
            .token_requests(client_id, "refresh_token")
            .await
    }
}

/// The application's client metadata: a native app with a loopback redirect URI.
pub(crate) fn app() -> Result<ClientMetadata> {
    Ok(
        ClientMetadata::native(parse_url("https://matrix-oidc.example/")?)
            .with_client_name("matrix-oidc conformance")
            .with_redirect_uri(parse_url(REGISTERED_REDIRECT_URI)?),
    )
}

pub(crate) fn parse_url(s: &str) -> Result<Url> {
    Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))
}

/// The query (or fragment) parameters of `url`.
pub(crate) fn params(raw: Option<&str>) -> HashMap<String, String> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// Sends one request with a transport, as the core's user does.
pub(crate) async fn send(
    http: &dyn HttpClient,
    request: OutgoingRequest,
) -> std::result::Result<http::Response<Vec<u8>>, TransportError> {
    http.send(request).await
}

/// An error's variant and message for a case's failure line. `Debug` of the library's errors
/// never holds a secret.
pub(crate) fn describe_err(e: &dyn fmt::Debug) -> String {
    format!("{e:?}")
}

/// What a call gave instead of the expected error.
pub(crate) fn describe_result<T, E: fmt::Debug>(result: &std::result::Result<T, E>) -> String {
    match result {
        Ok(_) => "success".to_owned(),
        Err(e) => describe_err(e),
    }
}

/// Fails with `message` unless `condition` holds.
pub(crate) fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result {
    if condition { Ok(()) } else { Err(message()) }
}

/// Fails unless `found == expected`, naming `what`.
pub(crate) fn expect_eq<T: PartialEq + fmt::Debug>(what: &str, found: T, expected: T) -> Result {
    ensure(found == expected, || {
        format!("{what} is {found:?}, expected {expected:?}")
    })
}

/// Whether the space-separated `scope` holds `token`.
pub(crate) fn has_scope(scope: &str, token: &str) -> bool {
    scope.split(' ').any(|s| s == token)
}
