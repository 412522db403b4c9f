//! Revocation answers (RFC 7009): empty or any body on success, OAuth errors otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::{RevocationRequest, Secret, TokenTypeHint};
use matrix_oidc_fuzz::{metadata, printable, response};

fuzz_target!(|data: &[u8]| {
    let md = metadata();
    let Ok(request) = RevocationRequest::new(
        &md,
        "client-1",
        &Secret::new("rt-secret-value"),
        Some(TokenTypeHint::RefreshToken),
    ) else {
        panic!("harness revocation request");
    };
    let response = response(data);
    if let Err(e) = request.parse(&response) {
        let shown = e.to_string();
        assert!(printable(&shown), "{shown}");
        assert!(!shown.contains("rt-secret-value"));
    }
});
