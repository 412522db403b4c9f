//! Regenerates `fixtures/`: `cargo bench -p matrix-oidc-bench --bench fixtures -- --write`
//! (`cargo xtask bench --regenerate-fixtures`). Without `--write` it checks that the committed files
//! are what it would write.
//!
//! Keys come from a ChaCha RNG with a fixed seed, and RS256 / ES256 (RFC 6979) signatures are
//! deterministic, so the output depends only on this file and the crate versions.

#![recursion_limit = "256"]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use matrix_oidc_bench as fx;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::pkcs1v15::SigningKey as RsaSigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::Sha256;

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn discovery() -> Value {
    let base = fx::ISSUER.trim_end_matches('/');
    let u = |path: &str| format!("{base}{path}");
    json!({
        "issuer": fx::ISSUER,
        "authorization_endpoint": u("/authorize"),
        "token_endpoint": u("/oauth2/token"),
        "jwks_uri": u("/oauth2/keys.json"),
        "registration_endpoint": u("/oauth2/registration"),
        "scopes_supported": ["openid", "email", "profile", "urn:matrix:client:api:*"],
        "response_types_supported": ["code", "id_token", "code id_token"],
        "response_modes_supported": ["form_post", "query", "fragment"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"
        ],
        "token_endpoint_auth_signing_alg_values_supported": [
            "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384"
        ],
        "revocation_endpoint": u("/oauth2/revoke"),
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"
        ],
        "revocation_endpoint_auth_signing_alg_values_supported": ["HS256", "RS256", "ES256"],
        "introspection_endpoint": u("/oauth2/introspect"),
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"
        ],
        "introspection_endpoint_auth_signing_alg_values_supported": ["HS256", "RS256", "ES256"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "userinfo_endpoint": u("/oauth2/userinfo"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
        "userinfo_signing_alg_values_supported": ["RS256", "ES256"],
        "display_values_supported": ["page"],
        "claim_types_supported": ["normal"],
        "claims_supported": [
            "iss", "sub", "aud", "iat", "exp", "nonce", "auth_time", "at_hash", "c_hash", "email",
            "email_verified", "name", "preferred_username"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "prompt_values_supported": ["none", "login", "create"],
        "ui_locales_supported": ["en", "de", "fr"],
        "acr_values_supported": ["urn:mace:incommon:iap:silver"],
        "service_documentation": "https://auth.example.org/docs",
        "op_policy_uri": "https://auth.example.org/policy",
        "op_tos_uri": "https://auth.example.org/tos",
        "device_authorization_endpoint": u("/oauth2/device"),
        "end_session_endpoint": u("/oauth2/logout"),
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
        "account_management_uri": u("/account/"),
        "account_management_actions_supported": [
            "org.matrix.profile", "org.matrix.devices_list", "org.matrix.device_view",
            "org.matrix.device_delete", "org.matrix.account_deactivate", "org.matrix.cross_signing_reset"
        ],
        "org.matrix.matrix-authentication-service.graphql_endpoint": u("/graphql"),
    })
}

fn token_response() -> Value {
    json!({
        "access_token": "mat_Xh7dQ2bqvT9LkWm4NcE1aZ0yRf8SgU6pJo3HiV5tYx_2Gw1Ke",
        "token_type": "Bearer",
        "expires_in": 300,
        "refresh_token": "mar_Pq4Wz8Ln2Rt6Yv0Bx3Jm7Kc1Hd5Gf9Se_3Nu8Ab",
        "scope": format!("urn:matrix:client:api:* urn:matrix:client:device:{}", fx::DEVICE_ID),
    })
}

fn claims() -> Value {
    json!({
        "iss": fx::ISSUER,
        "sub": "01J9ZC4V7N2K5QH8TD3W6MXRBF",
        "aud": fx::CLIENT_ID,
        "iat": fx::ISSUED_AT,
        "exp": fx::ISSUED_AT + fx::ID_TOKEN_LIFETIME,
        "auth_time": fx::ISSUED_AT - 5,
        "nonce": fx::NONCE,
        "sid": "01J9ZC4XA3HV5B7D2F9K1M6PQR",
    })
}

fn compact(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn main() {
    let write = std::env::args().any(|a| a == "--write");
    let mut rng = ChaCha20Rng::seed_from_u64(0x6d61_7472_6978);

    let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
    let p256_key = p256::ecdsa::SigningKey::random(&mut rng);
    let p384_key = p384::ecdsa::SigningKey::random(&mut rng);

    let rsa_pub = rsa_key.to_public_key();
    let p256_point = p256_key.verifying_key().to_encoded_point(false);
    let p384_point = p384_key.verifying_key().to_encoded_point(false);
    let coords = |x: Option<&[u8]>, y: Option<&[u8]>| {
        (
            b64(x.expect("uncompressed point")),
            b64(y.expect("uncompressed point")),
        )
    };
    let (p256_x, p256_y) = coords(
        p256_point.x().map(|x| x.as_slice()),
        p256_point.y().map(|y| y.as_slice()),
    );
    let (p384_x, p384_y) = coords(
        p384_point.x().map(|x| x.as_slice()),
        p384_point.y().map(|y| y.as_slice()),
    );
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa-2048", "use": "sig", "alg": "RS256",
         "n": b64(&rsa_pub.n().to_bytes_be()), "e": b64(&rsa_pub.e().to_bytes_be())},
        {"kty": "EC", "kid": "p256", "use": "sig", "alg": "ES256", "crv": "P-256",
         "x": p256_x, "y": p256_y},
        {"kty": "EC", "kid": "p384", "use": "sig", "alg": "ES384", "crv": "P-384",
         "x": p384_x, "y": p384_y},
    ]});

    let claims = claims();
    let rs256 = compact(
        &json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-2048"}),
        &claims,
        |input| {
            RsaSigningKey::<Sha256>::new(rsa_key.clone())
                .sign(input)
                .to_vec()
        },
    );
    let es256 = compact(
        &json!({"alg": "ES256", "typ": "JWT", "kid": "p256"}),
        &claims,
        |input| {
            let signature: p256::ecdsa::Signature = p256_key.sign(input);
            signature.to_bytes().to_vec()
        },
    );

    let discovery = discovery();
    let fields = discovery.as_object().map_or(0, |o| o.len());
    let files = [
        ("discovery.json", discovery.to_string()),
        ("token_response.json", token_response().to_string()),
        ("jwks.json", jwks.to_string()),
        ("id_token_rs256.jwt", rs256),
        ("id_token_es256.jwt", es256),
    ];
    let dir = fx::fixtures_dir();
    let mut stale = Vec::new();
    for (name, contents) in &files {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if write {
            std::fs::write(&path, contents).expect("write fixture");
        } else if current != *contents {
            stale.push(*name);
        }
        println!("{name:<22} {:>5} bytes", contents.len());
    }
    println!("discovery.json has {fields} fields");
    if !stale.is_empty() {
        eprintln!(
            "fixtures differ from what the generator writes: {}; rerun with --write",
            stale.join(", ")
        );
        std::process::exit(1);
    }
}
