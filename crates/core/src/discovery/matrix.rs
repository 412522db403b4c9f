//! Discovery from a Matrix homeserver base URL.
//!
//! ```text
//! start()
//!   │
//!   ▼
//! GET /_matrix/client/v1/auth_metadata ───────────── 200 ──▶ validate ──▶ Done(AuthMetadata)
//!   │ 404, or 405 M_UNRECOGNIZED
//!   ▼
//! GET /_matrix/client/unstable/org.matrix.msc2965/auth_metadata ── 200 ──▶ validate ──▶ Done(UnstableAuthMetadata)
//!   │ 404 …
//!   ▼
//! GET /_matrix/client/unstable/org.matrix.msc2965/auth_issuer ── 200 {"issuer"} ──┐
//!   │ 404 …                                                                       ▼
//!   │                                 GET <issuer>/.well-known/openid-configuration ── 200 ──▶ validate,
//!   ▼                                                                       issuer == issuer ──▶ Done(AuthIssuer)
//! GET <origin>/.well-known/matrix/client ── 200 with org.matrix.msc2965.authentication ──┐
//!   │ 4xx, no block, not JSON   (3xx: followed, at most `max_redirects` times)          ▼
//!   │                                 GET <issuer>/.well-known/openid-configuration ── … ──▶ Done(WellKnown)
//!   ▼
//! Err(NotSupported)  if any step answered 404 M_UNRECOGNIZED
//! Err(NoMetadata)    otherwise
//! ```
//!
//! Every other answer ends the discovery with an error at once: a 5xx, a 429, a redirect from a
//! Matrix endpoint, a body that is not JSON, an invalid metadata document. Moving on after those would
//! hide a broken server behind an older, possibly stale, discovery method.

use super::{
    Attempt, Discovered, DiscoveryError, DiscoverySource, Presence, Step, check_issuer, get,
    openid_configuration_url, presence, read_metadata,
};
use crate::cache::CacheHints;
use crate::error::ResponseError;
use crate::http::{Expectations, check_envelope, check_json, error_from_response};
use crate::metadata::{Profile, ValidationOptions};
use crate::{Timestamp, UrlPolicy};
use serde_json::Value;
use url::Url;

/// Path of the stable metadata endpoint (Matrix v1.15).
pub const AUTH_METADATA_PATH: &str = "/_matrix/client/v1/auth_metadata";
/// Path of the MSC2965 unstable metadata endpoint.
pub const UNSTABLE_AUTH_METADATA_PATH: &str =
    "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata";
/// Path of the older MSC2965 draft's issuer endpoint.
pub const AUTH_ISSUER_PATH: &str = "/_matrix/client/unstable/org.matrix.msc2965/auth_issuer";
/// Path of the client well-known document, at the server name's origin.
pub const WELL_KNOWN_CLIENT_PATH: &str = "/.well-known/matrix/client";

/// The keys of the authentication block in `/.well-known/matrix/client`: the unstable name Synapse
/// emits, then the stable name the draft proposed.
const WELL_KNOWN_AUTH_KEYS: [&str; 2] = ["org.matrix.msc2965.authentication", "m.authentication"];

/// One way of finding a homeserver's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiscoveryMethod {
    /// `GET /_matrix/client/v1/auth_metadata`.
    AuthMetadata,
    /// `GET /_matrix/client/unstable/org.matrix.msc2965/auth_metadata`.
    UnstableAuthMetadata,
    /// `GET /_matrix/client/unstable/org.matrix.msc2965/auth_issuer`, then OpenID Connect Discovery.
    AuthIssuer,
    /// `/.well-known/matrix/client`'s authentication block, then OpenID Connect Discovery.
    WellKnown,
}

/// Options of a [`MatrixDiscovery`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoveryOptions {
    /// How metadata is validated, and which URLs are acceptable (also for the homeserver URL and any
    /// issuer found on the way). Default: [`ValidationOptions::matrix`].
    pub validation: ValidationOptions,
    /// The methods to try, in order. Default: all four, stable first. A caller that knows from
    /// `/versions` that the server predates v1.15 may put [`DiscoveryMethod::UnstableAuthMetadata`] first.
    pub methods: Vec<DiscoveryMethod>,
    /// Where `/.well-known/matrix/client` is served (the server name's origin, such as
    /// `https://example.com` for `@alice:example.com`). Default: the homeserver's origin.
    pub well_known_base: Option<Url>,
    /// How many redirects of `/.well-known/matrix/client` to follow (MSC4402). Default 5.
    pub max_redirects: u8,
    /// Expectations for every request.
    pub expectations: Expectations,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        Self {
            validation: ValidationOptions::matrix(),
            methods: vec![
                DiscoveryMethod::AuthMetadata,
                DiscoveryMethod::UnstableAuthMetadata,
                DiscoveryMethod::AuthIssuer,
                DiscoveryMethod::WellKnown,
            ],
            well_known_base: None,
            max_redirects: 5,
            expectations: Expectations::json(),
        }
    }
}

impl DiscoveryOptions {
    /// The same options with another URL policy.
    pub fn with_url_policy(mut self, url_policy: UrlPolicy) -> Self {
        self.validation.url_policy = url_policy;
        self
    }

    /// The same options with another validation profile.
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.validation.profile = profile;
        self
    }

    /// The same options trying `methods`, in that order.
    pub fn with_methods(mut self, methods: impl IntoIterator<Item = DiscoveryMethod>) -> Self {
        self.methods = methods.into_iter().collect();
        self
    }

    /// The same options reading `/.well-known/matrix/client` at `base`'s origin.
    pub fn with_well_known_base(mut self, base: Url) -> Self {
        self.well_known_base = Some(base);
        self
    }

    /// The same options with other request expectations.
    pub fn with_expectations(mut self, expectations: Expectations) -> Self {
        self.expectations = expectations;
        self
    }
}

// One State per discovery, replaced in place: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum State {
    Idle,
    Finished,
    /// A request to the method at `index` (for the well-known, possibly after `hops` redirects).
    Endpoint {
        index: usize,
        url: Url,
        hops: u8,
    },
    /// The issuer's OpenID configuration, after `auth_issuer` or the well-known block named it.
    IssuerMetadata {
        source: DiscoverySource,
        issuer: Url,
        url: Url,
        first: CacheHints,
        account: Option<Url>,
    },
}

/// Discovery of a homeserver's authorization server metadata. See the [module docs](super) for the
/// call-order contract and an example.
#[derive(Debug, Clone)]
pub struct MatrixDiscovery {
    homeserver: Url,
    options: DiscoveryOptions,
    state: State,
    attempts: Vec<Attempt>,
}

impl MatrixDiscovery {
    /// Discovery for the homeserver at `homeserver` (its client-server API base URL, such as
    /// `https://matrix.example.com`; a path prefix is kept). The URL must be allowed by the URL policy.
    pub fn new(homeserver: &Url, options: DiscoveryOptions) -> Result<Self, DiscoveryError> {
        let invalid = |reason: &str| DiscoveryError::InvalidHomeserverUrl {
            url: homeserver.to_string(),
            reason: reason.to_owned(),
        };
        if !options.validation.url_policy.allows(homeserver) {
            return Err(invalid(if homeserver.scheme() == "http" {
                "plain http is allowed only on a loopback host with UrlPolicy::AllowInsecureLoopback"
            } else {
                "the homeserver must be an https URL"
            }));
        }
        if let Some(base) = &options.well_known_base {
            if !options.validation.url_policy.allows(base) {
                return Err(invalid(
                    "the well-known base URL is not allowed by the URL policy",
                ));
            }
        }
        let mut homeserver = homeserver.clone();
        homeserver.set_query(None);
        homeserver.set_fragment(None);
        Ok(Self {
            homeserver,
            options,
            state: State::Idle,
            attempts: Vec::new(),
        })
    }

    /// The homeserver being discovered.
    pub fn homeserver(&self) -> &Url {
        &self.homeserver
    }

    /// The URL the method at the start of the chain would request (for logs and tests).
    pub fn url_for(&self, method: DiscoveryMethod) -> Url {
        match method {
            DiscoveryMethod::AuthMetadata => join(&self.homeserver, AUTH_METADATA_PATH),
            DiscoveryMethod::UnstableAuthMetadata => {
                join(&self.homeserver, UNSTABLE_AUTH_METADATA_PATH)
            }
            DiscoveryMethod::AuthIssuer => join(&self.homeserver, AUTH_ISSUER_PATH),
            DiscoveryMethod::WellKnown => {
                let mut url = self
                    .options
                    .well_known_base
                    .clone()
                    .unwrap_or_else(|| self.homeserver.clone());
                url.set_path(WELL_KNOWN_CLIENT_PATH);
                url.set_query(None);
                url.set_fragment(None);
                url
            }
        }
    }

    /// The first request. Calling it again restarts the discovery.
    pub fn start(&mut self) -> Result<Step, DiscoveryError> {
        self.attempts.clear();
        self.advance(0)
    }

    /// Sends the request of the first method at or after `index`, or ends the chain.
    fn advance(&mut self, index: usize) -> Result<Step, DiscoveryError> {
        self.state = State::Finished;
        let Some(method) = self.options.methods.get(index).copied() else {
            let attempts = std::mem::take(&mut self.attempts);
            let unrecognized = attempts
                .iter()
                .any(|a| a.status == 404 && a.errcode.as_deref() == Some("M_UNRECOGNIZED"));
            return Err(if unrecognized {
                DiscoveryError::NotSupported { attempts }
            } else {
                DiscoveryError::NoMetadata { attempts }
            });
        };
        let url = self.url_for(method);
        let request = get(&url, &self.options.expectations)?;
        self.state = State::Endpoint {
            index,
            url,
            hops: 0,
        };
        Ok(Step::Send(request))
    }

    /// Handles the response to the last request, received at `now`.
    pub fn handle_response<B: AsRef<[u8]>>(
        &mut self,
        response: &http::Response<B>,
        now: Timestamp,
    ) -> Result<Step, DiscoveryError> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Idle | State::Finished => Err(DiscoveryError::NoRequestPending),
            State::Endpoint { index, url, hops } => {
                let method = *self
                    .options
                    .methods
                    .get(index)
                    .ok_or(DiscoveryError::NoRequestPending)?;
                match method {
                    DiscoveryMethod::AuthMetadata | DiscoveryMethod::UnstableAuthMetadata => {
                        self.on_auth_metadata(method, index, url, response, now)
                    }
                    DiscoveryMethod::AuthIssuer => self.on_auth_issuer(index, url, response, now),
                    DiscoveryMethod::WellKnown => {
                        self.on_well_known(index, url, hops, response, now)
                    }
                }
            }
            State::IssuerMetadata {
                source,
                issuer,
                url,
                first,
                account,
            } => {
                let (mut metadata, cache) = read_metadata(
                    response,
                    &url,
                    &self.options.expectations,
                    &self.options.validation,
                    Some(&issuer),
                    now,
                )?;
                if metadata.account_management_uri.is_none() {
                    metadata.account_management_uri = account;
                }
                Ok(Step::Done(Box::new(Discovered {
                    metadata,
                    source,
                    url: Some(url),
                    cache: first.combine(cache),
                })))
            }
        }
    }

    fn on_auth_metadata<B: AsRef<[u8]>>(
        &mut self,
        method: DiscoveryMethod,
        index: usize,
        url: Url,
        response: &http::Response<B>,
        now: Timestamp,
    ) -> Result<Step, DiscoveryError> {
        if let Presence::NotHere(attempt) = presence(response, &url) {
            self.attempts.push(attempt);
            return self.advance(index + 1);
        }
        let (metadata, cache) = read_metadata(
            response,
            &url,
            &self.options.expectations,
            &self.options.validation,
            None,
            now,
        )?;
        let source = if method == DiscoveryMethod::AuthMetadata {
            DiscoverySource::AuthMetadata
        } else {
            DiscoverySource::UnstableAuthMetadata
        };
        Ok(Step::Done(Box::new(Discovered {
            metadata,
            source,
            url: Some(url),
            cache,
        })))
    }

    fn on_auth_issuer<B: AsRef<[u8]>>(
        &mut self,
        index: usize,
        url: Url,
        response: &http::Response<B>,
        now: Timestamp,
    ) -> Result<Step, DiscoveryError> {
        if let Presence::NotHere(attempt) = presence(response, &url) {
            self.attempts.push(attempt);
            return self.advance(index + 1);
        }
        let value: Value = check_json(response, &self.options.expectations, &[200], false)
            .map_err(|error| DiscoveryError::Http {
                url: url.to_string(),
                error,
            })?;
        let issuer = value.get("issuer").and_then(Value::as_str).ok_or_else(|| {
            DiscoveryError::Misconfigured {
                url: url.to_string(),
                reason: "the answer has no string `issuer`".to_owned(),
            }
        })?;
        let issuer = check_issuer(issuer, url.as_str(), &self.options.validation)?;
        let first = CacheHints::from_headers(response.headers(), now);
        self.fetch_issuer_metadata(DiscoverySource::AuthIssuer, issuer, first, None)
    }

    fn on_well_known<B: AsRef<[u8]>>(
        &mut self,
        index: usize,
        url: Url,
        hops: u8,
        response: &http::Response<B>,
        now: Timestamp,
    ) -> Result<Step, DiscoveryError> {
        let status = response.status();
        let http_error = |error: ResponseError| DiscoveryError::Http {
            url: url.to_string(),
            error,
        };
        if status.is_redirection() {
            return self.follow_redirect(index, &url, hops, response);
        }
        // The well-known is the last resort and often served by a static web host or a single-page
        // app: any 4xx, and a 200 that is not a JSON object, mean "no authentication block here".
        if status.is_client_error() {
            if let Presence::NotHere(attempt) = presence(response, &url) {
                self.attempts.push(attempt);
            } else {
                self.attempts.push(Attempt {
                    url: url.to_string(),
                    status: status.as_u16(),
                    errcode: None,
                    note: None,
                });
            }
            return self.advance(index + 1);
        }
        if status != http::StatusCode::OK {
            return Err(http_error(error_from_response(response)));
        }
        check_envelope(response, &self.options.expectations).map_err(http_error)?;
        let not_here = |note: &'static str| Attempt {
            url: url.to_string(),
            status: 200,
            errcode: None,
            note: Some(note),
        };
        let Ok(Value::Object(document)) = serde_json::from_slice::<Value>(response.body().as_ref())
        else {
            self.attempts.push(not_here("not a JSON object"));
            return self.advance(index + 1);
        };
        let Some(block) = WELL_KNOWN_AUTH_KEYS.iter().find_map(|k| document.get(*k)) else {
            self.attempts
                .push(not_here("no org.matrix.msc2965.authentication block"));
            return self.advance(index + 1);
        };
        let misconfigured = |reason: &str| DiscoveryError::Misconfigured {
            url: url.to_string(),
            reason: reason.to_owned(),
        };
        let block = block
            .as_object()
            .ok_or_else(|| misconfigured("the authentication block is not an object"))?;
        let issuer = block
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or_else(|| misconfigured("the authentication block has no string `issuer`"))?;
        let issuer = check_issuer(issuer, url.as_str(), &self.options.validation)?;
        let account = match block.get("account") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match Url::parse(s) {
                Ok(a) if self.options.validation.url_policy.allows(&a) => Some(a),
                _ => {
                    return Err(misconfigured(
                        "the authentication block's `account` is not an allowed URL",
                    ));
                }
            },
            Some(_) => {
                return Err(misconfigured(
                    "the authentication block's `account` is not a string",
                ));
            }
        };
        let first = CacheHints::from_headers(response.headers(), now);
        self.fetch_issuer_metadata(DiscoverySource::WellKnown, issuer, first, account)
    }

    fn follow_redirect<B: AsRef<[u8]>>(
        &mut self,
        index: usize,
        url: &Url,
        hops: u8,
        response: &http::Response<B>,
    ) -> Result<Step, DiscoveryError> {
        let bad = |reason: String| DiscoveryError::BadRedirect {
            url: url.to_string(),
            reason,
        };
        if hops >= self.options.max_redirects {
            return Err(bad(format!(
                "more than {} redirects",
                self.options.max_redirects
            )));
        }
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| bad("a redirect without a usable Location header".to_owned()))?;
        let target = url
            .join(location)
            .map_err(|e| bad(format!("the Location {location:?} is not a URL: {e}")))?;
        if !self.options.validation.url_policy.allows(&target) {
            return Err(bad(format!(
                "the redirect to {target} is not allowed by the URL policy"
            )));
        }
        let request = get(&target, &self.options.expectations)?;
        self.state = State::Endpoint {
            index,
            url: target,
            hops: hops + 1,
        };
        Ok(Step::Send(request))
    }

    fn fetch_issuer_metadata(
        &mut self,
        source: DiscoverySource,
        issuer: Url,
        first: CacheHints,
        account: Option<Url>,
    ) -> Result<Step, DiscoveryError> {
        let url = openid_configuration_url(&issuer);
        let request = get(&url, &self.options.expectations)?;
        self.state = State::IssuerMetadata {
            source,
            issuer,
            url,
            first,
            account,
        };
        Ok(Step::Send(request))
    }
}

/// `base` with `path` (starting with `/`) appended to its path.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}
