//! The operations, each with our call and the closest equivalent with `openidconnect` / `oauth2`.
//!
//! Both sides start from the same bytes and do the work an application needs at that step; where the
//! anchors have no API for a step, the reference is what an application would write with them, and
//! the label says so.

use crate::{Contender, Operation, Target};
use matrix_oidc_bench as fx;
use matrix_oidc_core::callback::CallbackResponse;
use matrix_oidc_core::metadata::ValidationOptions;
use matrix_oidc_core::oidc::{
    EcCurve, IdTokenClaims, IdTokenExpectations, JwkKey, JwkSet, JwsAlgorithm, JwsVerifier,
    validate_id_token,
};
use matrix_oidc_core::{
    AuthorizationRequest, AuthorizationServerMetadata, DeviceId, OsRandom, PendingAuthorization,
    RandomPool, ResponseMode, Scope, SeededRandom, Timestamp, TokenRequest,
};
use matrix_oidc_jose::{RingVerifier, RustCryptoVerifier};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier,
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl,
};
use std::collections::HashMap;
use std::str::FromStr;
use url::Url;

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(fx::NOW)
}

/// The fixture metadata, validated as an application gets it from discovery.
fn metadata() -> AuthorizationServerMetadata {
    AuthorizationServerMetadata::from_json(
        fx::DISCOVERY.as_bytes(),
        &ValidationOptions::matrix(),
        None,
    )
    .expect("the discovery fixture is valid")
}

fn json_response(body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body.as_bytes().to_vec())
        .expect("valid response")
}

/// A pending authorization for the fixture device, built with a seeded RNG.
fn pending(seed: u64) -> PendingAuthorization {
    let md = metadata();
    let scope = Scope::matrix(DeviceId::parse(fx::DEVICE_ID).expect("device id"))
        .build()
        .expect("scope");
    AuthorizationRequest::new(
        &md,
        fx::CLIENT_ID,
        Url::parse(fx::REDIRECT_URI).expect("redirect URI"),
        scope,
    )
    .build(now(), &mut SeededRandom::new(seed))
    .expect("authorization request")
    .pending
}

fn authorization_request() -> Operation {
    let md = metadata();
    let redirect = Url::parse(fx::REDIRECT_URI).expect("redirect URI");
    // A process that starts many logins keeps one pool of OS randomness, created once (as
    // openidconnect's thread_rng keeps its state across calls): one 4 KiB system call per ~46 logins.
    let mut pool = RandomPool::new(OsRandom);
    let mut ours = move || {
        let device = DeviceId::generate(&mut pool).expect("device id");
        let scope = Scope::matrix(device).build().expect("scope");
        AuthorizationRequest::new(&md, fx::CLIENT_ID, redirect.clone(), scope)
            .build(now(), &mut pool)
            .expect("authorization request")
    };

    let provider: CoreProviderMetadata =
        serde_json::from_str(fx::DISCOVERY).expect("openidconnect reads the discovery fixture");
    let client =
        CoreClient::from_provider_metadata(provider, ClientId::new(fx::CLIENT_ID.to_owned()), None)
            .set_redirect_uri(RedirectUrl::new(fx::REDIRECT_URI.to_owned()).expect("redirect URI"));
    let theirs = move || {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        // A Matrix device id drawn the way an openidconnect user would (its own random helper).
        let device = CsrfToken::new_random_len(8);
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(openidconnect::Scope::new(
                "urn:matrix:client:api:*".to_owned(),
            ))
            .add_scope(openidconnect::Scope::new(format!(
                "urn:matrix:client:device:{}",
                device.secret()
            )))
            .set_pkce_challenge(challenge)
            .url();
        (url, state, nonce, verifier)
    };
    check("authorization request (ours)", {
        let start = ours();
        start.url.as_str().contains("code_challenge_method=S256")
            && start.url.as_str().contains(&start.pending.state)
    });
    check("authorization request (openidconnect)", {
        let (url, state, ..) = (theirs.clone())();
        url.as_str().contains("code_challenge_method=S256") && url.as_str().contains(state.secret())
    });
    Operation {
        group: "authorization_request",
        name: "authorization request: device id + state + PKCE verifier/S256 challenge + URL",
        ours: Contender::new(
            "ours",
            "DeviceId::generate + Scope + AuthorizationRequest::build, RandomPool over OsRandom (4 KiB draws, pool created once)",
            ours,
        ),
        reference: Some(Contender::new(
            "openidconnect",
            "PkceCodeChallenge::new_random_sha256 + authorize_url (state, nonce, scopes) .url()",
            theirs,
        )),
        target: Target::AbsoluteNs(1300.0),
        target_text: "≤ 1.3 µs",
    }
}

fn token_response() -> Operation {
    let pending = pending(1);
    let code = matrix_oidc_core::AuthorizationCode::new(matrix_oidc_core::Secret::new("c0de"));
    let request = TokenRequest::authorization_code(&pending, &code).expect("token request");
    let response = json_response(fx::TOKEN_RESPONSE);
    let ours_response = response.clone();
    let ours = move || request.parse(&ours_response, now()).expect("tokens");

    // oauth2's `endpoint_response` (private), step by step: status, JSON content type, non-empty
    // body, then serde_path_to_error over serde_json.
    let theirs = move || -> CoreTokenResponse {
        assert_eq!(response.status(), http::StatusCode::OK);
        let ct = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .expect("content type");
        assert!(ct.to_lowercase().starts_with("application/json"));
        assert!(!response.body().is_empty());
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(response.body()))
            .expect("token response")
    };
    check("token response (ours)", {
        let t = (ours.clone())();
        t.refresh_token.is_some()
            && t.expires_at == Some(now() + std::time::Duration::from_secs(300))
    });
    check("token response (oauth2)", {
        let t = (theirs.clone())();
        t.refresh_token().is_some() && t.expires_in().is_some()
    });
    Operation {
        group: "token_response",
        name: "token response parse + classification",
        ours: Contender::new(
            "ours",
            "TokenRequest::parse (status, media type, fields, scope, expiry)",
            ours,
        ),
        reference: Some(Contender::new(
            "oauth2",
            "oauth2 endpoint_response steps into CoreTokenResponse",
            theirs,
        )),
        target: Target::AbsoluteNs(600.0),
        target_text: "≤ 0.6 µs",
    }
}

fn callback() -> Operation {
    // A store with a few pending logins, keyed by state, as the memory store keeps them.
    let entries: HashMap<String, PendingAuthorization> = (10..14)
        .map(pending)
        .map(|p| (p.state.clone(), p))
        .collect();
    let target = entries.values().next().expect("a pending login").clone();
    let input = format!(
        "{}#state={}&code=Kx9q2LmTz7vR4wYs&iss={}",
        fx::REDIRECT_URI,
        target.state,
        form_urlencoded_component(fx::ISSUER)
    );
    let ours_entries = entries.clone();
    let ours_input = input.clone();
    // The application's own redirect URI, which it sends in every authorization request.
    let redirect = Url::parse(fx::REDIRECT_URI).expect("redirect URI");
    let ours = move || {
        let response = CallbackResponse::parse_at(&ours_input, ResponseMode::Fragment, &redirect)
            .expect("callback parses");
        let pending = ours_entries
            .get(response.state().expect("state"))
            .expect("known state");
        response.verify(pending).expect("callback verifies")
    };
    // With openidconnect an application parses the URL itself and compares the CSRF token.
    let theirs = move || {
        let url = Url::parse(&input).expect("URL");
        let mut code = None;
        let mut state = None;
        for (k, v) in url::form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "code" => code = Some(v.into_owned()),
                "state" => state = Some(CsrfToken::new(v.into_owned())),
                _ => {}
            }
        }
        let state = state.expect("state");
        let pending = entries.get(state.secret()).expect("known state");
        assert_eq!(pending.state, *state.secret());
        openidconnect::AuthorizationCode::new(code.expect("code"))
    };
    check(
        "callback (ours)",
        (ours.clone())().secret().expose() == "Kx9q2LmTz7vR4wYs",
    );
    check(
        "callback (manual)",
        (theirs.clone())().secret() == "Kx9q2LmTz7vR4wYs",
    );
    Operation {
        group: "callback",
        name: "callback URL parse + state lookup",
        ours: Contender::new(
            "ours",
            "CallbackResponse::parse_at (the app's redirect URI) + lookup by state + verify (state, redirect URI, iss)",
            ours,
        ),
        reference: Some(Contender::new(
            "url+manual",
            "no callback API in openidconnect: Url::parse + fragment pairs + CSRF compare",
            theirs,
        )),
        target: Target::AbsoluteNs(1000.0),
        target_text: "≤ 1 µs",
    }
}

fn form_urlencoded_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn metadata_validation() -> Operation {
    let issuer = Url::parse(fx::ISSUER).expect("issuer");
    let ours = move || {
        AuthorizationServerMetadata::from_json(
            fx::DISCOVERY.as_bytes(),
            &ValidationOptions::matrix(),
            Some(&issuer),
        )
        .expect("the discovery fixture is valid Matrix metadata")
    };
    // openidconnect's `discovery_response` (private) after the HTTP checks: serde_path_to_error over
    // serde_json into CoreProviderMetadata, then the issuer comparison, which is all it validates.
    let expected = IssuerUrl::new(fx::ISSUER.to_owned()).expect("issuer");
    let theirs = move || -> CoreProviderMetadata {
        let m: CoreProviderMetadata = serde_path_to_error::deserialize(
            &mut serde_json::Deserializer::from_slice(fx::DISCOVERY.as_bytes()),
        )
        .expect("openidconnect reads the discovery fixture");
        assert!(m.issuer() == &expected);
        m
    };
    check("metadata (ours)", (ours.clone())().supports_device_grant());
    check(
        "metadata (openidconnect)",
        (theirs.clone())().jwks_uri().url().path() == "/oauth2/keys.json",
    );
    Operation {
        group: "metadata",
        name: "Matrix metadata parse + full validation (3 KB, 43 fields)",
        ours: Contender::new(
            "ours",
            "AuthorizationServerMetadata::from_json, Matrix profile, HTTPS policy, expected issuer",
            ours,
        ),
        reference: Some(Contender::new(
            "openidconnect",
            "serde_path_to_error + serde_json into CoreProviderMetadata, issuer check",
            theirs,
        )),
        target: Target::Ratio(0.4),
        target_text: "≤ 0.4× openidconnect",
    }
}

/// The RSA components and P-256 point of the fixture key set, for the bare verifications.
struct RawKeys {
    rsa_n: Vec<u8>,
    rsa_e: Vec<u8>,
    p256_sec1: Vec<u8>,
}

fn raw_keys(jwks: &JwkSet) -> RawKeys {
    let mut out = RawKeys {
        rsa_n: Vec::new(),
        rsa_e: Vec::new(),
        p256_sec1: Vec::new(),
    };
    for k in jwks.keys() {
        match k.key() {
            JwkKey::Rsa(rsa) => {
                out.rsa_n = rsa.modulus().to_vec();
                out.rsa_e = rsa.exponent().to_vec();
            }
            JwkKey::Ec(ec) if ec.curve() == EcCurve::P256 => {
                let mut buf = [0u8; 97];
                out.p256_sec1 = ec.write_sec1_uncompressed(&mut buf).to_vec();
            }
            _ => {}
        }
    }
    assert!(
        !out.rsa_n.is_empty() && !out.p256_sec1.is_empty(),
        "fixture keys"
    );
    out
}

/// The signing input and signature of a compact JWS.
fn split_jws(token: &str) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine;
    let (input, sig) = token.rsplit_once('.').expect("compact JWS");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .expect("base64url signature");
    (input.as_bytes().to_vec(), sig)
}

fn expectations() -> IdTokenExpectations {
    IdTokenExpectations::new(
        fx::ISSUER,
        fx::CLIENT_ID,
        vec![JwsAlgorithm::Rs256, JwsAlgorithm::Es256],
    )
    .with_nonce(matrix_oidc_core::Secret::new(fx::NONCE))
}

fn ours_id_token(
    token: &'static str,
    verifier: &'static (dyn JwsVerifier + Send + Sync),
) -> impl FnMut() -> IdTokenClaims + Clone + 'static {
    // One key set for every call, as a client's `JwksCache` keeps it between fetches: a backend's
    // parsed form of a key (`Jwk::with_prepared`) is built on the first call and reused, as it is
    // for every token verified against one fetched set. Parsing the set is not timed, as
    // openidconnect's verifier is also built outside its closure.
    let jwks = std::rc::Rc::new(JwkSet::from_json(fx::JWKS.as_bytes()).expect("fixture JWKS"));
    let expect = std::rc::Rc::new(expectations());
    move || {
        validate_id_token(token, &expect, &jwks, verifier, now()).expect("the ID token is valid")
    }
}

fn openidconnect_id_token(token: &'static str) -> impl FnMut() -> CoreIdTokenClaims + Clone {
    let jwks: CoreJsonWebKeySet = serde_json::from_str(fx::JWKS).expect("openidconnect reads JWKS");
    let verifier = std::rc::Rc::new(
        CoreIdTokenVerifier::new_public_client(
            ClientId::new(fx::CLIENT_ID.to_owned()),
            IssuerUrl::new(fx::ISSUER.to_owned()).expect("issuer"),
            jwks,
        )
        .set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ])
        .set_time_fn(|| {
            chrono::DateTime::<chrono::Utc>::from_timestamp(fx::NOW as i64, 0).expect("time")
        }),
    );
    let nonce = Nonce::new(fx::NONCE.to_owned());
    move || {
        let token = CoreIdToken::from_str(token).expect("openidconnect parses the ID token");
        token
            .claims(&verifier, &nonce)
            .expect("openidconnect accepts the ID token")
            .clone()
    }
}

fn id_token_operations() -> Vec<Operation> {
    let jwks = JwkSet::from_json(fx::JWKS.as_bytes()).expect("fixture JWKS");
    let raw = std::rc::Rc::new(raw_keys(&jwks));
    let (rs_input, rs_sig) = split_jws(fx::ID_TOKEN_RS256);
    let (es_input, es_sig) = split_jws(fx::ID_TOKEN_ES256);

    let bare_ring_rsa = {
        let raw = raw.clone();
        let (input, sig) = (rs_input.clone(), rs_sig.clone());
        move || {
            ring::signature::RsaPublicKeyComponents {
                n: &raw.rsa_n,
                e: &raw.rsa_e,
            }
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &input, &sig)
            .is_ok()
        }
    };
    let bare_ring_p256 = {
        let raw = raw.clone();
        let (input, sig) = (es_input.clone(), es_sig.clone());
        move || {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                &raw.p256_sec1,
            )
            .verify(&input, &sig)
            .is_ok()
        }
    };
    let bare_rustcrypto_rsa = {
        let raw = raw.clone();
        let (input, sig) = (rs_input, rs_sig);
        move || {
            use rsa::signature::Verifier;
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&raw.rsa_n),
                rsa::BigUint::from_bytes_be(&raw.rsa_e),
            )
            .expect("RSA key");
            let sig = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).expect("signature");
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(&input, &sig)
                .is_ok()
        }
    };
    let bare_rustcrypto_p256 = {
        let raw = raw.clone();
        let (input, sig) = (es_input, es_sig);
        move || {
            use p256::ecdsa::signature::Verifier;
            let key =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&raw.p256_sec1).expect("P-256 key");
            let sig = p256::ecdsa::Signature::from_slice(&sig).expect("signature");
            key.verify(&input, &sig).is_ok()
        }
    };
    // The next generation of the same crates, with the key built once (as `RustCryptoVerifier`
    // does with `rustcrypto-next`): what the RustCrypto rows' signature checks cost there.
    let bare_next_rsa = {
        let key = rsa_next::PublicKey::new(
            rsa_next::BoxedUint::from_be_slice_vartime(&raw.rsa_n),
            rsa_next::BoxedUint::from_be_slice_vartime(&raw.rsa_e),
        )
        .expect("RSA key");
        let (input, sig) = split_jws(fx::ID_TOKEN_RS256);
        move || {
            use sha2_next::Digest;
            key.verify(
                rsa_next::Pkcs1v15Sign::new::<sha2_next::Sha256>(),
                &sha2_next::Sha256::digest(&input),
                &sig,
            )
            .is_ok()
        }
    };
    let bare_next_p256 = {
        let key =
            p256_next::ecdsa::VerifyingKey::from_sec1_bytes(&raw.p256_sec1).expect("P-256 key");
        let (input, sig) = split_jws(fx::ID_TOKEN_ES256);
        move || {
            use p256_next::ecdsa::signature::Verifier;
            let sig = p256_next::ecdsa::Signature::from_slice(&sig).expect("signature");
            key.verify(&input, &sig).is_ok()
        }
    };
    for (what, ok) in [
        ("bare rsa 0.10 RSA", (bare_next_rsa.clone())()),
        ("bare p256 0.14 P-256", (bare_next_p256.clone())()),
        ("bare ring RSA", (bare_ring_rsa.clone())()),
        ("bare ring P-256", (bare_ring_p256.clone())()),
        ("bare RustCrypto RSA", (bare_rustcrypto_rsa.clone())()),
        ("bare RustCrypto P-256", (bare_rustcrypto_p256.clone())()),
    ] {
        check(what, ok);
    }

    let rc: &'static (dyn JwsVerifier + Send + Sync) = &RustCryptoVerifier;
    let native: &'static (dyn JwsVerifier + Send + Sync) = &RingVerifier;
    for (token, alg) in [(fx::ID_TOKEN_RS256, "RS256"), (fx::ID_TOKEN_ES256, "ES256")] {
        check(
            alg,
            (ours_id_token(token, rc))().sub
                == (openidconnect_id_token(token))().subject().as_str(),
        );
        check(alg, (ours_id_token(token, native))().nonce.is_some());
    }

    let ours_label_rc = "validate_id_token with RustCryptoVerifier, feature rustcrypto-next: rsa 0.10 / p256 0.14 (parse, key selection, signature, claims)";
    let ours_label_ring =
        "validate_id_token with RingVerifier (parse, key selection, signature, claims)";
    let theirs_label = "CoreIdToken::from_str + claims(verifier, nonce)";
    vec![
        Operation {
            group: "id_token_rs256_rustcrypto",
            name: "ID token verify + claims, RS256, RustCrypto backend",
            ours: Contender::new("ours", ours_label_rc, ours_id_token(fx::ID_TOKEN_RS256, rc)),
            reference: Some(Contender::new(
                "openidconnect",
                theirs_label,
                openidconnect_id_token(fx::ID_TOKEN_RS256),
            )),
            target: Target::Ratio(0.4),
            target_text: "≤ 0.4× openidconnect",
        },
        Operation {
            group: "id_token_rs256_ring",
            name: "ID token verify + claims, RS256, native (ring) backend",
            ours: Contender::new(
                "ours",
                ours_label_ring,
                ours_id_token(fx::ID_TOKEN_RS256, native),
            ),
            reference: Some(Contender::new(
                "bare-ring",
                "ring RsaPublicKeyComponents::verify (RSA-2048, PKCS#1 v1.5, SHA-256) alone",
                bare_ring_rsa,
            )),
            target: Target::Ratio(1.3),
            target_text: "≤ 1.3× a bare RSA-2048 verify",
        },
        Operation {
            group: "id_token_es256_ring",
            name: "ID token verify + claims, ES256, native (ring) backend",
            ours: Contender::new(
                "ours",
                ours_label_ring,
                ours_id_token(fx::ID_TOKEN_ES256, native),
            ),
            reference: Some(Contender::new(
                "bare-ring",
                "ring UnparsedPublicKey::verify (P-256, SHA-256) alone",
                bare_ring_p256,
            )),
            target: Target::Ratio(1.3),
            target_text: "≤ 1.3× a bare P-256 verify",
        },
        Operation {
            group: "id_token_es256_rustcrypto",
            name: "ID token verify + claims, ES256, RustCrypto backend",
            ours: Contender::new("ours", ours_label_rc, ours_id_token(fx::ID_TOKEN_ES256, rc)),
            reference: Some(Contender::new(
                "openidconnect",
                theirs_label,
                openidconnect_id_token(fx::ID_TOKEN_ES256),
            )),
            target: Target::Ratio(1.0),
            target_text: "≤ openidconnect",
        },
        Operation {
            group: "bare_rsa_rustcrypto",
            name: "reference: bare RSA-2048 verify, RustCrypto (key from n, e + verify)",
            ours: Contender::new(
                "rustcrypto",
                "rsa 0.9 RsaPublicKey::new + pkcs1v15 verify",
                bare_rustcrypto_rsa,
            ),
            reference: None,
            target: Target::Info,
            target_text: "—",
        },
        Operation {
            group: "bare_rsa_rustcrypto_next",
            name: "reference: bare RSA-2048 verify, rsa 0.10 (key built once + verify)",
            ours: Contender::new(
                "rustcrypto",
                "rsa 0.10 PublicKey (prepared) + Pkcs1v15Sign verify of the SHA-256 digest",
                bare_next_rsa,
            ),
            reference: None,
            target: Target::Info,
            target_text: "—",
        },
        Operation {
            group: "bare_p256_rustcrypto_next",
            name: "reference: bare P-256 verify, p256 0.14 (key built once + verify)",
            ours: Contender::new(
                "rustcrypto",
                "p256 0.14 VerifyingKey (prepared) + verify",
                bare_next_p256,
            ),
            reference: None,
            target: Target::Info,
            target_text: "—",
        },
        Operation {
            group: "bare_p256_rustcrypto",
            name: "reference: bare P-256 verify, RustCrypto (key from SEC1 + verify)",
            ours: Contender::new(
                "rustcrypto",
                "p256 0.13 VerifyingKey::from_sec1_bytes + verify",
                bare_rustcrypto_p256,
            ),
            reference: None,
            target: Target::Info,
            target_text: "—",
        },
    ]
}

/// Panics with a clear message when a benchmarked call does not do what it should.
fn check(what: &str, ok: bool) {
    assert!(
        ok,
        "the benchmarked call `{what}` does not produce the expected result"
    );
}

/// Every operation, in table order.
pub(crate) fn operations() -> Vec<Operation> {
    let mut ops = vec![
        authorization_request(),
        metadata_validation(),
        token_response(),
    ];
    ops.extend(id_token_operations());
    ops.push(callback());
    ops
}

/// Figures that are not timings.
pub(crate) fn facts() -> Vec<serde_json::Value> {
    let p = pending(99);
    let json = serde_json::to_vec(&p).expect("pending serializes");
    vec![serde_json::json!({
        "name": "serialized pending authorization (JSON, as the stores keep it)",
        "value": json.len(),
        "unit": "bytes",
    })]
}
