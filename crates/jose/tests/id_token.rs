//! ID-token validation end to end with real signatures, on each backend: every algorithm
//! accepted, and every rejection path a relying party relies on.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use hmac::Mac as _;
use matrix_oidc_core::oidc::{
    HashAlgorithm, IdTokenClaims, IdTokenError, IdTokenExpectations, IdTokenValidation, JwkSet,
    JwksCache, JwsAlgorithm, KeyMismatch, SignatureError, ValidationStep, token_hash,
    validate_id_token, validate_refreshed_id_token,
};
use matrix_oidc_core::{Secret, Timestamp};
use serde_json::{Value, json};
use std::time::Duration;

const ISS: &str = "https://op.example/realm";
const CLIENT: &str = "matrix-client";
const NOW: u64 = 1_750_000_000;
const NONCE: &str = "YqVf7Tw3xG1nQ";

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(NOW)
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "248289761001", "aud": CLIENT, "nonce": NONCE,
        "exp": NOW + 300, "iat": NOW - 5, "email": "janedoe@example.com",
    })
}

fn set(mut c: Value, k: &str, v: Value) -> Value {
    if v.is_null() {
        c.as_object_mut().unwrap().remove(k);
    } else {
        c[k] = v;
    }
    c
}

fn expect(alg: JwsAlgorithm) -> IdTokenExpectations {
    IdTokenExpectations::new(ISS, CLIENT, vec![alg]).with_nonce(Secret::new(NONCE))
}

fn validate(
    token: &str,
    e: &IdTokenExpectations,
    keys: &JwkSet,
    v: Verifier<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    validate_id_token(token, e, keys, v, now())
}

fn every_algorithm_validates(v: Verifier<'_>) {
    for alg in JwsAlgorithm::ALL {
        let s = Signer::for_alg(alg, 11, "key-1");
        let keys = JwkSet::from_keys(vec![s.jwk.clone()]);
        let at = "SlAV32hkKG";
        let c = set(claims(), "at_hash", json!(token_hash(alg.hash(), at)));
        let got = validate(
            &s.token(alg, &c),
            &expect(alg).with_access_token(Secret::new(at)),
            &keys,
            v,
        )
        .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(got.sub, "248289761001");
        assert_eq!(got.profile.email.as_deref(), Some("janedoe@example.com"));
    }
}

fn signature_and_algorithm_rejections(v: Verifier<'_>) {
    let rsa = Signer::rsa(21, "rsa-1");
    let ec = Signer::p256(22, "ec-1");
    let keys = JwkSet::from_keys(vec![rsa.jwk.clone(), ec.jwk.clone()]);
    let e = IdTokenExpectations::new(ISS, CLIENT, vec![JwsAlgorithm::Rs256, JwsAlgorithm::Es256])
        .with_nonce(Secret::new(NONCE));

    // Bad signature: another RSA key, labelled with the trusted kid.
    let impostor = Signer::rsa(23, "rsa-1");
    assert_eq!(
        validate(
            &impostor.token(JwsAlgorithm::Rs256, &claims()),
            &e,
            &keys,
            v
        )
        .unwrap_err(),
        IdTokenError::Signature(SignatureError::BadSignature { tried: 1 })
    );

    // Wrong key type: an ES256 token naming the RSA key.
    let t = ec.token_with_header(
        JwsAlgorithm::Es256,
        json!({"alg": "ES256", "kid": "rsa-1"}),
        &claims(),
    );
    assert!(matches!(
        validate(&t, &e, &keys, v),
        Err(IdTokenError::Signature(SignatureError::IncompatibleKey {
            mismatch: KeyMismatch::KeyType { .. },
            ..
        }))
    ));

    // alg mismatch: the client registered RS256 only; a valid ES256 token is refused.
    let rs_only = expect(JwsAlgorithm::Rs256);
    assert!(matches!(
        validate(
            &ec.token(JwsAlgorithm::Es256, &claims()),
            &rs_only,
            &keys,
            v
        ),
        Err(IdTokenError::Signature(
            SignatureError::AlgorithmNotAllowed {
                alg: JwsAlgorithm::Es256,
                ..
            }
        ))
    ));
    // …and a header claiming PS256 over an RS256 signature does not verify either.
    let ps = expect(JwsAlgorithm::Ps256);
    let t = rsa.token_with_header(
        JwsAlgorithm::Rs256,
        json!({"alg": "PS256", "kid": "rsa-1"}),
        &claims(),
    );
    assert!(matches!(
        validate(&t, &ps, &keys, v),
        Err(IdTokenError::Signature(SignatureError::BadSignature { .. }))
    ));

    // alg: none, with or without a signature part.
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims().to_string().as_bytes())
    );
    assert!(matches!(
        validate(&unsigned, &e, &keys, v),
        Err(IdTokenError::Malformed(_))
    ));
    assert_eq!(
        validate(&format!("{unsigned}c2ln"), &e, &keys, v).unwrap_err(),
        IdTokenError::Signature(SignatureError::Unsecured)
    );

    // HS256 keyed with the RSA public key (every encoding an attacker might guess): refused before
    // any key is looked at.
    let header = b64(br#"{"alg":"HS256","kid":"rsa-1"}"#);
    let input = format!("{header}.{}", b64(claims().to_string().as_bytes()));
    let jwk_json = serde_json::to_vec(&rsa.jwk).unwrap();
    let matrix_oidc_core::oidc::JwkKey::Rsa(public) = rsa.jwk.key() else {
        unreachable!()
    };
    for secret in [jwk_json.as_slice(), public.modulus()] {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(input.as_bytes());
        let t = format!("{input}.{}", b64(&mac.finalize().into_bytes()));
        assert_eq!(
            validate(&t, &e, &keys, v).unwrap_err(),
            IdTokenError::Signature(SignatureError::SymmetricAlgorithm {
                alg: "HS256".into()
            })
        );
    }
}

fn claim_rejections(v: Verifier<'_>) {
    let alg = JwsAlgorithm::Es256;
    let s = Signer::p256(31, "k");
    let keys = JwkSet::from_keys(vec![s.jwk.clone()]);
    let e = expect(alg);
    let run = |c: Value| validate(&s.token(alg, &c), &e, &keys, v);

    assert!(matches!(
        run(set(claims(), "exp", json!(NOW - 61))),
        Err(IdTokenError::Expired { .. })
    ));
    assert!(matches!(
        run(set(claims(), "iat", json!(NOW + 3600))),
        Err(IdTokenError::IssuedInFuture { .. })
    ));
    assert!(matches!(
        run(set(claims(), "nbf", json!(NOW + 3600))),
        Err(IdTokenError::NotYetValid { .. })
    ));
    assert!(matches!(
        run(set(claims(), "aud", json!("another-client"))),
        Err(IdTokenError::AudienceMismatch { .. })
    ));
    let trusting = expect(alg).with_trusted_audience("api");
    assert_eq!(
        validate(
            &s.token(alg, &set(claims(), "aud", json!([CLIENT, "api"]))),
            &trusting,
            &keys,
            v
        )
        .unwrap_err(),
        IdTokenError::MissingAuthorizedParty
    );
    assert_eq!(
        run(set(claims(), "nonce", json!("replayed"))).unwrap_err(),
        IdTokenError::NonceMismatch
    );
    assert_eq!(
        run(set(claims(), "nonce", Value::Null)).unwrap_err(),
        IdTokenError::MissingNonce
    );
    assert!(matches!(
        run(set(claims(), "iss", json!("https://op.example/other"))),
        Err(IdTokenError::IssuerMismatch { .. })
    ));
    let with_at = expect(alg).with_access_token(Secret::new("the-access-token"));
    let c = set(
        claims(),
        "at_hash",
        json!(token_hash(HashAlgorithm::Sha256, "another-access-token")),
    );
    assert_eq!(
        validate(&s.token(alg, &c), &with_at, &keys, v).unwrap_err(),
        IdTokenError::AccessTokenHashMismatch
    );
}

fn duplicate_kids_and_rotation(v: Verifier<'_>) {
    let alg = JwsAlgorithm::Rs256;
    // Two RSA keys and an EC key share one kid; each token finds its own key.
    let (r1, r2, ec) = (
        Signer::rsa(41, "shared"),
        Signer::rsa(42, "shared"),
        Signer::p256(43, "shared"),
    );
    let keys = JwkSet::from_keys(vec![r1.jwk.clone(), ec.jwk.clone(), r2.jwk.clone()]);
    let e = IdTokenExpectations::new(ISS, CLIENT, vec![alg, JwsAlgorithm::Es256]);
    for s in [&r1, &r2] {
        assert!(validate(&s.token(alg, &claims()), &e, &keys, v).is_ok());
    }
    assert!(validate(&ec.token(JwsAlgorithm::Es256, &claims()), &e, &keys, v).is_ok());
    let stranger = Signer::rsa(44, "shared");
    assert_eq!(
        validate(&stranger.token(alg, &claims()), &e, &keys, v).unwrap_err(),
        IdTokenError::Signature(SignatureError::BadSignature { tried: 2 })
    );
}

fn jwks_response(keys: &[&Signer]) -> http::Response<Vec<u8>> {
    let body = json!({"keys": keys.iter().map(|s| s.jwk.to_value()).collect::<Vec<_>>()});
    http::Response::builder()
        .header("content-type", "application/json")
        .header("cache-control", "max-age=300")
        .body(body.to_string().into_bytes())
        .unwrap()
}

fn run_with_cache(
    cache: &mut JwksCache,
    token: &str,
    e: &IdTokenExpectations,
    v: Verifier<'_>,
    at: Timestamp,
    serve: &[&Signer],
    fetches: &mut u32,
) -> Result<IdTokenClaims, IdTokenError> {
    let mut validation = IdTokenValidation::new(token);
    loop {
        match validation.poll(cache, e, v, at)? {
            ValidationStep::Fetch(_) => {
                *fetches += 1;
                cache.handle_response(&jwks_response(serve), at)?;
            }
            ValidationStep::Done(c) => return Ok(c),
        }
    }
}

fn unknown_kid_refetch_and_throttle(v: Verifier<'_>) {
    let alg = JwsAlgorithm::EdDsa;
    let (old, new, bogus) = (
        Signer::ed25519(51, "2024"),
        Signer::ed25519(52, "2025"),
        Signer::ed25519(53, "made-up"),
    );
    let e = IdTokenExpectations::new(ISS, CLIENT, vec![alg]);
    let mut cache = JwksCache::new(url::Url::parse("https://op.example/jwks").unwrap());
    let mut fetches = 0;
    run_with_cache(
        &mut cache,
        &old.token(alg, &claims()),
        &e,
        v,
        now(),
        &[&old],
        &mut fetches,
    )
    .unwrap();
    assert_eq!(fetches, 1);

    // The provider rotates; the cached set does not know the new kid until the refetch.
    let at = now() + Duration::from_secs(90);
    let rotated = new.token(alg, &claims());
    assert!(
        validate_id_token(&rotated, &e, cache.keys().unwrap(), v, at)
            .unwrap_err()
            .is_unknown_key()
    );
    run_with_cache(&mut cache, &rotated, &e, v, at, &[&old, &new], &mut fetches).unwrap();
    assert_eq!(fetches, 2);

    // Unknown after the refetch too: an error, and no new fetch within the interval.
    let forged = bogus.token(alg, &claims());
    let later = at + Duration::from_secs(61);
    let err = run_with_cache(
        &mut cache,
        &forged,
        &e,
        v,
        later,
        &[&old, &new],
        &mut fetches,
    )
    .unwrap_err();
    assert!(err.is_unknown_key());
    assert_eq!(fetches, 3);
    for _ in 0..5 {
        let err = run_with_cache(
            &mut cache,
            &forged,
            &e,
            v,
            later,
            &[&old, &new],
            &mut fetches,
        )
        .unwrap_err();
        assert!(err.is_unknown_key());
    }
    assert_eq!(fetches, 3, "refetches are throttled");
}

/// Backends keep a parsed form of each key with the key set (`Jwk::with_prepared`): a rotation
/// that reuses a `kid` for a new key must verify with the new key, never the old key's form.
fn rotation_reusing_a_kid_uses_the_new_key(v: Verifier<'_>) {
    for (alg, seeds) in [
        (JwsAlgorithm::Rs256, [61, 62]),
        (JwsAlgorithm::Ps384, [63, 64]),
        (JwsAlgorithm::Es256, [65, 66]),
        (JwsAlgorithm::Es384, [67, 68]),
        (JwsAlgorithm::EdDsa, [69, 70]),
    ] {
        let old = Signer::for_alg(alg, seeds[0], "k");
        let new = Signer::for_alg(alg, seeds[1], "k");
        let e = IdTokenExpectations::new(ISS, CLIENT, vec![alg]);
        let mut cache = JwksCache::new(url::Url::parse("https://op.example/jwks").unwrap());
        let (old_token, new_token) = (old.token(alg, &claims()), new.token(alg, &claims()));
        let mut fetches = 0;
        for _ in 0..2 {
            run_with_cache(&mut cache, &old_token, &e, v, now(), &[&old], &mut fetches).unwrap();
        }
        assert_eq!(fetches, 1, "{alg}");
        // The set is refetched when stale; the provider now serves the new key under "k".
        let later = now() + Duration::from_secs(301);
        for _ in 0..2 {
            run_with_cache(&mut cache, &new_token, &e, v, later, &[&new], &mut fetches).unwrap();
        }
        assert_eq!(fetches, 2, "{alg}");
        assert_eq!(
            validate_id_token(&old_token, &e, cache.keys().unwrap(), v, later).unwrap_err(),
            IdTokenError::Signature(SignatureError::BadSignature { tried: 1 }),
            "{alg}"
        );
    }
}

fn refresh_keeps_identity(v: Verifier<'_>) {
    let alg = JwsAlgorithm::Ps256;
    let s = Signer::rsa(61, "k");
    let keys = JwkSet::from_keys(vec![s.jwk.clone()]);
    let first = validate(&s.token(alg, &claims()), &expect(alg), &keys, v).unwrap();
    let e = IdTokenExpectations::new(ISS, CLIENT, vec![alg]);
    let refreshed = set(claims(), "nonce", Value::Null);
    assert!(
        validate_refreshed_id_token(&s.token(alg, &refreshed), &first, &e, &keys, v, now()).is_ok()
    );
    assert_eq!(
        validate_refreshed_id_token(
            &s.token(alg, &set(refreshed, "sub", json!("someone-else"))),
            &first,
            &e,
            &keys,
            v,
            now()
        )
        .unwrap_err(),
        IdTokenError::SubjectChanged
    );
}

fn hostile_input_never_panics(v: Verifier<'_>) {
    let alg = JwsAlgorithm::Es256;
    let s = Signer::p256(71, "k");
    let keys = JwkSet::from_keys(vec![s.jwk.clone()]);
    let e = expect(alg);
    let token = s.token(alg, &claims());
    // Oversized.
    let huge = format!("{token}{}", "A".repeat(70_000));
    assert!(matches!(
        validate(&huge, &e, &keys, v),
        Err(IdTokenError::Malformed(_))
    ));
    // Every prefix and many single-byte substitutions.
    for end in (0..token.len()).step_by(7) {
        assert!(validate(&token[..end], &e, &keys, v).is_err());
    }
    let bytes = token.as_bytes();
    for i in (0..bytes.len()).step_by(3) {
        for r in [b'.', b'=', b'+', b'A', b'_', b'{'] {
            let mut m = bytes.to_vec();
            if m[i] == r {
                continue;
            }
            m[i] = r;
            let m = String::from_utf8(m).unwrap();
            assert!(
                validate(&m, &e, &keys, v).is_err(),
                "accepted a mutation at {i}"
            );
        }
    }
    // Well-signed but malformed JSON payloads.
    for payload in ["", "null", "[]", "{", r#"{"iss":"a","iss":"b"}"#, "\u{0}"] {
        let input = format!(
            "{}.{}",
            b64(br#"{"alg":"ES256","kid":"k"}"#),
            b64(payload.as_bytes())
        );
        let t = format!("{input}.{}", b64(&s.sign(alg, input.as_bytes())));
        assert!(
            matches!(validate(&t, &e, &keys, v), Err(IdTokenError::Malformed(_))),
            "{payload:?}"
        );
    }
}

for_each_backend!(
    every_algorithm_validates,
    signature_and_algorithm_rejections,
    claim_rejections,
    duplicate_kids_and_rotation,
    unknown_kid_refetch_and_throttle,
    rotation_reusing_a_kid_uses_the_new_key,
    refresh_keeps_identity,
    hostile_input_never_panics,
);
