//! Helpers shared by the fuzz targets: turning raw fuzzer bytes into the HTTP responses and strings
//! the parsers take.
//!
//! A response target spends its first two bytes on the status and the `Content-Type`, chosen from
//! the values that steer the handlers (success, the error statuses, a redirect, JSON and non-JSON
//! media types), and the rest is the body, so one input exercises the envelope checks, the error
//! classification and the body parser.

/// Statuses the handlers treat differently.
const STATUSES: &[u16] = &[200, 201, 204, 400, 401, 403, 404, 429, 500, 503, 302, 307];

/// `Content-Type` values the handlers treat differently (`None`: no header).
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/jwk-set+json"),
    Some("application/jwt"),
    Some("text/html"),
    Some("APPLICATION/JSON"),
    Some("application/x-www-form-urlencoded"),
    None,
];

/// An HTTP response built from fuzzer bytes: byte 0 picks the status, byte 1 the content type, the
/// rest is the body.
pub fn response(data: &[u8]) -> http::Response<Vec<u8>> {
    let status = data
        .first()
        .map_or(200, |b| STATUSES[*b as usize % STATUSES.len()]);
    let content_type = data.get(1).map_or(CONTENT_TYPES[0], |b| {
        CONTENT_TYPES[*b as usize % CONTENT_TYPES.len()]
    });
    let body = data.get(2..).unwrap_or_default().to_vec();
    let mut builder = http::Response::builder().status(status);
    if let Some(ct) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, ct);
    }
    match builder.body(body) {
        Ok(r) => r,
        // Every status and header above is valid, so this is unreachable; fail loudly if not.
        Err(e) => panic!("fuzz harness built an invalid response: {e}"),
    }
}

/// A successful JSON response whose body is exactly `data` (for parsers past the envelope).
pub fn json_ok(data: &[u8], status: u16) -> http::Response<Vec<u8>> {
    match http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(data.to_vec())
    {
        Ok(r) => r,
        Err(e) => panic!("fuzz harness built an invalid response: {e}"),
    }
}

/// The server metadata the flow targets run against (a fixed, valid Matrix document), built once.
pub fn metadata() -> &'static matrix_oidc_core::AuthorizationServerMetadata {
    static M: std::sync::OnceLock<matrix_oidc_core::AuthorizationServerMetadata> =
        std::sync::OnceLock::new();
    M.get_or_init(|| match serde_json::from_str(METADATA) {
        Ok(m) => m,
        Err(e) => panic!("fuzz harness metadata does not parse: {e}"),
    })
}

const METADATA: &str = r#"{
    "issuer": "https://auth.example.org/",
    "authorization_endpoint": "https://auth.example.org/authorize",
    "token_endpoint": "https://auth.example.org/oauth2/token",
    "revocation_endpoint": "https://auth.example.org/oauth2/revoke",
    "device_authorization_endpoint": "https://auth.example.org/oauth2/device",
    "response_modes_supported": ["query", "fragment"],
    "grant_types_supported": ["authorization_code", "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code"],
    "code_challenge_methods_supported": ["S256"],
    "authorization_response_iss_parameter_supported": true
}"#;

/// A pending authorization from a seeded RNG (the same state every run), for `mode`, built once.
pub fn pending(
    mode: matrix_oidc_core::ResponseMode,
) -> &'static matrix_oidc_core::PendingAuthorization {
    use std::sync::OnceLock;
    static FRAGMENT: OnceLock<matrix_oidc_core::PendingAuthorization> = OnceLock::new();
    static QUERY: OnceLock<matrix_oidc_core::PendingAuthorization> = OnceLock::new();
    let cell = match mode {
        matrix_oidc_core::ResponseMode::Fragment => &FRAGMENT,
        matrix_oidc_core::ResponseMode::Query => &QUERY,
    };
    cell.get_or_init(|| build_pending(mode))
}

fn build_pending(mode: matrix_oidc_core::ResponseMode) -> matrix_oidc_core::PendingAuthorization {
    use matrix_oidc_core::{AuthorizationRequest, DeviceId, Scope, SeededRandom, Timestamp};
    let md = metadata();
    let redirect = match mode {
        matrix_oidc_core::ResponseMode::Fragment => "https://app.example.org/cb",
        matrix_oidc_core::ResponseMode::Query => "http://127.0.0.1:8080/cb",
    };
    let built = DeviceId::parse("AAABBBCCCD")
        .ok()
        .and_then(|d| Scope::matrix(d).build().ok())
        .and_then(|scope| {
            let redirect = url::Url::parse(redirect).ok()?;
            AuthorizationRequest::new(md, "client-1", redirect, scope)
                .response_mode(mode)
                .build(
                    Timestamp::from_unix_seconds(1_700_000_000),
                    &mut SeededRandom::new(1),
                )
                .ok()
        });
    match built {
        Some(start) => start.pending,
        None => panic!("fuzz harness could not build a pending authorization"),
    }
}

/// String values of the JSON fields that hold secrets (`access_token`, `refresh_token`, `id_token`,
/// `device_code`, `code`) anywhere in `body`, at least 6 bytes long: an error built from the body must
/// never show them.
pub fn secrets_in(body: &[u8]) -> Vec<String> {
    const SECRET_FIELDS: &[&str] = &[
        "access_token",
        "refresh_token",
        "id_token",
        "device_code",
        "code",
    ];
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if let serde_json::Value::String(s) = v {
                        if SECRET_FIELDS.contains(&k.as_str()) && s.len() >= 6 {
                            out.push(s.clone());
                        }
                    }
                    walk(v, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        walk(&v, &mut out);
    }
    out
}

/// Text the harness itself puts into errors (endpoints, client id): a "secret" that is a piece of it
/// says nothing when it shows up.
const HARNESS_TEXT: &[&str] = &[
    "https://auth.example.org/oauth2/token",
    "https://auth.example.org/oauth2/device",
    "https://auth.example.org/oauth2/revoke",
    "client-1",
];

/// Panics if `shown` (an error's `Display` or `Debug`) contains one of `secrets` (ignoring those that
/// are part of the harness's own text, such as a device code `th.exam` inside the endpoint URL).
pub fn assert_hides(shown: &str, secrets: &[String]) {
    for s in secrets {
        if HARNESS_TEXT.iter().any(|t| t.contains(s.as_str())) {
            continue;
        }
        assert!(
            !shown.contains(s.as_str()),
            "an error shows the secret {s:?}: {shown}"
        );
    }
}

/// Whether `shown` is free of raw control characters (safe to log).
pub fn printable(shown: &str) -> bool {
    !shown.chars().any(char::is_control)
}
