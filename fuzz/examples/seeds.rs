//! Writes the committed seed inputs of every target into `fuzz/seeds/<target>/`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.
//!
//! Response targets take `[status index, content-type index, body…]` (see `matrix_oidc_fuzz::response`);
//! flow targets put one selector byte first.

use matrix_oidc_core::ResponseMode;
use std::path::Path;

/// Index of a status in the harness's table.
fn status(code: u16) -> u8 {
    [
        200u16, 201, 204, 400, 401, 403, 404, 429, 500, 503, 302, 307,
    ]
    .iter()
    .position(|s| *s == code)
    .unwrap_or_else(|| panic!("status {code} is not in the harness table")) as u8
}

const JSON: u8 = 0;
const HTML: u8 = 4;
const NO_TYPE: u8 = 7;

fn response(code: u16, content_type: u8, body: &str) -> Vec<u8> {
    let mut v = vec![status(code), content_type];
    v.extend_from_slice(body.as_bytes());
    v
}

fn with(selector: u8, rest: Vec<u8>) -> Vec<u8> {
    let mut v = vec![selector];
    v.extend(rest);
    v
}

const TOKENS: &str = r#"{"access_token":"mat_Xh7dQ2bqvT9Lk","token_type":"Bearer","expires_in":300,"refresh_token":"mar_Pq4Wz8Ln2Rt6","scope":"urn:matrix:client:api:* urn:matrix:client:device:AAABBBCCCD"}"#;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut n = 0;
    let mut put = |target: &str, name: &str, bytes: Vec<u8>| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("seed dir");
        std::fs::write(dir.join(name), bytes).expect("write seed");
        n += 1;
    };

    put(
        "error_body",
        "oauth_400",
        response(
            400,
            JSON,
            r#"{"error":"invalid_grant","error_description":"The refresh token was revoked","error_uri":"https://auth.example.org/errors/invalid_grant"}"#,
        ),
    );
    put(
        "error_body",
        "matrix_404",
        response(
            404,
            1,
            r#"{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}"#,
        ),
    );
    put(
        "error_body",
        "matrix_401_soft",
        response(
            401,
            JSON,
            r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Token expired","soft_logout":true}"#,
        ),
    );
    put(
        "error_body",
        "html_502",
        response(503, HTML, "<html><body>Bad gateway\n\x1b[31m</body></html>"),
    );
    put("error_body", "redirect", response(302, NO_TYPE, ""));

    put(
        "metadata",
        "matrix",
        response(
            200,
            JSON,
            include_str!("../../crates/bench/fixtures/discovery.json"),
        ),
    );

    for (i, body) in [
        TOKENS,
        r#"{"access_token":"mat_2","token_type":"bearer","expires_in":1e400}"#,
        r#"{"access_token":"mat_3","token_type":"DPoP"}"#,
    ]
    .iter()
    .enumerate()
    {
        put(
            "token_response",
            &format!("ok_{i}"),
            with(i as u8, response(200, JSON, body)),
        );
    }
    put(
        "token_response",
        "invalid_grant",
        with(
            1,
            response(
                400,
                JSON,
                r#"{"error":"invalid_grant","error_description":"revoked"}"#,
            ),
        ),
    );
    put(
        "token_response",
        "pending",
        with(
            2,
            response(400, JSON, r#"{"error":"authorization_pending"}"#),
        ),
    );
    put(
        "token_response",
        "error_200",
        with(0, response(200, JSON, r#"{"error":"server_error"}"#)),
    );

    let fragment = matrix_oidc_fuzz::pending(ResponseMode::Fragment);
    let query = matrix_oidc_fuzz::pending(ResponseMode::Query);
    let iss = "https%3A%2F%2Fauth.example.org%2F";
    put(
        "callback",
        "fragment_url",
        with(
            0,
            format!(
                "https://app.example.org/cb#state={}&code=c0de&iss={iss}",
                fragment.state
            )
            .into_bytes(),
        ),
    );
    put(
        "callback",
        "query_url",
        with(
            1,
            format!(
                "http://127.0.0.1:9999/cb?code=c0de&state={}&iss={iss}",
                query.state
            )
            .into_bytes(),
        ),
    );
    put(
        "callback",
        "fragment_only",
        with(
            0,
            format!("#state={}&code=c0de&iss={iss}", fragment.state).into_bytes(),
        ),
    );
    put(
        "callback",
        "query_only",
        with(
            1,
            format!(
                "?state={}&error=access_denied&error_description=The+user+said+no&iss={iss}",
                query.state
            )
            .into_bytes(),
        ),
    );
    put(
        "callback",
        "wrong_component",
        with(
            0,
            format!(
                "https://app.example.org/cb?state={}&code=c0de",
                fragment.state
            )
            .into_bytes(),
        ),
    );

    put(
        "device_authorization",
        "ok",
        with(
            0,
            response(
                200,
                JSON,
                r#"{"device_code":"dc-0123456789","user_code":"WDJB-MJHT","verification_uri":"https://auth.example.org/device","verification_uri_complete":"https://auth.example.org/device?code=WDJB-MJHT","expires_in":600,"interval":5}"#,
            ),
        ),
    );
    put(
        "device_authorization",
        "error",
        with(0, response(400, JSON, r#"{"error":"invalid_scope"}"#)),
    );
    put(
        "device_authorization",
        "poll_pending",
        with(
            1,
            response(400, JSON, r#"{"error":"authorization_pending"}"#),
        ),
    );
    put(
        "device_authorization",
        "poll_slow_down",
        with(1, response(400, JSON, r#"{"error":"slow_down"}"#)),
    );
    put(
        "device_authorization",
        "poll_tokens",
        with(1, response(200, JSON, TOKENS)),
    );
    put(
        "device_authorization",
        "poll_denied",
        with(1, response(400, JSON, r#"{"error":"access_denied"}"#)),
    );
    put(
        "device_authorization",
        "poll_503",
        with(1, response(503, HTML, "busy")),
    );

    put("revocation", "ok_empty", response(200, NO_TYPE, ""));
    put(
        "revocation",
        "unsupported",
        response(400, JSON, r#"{"error":"unsupported_token_type"}"#),
    );

    put(
        "whoami",
        "ok",
        response(
            200,
            JSON,
            r#"{"user_id":"@alice:example.org","device_id":"AAABBBCCCD","is_guest":false}"#,
        ),
    );
    put(
        "whoami",
        "unknown_token",
        response(
            401,
            JSON,
            r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token","soft_logout":false}"#,
        ),
    );

    put(
        "legacy",
        "flows",
        response(
            200,
            JSON,
            r#"{"flows":[{"type":"m.login.sso","identity_providers":[{"id":"oidc","name":"Example"}],"oauth_aware_preferred":true},{"type":"m.login.token"}]}"#,
        ),
    );
    put(
        "legacy",
        "uia",
        response(
            401,
            JSON,
            r#"{"flows":[{"stages":["m.oauth"]}],"params":{"m.oauth":{"url":"https://auth.example.org/account?action=org.matrix.cross_signing_reset"}},"session":"xyz"}"#,
        ),
    );

    let session = matrix_oidc_core::Session::from_pending(
        fragment,
        matrix_oidc_core::TokenSet::new(matrix_oidc_core::Secret::new("mat_access")),
    );
    let session_doc =
        serde_json::json!({"version": 1, "key": "fuzz", "generation": 1, "session": session});
    let pending_doc = serde_json::json!({"version": 1, "pending": fragment});
    put(
        "storage_file",
        "session",
        with(0, serde_json::to_vec_pretty(&session_doc).expect("json")),
    );
    put(
        "storage_file",
        "session_deleted",
        with(
            0,
            br#"{"version":1,"key":"fuzz","generation":2,"session":null}"#.to_vec(),
        ),
    );
    put(
        "storage_file",
        "future_version",
        with(0, br#"{"version":2,"key":"fuzz"}"#.to_vec()),
    );
    put(
        "storage_file",
        "pending",
        with(1, serde_json::to_vec_pretty(&pending_doc).expect("json")),
    );
    println!("{n} seeds written under {}", root.display());
}
