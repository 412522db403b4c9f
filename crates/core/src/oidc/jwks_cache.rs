//! The provider's key set as a sans-IO cache, and the small driver that validates an ID token
//! against it.
//!
//! ```text
//!                    ┌─────────── fresh (now < expires_at) ───────────┐
//!                    │                                                 ▼
//!   Empty ──fetch──► Cached ──now ≥ expires_at──► Stale ──fetch──► Cached
//!                    │  ▲
//!   token with an    │  │ handle_response (200: new keys, max-age from Cache-Control /
//!   unknown kid ─────┘  │  Expires or the default; 304: same keys, new expiry)
//!   (at most once per   │
//!    min_refetch_interval)
//! ```
//!
//! The cache never reads a clock and never sends anything: it hands out an [`OutgoingRequest`] and
//! takes the `http::Response` back with the current time. It is `Serialize`/`Deserialize`, so a
//! server or a short-lived process can persist it between runs.

use super::claims::IdTokenClaims;
use super::id_token::{IdTokenError, IdTokenExpectations, validate};
use super::jwk::{IgnoredKey, JwkSet, JwkSetError};
use super::verify::JwsVerifier;
use crate::error::ResponseError;
use crate::http::{
    BuildError, Expectations, OutgoingRequest, check_envelope, error_from_response,
    is_json_content_type,
};
use crate::{AuthorizationServerMetadata, Timestamp};
use http::header::{ACCEPT, AGE, CACHE_CONTROL, CONTENT_TYPE, DATE, ETAG, EXPIRES, IF_NONE_MATCH};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

/// How long keys are kept and how often they may be refetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JwksCacheConfig {
    /// How long a key set is fresh when the response has no caching headers. Default 5 minutes.
    pub default_max_age: Duration,
    /// The shortest freshness honoured: `no-cache` or `max-age=0` is raised to this, because a
    /// key set is public data and the unknown-`kid` refetch covers rotations. Default 1 minute.
    pub min_max_age: Duration,
    /// The longest freshness honoured, whatever the server says. Default 24 hours.
    pub max_max_age: Duration,
    /// The least time between two fetches caused by an unknown `kid`, so tokens with made-up key
    /// ids cannot make this client hammer the provider. Default 1 minute.
    pub min_refetch_interval: Duration,
    /// The largest key set document accepted. Default 256 KiB.
    pub max_body_bytes: usize,
}

impl Default for JwksCacheConfig {
    fn default() -> Self {
        Self {
            default_max_age: Duration::from_secs(300),
            min_max_age: Duration::from_secs(60),
            max_max_age: Duration::from_secs(24 * 3600),
            min_refetch_interval: Duration::from_secs(60),
            max_body_bytes: 256 * 1024,
        }
    }
}

/// Fetching or reading the key set failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The server metadata has no `jwks_uri`.
    #[error("the server metadata has no `jwks_uri`")]
    NoJwksUri,
    /// The request could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The response was not a usable JSON response.
    #[error("fetching the key set from {url} failed: {error}")]
    Response {
        /// The `jwks_uri`.
        url: String,
        /// What was wrong.
        error: ResponseError,
    },
    /// The body is not a JWK Set.
    #[error("the key set at {url} is invalid: {error}")]
    Invalid {
        /// The `jwks_uri`.
        url: String,
        /// What was wrong.
        error: JwkSetError,
    },
    /// The set has no key this crate can use; the previous keys (if any) are kept.
    #[error("the key set at {url} has no usable key ({} ignored)", ignored.len())]
    NoUsableKeys {
        /// The `jwks_uri`.
        url: String,
        /// The keys that were ignored, with reasons.
        ignored: Vec<IgnoredKey>,
    },
    /// `304 Not Modified` arrived but nothing is cached to revalidate.
    #[error("the server answered 304 for {url} but no key set is cached")]
    NotModifiedWithoutCache {
        /// The `jwks_uri`.
        url: String,
    },
    /// Validation was attempted before any key set was fetched.
    #[error("no key set has been fetched from {url}")]
    NotFetched {
        /// The `jwks_uri`.
        url: String,
    },
}

/// The provider's JWK Set with its freshness, as a sans-IO state machine.
///
/// ```
/// use matrix_oidc_core::oidc::JwksCache;
/// use matrix_oidc_core::Timestamp;
/// use url::Url;
///
/// let mut cache = JwksCache::new(Url::parse("https://id.example/jwks").unwrap());
/// let now = Timestamp::from_unix_seconds(1_700_000_000);
/// assert!(!cache.is_fresh(now));
/// let request = cache.fetch_request().unwrap();
/// assert_eq!(request.url(), "https://id.example/jwks");
/// // … the transport sends it …
/// let response = http::Response::builder()
///     .header("content-type", "application/json")
///     .header("cache-control", "public, max-age=3600")
///     .body(br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
///         "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#.to_vec())
///     .unwrap();
/// cache.handle_response(&response, now).unwrap();
/// assert!(cache.is_fresh(now));
/// assert_eq!(cache.expires_at(), Some(Timestamp::from_unix_seconds(1_700_003_600)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwksCache {
    jwks_uri: Url,
    #[serde(default)]
    config: JwksCacheConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<JwkSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fetched_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_refetch: Option<Timestamp>,
}

impl JwksCache {
    /// An empty cache for the key set at `jwks_uri`, with the default configuration.
    pub fn new(jwks_uri: Url) -> Self {
        Self {
            jwks_uri,
            config: JwksCacheConfig::default(),
            keys: None,
            fetched_at: None,
            expires_at: None,
            etag: None,
            last_refetch: None,
        }
    }

    /// An empty cache for the server's `jwks_uri`.
    pub fn from_metadata(metadata: &AuthorizationServerMetadata) -> Result<Self, JwksError> {
        metadata
            .jwks_uri
            .clone()
            .map(Self::new)
            .ok_or(JwksError::NoJwksUri)
    }

    /// Replaces the configuration.
    pub fn with_config(mut self, config: JwksCacheConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &JwksCacheConfig {
        &self.config
    }

    /// Where the keys come from.
    pub fn jwks_uri(&self) -> &Url {
        &self.jwks_uri
    }

    /// The cached keys, fresh or not.
    pub fn keys(&self) -> Option<&JwkSet> {
        self.keys.as_ref()
    }

    /// When the cached keys were last fetched or revalidated.
    pub fn fetched_at(&self) -> Option<Timestamp> {
        self.fetched_at
    }

    /// When the cached keys stop being fresh.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }

    /// Whether keys are cached and still fresh at `now`.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        self.keys.is_some() && self.expires_at.is_some_and(|e| now < e)
    }

    /// The request that fetches the key set (conditional on the cached `ETag`, if any).
    pub fn fetch_request(&self) -> Result<OutgoingRequest, JwksError> {
        let mut req = OutgoingRequest::get_json(&self.jwks_uri)?
            .with_expectations(Expectations::json().with_max_body(self.config.max_body_bytes));
        let headers = req.request.headers_mut();
        headers.insert(
            ACCEPT,
            http::HeaderValue::from_static("application/jwk-set+json, application/json"),
        );
        if let (Some(etag), Some(_)) = (&self.etag, &self.keys) {
            if let Ok(v) = http::HeaderValue::from_str(etag) {
                headers.insert(IF_NONE_MATCH, v);
            }
        }
        Ok(req)
    }

    /// Whether a token with an unknown `kid` may cause a refetch at `now`: nothing was fetched
    /// within [`JwksCacheConfig::min_refetch_interval`].
    pub fn may_refetch(&self, now: Timestamp) -> bool {
        let last = self.fetched_at.max(self.last_refetch);
        last.is_none_or(|t| now >= t + self.config.min_refetch_interval)
    }

    /// The refetch request for a token whose key is unknown, or `None` when the last fetch was too
    /// recent. Records the attempt, so that a failing endpoint is throttled too.
    pub fn refetch_for_unknown_key(
        &mut self,
        now: Timestamp,
    ) -> Result<Option<OutgoingRequest>, JwksError> {
        if !self.may_refetch(now) {
            return Ok(None);
        }
        let req = self.fetch_request()?;
        self.last_refetch = Some(now);
        Ok(Some(req))
    }

    /// Takes the response to a [`fetch_request`](Self::fetch_request) received at `now`.
    ///
    /// On success the keys and their freshness are replaced. On failure the previous keys are kept
    /// (still usable until the caller decides otherwise) and the error says what was wrong.
    pub fn handle_response<B: AsRef<[u8]>>(
        &mut self,
        response: &http::Response<B>,
        now: Timestamp,
    ) -> Result<&JwkSet, JwksError> {
        let url = self.jwks_uri.to_string();
        let expect = Expectations::json().with_max_body(self.config.max_body_bytes);
        let status = response.status().as_u16();
        // 304 is the one 3xx that is not a redirect; every other goes through the envelope check.
        if status != 304 {
            check_envelope(response, &expect).map_err(|error| JwksError::Response {
                url: url.clone(),
                error,
            })?;
        }
        if status == 304 {
            if self.keys.is_none() {
                return Err(JwksError::NotModifiedWithoutCache { url });
            }
            self.mark_fetched(response.headers(), now);
            return self.keys.as_ref().ok_or(JwksError::NotFetched { url });
        }
        if status != 200 {
            return Err(JwksError::Response {
                url,
                error: error_from_response(response),
            });
        }
        let ct = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !ct.is_some_and(is_json_content_type) {
            return Err(JwksError::Response {
                url,
                error: ResponseError::NotJson {
                    found: ct.map(str::to_owned),
                },
            });
        }
        let set =
            JwkSet::from_json(response.body().as_ref()).map_err(|error| JwksError::Invalid {
                url: url.clone(),
                error,
            })?;
        if set.is_empty() {
            return Err(JwksError::NoUsableKeys {
                url,
                ignored: set.ignored().to_vec(),
            });
        }
        self.etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 256)
            .map(str::to_owned);
        self.mark_fetched(response.headers(), now);
        Ok(self.keys.insert(set))
    }

    fn mark_fetched(&mut self, headers: &http::HeaderMap, now: Timestamp) {
        let c = &self.config;
        let age = freshness(headers, now)
            .unwrap_or(c.default_max_age)
            .clamp(c.min_max_age, c.max_max_age.max(c.min_max_age));
        self.fetched_at = Some(now);
        self.expires_at = Some(now + age);
    }
}

/// The freshness lifetime a response grants (RFC 9111 §4.2.1), minus its `Age`, or `None` when it
/// says nothing.
fn freshness(headers: &http::HeaderMap, now: Timestamp) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
            let name = name.trim().to_ascii_lowercase();
            if name == "no-store" || name == "no-cache" {
                return Some(Duration::ZERO);
            }
            if name == "max-age" && max_age.is_none() {
                let arg = arg.trim().trim_matches('"');
                // RFC 9111 §1.2.2: an overflowing delta-seconds means "very long".
                max_age = if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
                    Some(arg.parse::<u64>().unwrap_or(u64::MAX))
                } else {
                    Some(0)
                };
            }
        }
    }
    if let Some(secs) = max_age {
        let age = headers
            .get(AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        return Some(Duration::from_secs(secs.saturating_sub(age)));
    }
    let expires = headers.get(EXPIRES)?;
    // An invalid Expires (often "0" or "-1") means "already expired" (RFC 9111 §5.3).
    let Some(expires) = expires.to_str().ok().and_then(parse_http_date) else {
        return Some(Duration::ZERO);
    };
    let base = headers
        .get(DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or(now);
    Some(expires.duration_since(base))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only HTTP date format senders
/// may generate (RFC 9110 §5.6.7).
fn parse_http_date(s: &str) -> Option<Timestamp> {
    let mut parts = s.split_ascii_whitespace();
    let _weekday = parts.next().filter(|w| w.len() == 4 && w.ends_with(','))?;
    let day: u64 = parts.next().filter(|d| d.len() == 2)?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u64 + 1;
    let year: u64 = parts.next().filter(|y| y.len() == 4)?.parse().ok()?;
    let time = parts.next()?;
    if parts.next() != Some("GMT") || parts.next().is_some() {
        return None;
    }
    let mut hms = time.split(':');
    let mut field = |max: u64| -> Option<u64> {
        let f = hms.next().filter(|f| f.len() == 2)?;
        f.parse::<u64>().ok().filter(|v| *v <= max)
    };
    let (h, m, sec) = (field(23)?, field(59)?, field(60)?);
    if !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(Timestamp::from_unix_seconds(
        days * 86_400 + h * 3600 + m * 60 + sec,
    ))
}

/// What [`IdTokenValidation::poll`] wants next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ValidationStep {
    /// Send this request and give the response to [`JwksCache::handle_response`], then poll again.
    Fetch(OutgoingRequest),
    /// The token is valid.
    Done(IdTokenClaims),
}

/// Validates one ID token against a [`JwksCache`], fetching the key set when it is stale and
/// refetching it once when the token's key is unknown — the client's whole loop:
///
/// ```no_run
/// # use matrix_oidc_core::oidc::*;
/// # use matrix_oidc_core::{Timestamp, OutgoingRequest};
/// # fn send(r: OutgoingRequest) -> http::Response<Vec<u8>> { unimplemented!() }
/// # fn run(cache: &mut JwksCache, expect: &IdTokenExpectations, verifier: &dyn JwsVerifier,
/// #        token: &str, now: Timestamp) -> Result<IdTokenClaims, IdTokenError> {
/// let mut validation = IdTokenValidation::new(token);
/// let claims = loop {
///     match validation.poll(cache, expect, verifier, now)? {
///         ValidationStep::Fetch(request) => {
///             let response = send(request); // the transport, possibly async
///             cache.handle_response(&response, now)?;
///         }
///         ValidationStep::Done(claims) => break claims,
///     }
/// };
/// # Ok(claims) }
/// ```
///
/// It asks for at most one fetch per validation, so the loop always ends.
#[derive(Debug, Clone)]
pub struct IdTokenValidation<'a> {
    token: &'a str,
    previous: Option<&'a IdTokenClaims>,
    fetched: bool,
}

impl<'a> IdTokenValidation<'a> {
    /// Validation of a token from a code exchange ([`validate_id_token`](super::validate_id_token)).
    pub fn new(token: &'a str) -> Self {
        Self {
            token,
            previous: None,
            fetched: false,
        }
    }

    /// Validation of a token from a refresh
    /// ([`validate_refreshed_id_token`](super::validate_refreshed_id_token)).
    pub fn refreshed(token: &'a str, previous: &'a IdTokenClaims) -> Self {
        Self {
            token,
            previous: Some(previous),
            fetched: false,
        }
    }

    /// Advances the validation.
    pub fn poll(
        &mut self,
        cache: &mut JwksCache,
        expectations: &IdTokenExpectations,
        verifier: &dyn JwsVerifier,
        now: Timestamp,
    ) -> Result<ValidationStep, IdTokenError> {
        if !self.fetched && !cache.is_fresh(now) {
            self.fetched = true;
            return Ok(ValidationStep::Fetch(cache.fetch_request()?));
        }
        let keys = cache.keys().ok_or_else(|| JwksError::NotFetched {
            url: cache.jwks_uri().to_string(),
        })?;
        match validate(self.token, expectations, keys, verifier, now, self.previous) {
            Ok(claims) => Ok(ValidationStep::Done(claims)),
            Err(e) if e.is_unknown_key() && !self.fetched => {
                match cache.refetch_for_unknown_key(now)? {
                    Some(req) => {
                        self.fetched = true;
                        Ok(ValidationStep::Fetch(req))
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> Timestamp {
        Timestamp::from_unix_seconds(secs)
    }

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(t(784_111_777))
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(t(1_709_164_800))
        );
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "0",
            "",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn freshness_from_headers() {
        let now = t(1_000_000);
        assert_eq!(freshness(&headers(&[]), now), None);
        assert_eq!(
            freshness(&headers(&[("cache-control", "public, max-age=600")]), now),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            freshness(
                &headers(&[("cache-control", "max-age=\"600\""), ("age", "100")]),
                now
            ),
            Some(Duration::from_secs(500))
        );
        assert_eq!(
            freshness(&headers(&[("cache-control", "max-age=60, no-cache")]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            freshness(&headers(&[("cache-control", "max-age=abc")]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            freshness(
                &headers(&[("cache-control", "max-age=99999999999999999999999")]),
                now
            ),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            freshness(
                &headers(&[
                    ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                    ("expires", "Sun, 06 Nov 1994 09:49:37 GMT")
                ]),
                now
            ),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            freshness(&headers(&[("expires", "0")]), now),
            Some(Duration::ZERO)
        );
        // Cache-Control wins over Expires.
        assert_eq!(
            freshness(
                &headers(&[("expires", "0"), ("cache-control", "max-age=120")]),
                now
            ),
            Some(Duration::from_secs(120))
        );
    }
}
