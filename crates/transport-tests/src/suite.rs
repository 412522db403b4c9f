//! One async function per guarantee a transport gives, generic over the [`Adapter`] under test.
//! [`transport_suite!`](crate::transport_suite) turns each into a `#[test]`.

use crate::server::ECHO_BODY;
use crate::{Adapter, TestPki, TestServer};
use matrix_oidc_core::http::{Expectations, OutgoingRequest};
use matrix_oidc_core::transport::{HttpClient, TransportError};
use std::time::Duration;

/// An `Authorization` value no error may ever print.
const AUTHORIZATION: &str = "Bearer at-0123456789-SUPER-SECRET-TOKEN";
/// A second secret, in a custom header.
const API_KEY: &str = "key-9876543210-ALSO-SECRET";
/// A request body no error may ever print.
const SECRET_BODY: &str = "grant_type=refresh_token&refresh_token=rt-BODY-SECRET-abcdef";

fn request(method: &str, url: &str, body: &[u8], expect: Expectations) -> OutgoingRequest {
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(body.to_vec())
        .unwrap();
    OutgoingRequest { request, expect }
}

/// A form POST carrying an `Authorization` header, an API key header and a secret body.
fn secret_request(url: &str, expect: Expectations) -> OutgoingRequest {
    let mut out = request("POST", url, SECRET_BODY.as_bytes(), expect);
    let headers = out.request.headers_mut();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_static(AUTHORIZATION),
    );
    headers.insert("x-api-key", http::HeaderValue::from_static(API_KEY));
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    out
}

fn bound(max_body_bytes: usize) -> Expectations {
    Expectations::any(max_body_bytes)
}

fn expect_err(
    result: Result<http::Response<Vec<u8>>, TransportError>,
    what: &str,
) -> TransportError {
    match result {
        Ok(response) => panic!(
            "{what}: expected an error, got {} with {} body bytes",
            response.status(),
            response.body().len()
        ),
        Err(e) => e,
    }
}

fn assert_names_url(err: &TransportError, url: &str) {
    assert_eq!(err.url(), url, "{err:?}");
    assert!(err.to_string().contains(url), "{err}");
}

/// POST with headers and a JSON body: everything arrives as sent, and status, headers and body come
/// back as the server sent them.
pub async fn json_exchange<A: Adapter>() {
    let server = TestServer::start().await;
    let transport = A::default_transport();
    let body = br#"{"client_name":"matrix-oidc test","redirect_uris":["http://127.0.0.1/cb"]}"#;
    let mut out = request(
        "POST",
        &server.url("/echo?q=1&r=two"),
        body,
        Expectations::json(),
    );
    let headers = out.request.headers_mut();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("accept", "application/json".parse().unwrap());
    headers.insert("authorization", AUTHORIZATION.parse().unwrap());
    headers.insert("x-custom", "kept exactly, with spaces".parse().unwrap());

    let response = transport.send(out).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::CREATED);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-server"], "matrix-oidc-test");
    assert_eq!(response.body(), ECHO_BODY);

    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let seen = &seen[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/echo?q=1&r=two");
    assert_eq!(seen.header("content-type"), Some(&b"application/json"[..]));
    assert_eq!(seen.header("accept"), Some(&b"application/json"[..]));
    assert_eq!(seen.header("authorization"), Some(AUTHORIZATION.as_bytes()));
    assert_eq!(
        seen.header("x-custom"),
        Some(&b"kept exactly, with spaces"[..])
    );
    assert_eq!(
        seen.header("content-length"),
        Some(body.len().to_string().as_bytes())
    );
    assert_eq!(seen.body, body);
}

/// A GET built by the core itself arrives as a bodiless GET with its `Accept` header.
pub async fn get_without_body<A: Adapter>() {
    let server = TestServer::start().await;
    let transport = A::default_transport();
    let url = url::Url::parse(&server.url("/echo")).unwrap();
    let response = transport
        .send(OutgoingRequest::get_json(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::CREATED);
    assert_eq!(response.body(), ECHO_BODY);
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].target, "/echo");
    assert_eq!(seen[0].header("accept"), Some(&b"application/json"[..]));
    assert!(seen[0].body.is_empty());
}

/// A body of exactly the bound is read whole, framed by length or chunked; one byte more is refused.
pub async fn body_at_the_bound_is_accepted<A: Adapter>() {
    let server = TestServer::start().await;
    let transport = A::default_transport();
    for route in ["fixed", "chunked"] {
        let url = server.url(&format!("/{route}/10000"));
        let response = transport
            .send(request("GET", &url, b"", bound(10_000)))
            .await
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(response.body().len(), 10_000, "{route}");

        let url = server.url(&format!("/{route}/10001"));
        let err = expect_err(
            transport
                .send(request("GET", &url, b"", bound(10_000)))
                .await,
            route,
        );
        assert!(
            matches!(err, TransportError::BodyTooLarge { limit: 10_000, .. }),
            "{route}: {err:?}"
        );
        assert_names_url(&err, &url);
    }
}

/// A body that never ends is abandoned once it passes the bound: the error comes back and the
/// server sees the client hang up long before it could have sent
/// [`ENDLESS_CAP`](crate::server::ENDLESS_CAP) bytes.
pub async fn endless_body_is_abandoned<A: Adapter>() {
    let server = TestServer::start().await;
    let transport = A::default_transport();
    let url = server.url("/endless");
    let limit = 64 * 1024;
    let err = expect_err(
        transport
            .send(request("GET", &url, b"", bound(limit)))
            .await,
        "endless body",
    );
    assert!(
        matches!(err, TransportError::BodyTooLarge { limit: l, .. } if l == limit),
        "{err:?}"
    );
    assert_names_url(&err, &url);
    // The server stops by itself after ENDLESS_CAP bytes; hanging up is what the client must do.
    server.client_hung_up().await;
}

/// A `Content-Length` over the bound is refused from the head alone: the server sends no body
/// bytes at all, so a transport that waited for them would time out instead.
pub async fn content_length_over_the_bound_is_rejected_early<A: Adapter>() {
    for declared in [1_001u64, 10_000_000_000] {
        let server = TestServer::start().await;
        let transport = A::default_transport();
        let url = server.url(&format!("/declared/{declared}"));
        let expect = bound(1_000).with_timeout(Duration::from_secs(30));
        let err = expect_err(
            transport.send(request("GET", &url, b"", expect)).await,
            "declared length",
        );
        assert!(
            matches!(err, TransportError::BodyTooLarge { limit: 1_000, .. }),
            "{declared}: {err:?}"
        );
        assert_names_url(&err, &url);
        server.client_hung_up().await;
    }
}

/// A server that never answers hits the request's timeout, reported with that timeout.
pub async fn stall_before_headers_times_out<A: Adapter>() {
    let server = TestServer::start().await;
    let transport = A::default_transport();
    let url = server.url("/stall");
    let expect = Expectations::json().with_timeout(Duration::from_millis(250));
    let err = expect_err(
        transport.send(request("GET", &url, b"", expect)).await,
        "stall",
    );
    assert!(
        matches!(
            err,
            TransportError::Timeout {
                timeout_ms: 250,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names_url(&err, &url);
}

/// The timeout covers reading the body too: a body that stops half-way times out, and the
/// connection is dropped.
pub async fn stall_inside_body_times_out<A: Adapter>() {
    let server = TestServer::start().await;
    let transport = A::default_transport();
    let url = server.url("/trickle");
    let expect = Expectations::json().with_timeout(Duration::from_millis(400));
    let err = expect_err(
        transport.send(request("GET", &url, b"", expect)).await,
        "trickle",
    );
    assert!(
        matches!(
            err,
            TransportError::Timeout {
                timeout_ms: 400,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names_url(&err, &url);
    server.client_hung_up().await;
}

/// A 302 comes back as the response, `Location` intact; the target is never requested.
pub async fn redirect_is_returned_not_followed<A: Adapter>() {
    let server = TestServer::start().await;
    let transport = A::default_transport();
    let response = transport
        .send(secret_request(
            &server.url("/redirect"),
            Expectations::json(),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::FOUND);
    assert_eq!(
        response.headers()["location"],
        server.url("/echo?from=redirect").as_str()
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, "/redirect");
}

/// Over TLS with the test CA added to the platform's roots, the exchange works.
pub async fn tls_with_trusted_test_ca<A: Adapter>() {
    let pki = TestPki::generate("trusted");
    let server = TestServer::start_tls(&pki).await;
    assert!(server.base().starts_with("https://127.0.0.1:"));
    let transport = A::trusting(pki.ca_pem());
    let response = transport
        .send(secret_request(&server.url("/echo"), Expectations::json()))
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::CREATED);
    assert_eq!(response.body(), ECHO_BODY);
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, SECRET_BODY.as_bytes());
}

/// Over TLS trusting only the test CA (no platform roots), the exchange works.
pub async fn tls_with_only_the_test_ca<A: Adapter>() {
    let pki = TestPki::generate("only");
    let server = TestServer::start_tls(&pki).await;
    let transport = A::trusting_only(pki.ca_pem());
    let response = transport
        .send(request(
            "GET",
            &server.url("/fixed/5"),
            b"",
            Expectations::any(5),
        ))
        .await
        .unwrap();
    assert_eq!(response.body(), b"aaaaa");
}

/// A PEM bundle with a key and two certificates adds both certificates: each CA's server is
/// trusted.
pub async fn a_pem_bundle_adds_every_certificate<A: Adapter>() {
    let a = TestPki::generate("a");
    let b = TestPki::generate("b");
    let bundle = format!(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{}{}",
        a.ca_pem(),
        b.ca_pem()
    );
    let transport = A::trusting_only(&bundle);
    for pki in [&a, &b] {
        let server = TestServer::start_tls(pki).await;
        let response = transport
            .send(request(
                "GET",
                &server.url("/echo"),
                b"",
                Expectations::json(),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::CREATED);
    }
}

/// A certificate from a CA the transport does not trust is a [`TransportError::Tls`] naming the URL,
/// with the platform's roots and with another private CA, and no request reaches the server.
pub async fn tls_untrusted_is_a_tls_error<A: Adapter>() {
    let pki = TestPki::generate("untrusted");
    let other = TestPki::generate("other");
    let server = TestServer::start_tls(&pki).await;
    let url = server.url("/echo");
    for (which, transport) in [
        ("platform roots", A::default_transport()),
        ("another CA", A::trusting_only(other.ca_pem())),
    ] {
        let err = expect_err(
            transport
                .send(request("GET", &url, b"", Expectations::json()))
                .await,
            which,
        );
        assert!(
            matches!(err, TransportError::Tls { .. }),
            "{which}: {err:?}"
        );
        assert_names_url(&err, &url);
    }
    assert!(server.requests().is_empty());
}

/// Nobody listening: [`TransportError::Connect`] naming the URL.
pub async fn connection_refused_is_a_connect_error<A: Adapter>() {
    let url = refused_url().await;
    let transport = A::default_transport();
    let err = expect_err(
        transport
            .send(request("GET", &url, b"", Expectations::json()))
            .await,
        "refused",
    );
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert_names_url(&err, &url);
}

/// A peer that answers with something that is not HTTP: [`TransportError::Other`], not a
/// connect failure.
pub async fn malformed_response_is_an_other_error<A: Adapter>() {
    let server = TestServer::start().await;
    let transport = A::default_transport();
    let url = server.url("/garbage");
    let err = expect_err(
        transport
            .send(request("GET", &url, b"", Expectations::json()))
            .await,
        "garbage",
    );
    assert!(matches!(err, TransportError::Other { .. }), "{err:?}");
    assert_names_url(&err, &url);
}

/// Every kind of failure, provoked with a request carrying secrets in headers and body: neither
/// `Display` nor `Debug` of the error shows any of them.
pub async fn errors_never_print_header_values_or_bodies<A: Adapter>() {
    let plain = TestServer::start().await;
    let pki = TestPki::generate("secrets");
    let tls = TestServer::start_tls(&pki).await;
    let transport = A::default_transport();
    let short = Duration::from_millis(250);
    let cases = [
        (refused_url().await, Expectations::json()),
        (
            plain.url("/stall"),
            Expectations::json().with_timeout(short),
        ),
        (
            plain.url("/trickle"),
            Expectations::json().with_timeout(short),
        ),
        (plain.url("/endless"), bound(1024)),
        (plain.url("/declared/5000"), bound(1024)),
        (plain.url("/garbage"), Expectations::json()),
        (tls.url("/echo"), Expectations::json()),
    ];
    let mut kinds = Vec::new();
    for (url, expect) in cases {
        let err = expect_err(transport.send(secret_request(&url, expect)).await, &url);
        let shown = format!("{err}\n{err:?}");
        for secret in [
            "SUPER-SECRET",
            "ALSO-SECRET",
            "BODY-SECRET",
            "refresh_token",
        ] {
            assert!(!shown.contains(secret), "{url} leaked {secret}: {shown}");
        }
        assert_names_url(&err, &url);
        kinds.push(std::mem::discriminant(&err));
    }
    kinds.sort_by_key(|d| format!("{d:?}"));
    kinds.dedup();
    assert_eq!(kinds.len(), 5, "every error kind was exercised");
}

/// A URL on 127.0.0.1 where nothing listens (a port just released).
/// The transport fits where the async layers keep one: a shared `dyn HttpClient`, used from
/// several tasks at once.
pub async fn usable_as_a_shared_trait_object<A: Adapter>() {
    let server = TestServer::start().await;
    let shared: std::sync::Arc<dyn HttpClient> = std::sync::Arc::new(A::default_transport());
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let shared = shared.clone();
            let url = server.url("/echo");
            tokio::spawn(async move {
                let request = request("GET", &url, b"", Expectations::json());
                shared.send(request).await.unwrap().status()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), http::StatusCode::CREATED);
    }
    assert_eq!(server.requests().len(), 4);
}

async fn refused_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/token")
}
