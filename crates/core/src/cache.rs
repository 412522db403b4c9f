//! HTTP caching hints: until when a fetched document (server metadata, a JWK set) may be reused
//! without asking the server again.
//!
//! The core keeps no cache itself; it reads the response headers once, at the time the response was
//! received (`now`), and says until when the document is fresh, as an absolute [`Timestamp`]. The layer
//! above stores the document next to that instant and refetches once it has passed.
//!
//! The rules are those of a *private* cache in RFC 9111 (the client is one user agent, not a proxy):
//!
//! * `Cache-Control: no-store` — do not keep the document at all ([`CacheHints::no_store`]).
//! * `Cache-Control: no-cache` — keep it but revalidate before every use: fresh until `now`.
//! * `max-age=N` gives the freshness lifetime; `s-maxage` is for shared caches and is ignored.
//!   Without `max-age`, `Expires` minus `Date` (or minus `now` when `Date` is missing) gives it; an
//!   `Expires` that is not a valid HTTP date (such as `0`) means "already expired".
//! * The document's age when received is the larger of `Age` and `now − Date` (RFC 9111 §4.2.3
//!   without the request-delay term, which a sans-IO reader cannot know), and is subtracted.
//! * `stale-while-revalidate=N` (RFC 5861) extends [`CacheHints::stale_while_revalidate_until`]: the
//!   stale document may still be used while a refetch runs in the background.
//! * No `Cache-Control` freshness, no `Expires`: [`CacheHints::fresh_until`] is `None` and the caller
//!   applies its own default (matrix-rust-sdk uses 24 hours).
//!
//! ```
//! use matrix_oidc_core::cache::CacheHints;
//! use matrix_oidc_core::Timestamp;
//! use std::time::Duration;
//!
//! // What Synapse sends with `/_matrix/client/v1/auth_metadata`.
//! let response = http::Response::builder()
//!     .header("cache-control", "public, max-age=600, s-maxage=3600, stale-while-revalidate=600")
//!     .body(())
//!     .unwrap();
//! let now = Timestamp::from_unix_seconds(1_700_000_000);
//! let hints = CacheHints::from_headers(response.headers(), now);
//! assert_eq!(hints.fresh_until, Some(now + Duration::from_secs(600)));
//! assert_eq!(hints.stale_while_revalidate_until, Some(now + Duration::from_secs(1200)));
//! assert!(hints.is_fresh(now + Duration::from_secs(599)));
//! assert!(!hints.is_fresh(now + Duration::from_secs(600)));
//! ```

use crate::Timestamp;
use http::HeaderMap;
use http::header::{AGE, CACHE_CONTROL, DATE, EXPIRES, PRAGMA};
use std::time::Duration;

/// RFC 9111 §1.2.2: delta-seconds larger than this are read as this (about 68 years).
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// What the caching headers of one response say about reusing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheHints {
    /// Until when the document is fresh. `None` when the response gave no freshness information
    /// (no `max-age`, no `Expires`): the caller decides. `Some(t)` with `t <= now` means "already
    /// stale: revalidate before the next use".
    pub fresh_until: Option<Timestamp>,
    /// Until when a stale document may still be served while a refetch runs (`stale-while-revalidate`).
    pub stale_while_revalidate_until: Option<Timestamp>,
    /// `Cache-Control: no-store`: the document must not be kept at all.
    pub no_store: bool,
}

impl CacheHints {
    /// Reads `Cache-Control`, `Pragma`, `Expires`, `Date` and `Age` from a response received at `now`.
    ///
    /// Never fails: unparseable directives are ignored, except an invalid `max-age` or `Expires`,
    /// which make the document stale (RFC 9111 §4.2.1 and §5.3).
    pub fn from_headers(headers: &HeaderMap, now: Timestamp) -> Self {
        let cc = Directives::parse(headers);
        if cc.no_store {
            return Self {
                fresh_until: Some(now),
                stale_while_revalidate_until: None,
                no_store: true,
            };
        }
        let date = header_str(headers, DATE).and_then(parse_http_date);
        let lifetime = if cc.no_cache {
            Some(0)
        } else if let Some(max_age) = cc.max_age {
            Some(max_age)
        } else if let Some(expires) = header_str(headers, EXPIRES) {
            Some(match parse_http_date(expires) {
                Some(expires) => expires
                    .duration_since(date.unwrap_or(now))
                    .as_secs()
                    .min(MAX_DELTA_SECONDS),
                None => 0,
            })
        } else if !cc.present && pragma_no_cache(headers) {
            Some(0)
        } else {
            None
        };
        let Some(lifetime) = lifetime else {
            return Self::default();
        };
        let age_header = header_str(headers, AGE)
            .and_then(parse_delta_seconds)
            .unwrap_or(0);
        let apparent_age = date.map_or(0, |d| now.duration_since(d).as_secs());
        let current_age = age_header.max(apparent_age);
        let remaining = lifetime.saturating_sub(current_age);
        let fresh_until = now + Duration::from_secs(remaining);
        Self {
            fresh_until: Some(fresh_until),
            stale_while_revalidate_until: cc
                .stale_while_revalidate
                .map(|swr| fresh_until + Duration::from_secs(swr)),
            no_store: false,
        }
    }

    /// Whether the document may be used without a refetch at `now`. `false` when the response gave no
    /// freshness information.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        !self.no_store && self.fresh_until.is_some_and(|t| now < t)
    }

    /// The hints of a result built from two responses (an issuer lookup, then the issuer's metadata):
    /// it is fresh only while both are.
    pub fn combine(self, other: CacheHints) -> CacheHints {
        fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        CacheHints {
            fresh_until: earliest(self.fresh_until, other.fresh_until),
            stale_while_revalidate_until: earliest(
                self.stale_while_revalidate_until,
                other.stale_while_revalidate_until,
            ),
            no_store: self.no_store || other.no_store,
        }
    }
}

/// The `Cache-Control` directives this module acts on.
#[derive(Debug, Default)]
struct Directives {
    present: bool,
    no_store: bool,
    no_cache: bool,
    max_age: Option<u64>,
    stale_while_revalidate: Option<u64>,
}

impl Directives {
    fn parse(headers: &HeaderMap) -> Self {
        let mut out = Directives::default();
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            out.present = true;
            for directive in split_list(value) {
                let (name, arg) = match directive.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(unquote(a.trim()))),
                    None => (directive.trim(), None),
                };
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => out.no_store = true,
                    // `no-cache="field"` only restricts the named fields; the document itself stays usable.
                    "no-cache" if arg.is_none() => out.no_cache = true,
                    "max-age" => {
                        // An invalid max-age makes the response stale (RFC 9111 §4.2.1); of two
                        // max-age directives the shorter wins.
                        let v = arg.and_then(parse_delta_seconds).unwrap_or(0);
                        out.max_age = Some(out.max_age.map_or(v, |old| old.min(v)));
                    }
                    "stale-while-revalidate" => {
                        if let Some(v) = arg.and_then(parse_delta_seconds) {
                            out.stale_while_revalidate = Some(v);
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

/// Splits a comma-separated header list, keeping commas inside quoted strings.
fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// `delta-seconds = 1*DIGIT`, saturating at 2^31 as RFC 9111 §1.2.2 requires.
fn parse_delta_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = v.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(v.min(MAX_DELTA_SECONDS))
}

fn header_str(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn parse_http_date(s: &str) -> Option<Timestamp> {
    httpdate::parse_http_date(s)
        .ok()
        .map(Timestamp::from_system_time)
}

fn pragma_no_cache(headers: &HeaderMap) -> bool {
    headers
        .get_all(PRAGMA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_list)
        .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

    fn hints(pairs: &[(&str, &str)]) -> CacheHints {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        CacheHints::from_headers(&headers, NOW)
    }

    fn secs(n: u64) -> Timestamp {
        NOW + Duration::from_secs(n)
    }

    #[test]
    fn synapse_header_uses_max_age_not_s_maxage() {
        let h = hints(&[(
            "cache-control",
            "public, max-age=600, s-maxage=3600, stale-while-revalidate=600",
        )]);
        assert_eq!(h.fresh_until, Some(secs(600)));
        assert_eq!(h.stale_while_revalidate_until, Some(secs(1200)));
        assert!(!h.no_store);
    }

    #[test]
    fn no_headers_means_unknown() {
        let h = hints(&[]);
        assert_eq!(h, CacheHints::default());
        assert!(!h.is_fresh(NOW));
    }

    #[test]
    fn no_store_and_no_cache_are_stale_now() {
        let h = hints(&[("cache-control", "no-store, max-age=600")]);
        assert!(h.no_store);
        assert_eq!(h.fresh_until, Some(NOW));
        assert!(!h.is_fresh(NOW));
        let h = hints(&[("cache-control", "No-Cache, max-age=600")]);
        assert!(!h.no_store);
        assert_eq!(h.fresh_until, Some(NOW));
        // no-cache with a field list does not make the whole response stale.
        let h = hints(&[("cache-control", "no-cache=\"set-cookie, x-a\", max-age=60")]);
        assert_eq!(h.fresh_until, Some(secs(60)));
    }

    #[test]
    fn age_and_date_are_subtracted() {
        let h = hints(&[("cache-control", "max-age=600"), ("age", "100")]);
        assert_eq!(h.fresh_until, Some(secs(500)));
        let date =
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(1_699_999_700));
        let h = hints(&[
            ("cache-control", "max-age=600"),
            ("date", &date),
            ("age", "10"),
        ]);
        assert_eq!(h.fresh_until, Some(secs(300)));
        // Older than its lifetime: stale on arrival.
        let h = hints(&[("cache-control", "max-age=60"), ("age", "100")]);
        assert_eq!(h.fresh_until, Some(NOW));
    }

    #[test]
    fn expires_relative_to_date() {
        let at = |s: u64| httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(s));
        let h = hints(&[
            ("date", &at(1_699_999_000)),
            ("expires", &at(1_700_000_000)),
        ]);
        // Lifetime 1000 s, but the response is already 1000 s old by the Date header.
        assert_eq!(h.fresh_until, Some(NOW));
        let h = hints(&[("expires", &at(1_700_003_600))]);
        assert_eq!(h.fresh_until, Some(secs(3600)));
        // max-age wins over Expires.
        let h = hints(&[
            ("expires", &at(1_700_003_600)),
            ("cache-control", "max-age=5"),
        ]);
        assert_eq!(h.fresh_until, Some(secs(5)));
        // Invalid Expires, such as "0", means already expired.
        let h = hints(&[("expires", "0")]);
        assert_eq!(h.fresh_until, Some(NOW));
    }

    #[test]
    fn invalid_values() {
        assert_eq!(
            hints(&[("cache-control", "max-age=ten")]).fresh_until,
            Some(NOW)
        );
        assert_eq!(
            hints(&[("cache-control", "max-age=\"30\"")]).fresh_until,
            Some(secs(30))
        );
        assert_eq!(
            hints(&[("cache-control", "max-age=99999999999999999999999")]).fresh_until,
            Some(secs(MAX_DELTA_SECONDS))
        );
        // Two max-age directives (two headers): the shorter wins.
        assert_eq!(
            hints(&[
                ("cache-control", "max-age=300"),
                ("cache-control", "max-age=30")
            ])
            .fresh_until,
            Some(secs(30))
        );
        // Garbage Age is ignored.
        assert_eq!(
            hints(&[("cache-control", "max-age=30"), ("age", "-5")]).fresh_until,
            Some(secs(30))
        );
    }

    #[test]
    fn pragma_only_without_cache_control() {
        assert_eq!(hints(&[("pragma", "no-cache")]).fresh_until, Some(NOW));
        assert_eq!(
            hints(&[("pragma", "no-cache"), ("cache-control", "max-age=60")]).fresh_until,
            Some(secs(60))
        );
    }

    #[test]
    fn combine_takes_the_earliest() {
        let a = hints(&[("cache-control", "max-age=600, stale-while-revalidate=10")]);
        let b = hints(&[("cache-control", "max-age=60")]);
        let c = a.combine(b);
        assert_eq!(c.fresh_until, Some(secs(60)));
        assert_eq!(c.stale_while_revalidate_until, Some(secs(610)));
        assert_eq!(
            a.combine(CacheHints::default()).fresh_until,
            Some(secs(600))
        );
        assert!(a.combine(hints(&[("cache-control", "no-store")])).no_store);
    }
}
