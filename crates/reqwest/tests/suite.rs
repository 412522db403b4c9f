//! The shared transport suite, run against [`ReqwestTransport`], and what only this adapter has:
//! a caller-supplied client that follows redirects, and the builder's errors.

// Adapter constructors run outside `#[test]` functions; a panic there is a test failure.
#![allow(clippy::unwrap_used)]

use matrix_oidc_core::http::{Expectations, OutgoingRequest};
use matrix_oidc_core::transport::{HttpClient, TransportError};
use matrix_oidc_reqwest::{ConfigError, ReqwestTransport};
use matrix_oidc_transport_tests::{Adapter, TestServer, run, transport_suite};

struct Reqwest;

impl Adapter for Reqwest {
    type Transport = ReqwestTransport;

    fn default_transport() -> ReqwestTransport {
        ReqwestTransport::try_default().unwrap()
    }

    fn trusting(ca_pem: &str) -> ReqwestTransport {
        ReqwestTransport::builder()
            .add_root_certificates_pem(ca_pem)
            .unwrap()
            .build()
            .unwrap()
    }

    fn trusting_only(ca_pem: &str) -> ReqwestTransport {
        ReqwestTransport::builder()
            .add_root_certificates_pem(ca_pem)
            .unwrap()
            .platform_roots(false)
            .build()
            .unwrap()
    }
}

transport_suite!(Reqwest);

/// A client that follows redirects (reqwest's default) is caught: the exchange fails instead of
/// returning the redirect target's response as if it were the answer.
#[test]
fn a_client_that_follows_redirects_is_refused() {
    run(async {
        let server = TestServer::start().await;
        // What a caller might hand in: a client with reqwest's default redirect policy.
        let client = ReqwestTransport::builder()
            .client_builder()
            .unwrap()
            .redirect(reqwest::redirect::Policy::default())
            .build()
            .unwrap();
        let transport = ReqwestTransport::new(client);
        let url = server.url("/redirect");
        let request = OutgoingRequest {
            request: http::Request::get(&url).body(Vec::new()).unwrap(),
            expect: Expectations::json(),
        };
        let err = transport.send(request).await.unwrap_err();
        assert!(matches!(err, TransportError::Refused { .. }), "{err:?}");
        assert_eq!(err.url(), url);
        assert!(err.to_string().contains("Policy::none()"), "{err}");
        // It did follow: the server saw the redirect and its target.
        let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
        assert_eq!(targets, ["/redirect", "/echo?from=redirect"]);
    });
}

/// `configure` cannot turn redirects back on: the builder's policy wins.
#[test]
fn configure_keeps_redirects_off() {
    run(async {
        let server = TestServer::start().await;
        let transport = ReqwestTransport::builder()
            .configure(|b| b.redirect(reqwest::redirect::Policy::limited(5)))
            .build()
            .unwrap();
        let request = OutgoingRequest {
            request: http::Request::get(server.url("/redirect"))
                .body(Vec::new())
                .unwrap(),
            expect: Expectations::json(),
        };
        let response = transport.send(request).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::FOUND);
        assert_eq!(server.requests().len(), 1);
    });
}

/// The builder's own user agent reaches the server; a custom one replaces it.
#[test]
fn user_agent_is_sent() {
    run(async {
        let server = TestServer::start().await;
        for (transport, expected) in [
            (
                ReqwestTransport::try_default().unwrap(),
                matrix_oidc_reqwest::DEFAULT_USER_AGENT,
            ),
            (
                ReqwestTransport::builder()
                    .user_agent("my-app/2.0")
                    .build()
                    .unwrap(),
                "my-app/2.0",
            ),
        ] {
            let request = OutgoingRequest {
                request: http::Request::get(server.url("/echo"))
                    .body(Vec::new())
                    .unwrap(),
                expect: Expectations::json(),
            };
            transport.send(request).await.unwrap();
            let seen = server.requests();
            let last = seen.last().unwrap();
            assert_eq!(last.header("user-agent"), Some(expected.as_bytes()));
        }
    });
}

#[test]
fn builder_reports_bad_roots() {
    let err = ReqwestTransport::builder()
        .add_root_certificates_pem("no PEM here")
        .unwrap_err();
    assert_eq!(err, ConfigError::NoCertificateInPem);

    let err = ReqwestTransport::builder()
        .add_root_certificates_pem("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
        .unwrap_err();
    assert!(matches!(err, ConfigError::InvalidPem { .. }), "{err:?}");

    let err = ReqwestTransport::builder()
        .add_root_certificate_der(b"not DER".to_vec())
        .build()
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::InvalidCertificate { .. }),
        "{err:?}"
    );

    let err = ReqwestTransport::builder()
        .platform_roots(false)
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::NoRoots);

    let err = ReqwestTransport::builder()
        .user_agent("bad\nagent")
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::InvalidUserAgent);
}

/// The transport's Debug does not print the client's default headers.
#[test]
fn debug_hides_the_client_configuration() {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", "Bearer default-SECRET".parse().unwrap());
    let client = ReqwestTransport::builder()
        .client_builder()
        .unwrap()
        .default_headers(headers)
        .build()
        .unwrap();
    // reqwest's own Debug of this client would list the header.
    let shown = format!("{:?}", ReqwestTransport::new(client));
    assert!(!shown.contains("SECRET"), "{shown}");
}
