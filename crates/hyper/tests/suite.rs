//! The shared transport suite, run against [`HyperTransport`], and what only this adapter has: a
//! caller-built client over the crate's connector, and the builder's errors.

// Adapter constructors run outside `#[test]` functions; a panic there is a test failure.
#![allow(clippy::unwrap_used)]

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use matrix_oidc_core::http::{Expectations, OutgoingRequest};
use matrix_oidc_core::transport::HttpClient;
use matrix_oidc_hyper::{ConfigError, HyperTransport};
use matrix_oidc_transport_tests::{Adapter, TestPki, TestServer, run, transport_suite};

struct Hyper;

impl Adapter for Hyper {
    type Transport = HyperTransport;

    fn default_transport() -> HyperTransport {
        HyperTransport::try_default().unwrap()
    }

    fn trusting(ca_pem: &str) -> HyperTransport {
        HyperTransport::builder()
            .add_root_certificates_pem(ca_pem)
            .unwrap()
            .build()
            .unwrap()
    }

    fn trusting_only(ca_pem: &str) -> HyperTransport {
        HyperTransport::builder()
            .add_root_certificates_pem(ca_pem)
            .unwrap()
            .platform_roots(false)
            .build()
            .unwrap()
    }
}

transport_suite!(Hyper);

fn get(url: String) -> OutgoingRequest {
    OutgoingRequest {
        request: http::Request::get(url).body(Vec::new()).unwrap(),
        expect: Expectations::json(),
    }
}

/// A client the caller builds over the crate's connector works the same, over TLS too, and sends
/// no `User-Agent` unless asked to.
#[test]
fn a_caller_built_client_is_wrapped() {
    run(async {
        let pki = TestPki::generate("own client");
        let server = TestServer::start_tls(&pki).await;
        let connector = HyperTransport::builder()
            .add_root_certificates_pem(pki.ca_pem())
            .unwrap()
            .platform_roots(false)
            .connector()
            .unwrap();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let transport = HyperTransport::new(client);
        let response = transport.send(get(server.url("/echo"))).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::CREATED);
        assert_eq!(server.requests()[0].header("user-agent"), None);

        let transport = transport.with_user_agent("my-app/2.0").unwrap();
        transport.send(get(server.url("/echo"))).await.unwrap();
        assert_eq!(
            server.requests()[1].header("user-agent"),
            Some(&b"my-app/2.0"[..])
        );
    });
}

/// The builder's user agent is sent, but never replaces one the request carries.
#[test]
fn user_agent_is_sent_unless_the_request_has_one() {
    run(async {
        let server = TestServer::start().await;
        let transport = HyperTransport::try_default().unwrap();
        transport.send(get(server.url("/echo"))).await.unwrap();
        let mut own = get(server.url("/echo"));
        own.request
            .headers_mut()
            .insert("user-agent", "caller/1".parse().unwrap());
        transport.send(own).await.unwrap();
        let seen = server.requests();
        assert_eq!(
            seen[0].header("user-agent"),
            Some(matrix_oidc_hyper::DEFAULT_USER_AGENT.as_bytes())
        );
        assert_eq!(seen[1].header("user-agent"), Some(&b"caller/1"[..]));
    });
}

#[test]
fn builder_reports_bad_roots() {
    let err = HyperTransport::builder()
        .add_root_certificates_pem("no PEM here")
        .unwrap_err();
    assert_eq!(err, ConfigError::NoCertificateInPem);

    let err = HyperTransport::builder()
        .add_root_certificates_pem("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
        .unwrap_err();
    assert!(matches!(err, ConfigError::InvalidPem { .. }), "{err:?}");

    let err = HyperTransport::builder()
        .add_root_certificate_der(b"not DER".to_vec())
        .build()
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::InvalidCertificate { .. }),
        "{err:?}"
    );

    let err = HyperTransport::builder()
        .platform_roots(false)
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::NoRoots);

    let err = HyperTransport::builder()
        .user_agent("bad\nagent")
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::InvalidUserAgent);
}
