//! Error bodies from any endpoint: OAuth (RFC 6749 §5.2), Matrix (`errcode`), and the classification
//! of a non-success response into the most specific error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::error::OAUTH_FIELD_LIMIT;
use matrix_oidc_core::http::error_from_response;
use matrix_oidc_core::{MatrixErrorBody, OAuthErrorBody};

fn bounded(s: &Option<String>) -> bool {
    s.as_ref().is_none_or(|s| s.len() <= OAUTH_FIELD_LIMIT)
}

/// What ends up in a log line must not carry raw control characters (log forging, terminal escapes).
fn printable(shown: &str) -> bool {
    !shown.chars().any(char::is_control)
}

fuzz_target!(|data: &[u8]| {
    if let Some(e) = OAuthErrorBody::parse(data) {
        // A hostile server cannot make an error arbitrarily large.
        assert!(e.error.len() <= OAUTH_FIELD_LIMIT);
        assert!(bounded(&e.error_description) && bounded(&e.error_uri));
        assert!(printable(&e.to_string()));
    }
    if let Some(e) = MatrixErrorBody::parse(data) {
        assert!(e.errcode.len() <= OAUTH_FIELD_LIMIT && bounded(&e.error));
        assert!(printable(&e.to_string()));
    }
    let response = matrix_oidc_fuzz::response(data);
    let error = error_from_response(&response);
    assert_eq!(error.status(), Some(response.status().as_u16()));
    let shown = error.to_string();
    assert!(printable(&shown), "{shown:?}");
});
