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
