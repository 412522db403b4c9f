//! Discovery state machines against recorded exchanges (DISC-1, DISC-6, DISC-7, DISC-9, DISC-11 …
//! DISC-14), generic issuer discovery, and "bring your own metadata".

// Test helpers unwrap freely: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NOW, fixture, http_fixture, json, replay, response, unrecognized};
use matrix_oidc_core::discovery::{
    DiscoveryMethod, DiscoveryOptions, DiscoverySource, IssuerDiscovery, IssuerDiscoveryOptions,
    MatrixDiscovery, Step, WellKnownDocument,
};
use matrix_oidc_core::error::ResponseError;
use matrix_oidc_core::metadata::{MetadataError, MetadataField, ValidationOptions};
use matrix_oidc_core::{Discovered, DiscoveryError, Timestamp, UrlPolicy};
use std::time::Duration;
use url::Url;

const HS: &str = "https://matrix.example.com";
const STABLE: &str = "https://matrix.example.com/_matrix/client/v1/auth_metadata";
const UNSTABLE: &str =
    "https://matrix.example.com/_matrix/client/unstable/org.matrix.msc2965/auth_metadata";
const AUTH_ISSUER: &str =
    "https://matrix.example.com/_matrix/client/unstable/org.matrix.msc2965/auth_issuer";
const WELL_KNOWN: &str = "https://matrix.example.com/.well-known/matrix/client";
const MAS_CONFIG: &str = "https://auth.example.com/.well-known/openid-configuration";

fn discovery() -> MatrixDiscovery {
    MatrixDiscovery::new(&Url::parse(HS).unwrap(), DiscoveryOptions::default()).unwrap()
}

fn spec_metadata() -> http::Response<Vec<u8>> {
    response(
        200,
        Some("application/json"),
        &fixture("spec_auth_metadata.json"),
    )
}

fn secs(n: u64) -> Timestamp {
    NOW + Duration::from_secs(n)
}

/// DISC-1: an unauthenticated GET for JSON that the transport must not redirect.
#[test]
fn disc1_first_request_is_an_unauthenticated_get() {
    let mut d = discovery();
    let Step::Send(req) = d.start().unwrap() else {
        panic!("first step must be a request")
    };
    assert_eq!(req.request.method(), http::Method::GET);
    assert_eq!(req.url(), STABLE);
    assert!(req.request.headers().get("authorization").is_none());
    assert_eq!(req.request.headers()["accept"], "application/json");
    assert!(!req.expect.follow_redirects);
    assert!(req.request.body().is_empty());
}

/// Synapse serving MAS's metadata at the stable endpoint: one request, cache hints from its header.
#[test]
fn synapse_stable_endpoint_with_cache_headers() {
    let r = replay(&mut discovery(), |url| match url {
        STABLE => http_fixture("synapse_auth_metadata.http"),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(r.urls(), [STABLE]);
    let d = r.discovered();
    assert_eq!(d.source, DiscoverySource::AuthMetadata);
    assert_eq!(d.url.as_ref().map(Url::as_str), Some(STABLE));
    assert_eq!(d.metadata.issuer.as_str(), "https://auth.example.com/");
    // DISC-7: max-age=600 for a private cache (s-maxage is for proxies), stale-while-revalidate 600.
    assert_eq!(d.fresh_until(), Some(secs(600)));
    assert_eq!(d.cache.stale_while_revalidate_until, Some(secs(1200)));
    assert!(d.is_fresh(secs(599)));
    assert!(!d.is_fresh(secs(600)));
}

/// DISC-13/14: the whole legacy chain, recorded: stable 404 M_UNRECOGNIZED → unstable 404
/// M_UNRECOGNIZED → auth_issuer → the issuer's openid-configuration.
#[test]
fn disc14_recorded_legacy_chain_to_auth_issuer() {
    let r = replay(&mut discovery(), |url| match url {
        STABLE | UNSTABLE => unrecognized(),
        AUTH_ISSUER => http_fixture("synapse_auth_issuer.http"),
        MAS_CONFIG => http_fixture("mas_openid_configuration.http"),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(r.urls(), [STABLE, UNSTABLE, AUTH_ISSUER, MAS_CONFIG]);
    let d = r.discovered();
    assert_eq!(d.source, DiscoverySource::AuthIssuer);
    assert_eq!(d.url.as_ref().map(Url::as_str), Some(MAS_CONFIG));
    assert!(d.metadata.supports_device_grant());
    // MAS sends no caching header; the auth_issuer answer's 600 s bound the result.
    assert_eq!(d.fresh_until(), Some(secs(600)));
}

/// DISC-9: a caller that knows the server predates v1.15 starts with the unstable endpoint.
#[test]
fn disc9_unstable_first() {
    let options = DiscoveryOptions::default().with_methods([
        DiscoveryMethod::UnstableAuthMetadata,
        DiscoveryMethod::AuthMetadata,
    ]);
    let mut d = MatrixDiscovery::new(&Url::parse(HS).unwrap(), options).unwrap();
    let r = replay(&mut d, |url| match url {
        UNSTABLE => spec_metadata(),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(r.urls(), [UNSTABLE]);
    assert_eq!(r.discovered().source, DiscoverySource::UnstableAuthMetadata);

    // And the default order falls through a plain 404 (a proxy not routing the stable path).
    let r = replay(&mut discovery(), |url| match url {
        STABLE => response(404, Some("text/html"), b"<h1>Not Found</h1>"),
        UNSTABLE => spec_metadata(),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(r.urls(), [STABLE, UNSTABLE]);
    assert_eq!(r.discovered().source, DiscoverySource::UnstableAuthMetadata);
}

/// DISC-6: a homeserver without the OAuth 2.0 API (every endpoint 404 M_UNRECOGNIZED, a well-known
/// without an authentication block) is "not supported", and the error lists what was tried.
#[test]
fn disc6_not_supported() {
    let r = replay(&mut discovery(), |url| match url {
        WELL_KNOWN => json(
            200,
            r#"{"m.homeserver":{"base_url":"https://matrix.example.com"}}"#,
        ),
        _ => unrecognized(),
    });
    assert_eq!(r.urls(), [STABLE, UNSTABLE, AUTH_ISSUER, WELL_KNOWN]);
    let err = r.error();
    assert!(err.is_not_supported(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("GET {STABLE} → 404 M_UNRECOGNIZED")),
        "{text}"
    );
    assert!(
        text.contains("no org.matrix.msc2965.authentication block"),
        "{text}"
    );

    // Only the stable endpoint enabled: its 404 M_UNRECOGNIZED alone means "not supported".
    let options = DiscoveryOptions::default().with_methods([DiscoveryMethod::AuthMetadata]);
    let mut d = MatrixDiscovery::new(&Url::parse(HS).unwrap(), options).unwrap();
    let err = replay(&mut d, |_| unrecognized()).error();
    assert!(matches!(&err, DiscoveryError::NotSupported { attempts } if attempts.len() == 1));
}

/// DISC-6: 404 without M_UNRECOGNIZED everywhere is not "not supported": likely not a homeserver.
#[test]
fn disc6_plain_404_is_no_metadata() {
    let err = replay(&mut discovery(), |_| {
        response(404, Some("text/html"), b"<h1>Not Found</h1>")
    })
    .error();
    assert!(matches!(err, DiscoveryError::NoMetadata { ref attempts } if attempts.len() == 4));
    assert!(!err.is_not_supported());
}

/// DISC-6: any other failure is an error at once, with the URL, and no fallthrough.
#[test]
fn disc6_other_failures_stop_the_chain() {
    // A server error.
    let r = replay(&mut discovery(), |_| {
        json(
            500,
            r#"{"errcode":"M_UNKNOWN","error":"Internal server error"}"#,
        )
    });
    assert_eq!(r.urls(), [STABLE]);
    let err = r.error();
    assert!(err.is_retryable());
    assert!(!err.is_not_supported());
    assert!(
        err.to_string().starts_with(&format!("GET {STABLE} failed")),
        "{err}"
    );

    // Rate limited.
    let err = replay(&mut discovery(), |_| {
        json(
            429,
            r#"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":2000}"#,
        )
    })
    .error();
    assert!(err.is_retryable(), "{err}");

    // 405 without M_UNRECOGNIZED.
    let r = replay(&mut discovery(), |_| response(405, None, b""));
    assert_eq!(r.urls(), [STABLE]);
    assert!(matches!(
        r.error(),
        DiscoveryError::Http {
            error: ResponseError::UnexpectedStatus { status: 405, .. },
            ..
        }
    ));

    // A redirect from a Matrix endpoint is never followed.
    let r = replay(&mut discovery(), |_| {
        http::Response::builder()
            .status(302)
            .header("location", "https://elsewhere.example.com/")
            .body(Vec::new())
            .unwrap()
    });
    assert_eq!(r.urls(), [STABLE]);
    let err = r.error();
    assert!(
        matches!(
            &err,
            DiscoveryError::Http {
                error: ResponseError::Redirect { status: 302, .. },
                ..
            }
        ),
        "{err}"
    );

    // An HTML page with 200.
    let err = replay(&mut discovery(), |_| {
        response(200, Some("text/html"), b"<html></html>")
    })
    .error();
    assert!(
        err.to_string().contains("expected a JSON response"),
        "{err}"
    );

    // An oversized body.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let err = replay(&mut discovery(), |_| json(200, &big)).error();
    assert!(
        matches!(
            &err,
            DiscoveryError::Http {
                error: ResponseError::BodyTooLarge { .. },
                ..
            }
        ),
        "{err}"
    );
}

/// An invalid document at the stable endpoint is an error naming the URL and the field; the older
/// methods are not tried.
#[test]
fn invalid_document_is_not_a_fallthrough() {
    let r = replay(&mut discovery(), |url| match url {
        STABLE => json(200, r#"{"issuer":"https://account.example.com/"}"#),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(r.urls(), [STABLE]);
    let err = r.error();
    assert_eq!(
        err,
        DiscoveryError::Metadata {
            url: STABLE.to_owned(),
            error: MetadataError::MissingField {
                field: MetadataField::AuthorizationEndpoint
            }
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the authorization server metadata from {STABLE} is invalid: \
             the required field `authorization_endpoint` is missing"
        )
    );
}

/// A metadata response that is not JSON is an HTTP-level problem (with an excerpt of the body); JSON
/// that is not an object is a metadata problem. Both stop the chain.
#[test]
fn metadata_body_not_json_or_not_an_object() {
    let r = replay(&mut discovery(), |url| match url {
        STABLE => json(200, r#"{"issuer": "https://account.example.com/","#),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(r.urls(), [STABLE]);
    let expected_reason =
        serde_json::from_str::<serde_json::Value>(r#"{"issuer": "https://account.example.com/","#)
            .unwrap_err()
            .to_string();
    match r.error() {
        DiscoveryError::Http {
            url,
            error: ResponseError::InvalidJson { reason, body },
        } => {
            assert_eq!(url, STABLE);
            assert_eq!(reason, expected_reason);
            assert!(body.to_string().contains("account.example.com"), "{body}");
        }
        other => panic!("{other}"),
    }

    let r = replay(&mut discovery(), |url| match url {
        STABLE => json(200, r#"["https://account.example.com/"]"#),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(
        r.error(),
        DiscoveryError::Metadata {
            url: STABLE.to_owned(),
            error: MetadataError::NotAnObject {
                reason: "found an array".to_owned()
            }
        }
    );
}

/// DISC-11: OpenID Connect Discovery joining appends to the issuer's path, never resolves relatively;
/// the configuration's issuer must equal the one auth_issuer named.
#[test]
fn disc11_issuer_with_path_and_issuer_check() {
    let config_url = "https://sso.example.com/realms/matrix/.well-known/openid-configuration";
    let mut doc: serde_json::Value =
        serde_json::from_slice(&fixture("mas_openid_configuration.json")).unwrap();
    doc["issuer"] = "https://sso.example.com/realms/matrix".into();
    let body = doc.to_string();
    let r = replay(&mut discovery(), |url| match url {
        STABLE | UNSTABLE => unrecognized(),
        AUTH_ISSUER => json(200, r#"{"issuer":"https://sso.example.com/realms/matrix"}"#),
        u if u == config_url => json(200, &body),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(r.urls(), [STABLE, UNSTABLE, AUTH_ISSUER, config_url]);
    assert_eq!(
        r.discovered().metadata.issuer.as_str(),
        "https://sso.example.com/realms/matrix"
    );

    // A configuration naming another issuer is refused.
    let err = replay(&mut discovery(), |url| match url {
        STABLE | UNSTABLE => unrecognized(),
        AUTH_ISSUER => json(200, r#"{"issuer":"https://other.example.com/"}"#),
        _ => http_fixture("mas_openid_configuration.http"),
    })
    .error();
    assert!(
        matches!(
            &err,
            DiscoveryError::Metadata { error: MetadataError::IssuerMismatch { .. }, url }
                if url == "https://other.example.com/.well-known/openid-configuration"
        ),
        "{err}"
    );

    // The issuer named exists but has no configuration: an error, not "not supported".
    let err = replay(&mut discovery(), |url| match url {
        STABLE | UNSTABLE => unrecognized(),
        AUTH_ISSUER => http_fixture("synapse_auth_issuer.http"),
        _ => response(404, None, b""),
    })
    .error();
    assert!(
        matches!(&err, DiscoveryError::Http { url, .. } if url == MAS_CONFIG),
        "{err}"
    );

    // An auth_issuer answer without an issuer, or with an unusable one, is "misconfigured".
    let err = replay(&mut discovery(), |url| match url {
        STABLE | UNSTABLE => unrecognized(),
        _ => json(200, r#"{"iss":"https://auth.example.com/"}"#),
    })
    .error();
    assert!(matches!(err, DiscoveryError::Misconfigured { .. }), "{err}");
    let err = replay(&mut discovery(), |url| match url {
        STABLE | UNSTABLE => unrecognized(),
        _ => json(200, r#"{"issuer":"https://auth.example.com/?x=1"}"#),
    })
    .error();
    assert!(matches!(err, DiscoveryError::InvalidIssuer { .. }), "{err}");
}

/// DISC-12: the oldest chain, through `/.well-known/matrix/client`.
#[test]
fn disc12_well_known_chain() {
    let r = replay(&mut discovery(), |url| match url {
        STABLE | UNSTABLE | AUTH_ISSUER => unrecognized(),
        WELL_KNOWN => http_fixture("synapse_well_known_client.http"),
        MAS_CONFIG => http_fixture("mas_openid_configuration.http"),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(
        r.urls(),
        [STABLE, UNSTABLE, AUTH_ISSUER, WELL_KNOWN, MAS_CONFIG]
    );
    let d = r.discovered();
    assert_eq!(d.source, DiscoverySource::WellKnown);
    assert_eq!(d.fresh_until(), Some(secs(3600)));

    // The block's `account` fills a missing account_management_uri.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&fixture("mas_openid_configuration.json")).unwrap();
    doc.as_object_mut()
        .unwrap()
        .remove("account_management_uri");
    let body = doc.to_string();
    let d = replay(&mut discovery(), |url| match url {
        WELL_KNOWN => http_fixture("synapse_well_known_client.http"),
        MAS_CONFIG => json(200, &body),
        _ => unrecognized(),
    })
    .discovered();
    assert_eq!(
        d.metadata.account_management_uri.as_ref().map(Url::as_str),
        Some("https://auth.example.com/account/")
    );

    // A malformed block is "misconfigured".
    for block in [
        r#"{"org.matrix.msc2965.authentication":"https://auth.example.com/"}"#,
        r#"{"org.matrix.msc2965.authentication":{"account":"https://auth.example.com/account"}}"#,
        r#"{"m.authentication":{"issuer":"https://auth.example.com/","account":7}}"#,
    ] {
        let err = replay(&mut discovery(), |url| match url {
            WELL_KNOWN => json(200, block),
            _ => unrecognized(),
        })
        .error();
        assert!(
            matches!(err, DiscoveryError::Misconfigured { ref url, .. } if url == WELL_KNOWN),
            "{block}: {err}"
        );
    }

    // A single-page app answering every path with HTML is "no block here", so the answer stays
    // "not supported".
    let err = replay(&mut discovery(), |url| match url {
        WELL_KNOWN => response(200, Some("text/html"), b"<!doctype html><html></html>"),
        _ => unrecognized(),
    })
    .error();
    assert!(err.is_not_supported(), "{err}");
    assert!(err.to_string().contains("not a JSON object"), "{err}");

    // The well-known may live at the server name's origin.
    let options = DiscoveryOptions::default()
        .with_methods([DiscoveryMethod::WellKnown])
        .with_well_known_base(Url::parse("https://example.com/").unwrap());
    let mut d = MatrixDiscovery::new(&Url::parse(HS).unwrap(), options).unwrap();
    let r = replay(&mut d, |url| match url {
        "https://example.com/.well-known/matrix/client" => {
            http_fixture("synapse_well_known_client.http")
        }
        MAS_CONFIG => http_fixture("mas_openid_configuration.http"),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(r.discovered().source, DiscoverySource::WellKnown);
}

/// MSC4402: redirects of `/.well-known/matrix/client` are followed, within bounds and the URL policy.
#[test]
fn well_known_redirects() {
    let redirect = |to: &str| {
        http::Response::builder()
            .status(301)
            .header("location", to)
            .body(Vec::new())
            .unwrap()
    };
    let only_well_known = || {
        let options = DiscoveryOptions::default().with_methods([DiscoveryMethod::WellKnown]);
        MatrixDiscovery::new(&Url::parse(HS).unwrap(), options).unwrap()
    };
    let r = replay(&mut only_well_known(), |url| match url {
        WELL_KNOWN => redirect("https://example.com/.well-known/matrix/client"),
        "https://example.com/.well-known/matrix/client" => {
            http_fixture("synapse_well_known_client.http")
        }
        MAS_CONFIG => http_fixture("mas_openid_configuration.http"),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(
        r.urls(),
        [
            WELL_KNOWN,
            "https://example.com/.well-known/matrix/client",
            MAS_CONFIG
        ]
    );
    r.discovered();

    // A loop ends after max_redirects.
    let r = replay(&mut only_well_known(), |_| {
        redirect("/.well-known/matrix/client")
    });
    assert_eq!(r.urls().len(), 6);
    assert!(matches!(r.error(), DiscoveryError::BadRedirect { .. }));

    // A redirect to http is refused under HttpsOnly.
    let err = replay(&mut only_well_known(), |_| {
        redirect("http://example.com/.well-known/matrix/client")
    })
    .error();
    assert!(
        err.to_string().contains("not allowed by the URL policy"),
        "{err}"
    );
}

/// DISC-8 at the entry: the homeserver URL follows the same URL policy; the opt-in is named.
#[test]
fn disc8_homeserver_url_policy() {
    let local = Url::parse("http://127.0.0.1:8008").unwrap();
    let err = MatrixDiscovery::new(&local, DiscoveryOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("UrlPolicy::AllowInsecureLoopback"),
        "{err}"
    );
    let options = DiscoveryOptions::default().with_url_policy(UrlPolicy::AllowInsecureLoopback);
    let mut d = MatrixDiscovery::new(&local, options.clone()).unwrap();
    let r = replay(&mut d, |url| match url {
        "http://127.0.0.1:8008/_matrix/client/v1/auth_metadata" => json(
            200,
            &String::from_utf8(fixture("oidc_provider_openid_configuration.json")).unwrap(),
        ),
        other => panic!("unexpected request {other}"),
    });
    let d = r.discovered();
    assert_eq!(d.metadata.issuer.as_str(), "http://127.0.0.1:3000/");
    assert!(
        MatrixDiscovery::new(&Url::parse("http://matrix.example.com").unwrap(), options).is_err()
    );
}

/// A homeserver under a path prefix keeps it.
#[test]
fn homeserver_path_prefix() {
    let d = MatrixDiscovery::new(
        &Url::parse("https://example.com/matrix/?x=1").unwrap(),
        DiscoveryOptions::default(),
    )
    .unwrap();
    assert_eq!(
        d.url_for(DiscoveryMethod::AuthMetadata).as_str(),
        "https://example.com/matrix/_matrix/client/v1/auth_metadata"
    );
    assert_eq!(
        d.url_for(DiscoveryMethod::WellKnown).as_str(),
        "https://example.com/.well-known/matrix/client"
    );
}

/// The call-order contract: no response is accepted without an outstanding request.
#[test]
fn call_order_contract() {
    let mut d = discovery();
    assert_eq!(
        d.handle_response(&spec_metadata(), NOW).unwrap_err(),
        DiscoveryError::NoRequestPending
    );
    let _ = d.start().unwrap();
    assert!(matches!(
        d.handle_response(&spec_metadata(), NOW),
        Ok(Step::Done(_))
    ));
    assert_eq!(
        d.handle_response(&spec_metadata(), NOW).unwrap_err(),
        DiscoveryError::NoRequestPending
    );
    // After an error, too.
    let mut d = discovery();
    let _ = d.start().unwrap();
    assert!(d.handle_response(&json(500, "{}"), NOW).is_err());
    assert_eq!(
        d.handle_response(&spec_metadata(), NOW).unwrap_err(),
        DiscoveryError::NoRequestPending
    );
    // start() restarts.
    assert!(matches!(d.start(), Ok(Step::Send(r)) if r.url() == STABLE));
}

/// Generic discovery for a non-Matrix relying party: oidc-provider on loopback.
#[test]
fn issuer_discovery_oidc_provider() {
    let issuer = Url::parse("http://127.0.0.1:3000").unwrap();
    assert!(IssuerDiscovery::new(&issuer, IssuerDiscoveryOptions::default()).is_err());
    let options =
        IssuerDiscoveryOptions::default().with_url_policy(UrlPolicy::AllowInsecureLoopback);
    let mut d = IssuerDiscovery::new(&issuer, options).unwrap();
    let r = replay(&mut d, |url| match url {
        "http://127.0.0.1:3000/.well-known/openid-configuration" => response(
            200,
            Some("application/json; charset=utf-8"),
            &fixture("oidc_provider_openid_configuration.json"),
        ),
        other => panic!("unexpected request {other}"),
    });
    let found = r.discovered();
    assert_eq!(found.source, DiscoverySource::OpenIdConfiguration);
    assert!(
        found
            .metadata
            .authorization_response_iss_parameter_supported
    );
    assert_eq!(found.fresh_until(), None);
}

/// RFC 8414 path insertion after a 404 of the OpenID configuration; anything else stops.
#[test]
fn issuer_discovery_falls_back_to_rfc8414() {
    let issuer = Url::parse("https://as.example.com/tenant1").unwrap();
    let doc = serde_json::json!({
        "issuer": "https://as.example.com/tenant1",
        "authorization_endpoint": "https://as.example.com/tenant1/authorize",
        "token_endpoint": "https://as.example.com/tenant1/token",
        "response_types_supported": ["code"]
    })
    .to_string();
    let mut d = IssuerDiscovery::new(&issuer, IssuerDiscoveryOptions::default()).unwrap();
    let r = replay(&mut d, |url| match url {
        "https://as.example.com/tenant1/.well-known/openid-configuration" => {
            response(404, None, b"")
        }
        "https://as.example.com/.well-known/oauth-authorization-server/tenant1" => json(200, &doc),
        other => panic!("unexpected request {other}"),
    });
    assert_eq!(
        r.discovered().source,
        DiscoverySource::OAuthAuthorizationServer
    );

    let mut d = IssuerDiscovery::new(&issuer, IssuerDiscoveryOptions::default()).unwrap();
    let err = replay(&mut d, |_| response(404, None, b"")).error();
    assert!(
        matches!(err, DiscoveryError::NoMetadata { ref attempts } if attempts.len() == 2),
        "{err}"
    );

    let mut d = IssuerDiscovery::new(
        &issuer,
        IssuerDiscoveryOptions::default()
            .with_documents([WellKnownDocument::OAuthAuthorizationServer]),
    )
    .unwrap();
    let r = replay(&mut d, |_| json(503, "{}"));
    assert_eq!(r.urls().len(), 1);
    assert!(r.error().is_retryable());

    // Issuers with a query or fragment are refused before anything is sent.
    for bad in ["https://as.example.com/?a=b", "https://as.example.com/#f"] {
        let err =
            IssuerDiscovery::new(&Url::parse(bad).unwrap(), IssuerDiscoveryOptions::default())
                .unwrap_err();
        assert!(matches!(err, DiscoveryError::InvalidIssuer { .. }), "{bad}");
    }
}

/// "Bring your own metadata".
#[test]
fn bring_your_own_metadata() {
    let d = Discovered::from_document(
        &fixture("mas_openid_configuration.json"),
        &ValidationOptions::matrix(),
        Some(&Url::parse("https://auth.example.com/").unwrap()),
    )
    .unwrap();
    assert_eq!(d.source, DiscoverySource::Provided);
    assert_eq!(d.url, None);
    assert_eq!(d.fresh_until(), None);
    let err = Discovered::from_document(b"{}", &ValidationOptions::matrix(), None).unwrap_err();
    assert!(err.to_string().contains("`issuer` is missing"), "{err}");
    let again =
        Discovered::from_metadata(d.metadata.clone(), &ValidationOptions::matrix(), None).unwrap();
    assert_eq!(again.metadata, d.metadata);
}
