//! Dynamic client registration (REG-1 … REG-10): metadata, local rules (spec and MAS), the round trip.

// Test helpers unwrap freely: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixture, fixture_json, json, response};
use matrix_oidc_core::metadata::{AuthorizationServerMetadata, Profile, ValidationOptions};
use matrix_oidc_core::registration::{
    ClientMetadata, ClientMetadataError, MetadataRules, NotSupportedReason, Registration,
    RegistrationError, RegistrationErrorCode, RuleSource,
};
use matrix_oidc_core::{DEVICE_CODE_GRANT_TYPE, Timestamp};
use serde_json::json;
use url::Url;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn spec_server() -> AuthorizationServerMetadata {
    AuthorizationServerMetadata::from_json(
        &fixture("spec_auth_metadata.json"),
        &ValidationOptions::matrix(),
        None,
    )
    .unwrap()
}

fn mas_server() -> AuthorizationServerMetadata {
    AuthorizationServerMetadata::from_json(
        &fixture("mas_openid_configuration.json"),
        &ValidationOptions::matrix(),
        None,
    )
    .unwrap()
}

fn native() -> ClientMetadata {
    ClientMetadata::native(url("https://example.com/"))
}

fn web() -> ClientMetadata {
    ClientMetadata::web(url("https://example.com/"))
}

fn spec_request_client() -> ClientMetadata {
    let mut client = web()
        .with_client_name("My App")
        .with_localized_client_name("fr", "Mon application")
        .with_logo_uri(url("https://example.com/logo.png"))
        .with_tos_uri(url("https://example.com/tos.html"))
        .with_localized_tos_uri("fr", url("https://example.com/fr/tos.html"))
        .with_policy_uri(url("https://example.com/policy.html"))
        .with_localized_policy_uri("fr", url("https://example.com/fr/policy.html"))
        .with_redirect_uri(url("https://app.example.com/callback"));
    client
        .grant_types
        .push("urn:ietf:params:oauth:grant-type:token-exchange".to_owned());
    client
}

/// REG-2/REG-3: the builder produces the spec's example request, translations as `#lang` keys.
#[test]
fn reg3_spec_example_request() {
    let client = spec_request_client();
    assert_eq!(
        client.to_json(),
        fixture_json("spec_registration_request.json")
    );
    assert_eq!(client.violations(MetadataRules::MatrixSpec), []);
}

/// REG-4: matrix-rust-sdk's minimal metadata vector, byte for byte the same JSON.
#[test]
fn reg4_minimal_native_client() {
    let client = ClientMetadata::native(url("https://github.com/matrix-org/matrix-rust-sdk"))
        .with_redirect_uri(url("http://127.0.0.1/"));
    assert_eq!(
        client.to_json(),
        json!({"application_type":"native","grant_types":["authorization_code","refresh_token"],
               "response_types":["code"],"token_endpoint_auth_method":"none",
               "redirect_uris":["http://127.0.0.1/"],
               "client_uri":"https://github.com/matrix-org/matrix-rust-sdk"})
    );
    assert!(client.validate(MetadataRules::Portable).is_ok());
}

/// REG-4: grant types — device code when wanted, refused when the server lacks it.
#[test]
fn reg4_grant_types_and_server_support() {
    let client = native()
        .with_redirect_uri(url("com.example.app:/callback"))
        .with_device_code_grant()
        .with_device_code_grant();
    assert_eq!(
        client.grant_types,
        [
            "authorization_code",
            "refresh_token",
            DEVICE_CODE_GRANT_TYPE
        ]
    );
    assert!(Registration::new(&mas_server(), &client, MetadataRules::Portable).is_ok());
    assert_eq!(
        Registration::new(&spec_server(), &client, MetadataRules::MatrixSpec).unwrap_err(),
        RegistrationError::NotSupported {
            reason: NotSupportedReason::GrantTypeNotSupported(DEVICE_CODE_GRANT_TYPE.to_owned())
        }
    );
    // The grant type listed but no device endpoint.
    let mut server = spec_server();
    server
        .grant_types_supported
        .as_mut()
        .unwrap()
        .push(DEVICE_CODE_GRANT_TYPE.into());
    let err = Registration::new(&server, &client, MetadataRules::MatrixSpec).unwrap_err();
    assert_eq!(
        err,
        RegistrationError::NotSupported {
            reason: NotSupportedReason::NoDeviceAuthorizationEndpoint
        }
    );
    assert!(
        err.to_string()
            .starts_with("dynamic client registration is not supported")
    );

    // The spec example's token-exchange grant is not offered by the spec example's server.
    let err = Registration::new(
        &spec_server(),
        &spec_request_client(),
        MetadataRules::MatrixSpec,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        RegistrationError::NotSupported {
            reason: NotSupportedReason::GrantTypeNotSupported(ref g)
        } if g == "urn:ietf:params:oauth:grant-type:token-exchange"
    ));

    // A device-only client needs no redirect URI and sends no response type.
    let device = native().device_code_only();
    assert_eq!(device.violations(MetadataRules::Portable), []);
    let body = device.to_json();
    assert!(body.get("response_types").is_none());
    assert!(body.get("redirect_uris").is_none());
    assert_eq!(
        body["grant_types"],
        json!([DEVICE_CODE_GRANT_TYPE, "refresh_token"])
    );

    // Without refresh_token, or without any usable grant.
    let mut c = native().with_redirect_uri(url("com.example.app:/cb"));
    c.grant_types.retain(|g| g != "refresh_token");
    assert_eq!(
        c.validate(MetadataRules::MatrixSpec),
        Err(ClientMetadataError::MissingGrantType {
            grant_type: "refresh_token"
        })
    );
    let mut c = native();
    c.grant_types = vec!["refresh_token".to_owned()];
    assert_eq!(
        c.validate(MetadataRules::MatrixSpec),
        Err(ClientMetadataError::MissingGrantType {
            grant_type: "authorization_code"
        })
    );
    let mut c = native().with_redirect_uri(url("com.example.app:/cb"));
    c.response_types.clear();
    assert_eq!(
        c.validate(MetadataRules::MatrixSpec),
        Err(ClientMetadataError::MissingCodeResponseType)
    );
}

/// Registration is not supported without a registration endpoint (a server valid under the tolerant
/// profile).
#[test]
fn no_registration_endpoint() {
    let mut doc = fixture_json("spec_auth_metadata.json");
    doc.as_object_mut().unwrap().remove("registration_endpoint");
    let server = AuthorizationServerMetadata::from_json_value(
        doc,
        &ValidationOptions::matrix().with_profile(Profile::MatrixTolerant),
        None,
    )
    .unwrap();
    let client = native().with_redirect_uri(url("http://127.0.0.1/callback"));
    assert_eq!(
        Registration::new(&server, &client, MetadataRules::MatrixSpec).unwrap_err(),
        RegistrationError::NotSupported {
            reason: NotSupportedReason::NoRegistrationEndpoint
        }
    );
}

/// REG-2: logo/tos/policy URIs are https on the client URI's host or a subdomain; the client URI is
/// https. matrix-js-sdk's "should filter out invalid URIs" case, reported instead of dropped.
#[test]
fn reg2_common_base_for_other_uris() {
    let client = ClientMetadata::web(url("https://just.testing"))
        .with_redirect_uri(url("https://just.testing/callback"))
        .with_tos_uri(url("http://just.testing/tos"))
        .with_policy_uri(url("https://policy-uri/"))
        .with_logo_uri(url("https://just.testing:8443/logo.png"));
    assert_eq!(
        client.violations(MetadataRules::MatrixSpec),
        [
            ClientMetadataError::NotHttps {
                field: "tos_uri".to_owned(),
                uri: "http://just.testing/tos".to_owned()
            },
            ClientMetadataError::NotUnderClientUriHost {
                field: "policy_uri".to_owned(),
                uri: "https://policy-uri/".to_owned(),
                client_host: "just.testing".to_owned()
            },
        ]
    );
    // Translations are checked too, and named with their tag.
    let client = web()
        .with_redirect_uri(url("https://example.com/cb"))
        .with_localized_tos_uri("fr", url("https://example.org/fr/tos"));
    let err = client.validate(MetadataRules::MatrixSpec).unwrap_err();
    assert!(
        matches!(&err, ClientMetadataError::NotUnderClientUriHost { field, .. } if field == "tos_uri#fr")
    );
    assert!(
        err.to_string()
            .contains("tos_uri#fr https://example.org/fr/tos"),
        "{err}"
    );
    // Subdomains are fine; look-alike suffixes are not.
    assert!(
        web()
            .with_redirect_uri(url("https://example.com/cb"))
            .with_logo_uri(url("https://static.example.com/logo.png"))
            .validate(MetadataRules::MatrixSpec)
            .is_ok()
    );
    assert!(
        web()
            .with_redirect_uri(url("https://example.com/cb"))
            .with_logo_uri(url("https://badexample.com/logo.png"))
            .validate(MetadataRules::MatrixSpec)
            .is_err()
    );
    // client_uri itself.
    let c = ClientMetadata::native(url("http://example.com/"))
        .with_redirect_uri(url("http://127.0.0.1/cb"));
    assert_eq!(
        c.validate(MetadataRules::MatrixSpec),
        Err(ClientMetadataError::ClientUriNotHttps {
            uri: "http://example.com/".to_owned()
        })
    );
    let c = ClientMetadata::native(url("https://user:pw@example.com/"))
        .with_redirect_uri(url("http://127.0.0.1/cb"));
    assert!(matches!(
        c.validate(MetadataRules::MatrixSpec),
        Err(ClientMetadataError::UserInfo { ref field, .. }) if field == "client_uri"
    ));
    // Bad language tags.
    let c = native()
        .with_redirect_uri(url("http://127.0.0.1/cb"))
        .with_localized_client_name("fr FR", "x");
    assert!(matches!(
        c.validate(MetadataRules::MatrixSpec),
        Err(ClientMetadataError::InvalidLanguageTag {
            field: "client_name",
            ..
        })
    ));
    // Missing redirect URIs for the authorization code grant.
    assert_eq!(
        native().validate(MetadataRules::MatrixSpec),
        Err(ClientMetadataError::MissingRedirectUris)
    );
}

fn spec_check(client: ClientMetadata, uri: &str) -> Vec<ClientMetadataError> {
    client
        .with_redirect_uri(url(uri))
        .violations(MetadataRules::MatrixSpec)
}

/// REG-6/REG-7: the spec's web examples.
#[test]
fn reg7_web_redirect_uris() {
    for ok in [
        "https://example.com/callback",
        "https://app.example.com/callback",
        "https://example.com:5173/?query=value",
    ] {
        assert_eq!(spec_check(web(), ok), [], "{ok}");
    }
    assert_eq!(
        spec_check(web(), "https://example.com/callback#fragment"),
        [ClientMetadataError::RedirectUriFragment {
            uri: "https://example.com/callback#fragment".to_owned()
        }]
    );
    assert_eq!(
        spec_check(web(), "http://example.com/callback"),
        [ClientMetadataError::WebRedirectUriNotHttps {
            uri: "http://example.com/callback".to_owned()
        }]
    );
    assert_eq!(
        spec_check(web(), "http://localhost/"),
        [ClientMetadataError::WebRedirectUriNotHttps {
            uri: "http://localhost/".to_owned()
        }]
    );
    assert!(matches!(
        spec_check(web(), "https://user@example.com/cb").as_slice(),
        [ClientMetadataError::UserInfo { .. }]
    ));
    assert!(matches!(
        spec_check(web(), "https://example.org/cb").as_slice(),
        [ClientMetadataError::NotUnderClientUriHost { .. }]
    ));
    assert!(matches!(
        spec_check(web(), "com.example.app:/callback").as_slice(),
        [ClientMetadataError::WebRedirectUriNotHttps { .. }]
    ));
}

/// REG-6/REG-8: the spec's native examples.
#[test]
fn reg8_native_redirect_uris() {
    for ok in [
        "com.example.app:/callback",
        "com.example:/",
        "com.example:callback",
        "http://localhost/callback",
        "http://127.0.0.1/callback",
        "http://[::1]/callback",
        "https://example.com/callback",
    ] {
        assert_eq!(spec_check(native(), ok), [], "{ok}");
    }
    assert_eq!(
        spec_check(native(), "example:/callback"),
        [ClientMetadataError::PrivateUseSchemeNotReverseDns {
            uri: "example:/callback".to_owned(),
            expected_prefix: "com.example".to_owned()
        }]
    );
    assert_eq!(
        spec_check(native(), "com.example.app://callback"),
        [ClientMetadataError::PrivateUseSchemeHasAuthority {
            uri: "com.example.app://callback".to_owned()
        }]
    );
    assert!(matches!(
        spec_check(native(), "https://localhost/callback").as_slice(),
        [ClientMetadataError::NotUnderClientUriHost { .. }]
    ));
    let port = spec_check(native(), "http://localhost:1234/callback");
    assert_eq!(
        port,
        [ClientMetadataError::LoopbackRedirectUriHasPort {
            uri: "http://localhost:1234/callback".to_owned()
        }]
    );
    assert!(port[0].to_string().contains("MUST NOT have a port"));
    assert!(matches!(
        spec_check(native(), "http://example.com/callback").as_slice(),
        [ClientMetadataError::NativeHttpNotLoopback { .. }]
    ));
    // 127.0.0.2 is loopback but not one of the three hosts the spec allows.
    assert!(matches!(
        spec_check(native(), "http://127.0.0.2/callback").as_slice(),
        [ClientMetadataError::NativeHttpNotLoopback { .. }]
    ));
    assert!(matches!(
        spec_check(native(), "com.examplefoo:/cb").as_slice(),
        [ClientMetadataError::PrivateUseSchemeNotReverseDns { .. }]
    ));
    assert_eq!(
        spec_check(native(), "com.example.app:/callback#frag"),
        [ClientMetadataError::RedirectUriFragment {
            uri: "com.example.app:/callback#frag".to_owned()
        }]
    );
}

fn mas_allows(client: ClientMetadata) -> bool {
    client.violations(MetadataRules::Mas).is_empty()
}

/// REG-9: MAS's policy, case by case from its policy tests.
#[test]
fn reg9_mas_policy() {
    let cb = || web().with_redirect_uri(url("https://example.com/callback"));
    assert!(mas_allows(cb()));
    // client_uri
    assert!(!mas_allows(
        ClientMetadata::web(url("http://example.com/"))
            .with_redirect_uri(url("https://example.com/callback"))
    ));
    assert!(!mas_allows(
        ClientMetadata::native(url("https://localhost/"))
            .with_redirect_uri(url("http://localhost/cb"))
    ));
    // tos / logo / policy
    assert!(mas_allows(
        cb().with_tos_uri(url("https://example.com/tos"))
    ));
    assert!(mas_allows(
        cb().with_tos_uri(url("https://tos.example.com/"))
    ));
    assert!(mas_allows(
        cb().with_logo_uri(url("https://static.example.com/logo.png"))
    ));
    assert!(mas_allows(
        cb().with_policy_uri(url("https://policy.example.com/"))
    ));
    assert_eq!(
        cb().with_tos_uri(url("http://example.com/tos"))
            .violations(MetadataRules::Mas),
        [ClientMetadataError::MasPolicy {
            message: "invalid tos_uri",
            uri: Some("http://example.com/tos".to_owned())
        }]
    );
    assert_eq!(
        cb().with_logo_uri(url("https://example.org/logo.png"))
            .violations(MetadataRules::Mas),
        [ClientMetadataError::MasPolicy {
            message: "logo_uri not on the same host as the client_uri",
            uri: Some("https://example.org/logo.png".to_owned())
        }]
    );
    assert!(!mas_allows(
        cb().with_policy_uri(url("http://example.com/policy"))
    ));
    // redirect_uris
    assert_eq!(
        web().violations(MetadataRules::Mas),
        [ClientMetadataError::MasPolicy {
            message: "missing redirect_uris",
            uri: None
        }]
    );
    let mut cc = web();
    cc.grant_types = vec!["client_credentials".to_owned()];
    assert_eq!(
        cc.violations(MetadataRules::Mas),
        [ClientMetadataError::MasPolicy {
            message: "client_credentials grant_type requires some form of client authentication",
            uri: None
        }]
    );
    cc.token_endpoint_auth_method = "client_secret_basic".to_owned();
    assert!(mas_allows(cc));

    let web_with = |uris: &[&str]| uris.iter().fold(web(), |c, u| c.with_redirect_uri(url(u)));
    assert!(mas_allows(web_with(&[
        "https://example.com/second/callback",
        "https://example.com/callback",
        "https://example.com/callback?query=value",
        "https://example.com?query=value",
        "https://example.com:8443/callback",
        "https://app.example.com/callback",
    ])));
    for bad in [
        "http://example.com/callback",
        "https://example.org/callback",
        "com.example.app:/callback",
        "http://locahost:1234/callback",
        "http://127.0.0.1:1234/callback",
        "http://[::1]:1234/callback",
    ] {
        assert_eq!(
            web_with(&[bad]).violations(MetadataRules::Mas),
            [ClientMetadataError::MasPolicy {
                message: "invalid redirect_uri",
                uri: Some(url(bad).to_string())
            }],
            "{bad}"
        );
    }

    let native_with = |uris: &[&str]| {
        uris.iter()
            .fold(native(), |c, u| c.with_redirect_uri(url(u)))
    };
    assert!(mas_allows(native_with(&[
        "com.example.app:/callback",
        "http://localhost/callback",
        "http://localhost:1234/callback",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:1234/callback",
        "http://[::1]/callback",
        "http://[::1]:1234/callback",
        "https://example.com/callback",
    ])));
    for bad in [
        "http://example.com/",
        "http://bad.com/",
        "https://localhost:1234/",
        "http://localhost.com/",
        "org.example.app:/callback",
    ] {
        assert!(!mas_allows(native_with(&[bad])), "{bad}");
    }
    assert!(mas_allows(
        ClientMetadata::native(url("https://element.io/"))
            .with_redirect_uri(url("io.element.app:/callback"))
    ));
    // The grammar: no percent-encoded path, a path must start with '/'.
    assert!(!mas_allows(native_with(&["com.example.app:/call%20back"])));
    // MAS rejects fragments before its policy runs.
    assert!(!mas_allows(native_with(&["com.example.app:/callback#x"])));
    assert!(
        cb().violations(MetadataRules::Mas)
            .iter()
            .all(|v| v.source() == RuleSource::Mas)
    );
}

/// REG-9/REG-10 contested points: where the spec and MAS disagree, each rule set says so and the
/// portable set refuses both.
#[test]
fn reg10_spec_and_mas_disagree() {
    let with_port = native().with_redirect_uri(url("http://127.0.0.1:6778/oauth/callback"));
    assert!(with_port.validate(MetadataRules::Mas).is_ok());
    let err = with_port.validate(MetadataRules::MatrixSpec).unwrap_err();
    assert_eq!(err.source(), RuleSource::MatrixSpec);
    assert!(with_port.validate(MetadataRules::Portable).is_err());

    let no_slash = native().with_redirect_uri(url("com.example:callback"));
    assert!(no_slash.validate(MetadataRules::MatrixSpec).is_ok());
    assert_eq!(
        no_slash.validate(MetadataRules::Mas).unwrap_err(),
        ClientMetadataError::MasPolicy {
            message: "invalid redirect_uri",
            uri: Some("com.example:callback".to_owned())
        }
    );
    assert!(no_slash.validate(MetadataRules::Portable).is_err());
    // MetadataRules::Unchecked sends anything.
    assert!(no_slash.validate(MetadataRules::Unchecked).is_ok());
}

fn registration() -> Registration {
    let client = native()
        .with_client_name("My App")
        .with_redirect_uri(url("http://127.0.0.1/callback"));
    Registration::new(&mas_server(), &client, MetadataRules::Portable).unwrap()
}

/// REG-1: POST JSON to the registration endpoint.
#[test]
fn reg1_request_shape() {
    let r = registration();
    let req = r.request().unwrap();
    assert_eq!(req.request.method(), http::Method::POST);
    assert_eq!(req.url(), "https://auth.example.com/oauth2/registration");
    assert_eq!(req.request.headers()["content-type"], "application/json");
    assert_eq!(req.request.headers()["accept"], "application/json");
    assert!(!req.expect.follow_redirects);
    let body: serde_json::Value = serde_json::from_slice(req.request.body()).unwrap();
    assert_eq!(&body, r.body());
    assert_eq!(body["client_name"], "My App");
    assert_eq!(body["token_endpoint_auth_method"], "none");
    // Local rules run before any request exists.
    let bad = native().with_redirect_uri(url("http://localhost:1234/cb"));
    assert!(matches!(
        Registration::new(&mas_server(), &bad, MetadataRules::MatrixSpec),
        Err(RegistrationError::InvalidClientMetadata(
            ClientMetadataError::LoopbackRedirectUriHasPort { .. }
        ))
    ));
}

/// REG-1/REG-5: the spec's response; 200 tolerated; the echoed metadata kept.
#[test]
fn reg5_success_responses() {
    let r = registration();
    let ok = r
        .handle_response(&response(
            201,
            Some("application/json"),
            &fixture("spec_registration_response.json"),
        ))
        .unwrap();
    assert_eq!(ok.client_id, "s6BhdRkqt3");
    assert_eq!(ok.client_secret, None);
    assert_eq!(
        ok.metadata["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(ok.metadata.get("client_name#fr").is_none());
    assert!(ok.metadata.get("client_id").is_none());

    let ok = r
        .handle_response(&json(
            200,
            r#"{"client_id":"abc","client_id_issued_at":1700000000,"client_secret":"very-secret-value",
                "client_secret_expires_at":0,"registration_access_token":"rat-secret",
                "registration_client_uri":"https://auth.example.com/oauth2/clients/abc"}"#,
        ))
        .unwrap();
    assert_eq!(
        ok.client_id_issued_at,
        Some(Timestamp::from_unix_seconds(1_700_000_000))
    );
    assert_eq!(ok.client_secret_expires_at, None);
    assert_eq!(
        ok.client_secret.as_ref().map(|s| s.expose()),
        Some("very-secret-value")
    );
    let dbg = format!("{ok:?}");
    assert!(
        !dbg.contains("very-secret-value") && !dbg.contains("rat-secret"),
        "{dbg}"
    );
    assert_eq!(
        ok.registration_client_uri.as_ref().map(Url::as_str),
        Some("https://auth.example.com/oauth2/clients/abc")
    );
}

/// REG-5: RFC 7591 errors are typed, other failures say what was wrong, and invalid success bodies are
/// "invalid response".
#[test]
fn reg5_error_responses() {
    let r = registration();
    let err = r
        .handle_response(&json(
            400,
            r#"{"error":"invalid_redirect_uri","error_description":"redirect_uri is not using a valid domain"}"#,
        ))
        .unwrap_err();
    assert_eq!(err.code(), Some(RegistrationErrorCode::InvalidRedirectUri));
    assert!(
        err.to_string()
            .contains("invalid_redirect_uri: redirect_uri is not using a valid domain"),
        "{err}"
    );
    let err = r
        .handle_response(&json(
            400,
            r#"{"error":"invalid_client_metadata","error_description":"missing client_uri; invalid tos_uri"}"#,
        ))
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(RegistrationErrorCode::InvalidClientMetadata)
    );
    for (code, expected) in [
        (
            "invalid_software_statement",
            RegistrationErrorCode::InvalidSoftwareStatement,
        ),
        (
            "unapproved_software_statement",
            RegistrationErrorCode::UnapprovedSoftwareStatement,
        ),
        (
            "invalid_request",
            RegistrationErrorCode::Other("invalid_request".to_owned()),
        ),
    ] {
        let err = r
            .handle_response(&json(400, &format!(r#"{{"error":"{code}"}}"#)))
            .unwrap_err();
        assert_eq!(err.code(), Some(expected), "{code}");
    }

    let err = r
        .handle_response(&response(500, Some("text/html"), b"<h1>oops</h1>"))
        .unwrap_err();
    assert!(matches!(err, RegistrationError::Http { .. }), "{err}");
    assert_eq!(err.code(), None);
    let err = r
        .handle_response(&response(201, Some("text/html"), b"{}"))
        .unwrap_err();
    assert!(
        err.to_string().contains("expected a JSON response"),
        "{err}"
    );

    for (body, reason) in [
        (r#"{"client_name":"x"}"#, "client_id is missing"),
        (r#"{"client_id":42}"#, "client_id is not a string"),
        (r#"{"client_id":""}"#, "client_id is empty"),
        (r#"[]"#, "the body is not a JSON object"),
        (
            r#"{"client_id":"a","client_secret":5}"#,
            "client_secret is not a string",
        ),
        (
            r#"{"client_id":"a","client_id_issued_at":"now"}"#,
            "client_id_issued_at is not a number",
        ),
        (
            r#"{"client_id":"a","client_id_issued_at":-1}"#,
            "client_id_issued_at is not a non-negative whole number of seconds",
        ),
    ] {
        let err = r.handle_response(&json(201, body)).unwrap_err();
        assert_eq!(
            err,
            RegistrationError::InvalidResponse {
                url: "https://auth.example.com/oauth2/registration".to_owned(),
                reason: reason.to_owned()
            },
            "{body}"
        );
    }
    // A body that may hold a client secret never shows up in an error.
    let err = r
        .handle_response(&json(201, r#"{"client_id":"a","client_secret":"leak-me"#))
        .unwrap_err();
    assert!(!err.to_string().contains("leak-me"), "{err}");
}
