//! Published JWS examples: RFC 7515 appendix A, RFC 7520 §4, RFC 8037 appendix A. Each runs
//! against both backends through the core's `verify_jws`, so key parsing, algorithm policy and
//! the primitive are exercised together.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use matrix_oidc_core::oidc::{
    CompactJws, EcCurve, Jwk, JwkSet, JwsAlgorithm, SignatureError, verify_jws,
};

const RFC7515_RS256: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const RFC7515_RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const RFC7515_ES256: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
const RFC7515_EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const RFC7515_EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const RFC7515_HS256: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC7515_NONE: &str = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";

const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_EDDSA: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

const FRODO: &str = "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4";
const RFC7520_RS256_HEADER: &str =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";
const RFC7520_RS256_SIG: &str = "MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg";
const RFC7520_PS384_HEADER: &str =
    "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9";
const RFC7520_PS384_SIG: &str = "cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O8TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJRmBqrYRXe8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT0qI0n6uiP1aCN_2_jLAeQTlqRHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw";
const RFC7520_ES512: &str = "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9.SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJAQy3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2";
const RFC7520_HS256: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9.SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0";

const ALL: &[JwsAlgorithm] = &JwsAlgorithm::ALL;

fn set(jwks: &str) -> JwkSet {
    let set = JwkSet::from_json(jwks.as_bytes()).unwrap();
    assert!(set.ignored().is_empty(), "{:?}", set.ignored());
    set
}

fn verify(token: &str, keys: &JwkSet, v: Verifier<'_>) -> Result<JwsAlgorithm, SignatureError> {
    let jws = CompactJws::parse(token).unwrap();
    verify_jws(&jws, keys, ALL, v).map(|(a, _)| a)
}

/// Flips one bit of the signature's first byte.
fn tampered(token: &str) -> String {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let mut sig = unb64(sig);
    sig[0] ^= 1;
    format!("{input}.{}", b64(&sig))
}

fn rfc7515_a2_rs256(v: Verifier<'_>) {
    let keys = set(&format!(
        r#"{{"keys":[{{"kty":"RSA","n":"{RFC7515_RSA_N}","e":"AQAB"}}]}}"#
    ));
    assert_eq!(verify(RFC7515_RS256, &keys, v), Ok(JwsAlgorithm::Rs256));
    assert!(matches!(
        verify(&tampered(RFC7515_RS256), &keys, v),
        Err(SignatureError::BadSignature { tried: 1 })
    ));
}

fn rfc7515_a3_es256(v: Verifier<'_>) {
    let keys = set(&format!(
        r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{RFC7515_EC_X}","y":"{RFC7515_EC_Y}"}}]}}"#
    ));
    assert_eq!(verify(RFC7515_ES256, &keys, v), Ok(JwsAlgorithm::Es256));
    assert!(matches!(
        verify(&tampered(RFC7515_ES256), &keys, v),
        Err(SignatureError::BadSignature { .. })
    ));
}

fn rfc7515_a1_hs256_and_a5_none_are_refused(v: Verifier<'_>) {
    // Whatever keys are trusted, the symmetric and unsecured examples never verify.
    let keys = set(&format!(
        r#"{{"keys":[{{"kty":"RSA","n":"{RFC7515_RSA_N}","e":"AQAB"}}]}}"#
    ));
    assert!(matches!(
        verify(RFC7515_HS256, &keys, v),
        Err(SignatureError::SymmetricAlgorithm { .. })
    ));
    // The unsecured JWS has an empty signature, which the parser already refuses.
    assert!(CompactJws::parse(RFC7515_NONE).is_err());
    let forged = format!("{RFC7515_NONE}AAAA");
    assert_eq!(verify(&forged, &keys, v), Err(SignatureError::Unsecured));
}

fn rfc8037_a4_ed25519(v: Verifier<'_>) {
    let keys = set(&format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}"}}]}}"#
    ));
    assert_eq!(verify(RFC8037_EDDSA, &keys, v), Ok(JwsAlgorithm::EdDsa));
    assert!(matches!(
        verify(&tampered(RFC8037_EDDSA), &keys, v),
        Err(SignatureError::BadSignature { .. })
    ));
    // The same signature under the fully specified name of RFC 9864.
    let (_, rest) = RFC8037_EDDSA.split_once('.').unwrap();
    let renamed = format!("{}.{rest}", b64(br#"{"alg":"Ed25519"}"#));
    // The header is part of the signing input, so the old signature no longer matches…
    assert!(matches!(
        verify(&renamed, &keys, v),
        Err(SignatureError::BadSignature { .. })
    ));
    // …but the primitive itself accepts the RFC's signature for either name.
    let jws = CompactJws::parse(RFC8037_EDDSA).unwrap();
    v.verify(
        JwsAlgorithm::Ed25519,
        &keys.keys()[0],
        jws.signing_input(),
        jws.signature(),
    )
    .unwrap();
}

fn rfc7520_keys() -> JwkSet {
    set(&format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"bilbo.baggins@hobbiton.example","use":"sig","n":"{RFC7520_N}","e":"AQAB"}}]}}"#
    ))
}

fn rfc7520_4_1_rs256(v: Verifier<'_>) {
    let t = format!("{RFC7520_RS256_HEADER}.{FRODO}.{RFC7520_RS256_SIG}");
    assert_eq!(verify(&t, &rfc7520_keys(), v), Ok(JwsAlgorithm::Rs256));
    // RSASSA-PKCS1-v1_5 is deterministic: signing the same input with the RFC's private key
    // reproduces the RFC's signature byte for byte.
    let signer = Signer::rsa_rfc7520();
    let input = format!("{RFC7520_RS256_HEADER}.{FRODO}");
    assert_eq!(
        b64(&signer.sign(JwsAlgorithm::Rs256, input.as_bytes())),
        RFC7520_RS256_SIG
    );
}

fn rfc7520_4_2_ps384(v: Verifier<'_>) {
    let t = format!("{RFC7520_PS384_HEADER}.{FRODO}.{RFC7520_PS384_SIG}");
    assert_eq!(verify(&t, &rfc7520_keys(), v), Ok(JwsAlgorithm::Ps384));
    assert!(matches!(
        verify(&tampered(&t), &rfc7520_keys(), v),
        Err(SignatureError::BadSignature { .. })
    ));
}

fn rfc7520_4_3_es512_and_4_4_hs256_are_refused(v: Verifier<'_>) {
    let keys = rfc7520_keys();
    assert_eq!(
        verify(RFC7520_ES512, &keys, v),
        Err(SignatureError::UnsupportedAlgorithm {
            alg: "ES512".into()
        })
    );
    assert!(matches!(
        verify(RFC7520_HS256, &keys, v),
        Err(SignatureError::SymmetricAlgorithm { .. })
    ));
    // The P-521 key of RFC 7520 §3.1 is ignored with a reason, not an error.
    let p521 = JwkSet::from_json(br#"{"keys":[{"kty":"EC","kid":"bilbo.baggins@hobbiton.example","use":"sig","crv":"P-521","x":"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt","y":"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"}]}"#).unwrap();
    assert!(p521.is_empty());
    assert_eq!(p521.ignored().len(), 1);
}

fn a_curve_point_off_the_curve_never_verifies(v: Verifier<'_>) {
    // RFC 7515's P-256 key with y changed: a well-sized point that is not on the curve.
    let mut y = unb64(RFC7515_EC_Y);
    y[31] ^= 1;
    let bad = Jwk::ec(EcCurve::P256, &unb64(RFC7515_EC_X), &y).unwrap();
    let keys = JwkSet::from_keys(vec![bad]);
    let err = verify(RFC7515_ES256, &keys, v).unwrap_err();
    assert!(
        matches!(
            err,
            SignatureError::Verifier(_) | SignatureError::BadSignature { .. }
        ),
        "{err:?}"
    );
    // A key that failed to parse is not remembered as usable: the same answer every time.
    assert_eq!(verify(RFC7515_ES256, &keys, v).unwrap_err(), err);
}

for_each_backend!(
    rfc7515_a2_rs256,
    rfc7515_a3_es256,
    rfc7515_a1_hs256_and_a5_none_are_refused,
    rfc8037_a4_ed25519,
    rfc7520_4_1_rs256,
    rfc7520_4_2_ps384,
    rfc7520_4_3_es512_and_4_4_hs256_are_refused,
    a_curve_point_off_the_curve_never_verifies,
);
