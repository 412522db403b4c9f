//! Userinfo answers (OpenID Connect Core §5.3): JSON, or a signed JWT read with a verifier that
//! accepts every signature so that the claims behind it are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::Timestamp;
use matrix_oidc_core::oidc::{
    Jwk, JwkSet, JwsAlgorithm, JwsVerifier, SignedUserinfoExpectations, VerifyError,
    handle_signed_userinfo_response, handle_userinfo_response,
};
use matrix_oidc_fuzz::response;
use std::sync::OnceLock;

struct AcceptAll;

impl JwsVerifier for AcceptAll {
    fn supports(&self, _: JwsAlgorithm) -> bool {
        true
    }
    fn verify(&self, _: JwsAlgorithm, _: &Jwk, _: &[u8], _: &[u8]) -> Result<(), VerifyError> {
        Ok(())
    }
}

fn keys() -> &'static JwkSet {
    static K: OnceLock<JwkSet> = OnceLock::new();
    K.get_or_init(|| {
        JwkSet::from_json(include_bytes!("../../crates/bench/fixtures/jwks.json"))
            .unwrap_or_else(|e| panic!("harness JWKS: {e}"))
    })
}

const SUB: &str = "01J9ZC4V7N2K5QH8TD3W6MXRBF";

fuzz_target!(|data: &[u8]| {
    let response = response(data);
    if let Ok(info) = handle_userinfo_response(&response, SUB) {
        // The OpenID Connect rule: userinfo for another subject is refused.
        assert_eq!(info.sub, SUB);
    }
    let expect = SignedUserinfoExpectations::new(
        "https://auth.example.org/",
        "01J9ZB8W3QXK7M5TQ2V4N6R8SD",
        vec![JwsAlgorithm::Rs256, JwsAlgorithm::Es256],
    );
    let now = Timestamp::from_unix_seconds(1_750_000_060);
    if let Ok(info) =
        handle_signed_userinfo_response(&response, SUB, &expect, keys(), &AcceptAll, now)
    {
        assert_eq!(info.sub, SUB);
    }
});
