//! The operations, each with our call and the closest equivalent with `openidconnect` / `oauth2`.
//!
//! Both sides start from the same bytes and do the work an application needs at that step; where the
//! anchors have no API for a step, the reference is what an application would write with them, and
//! the label says so.

use crate::{Contender, Operation, Target};
use matrix_oidc_bench as fx;
use matrix_oidc_core::callback::CallbackResponse;
use matrix_oidc_core::{
    AuthorizationRequest, AuthorizationServerMetadata, DeviceId, OsRandom, PendingAuthorization,
    ResponseMode, Scope, SeededRandom, Timestamp, TokenRequest,
};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    ClientId, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl,
};
use std::collections::HashMap;
use url::Url;

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(fx::NOW)
}

fn metadata() -> AuthorizationServerMetadata {
    serde_json::from_str(fx::DISCOVERY).expect("the discovery fixture parses")
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
    let ours = move || {
        let mut rng = OsRandom;
        let device = DeviceId::generate(&mut rng).expect("device id");
        let scope = Scope::matrix(device).build().expect("scope");
        AuthorizationRequest::new(&md, fx::CLIENT_ID, redirect.clone(), scope)
            .build(now(), &mut rng)
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
        let start = (ours.clone())();
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
            "DeviceId::generate + Scope + AuthorizationRequest::build, OsRandom",
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
    let ours = move || {
        let response =
            CallbackResponse::parse(&ours_input, ResponseMode::Fragment).expect("callback parses");
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
            "CallbackResponse::parse + lookup by state + verify (state, redirect URI, iss)",
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

/// Panics with a clear message when a benchmarked call does not do what it should.
fn check(what: &str, ok: bool) {
    assert!(
        ok,
        "the benchmarked call `{what}` does not produce the expected result"
    );
}

/// Every operation, in table order.
pub(crate) fn operations() -> Vec<Operation> {
    vec![authorization_request(), token_response(), callback()]
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
