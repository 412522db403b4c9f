//! HTTP caching headers (`Cache-Control`, `Pragma`, `Expires`, `Date`, `Age`) of metadata and key set
//! answers: each input line is one header, `name: value`.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::Timestamp;
use matrix_oidc_core::cache::CacheHints;

const NAMES: [&str; 5] = ["cache-control", "pragma", "expires", "date", "age"];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n').take(16) {
        let Some((&which, value)) = line.split_first() else {
            continue;
        };
        let name = HeaderName::from_static(NAMES[which as usize % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    let hints = CacheHints::from_headers(&headers, now);
    if hints.no_store {
        assert!(!hints.is_fresh(now));
    }
    if let (Some(fresh), Some(swr)) = (hints.fresh_until, hints.stale_while_revalidate_until) {
        assert!(
            swr >= fresh,
            "stale-while-revalidate ends before freshness: {hints:?}"
        );
    }
    let _ = hints.combine(CacheHints::from_headers(&HeaderMap::new(), now));
});
