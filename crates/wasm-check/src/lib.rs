//! A `cdylib` that exercises the public parsers of `matrix-oidc-core` and the RustCrypto verifier of
//! `matrix-oidc-jose` so that `cargo xtask ci` can build it for `wasm32-unknown-unknown` and read the import
//! section of the resulting module: a sans-IO core must not need anything from the host (`env`
//! imports would mean a C dependency or a libc call slipped in).
//!
//! Each export feeds fixed input through `black_box`, so the optimiser cannot fold the call away
//! and the parser's code, with everything it may call, is linked into the module.

use matrix_oidc_core::http::{Expectations, check_json, error_from_response};
use matrix_oidc_core::metadata::ValidationOptions;
use matrix_oidc_core::oidc::{IdTokenExpectations, JwkSet, JwsAlgorithm, validate_id_token};
use matrix_oidc_core::{
    AuthorizationServerMetadata, MatrixErrorBody, OAuthErrorBody, OutgoingRequest,
    PendingAuthorization, RandomSource, SeededRandom, Timestamp,
};
use matrix_oidc_jose::RustCryptoVerifier;
use std::hint::black_box;

const METADATA: &str = r#"{"issuer":"https://auth.example.org/","authorization_endpoint":"https://auth.example.org/authorize","token_endpoint":"https://auth.example.org/token","revocation_endpoint":"https://auth.example.org/revoke","response_types_supported":["code"],"grant_types_supported":["authorization_code","refresh_token"],"code_challenge_methods_supported":["S256"]}"#;

const OAUTH_ERROR: &str =
    r#"{"error":"invalid_grant","error_description":"expired","error_uri":"https://e/x"}"#;

const MATRIX_ERROR: &str = r#"{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}"#;

fn json_response(status: u16, body: &str) -> Option<http::Response<Vec<u8>>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(black_box(body).as_bytes().to_vec())
        .ok()
}

/// Parses server metadata through the JSON envelope checks, then validates it under the Matrix
/// profile; returns 2 when both succeed.
#[unsafe(no_mangle)]
pub extern "C" fn check_metadata() -> u32 {
    let Some(response) = json_response(200, METADATA) else {
        return 0;
    };
    let lenient = check_json::<AuthorizationServerMetadata, _>(
        &response,
        &Expectations::json(),
        &[200],
        false,
    )
    .is_ok();
    let validated = AuthorizationServerMetadata::from_json(
        black_box(DISCOVERY).as_bytes(),
        &ValidationOptions::matrix(),
        None,
    )
    .is_ok();
    u32::from(lenient) + u32::from(validated)
}

/// Validates the bench's ES256 and RS256 ID tokens with the RustCrypto verifier (the JOSE layer on
/// wasm32); returns how many validated.
#[unsafe(no_mangle)]
pub extern "C" fn check_id_tokens() -> u32 {
    let Ok(keys) = JwkSet::from_json(black_box(JWKS).as_bytes()) else {
        return 0;
    };
    let expect = IdTokenExpectations::new(
        "https://auth.example.org/",
        "01J9ZB8W3QXK7M5TQ2V4N6R8SD",
        vec![JwsAlgorithm::Rs256, JwsAlgorithm::Es256],
    );
    let now = Timestamp::from_unix_seconds(1_750_000_060);
    [ID_TOKEN_RS256, ID_TOKEN_ES256]
        .iter()
        .filter(|t| {
            validate_id_token(black_box(t), &expect, &keys, &RustCryptoVerifier, now).is_ok()
        })
        .count() as u32
}

const DISCOVERY: &str = include_str!("../../bench/fixtures/discovery.json");
const JWKS: &str = include_str!("../../bench/fixtures/jwks.json");
const ID_TOKEN_RS256: &str = include_str!("../../bench/fixtures/id_token_rs256.jwt");
const ID_TOKEN_ES256: &str = include_str!("../../bench/fixtures/id_token_es256.jwt");

/// Classifies error bodies; returns a bit set of what parsed.
#[unsafe(no_mangle)]
pub extern "C" fn check_error_bodies() -> u32 {
    let mut bits = 0;
    if OAuthErrorBody::parse(black_box(OAUTH_ERROR).as_bytes()).is_some() {
        bits |= 1;
    }
    if MatrixErrorBody::parse(black_box(MATRIX_ERROR).as_bytes()).is_some() {
        bits |= 2;
    }
    if let Some(response) = json_response(400, OAUTH_ERROR) {
        if error_from_response(&response).oauth_error().is_some() {
            bits |= 4;
        }
    }
    bits
}

/// Builds a form POST and round-trips a pending authorization through JSON; returns the body length.
#[unsafe(no_mangle)]
pub extern "C" fn check_requests() -> u32 {
    let mut rng = SeededRandom::new(black_box(7));
    let mut bytes = [0u8; 16];
    if rng.fill(&mut bytes).is_err() {
        return 0;
    }
    let Ok(url) = url::Url::parse(black_box("https://auth.example.org/token")) else {
        return 0;
    };
    let Ok(request) = OutgoingRequest::post_form(&url, [("grant_type", "refresh_token")]) else {
        return 0;
    };
    let stored = black_box(PENDING);
    let round_trip = serde_json::from_str::<PendingAuthorization>(stored)
        .ok()
        .and_then(|p| serde_json::to_string(&p).ok());
    (request.request.body().len() + round_trip.map_or(0, |s| s.len())) as u32 + u32::from(bytes[0])
}

const PENDING: &str = r#"{"state":"abc","issuer":"https://auth.example.org/","token_endpoint":"https://auth.example.org/token","client_id":"c","redirect_uri":"http://127.0.0.1/cb","code_verifier":"v","scope":"openid","response_mode":"query","created_at":1700000000}"#;
