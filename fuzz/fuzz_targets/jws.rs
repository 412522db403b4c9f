//! JWS / JWT compact serialization and ID-token validation. A verifier that accepts every signature
//! stands in for the crypto backend so that the fuzzer reaches the header, key-selection and claims
//! checks behind the signature.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::oidc::{
    CompactJws, IdTokenExpectations, Jwk, JwkSet, JwsAlgorithm, JwsVerifier, VerifyError,
    validate_id_token,
};
use matrix_oidc_core::{Secret, Timestamp};
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

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    if let Ok(jws) = CompactJws::parse(&token) {
        let _ = jws.header();
        let _ = jws.decode_claims();
        assert!(jws.signing_input().len() < token.len());
    }
    let expect = IdTokenExpectations::new(
        "https://auth.example.org/",
        "01J9ZB8W3QXK7M5TQ2V4N6R8SD",
        vec![
            JwsAlgorithm::Rs256,
            JwsAlgorithm::Es256,
            JwsAlgorithm::Es384,
        ],
    )
    .with_nonce(Secret::new("n-0S6_WzA2Mj4Tl2Ev8QZrfc"));
    let now = Timestamp::from_unix_seconds(1_750_000_060);
    if let Ok(claims) = validate_id_token(&token, &expect, keys(), &AcceptAll, now) {
        // Whatever got through, it is for us, from the issuer, and not expired.
        assert_eq!(claims.iss, "https://auth.example.org/");
        assert!(claims.aud.iter().any(|a| a == "01J9ZB8W3QXK7M5TQ2V4N6R8SD"));
        assert!(claims.nonce.is_some());
    }
});
