//! ID-token validation and the key cache, end to end with the stand-in verifier. Real signatures
//! for every algorithm are tested in `matrix-oidc-jose`.

use super::jws::encode;
use super::verify::testing::{FakeVerifier, fake_sign};
use super::*;
use crate::{Secret, Timestamp};
use serde_json::{Value, json};
use std::time::Duration;
use url::Url;

const ISS: &str = "https://id.example";
const CLIENT: &str = "client-1";
const NOW: u64 = 1_700_000_000;

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(NOW)
}

fn key(seed: u8, kid: &str) -> Jwk {
    Jwk::ed25519(&[seed; 32]).unwrap().with_kid(kid)
}

fn base_claims() -> Value {
    json!({
        "iss": ISS, "sub": "user-1", "aud": CLIENT,
        "exp": NOW + 600, "iat": NOW - 10, "nonce": "n-123",
    })
}

fn sign_with(header: Value, claims: &Value, key: &Jwk, alg: JwsAlgorithm) -> String {
    let input = format!(
        "{}.{}",
        encode(header.to_string().as_bytes()),
        encode(claims.to_string().as_bytes())
    );
    let sig = fake_sign(alg, key, input.as_bytes());
    format!("{input}.{}", encode(&sig))
}

fn sign(claims: &Value, key: &Jwk) -> String {
    sign_with(
        json!({"alg": "EdDSA", "kid": key.kid(), "typ": "JWT"}),
        claims,
        key,
        JwsAlgorithm::EdDsa,
    )
}

fn expect() -> IdTokenExpectations {
    IdTokenExpectations::new(ISS, CLIENT, vec![JwsAlgorithm::EdDsa])
        .with_nonce(Secret::new("n-123"))
}

fn with(mut claims: Value, k: &str, v: Value) -> Value {
    if v.is_null() {
        claims.as_object_mut().unwrap().remove(k);
    } else {
        claims[k] = v;
    }
    claims
}

fn check(
    token: &str,
    e: &IdTokenExpectations,
    keys: &JwkSet,
) -> Result<IdTokenClaims, IdTokenError> {
    validate_id_token(token, e, keys, &FakeVerifier::default(), now())
}

#[test]
fn a_valid_token_yields_its_claims() {
    let k = key(1, "k1");
    let keys = JwkSet::from_keys(vec![k.clone()]);
    let c = check(&sign(&base_claims(), &k), &expect(), &keys).unwrap();
    assert_eq!((c.iss.as_str(), c.sub.as_str()), (ISS, "user-1"));
    assert_eq!(c.aud, [CLIENT]);
    assert_eq!(c.nonce, Some(Secret::new("n-123")));
}

#[test]
fn every_claim_failure_has_its_own_variant() {
    let k = key(1, "k1");
    let keys = JwkSet::from_keys(vec![k.clone()]);
    let e = expect();
    let run = |claims: Value| check(&sign(&claims, &k), &e, &keys);
    let b = base_claims;

    assert!(matches!(
        run(with(b(), "iss", json!("https://evil.example"))),
        Err(IdTokenError::IssuerMismatch { .. })
    ));
    assert!(matches!(
        run(with(b(), "aud", json!("someone-else"))),
        Err(IdTokenError::AudienceMismatch { .. })
    ));
    assert_eq!(
        run(with(b(), "aud", json!([CLIENT, "api"]))).unwrap_err(),
        IdTokenError::UntrustedAudience {
            audience: "api".into()
        }
    );
    let multi = with(b(), "aud", json!([CLIENT, "api"]));
    let trusting = expect().with_trusted_audience("api");
    assert_eq!(
        check(&sign(&multi, &k), &trusting, &keys).unwrap_err(),
        IdTokenError::MissingAuthorizedParty
    );
    let with_azp = with(multi.clone(), "azp", json!(CLIENT));
    assert!(check(&sign(&with_azp, &k), &trusting, &keys).is_ok());
    assert!(matches!(
        check(
            &sign(&with(multi, "azp", json!("api")), &k),
            &trusting,
            &keys
        ),
        Err(IdTokenError::AuthorizedPartyMismatch { .. })
    ));
    assert!(matches!(
        run(with(b(), "azp", json!("other"))),
        Err(IdTokenError::AuthorizedPartyMismatch { .. })
    ));

    // Times, with the default 60 s skew.
    assert!(run(with(b(), "exp", json!(NOW - 30))).is_ok());
    assert!(matches!(
        run(with(b(), "exp", json!(NOW - 60))),
        Err(IdTokenError::Expired { .. })
    ));
    assert!(run(with(b(), "iat", json!(NOW + 60))).is_ok());
    assert!(matches!(
        run(with(b(), "iat", json!(NOW + 61))),
        Err(IdTokenError::IssuedInFuture { .. })
    ));
    assert!(matches!(
        run(with(b(), "nbf", json!(NOW + 61))),
        Err(IdTokenError::NotYetValid { .. })
    ));
    assert!(run(with(b(), "nbf", json!(NOW + 59))).is_ok());
    let strict = expect().with_clock_skew(Duration::ZERO);
    assert!(matches!(
        check(&sign(&with(b(), "iat", json!(NOW + 1)), &k), &strict, &keys),
        Err(IdTokenError::IssuedInFuture { .. })
    ));
    let young = expect().with_max_token_age(Duration::from_secs(300));
    assert!(matches!(
        check(
            &sign(&with(b(), "iat", json!(NOW - 400)), &k),
            &young,
            &keys
        ),
        Err(IdTokenError::TooOld { .. })
    ));

    // Nonce.
    assert_eq!(
        run(with(b(), "nonce", Value::Null)).unwrap_err(),
        IdTokenError::MissingNonce
    );
    assert_eq!(
        run(with(b(), "nonce", json!("n-999"))).unwrap_err(),
        IdTokenError::NonceMismatch
    );
    let no_nonce_sent = IdTokenExpectations::new(ISS, CLIENT, vec![JwsAlgorithm::EdDsa]);
    assert!(
        check(
            &sign(&with(b(), "nonce", Value::Null), &k),
            &no_nonce_sent,
            &keys
        )
        .is_ok()
    );

    // max_age / auth_time.
    let max_age = expect().with_max_age(Duration::from_secs(3600));
    assert_eq!(
        check(&sign(&b(), &k), &max_age, &keys).unwrap_err(),
        IdTokenError::MissingAuthTime
    );
    assert!(matches!(
        check(
            &sign(&with(b(), "auth_time", json!(NOW - 7200)), &k),
            &max_age,
            &keys
        ),
        Err(IdTokenError::AuthenticationTooOld { .. })
    ));
    assert!(
        check(
            &sign(&with(b(), "auth_time", json!(NOW - 600)), &k),
            &max_age,
            &keys
        )
        .is_ok()
    );

    // Types.
    assert!(matches!(
        run(with(b(), "exp", json!("tomorrow"))),
        Err(IdTokenError::Claims(ClaimsError::Type(ClaimTypeError {
            claim: "exp",
            ..
        })))
    ));
    assert_eq!(
        run(with(b(), "sub", Value::Null)).unwrap_err(),
        IdTokenError::Claims(ClaimsError::Missing("sub"))
    );
}

#[test]
fn header_kinds_are_checked() {
    let k = key(1, "k1");
    let keys = JwkSet::from_keys(vec![k.clone()]);
    let t = sign_with(
        json!({"alg": "EdDSA", "kid": "k1", "typ": "at+jwt"}),
        &base_claims(),
        &k,
        JwsAlgorithm::EdDsa,
    );
    assert!(matches!(
        check(&t, &expect(), &keys),
        Err(IdTokenError::UnexpectedType { .. })
    ));
    let t = sign_with(
        json!({"alg": "EdDSA", "kid": "k1", "cty": "JWT"}),
        &base_claims(),
        &k,
        JwsAlgorithm::EdDsa,
    );
    assert!(matches!(
        check(&t, &expect(), &keys),
        Err(IdTokenError::Nested { .. })
    ));
    let t = sign_with(
        json!({"alg": "EdDSA", "kid": "k1", "typ": "jwt"}),
        &base_claims(),
        &k,
        JwsAlgorithm::EdDsa,
    );
    assert!(check(&t, &expect(), &keys).is_ok());
    let small = expect();
    let small = IdTokenExpectations {
        max_token_bytes: 64,
        ..small
    };
    assert!(matches!(
        check(&sign(&base_claims(), &k), &small, &keys),
        Err(IdTokenError::Malformed(JwsError::TooLarge { .. }))
    ));
}

#[test]
fn signature_failures_come_before_claims() {
    let k = key(1, "k1");
    let keys = JwkSet::from_keys(vec![k.clone()]);
    // Expired *and* signed by an unknown key: the signature is reported, not the expiry.
    let stranger = key(2, "k1");
    let t = sign(&with(base_claims(), "exp", json!(1)), &stranger);
    assert!(matches!(
        check(&t, &expect(), &keys),
        Err(IdTokenError::Signature(SignatureError::BadSignature { .. }))
    ));
    // Garbage claims under a bad signature are never parsed.
    let input = format!("{}.{}", encode(br#"{"alg":"EdDSA"}"#), encode(b"not json"));
    let t = format!("{input}.{}", encode(&[0u8; 64]));
    assert!(matches!(
        check(&t, &expect(), &keys),
        Err(IdTokenError::Signature(SignatureError::BadSignature { .. }))
    ));
}

#[test]
fn token_hashes() {
    // OpenID Connect Core 1.0 §A.3 / §A.4 (RS256, so SHA-256).
    assert_eq!(
        token_hash(
            HashAlgorithm::Sha256,
            "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
        ),
        "77QmUPtjPfzWtF2AnpK9RQ"
    );
    assert_eq!(
        token_hash(
            HashAlgorithm::Sha256,
            "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
        ),
        "LDktKdoQak3Pk0cnXxCltA"
    );
    assert_eq!(token_hash(HashAlgorithm::Sha384, "x").len(), 32);
    assert_eq!(token_hash(HashAlgorithm::Sha512, "x").len(), 43);

    let k = key(1, "k1");
    let keys = JwkSet::from_keys(vec![k.clone()]);
    let at = "access-token-value";
    let good = with(
        base_claims(),
        "at_hash",
        json!(token_hash(HashAlgorithm::Sha512, at)),
    );
    let e = expect().with_access_token(Secret::new(at));
    assert!(check(&sign(&good, &k), &e, &keys).is_ok());
    // SHA-256 for an EdDSA token is the wrong hash.
    let wrong = with(
        base_claims(),
        "at_hash",
        json!(token_hash(HashAlgorithm::Sha256, at)),
    );
    assert_eq!(
        check(&sign(&wrong, &k), &e, &keys).unwrap_err(),
        IdTokenError::AccessTokenHashMismatch
    );
    let c = with(base_claims(), "c_hash", json!("AAAAAAAAAAAAAAAAAAAAAA"));
    let e = expect().with_code(Secret::new("the-code"));
    assert_eq!(
        check(&sign(&c, &k), &e, &keys).unwrap_err(),
        IdTokenError::CodeHashMismatch
    );
}

#[test]
fn refreshed_tokens_keep_identity() {
    let k = key(1, "k1");
    let keys = JwkSet::from_keys(vec![k.clone()]);
    let v = FakeVerifier::default();
    let original = with(base_claims(), "auth_time", json!(NOW - 100));
    let prev = check(&sign(&original, &k), &expect(), &keys).unwrap();
    let refresh = |claims: Value| {
        // The refresh expectations carry no nonce: the original one comes from `prev`.
        let e = IdTokenExpectations::new(ISS, CLIENT, vec![JwsAlgorithm::EdDsa]);
        validate_refreshed_id_token(&sign(&claims, &k), &prev, &e, &keys, &v, now())
    };
    let fresh = with(original.clone(), "nonce", Value::Null);
    assert!(refresh(fresh.clone()).is_ok());
    assert!(refresh(original.clone()).is_ok());
    assert_eq!(
        refresh(with(original.clone(), "nonce", json!("other"))).unwrap_err(),
        IdTokenError::NonceChanged
    );
    assert_eq!(
        refresh(with(fresh.clone(), "sub", json!("user-2"))).unwrap_err(),
        IdTokenError::SubjectChanged
    );
    // iss must still match the expected issuer first, so use the trailing-slash form.
    assert!(matches!(
        refresh(with(fresh.clone(), "iss", json!("https://id.example/"))),
        Err(IdTokenError::IssuerChanged { .. })
    ));
    let e = IdTokenExpectations::new(ISS, CLIENT, vec![JwsAlgorithm::EdDsa])
        .with_trusted_audience("api");
    let two = with(
        with(fresh.clone(), "aud", json!([CLIENT, "api"])),
        "azp",
        json!(CLIENT),
    );
    assert!(matches!(
        validate_refreshed_id_token(&sign(&two, &k), &prev, &e, &keys, &v, now()),
        Err(IdTokenError::AudienceChanged { .. })
    ));
    assert_eq!(
        refresh(with(fresh.clone(), "auth_time", json!(NOW - 50))).unwrap_err(),
        IdTokenError::AuthTimeChanged
    );
    // The ordinary checks still apply.
    assert!(matches!(
        refresh(with(fresh, "exp", json!(NOW - 3600))),
        Err(IdTokenError::Expired { .. })
    ));
}

#[test]
fn issuer_comparison() {
    assert!(issuer_matches("https://id.example", "https://id.example"));
    assert!(issuer_matches("https://id.example/", "https://id.example"));
    assert!(issuer_matches("https://id.example", "https://id.example/"));
    assert!(!issuer_matches(
        "https://id.example/realm",
        "https://id.example/realm/"
    ));
    assert!(!issuer_matches("https://id.example", "https://ID.example"));
    assert!(!issuer_matches(
        "https://id.example",
        "https://id.example.evil"
    ));
    assert!(!issuer_matches(
        "https://id.example",
        "https://id.example//"
    ));
}

#[test]
fn algorithm_policy_from_metadata() {
    let md: crate::AuthorizationServerMetadata = serde_json::from_value(json!({
        "issuer": "https://id.example/",
        "authorization_endpoint": "https://id.example/auth",
        "token_endpoint": "https://id.example/token",
        "jwks_uri": "https://id.example/jwks",
        "id_token_signing_alg_values_supported": ["none", "HS256", "ES384"],
    }))
    .unwrap();
    let e = IdTokenExpectations::from_metadata(&md, CLIENT, None).unwrap();
    assert_eq!(e.algorithms, [JwsAlgorithm::Es384]);
    assert_eq!(e.issuer, "https://id.example/");
    assert_eq!(
        IdTokenExpectations::from_metadata(&md, CLIENT, Some("none")).unwrap_err(),
        AlgorithmPolicyError::Unsecured
    );
    assert!(matches!(
        IdTokenExpectations::from_metadata(&md, CLIENT, Some("HS256")),
        Err(AlgorithmPolicyError::Symmetric { .. })
    ));
    assert!(matches!(
        IdTokenExpectations::from_metadata(&md, CLIENT, Some("ES512")),
        Err(AlgorithmPolicyError::Unsupported { .. })
    ));
    assert!(matches!(
        id_token_algorithms(None, Some(&["HS256".into(), "none".into()])),
        Err(AlgorithmPolicyError::NoUsableAlgorithm { .. })
    ));
    assert_eq!(
        id_token_algorithms(None, None).unwrap(),
        [JwsAlgorithm::Rs256]
    );

    // A token in a registered-for algorithm other than what the token says is refused even when
    // the key would fit.
    let k = key(1, "k1");
    let keys = JwkSet::from_keys(vec![k.clone()]);
    let rs_only = IdTokenExpectations::new(ISS, CLIENT, vec![JwsAlgorithm::Rs256]);
    assert!(matches!(
        check(
            &sign(&with(base_claims(), "nonce", Value::Null), &k),
            &rs_only,
            &keys
        ),
        Err(IdTokenError::Signature(
            SignatureError::AlgorithmNotAllowed { .. }
        ))
    ));
}

// ---- the key cache and the validation driver ----

fn jwks_response(keys: &[&Jwk], cache_control: Option<&str>) -> http::Response<Vec<u8>> {
    let body = json!({ "keys": keys.iter().map(|k| k.to_value()).collect::<Vec<_>>() });
    let mut b = http::Response::builder()
        .status(200)
        .header("content-type", "application/jwk-set+json")
        .header("etag", "\"v1\"");
    if let Some(cc) = cache_control {
        b = b.header("cache-control", cc);
    }
    b.body(body.to_string().into_bytes()).unwrap()
}

fn cache() -> JwksCache {
    JwksCache::new(Url::parse("https://id.example/jwks").unwrap())
}

/// Runs the driver against a fake provider that serves `served()` and counts fetches.
fn drive(
    cache: &mut JwksCache,
    token: &str,
    at: Timestamp,
    served: &dyn Fn() -> http::Response<Vec<u8>>,
    fetches: &mut usize,
) -> Result<IdTokenClaims, IdTokenError> {
    let e = expect();
    let mut v = IdTokenValidation::new(token);
    loop {
        match v.poll(cache, &e, &FakeVerifier::default(), at)? {
            ValidationStep::Fetch(req) => {
                assert_eq!(req.url(), "https://id.example/jwks");
                *fetches += 1;
                cache.handle_response(&served(), at)?;
            }
            ValidationStep::Done(c) => return Ok(c),
        }
    }
}

#[test]
fn the_cache_fetches_when_empty_or_stale() {
    let k1 = key(1, "k1");
    let mut c = cache();
    let mut fetches = 0;
    let serve = || jwks_response(&[&k1], Some("max-age=600"));
    let t = sign(&base_claims(), &k1);
    drive(&mut c, &t, now(), &serve, &mut fetches).unwrap();
    assert_eq!(fetches, 1);
    // Fresh: no fetch.
    drive(
        &mut c,
        &t,
        now() + Duration::from_secs(599),
        &serve,
        &mut fetches,
    )
    .unwrap();
    assert_eq!(fetches, 1);
    // Stale: one fetch. (The token itself is still valid thanks to its exp.)
    drive(
        &mut c,
        &t,
        now() + Duration::from_secs(600),
        &serve,
        &mut fetches,
    )
    .unwrap();
    assert_eq!(fetches, 2);
    assert_eq!(c.expires_at(), Some(now() + Duration::from_secs(1200)));
}

#[test]
fn an_unknown_kid_refetches_once_and_is_throttled() {
    let (k1, k2) = (key(1, "k1"), key(2, "k2"));
    let mut c = cache();
    let mut fetches = 0;
    let old = || jwks_response(&[&k1], None);
    let new = || jwks_response(&[&k1, &k2], None);
    drive(
        &mut c,
        &sign(&base_claims(), &k1),
        now(),
        &old,
        &mut fetches,
    )
    .unwrap();
    assert_eq!(fetches, 1);

    let rotated = sign(&base_claims(), &k2);
    let at = now() + Duration::from_secs(120);
    // Before the refetch the kid is unknown; the refetch finds it.
    assert!(
        validate_id_token(
            &rotated,
            &expect(),
            c.keys().unwrap(),
            &FakeVerifier::default(),
            at
        )
        .unwrap_err()
        .is_unknown_key()
    );
    drive(&mut c, &rotated, at, &new, &mut fetches).unwrap();
    assert_eq!(fetches, 2);

    // A kid that is still unknown after the refetch fails…
    let k3 = key(3, "k3");
    let stray = sign(&base_claims(), &k3);
    let at = at + Duration::from_secs(61);
    let err = drive(&mut c, &stray, at, &new, &mut fetches).unwrap_err();
    assert!(err.is_unknown_key(), "{err:?}");
    assert_eq!(fetches, 3);
    // …and within the minimum interval no further refetch happens.
    let err = drive(
        &mut c,
        &stray,
        at + Duration::from_secs(59),
        &new,
        &mut fetches,
    )
    .unwrap_err();
    assert!(err.is_unknown_key());
    assert_eq!(fetches, 3);
    let err = drive(
        &mut c,
        &stray,
        at + Duration::from_secs(60),
        &new,
        &mut fetches,
    )
    .unwrap_err();
    assert!(err.is_unknown_key());
    assert_eq!(fetches, 4);
}

#[test]
fn cache_response_handling() {
    let k1 = key(1, "k1");
    let mut c = cache();
    // Nothing cached: a 304 is an error, a failure keeps nothing.
    let not_modified = http::Response::builder()
        .status(304)
        .body(Vec::new())
        .unwrap();
    assert!(matches!(
        c.handle_response(&not_modified, now()),
        Err(JwksError::NotModifiedWithoutCache { .. })
    ));
    let html = http::Response::builder()
        .status(200)
        .header("content-type", "text/html")
        .body(b"<html>".to_vec())
        .unwrap();
    assert!(matches!(
        c.handle_response(&html, now()),
        Err(JwksError::Response { .. })
    ));
    let only_hmac = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.to_vec())
        .unwrap();
    assert!(matches!(
        c.handle_response(&only_hmac, now()),
        Err(JwksError::NoUsableKeys { ignored, .. }) if ignored.len() == 1
    ));
    let dup = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(br#"{"keys":[],"keys":[]}"#.to_vec())
        .unwrap();
    assert!(matches!(
        c.handle_response(&dup, now()),
        Err(JwksError::Invalid { .. })
    ));
    let server_error = http::Response::builder()
        .status(503)
        .body(b"busy".to_vec())
        .unwrap();
    assert!(matches!(
        c.handle_response(&server_error, now()),
        Err(JwksError::Response { .. })
    ));
    assert!(c.keys().is_none());

    // Clamping: no-cache is raised to the floor, a year is cut to the ceiling.
    c.handle_response(&jwks_response(&[&k1], Some("no-cache")), now())
        .unwrap();
    assert_eq!(c.expires_at(), Some(now() + Duration::from_secs(60)));
    c.handle_response(&jwks_response(&[&k1], Some("max-age=31536000")), now())
        .unwrap();
    assert_eq!(c.expires_at(), Some(now() + Duration::from_secs(24 * 3600)));

    // Conditional refetch with the ETag, and 304 revalidates.
    let req = c.fetch_request().unwrap();
    assert_eq!(req.request.headers()["if-none-match"], "\"v1\"");
    let later = now() + Duration::from_secs(30 * 3600);
    let not_modified = http::Response::builder()
        .status(304)
        .header("cache-control", "max-age=120")
        .body(Vec::new())
        .unwrap();
    c.handle_response(&not_modified, later).unwrap();
    assert_eq!(c.expires_at(), Some(later + Duration::from_secs(120)));
    assert_eq!(c.keys().unwrap().keys(), std::slice::from_ref(&k1));

    // Oversized bodies are refused.
    let small = JwksCacheConfig {
        max_body_bytes: 16,
        ..Default::default()
    };
    let mut c2 = cache().with_config(small);
    assert!(matches!(
        c2.handle_response(&jwks_response(&[&k1], None), now()),
        Err(JwksError::Response {
            error: crate::ResponseError::BodyTooLarge { .. },
            ..
        })
    ));
}

#[test]
fn the_cache_persists() {
    let k1 = key(1, "k1");
    let mut c = cache();
    c.handle_response(&jwks_response(&[&k1], Some("max-age=600")), now())
        .unwrap();
    let stored = serde_json::to_string(&c).unwrap();
    let back: JwksCache = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, c);
    assert!(back.is_fresh(now()));
    assert!(!back.may_refetch(now() + Duration::from_secs(59)));
}

#[test]
fn the_driver_reports_fetch_failures() {
    let mut c = cache();
    let t = sign(&base_claims(), &key(1, "k1"));
    let broken = || {
        http::Response::builder()
            .status(500)
            .body(Vec::new())
            .unwrap()
    };
    let mut fetches = 0;
    let err = drive(&mut c, &t, now(), &broken, &mut fetches).unwrap_err();
    assert!(matches!(
        err,
        IdTokenError::KeySet(JwksError::Response { .. })
    ));
    // Polling again after a failed fetch does not loop: no keys is an error.
    let mut v = IdTokenValidation::new(&t);
    assert!(matches!(
        v.poll(&mut c, &expect(), &FakeVerifier::default(), now()),
        Ok(ValidationStep::Fetch(_))
    ));
    assert!(matches!(
        v.poll(&mut c, &expect(), &FakeVerifier::default(), now()),
        Err(IdTokenError::KeySet(JwksError::NotFetched { .. }))
    ));
}

#[test]
fn the_nonce_comes_from_the_pending_authorization() {
    let pending: crate::PendingAuthorization = serde_json::from_value(json!({
        "state": "s", "issuer": "https://id.example/", "token_endpoint": "https://id.example/token",
        "client_id": CLIENT, "redirect_uri": "http://127.0.0.1/cb", "code_verifier": "v",
        "nonce": "n-123", "scope": "openid", "response_mode": "query", "created_at": 0,
    }))
    .unwrap();
    let e = IdTokenExpectations::new(ISS, CLIENT, vec![JwsAlgorithm::EdDsa])
        .with_pending_nonce(&pending);
    assert_eq!(e.nonce, Some(Secret::new("n-123")));
    let k = key(1, "k1");
    let keys = JwkSet::from_keys(vec![k.clone()]);
    assert!(check(&sign(&base_claims(), &k), &e, &keys).is_ok());
    assert_eq!(
        check(
            &sign(&with(base_claims(), "nonce", json!("x")), &k),
            &e,
            &keys
        )
        .unwrap_err(),
        IdTokenError::NonceMismatch
    );
}
