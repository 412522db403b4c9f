//! Metadata validation: the Matrix profile field by field (DISC-2, DISC-3, DISC-5, DISC-8, DISC-10),
//! the generic OAuth profile, and the URL policy.

// Test helpers unwrap freely: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixture_json;
use matrix_oidc_core::metadata::{
    AuthorizationServerMetadata, MetadataError, MetadataField, Profile, UrlPolicy,
    ValidationOptions,
};
use serde_json::{Value, json};
use url::Url;

fn spec() -> Value {
    fixture_json("spec_auth_metadata.json")
}

fn parse(
    doc: Value,
    options: ValidationOptions,
) -> Result<AuthorizationServerMetadata, MetadataError> {
    AuthorizationServerMetadata::from_json_value(doc, &options, None)
}

fn without(mut doc: Value, field: &str) -> Value {
    doc.as_object_mut().unwrap().remove(field);
    doc
}

fn with(mut doc: Value, field: &str, value: Value) -> Value {
    doc.as_object_mut().unwrap().insert(field.to_owned(), value);
    doc
}

#[test]
fn spec_example_is_valid_and_typed() {
    let m = parse(spec(), ValidationOptions::matrix()).unwrap();
    assert_eq!(m.issuer.as_str(), "https://account.example.com/");
    assert_eq!(
        m.registration_endpoint.as_ref().map(Url::as_str),
        Some("https://account.example.com/oauth2/clients/register")
    );
    assert!(m.supports_pkce_s256());
    assert!(m.supports_response_mode("fragment"));
    assert!(m.supports_grant_type("refresh_token"));
    assert!(!m.supports_device_grant());
    assert!(!m.supports_prompt_create());
    assert!(m.extra.is_empty());
}

/// DISC-2: each required field, removed, is reported by name.
#[test]
fn disc2_each_required_field_missing_is_its_own_error() {
    let required = [
        ("issuer", MetadataField::Issuer),
        (
            "authorization_endpoint",
            MetadataField::AuthorizationEndpoint,
        ),
        ("token_endpoint", MetadataField::TokenEndpoint),
        ("revocation_endpoint", MetadataField::RevocationEndpoint),
        ("registration_endpoint", MetadataField::RegistrationEndpoint),
        (
            "response_types_supported",
            MetadataField::ResponseTypesSupported,
        ),
        ("grant_types_supported", MetadataField::GrantTypesSupported),
        (
            "response_modes_supported",
            MetadataField::ResponseModesSupported,
        ),
        (
            "code_challenge_methods_supported",
            MetadataField::CodeChallengeMethodsSupported,
        ),
    ];
    for (name, field) in required {
        let err = parse(without(spec(), name), ValidationOptions::matrix()).unwrap_err();
        assert_eq!(err, MetadataError::MissingField { field }, "{name}");
        assert_eq!(
            err.to_string(),
            format!("the required field `{name}` is missing")
        );
        // `null` counts as missing.
        let err = parse(with(spec(), name, Value::Null), ValidationOptions::matrix()).unwrap_err();
        assert_eq!(err, MetadataError::MissingField { field }, "{name}: null");
    }
}

/// DISC-3: each required value, removed, is reported with its field and value.
#[test]
fn disc3_each_required_value_missing_is_its_own_error() {
    let cases = [
        (
            "response_types_supported",
            json!(["id_token"]),
            MetadataField::ResponseTypesSupported,
            "code",
        ),
        (
            "grant_types_supported",
            json!(["refresh_token"]),
            MetadataField::GrantTypesSupported,
            "authorization_code",
        ),
        (
            "grant_types_supported",
            json!(["authorization_code"]),
            MetadataField::GrantTypesSupported,
            "refresh_token",
        ),
        (
            "response_modes_supported",
            json!(["fragment"]),
            MetadataField::ResponseModesSupported,
            "query",
        ),
        // matrix-js-sdk's negative case.
        (
            "response_modes_supported",
            json!(["code", "missing fragment"]),
            MetadataField::ResponseModesSupported,
            "query",
        ),
        (
            "response_modes_supported",
            json!(["query"]),
            MetadataField::ResponseModesSupported,
            "fragment",
        ),
        (
            "code_challenge_methods_supported",
            json!(["plain"]),
            MetadataField::CodeChallengeMethodsSupported,
            "S256",
        ),
    ];
    for (name, value, field, missing) in cases {
        let doc = with(spec(), name, value.clone());
        let err = parse(doc.clone(), ValidationOptions::matrix()).unwrap_err();
        assert_eq!(
            err,
            MetadataError::MissingValue {
                field,
                value: missing
            },
            "{name} = {value}"
        );
        assert_eq!(
            err.to_string(),
            format!("the field `{name}` must contain `{missing}`")
        );
    }
    // Both grant types missing: both reported, in order.
    let all = AuthorizationServerMetadata::diagnose(
        with(spec(), "grant_types_supported", json!([])),
        &ValidationOptions::matrix(),
        None,
    );
    assert_eq!(
        all,
        vec![
            MetadataError::MissingValue {
                field: MetadataField::GrantTypesSupported,
                value: "authorization_code"
            },
            MetadataError::MissingValue {
                field: MetadataField::GrantTypesSupported,
                value: "refresh_token"
            },
        ]
    );
}

/// DISC-3: the issuer has no query or fragment, and uses https.
#[test]
fn disc3_issuer_shape() {
    for issuer in [
        "https://account.example.com/?tenant=1",
        "https://account.example.com/#x",
    ] {
        let err = parse(
            with(spec(), "issuer", json!(issuer)),
            ValidationOptions::matrix(),
        )
        .unwrap_err();
        assert!(
            matches!(err, MetadataError::IssuerHasQueryOrFragment { .. }),
            "{issuer}: {err}"
        );
        // Also for the generic profile.
        assert!(
            parse(
                with(spec(), "issuer", json!(issuer)),
                ValidationOptions::oauth()
            )
            .is_err()
        );
    }
    let err = parse(
        with(spec(), "issuer", json!("http://account.example.com/")),
        ValidationOptions::matrix(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        MetadataError::InsecureUrl {
            field: MetadataField::Issuer,
            url: "http://account.example.com/".to_owned()
        }
    );
}

/// Wrong JSON types are reported per field, not as one parse error, and not again as "missing".
#[test]
fn wrong_types_name_the_field() {
    let cases = [
        (
            "token_endpoint",
            json!(42),
            "the field `token_endpoint` must be a URL string",
        ),
        (
            "grant_types_supported",
            json!("authorization_code"),
            "the field `grant_types_supported` must be an array of strings",
        ),
        (
            "response_types_supported",
            json!(["code", 1]),
            "the field `response_types_supported` must be an array of strings",
        ),
        (
            "authorization_response_iss_parameter_supported",
            json!("yes"),
            "the field `authorization_response_iss_parameter_supported` must be a boolean",
        ),
    ];
    for (name, value, message) in cases {
        let problems = AuthorizationServerMetadata::diagnose(
            with(spec(), name, value),
            &ValidationOptions::matrix(),
            None,
        );
        assert_eq!(problems.len(), 1, "{name}: {problems:?}");
        assert_eq!(problems[0].to_string(), message);
    }
    let err = parse(
        with(spec(), "token_endpoint", json!("/oauth2/token")),
        ValidationOptions::matrix(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, MetadataError::InvalidUrl { field: MetadataField::TokenEndpoint, value, .. } if value == "/oauth2/token"),
        "{err}"
    );
    for not_object in [json!([]), json!("x"), json!(null)] {
        assert!(matches!(
            parse(not_object, ValidationOptions::matrix()),
            Err(MetadataError::NotAnObject { .. })
        ));
    }
    assert!(matches!(
        AuthorizationServerMetadata::from_json(b"<html>", &ValidationOptions::matrix(), None),
        Err(MetadataError::NotAnObject { .. })
    ));
}

/// DISC-4/DISC-5: what MAS (and Synapse proxying it) really serves is valid, its optional fields
/// (prompt values, device endpoint, account management) are read, unknown fields are kept and unknown
/// list values (`form_post`, `plain`, `client_credentials`, `id_token`) ignored.
#[test]
fn disc5_real_mas_document_is_valid_and_extra_is_kept() {
    let m = parse(
        fixture_json("mas_openid_configuration.json"),
        ValidationOptions::matrix(),
    )
    .unwrap();
    assert_eq!(
        m.extra
            .get("org.matrix.matrix-authentication-service.graphql_endpoint")
            .and_then(Value::as_str),
        Some("https://auth.example.com/graphql")
    );
    assert_eq!(
        m.extra.get("subject_types_supported"),
        Some(&json!(["public"]))
    );
    assert!(
        m.extra.get("issuer").is_none(),
        "named fields are not duplicated in extra"
    );
    assert!(m.supports_device_grant());
    assert!(m.supports_prompt_create());
    assert_eq!(
        m.device_authorization_endpoint.as_ref().map(Url::as_str),
        Some("https://auth.example.com/oauth2/device")
    );
    // Serializing keeps the unknown fields.
    let back = serde_json::to_value(&m).unwrap();
    assert_eq!(
        back["org.matrix.matrix-authentication-service.graphql_endpoint"],
        json!("https://auth.example.com/graphql")
    );
}

/// DISC-8: every endpoint must be https; the named loopback opt-in allows http on 127.0.0.1,
/// localhost and [::1] only.
#[test]
fn disc8_url_policy() {
    for (name, field) in [
        (
            "authorization_endpoint",
            MetadataField::AuthorizationEndpoint,
        ),
        ("token_endpoint", MetadataField::TokenEndpoint),
        ("revocation_endpoint", MetadataField::RevocationEndpoint),
        ("registration_endpoint", MetadataField::RegistrationEndpoint),
        (
            "account_management_uri",
            MetadataField::AccountManagementUri,
        ),
        (
            "device_authorization_endpoint",
            MetadataField::DeviceAuthorizationEndpoint,
        ),
        ("jwks_uri", MetadataField::JwksUri),
    ] {
        let doc = with(spec(), name, json!("http://account.example.com/x"));
        let err = parse(doc, ValidationOptions::matrix()).unwrap_err();
        assert_eq!(
            err,
            MetadataError::InsecureUrl {
                field,
                url: "http://account.example.com/x".to_owned()
            },
            "{name}"
        );
        // The opt-in does not extend to non-loopback hosts.
        let doc = with(spec(), name, json!("http://account.example.com/x"));
        let dev = ValidationOptions::matrix().with_url_policy(UrlPolicy::AllowInsecureLoopback);
        assert!(parse(doc, dev).is_err(), "{name}");
    }

    let oidc_provider = fixture_json("oidc_provider_openid_configuration.json");
    let err = parse(oidc_provider.clone(), ValidationOptions::matrix()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the field `issuer` must be an https URL, found http://127.0.0.1:3000/ \
         (http on a loopback host is accepted only with UrlPolicy::AllowInsecureLoopback)"
    );
    let dev = ValidationOptions::matrix().with_url_policy(UrlPolicy::AllowInsecureLoopback);
    let m = parse(oidc_provider, dev).unwrap();
    assert!(m.authorization_response_iss_parameter_supported);
    assert!(m.supports_device_grant());

    let loopback = |host: &str| {
        let url = Url::parse(&format!("http://{host}:8008/")).unwrap();
        UrlPolicy::AllowInsecureLoopback.allows(&url)
    };
    assert!(loopback("127.0.0.1"));
    assert!(loopback("localhost"));
    assert!(loopback("[::1]"));
    assert!(!loopback("localhost.example.com"));
    assert!(!loopback("10.0.0.1"));
    assert!(!UrlPolicy::HttpsOnly.allows(&Url::parse("http://127.0.0.1/").unwrap()));
    assert!(!UrlPolicy::AllowInsecureLoopback.allows(&Url::parse("ftp://127.0.0.1/").unwrap()));
}

/// DISC-10: the tolerant Matrix profile accepts a server without a registration endpoint (static
/// client ids) or without response_modes_supported (RFC 8414 default), but still checks a present list.
#[test]
fn disc10_tolerant_profile() {
    let tolerant = ValidationOptions::matrix().with_profile(Profile::MatrixTolerant);
    let m = parse(without(spec(), "registration_endpoint"), tolerant).unwrap();
    assert!(m.registration_endpoint.is_none());
    let m = parse(without(spec(), "response_modes_supported"), tolerant).unwrap();
    assert!(m.supports_response_mode("query") && m.supports_response_mode("fragment"));
    assert!(!m.supports_response_mode("form_post"));
    assert_eq!(
        parse(
            with(spec(), "response_modes_supported", json!(["query"])),
            tolerant
        )
        .unwrap_err(),
        MetadataError::MissingValue {
            field: MetadataField::ResponseModesSupported,
            value: "fragment"
        }
    );
    // The tolerant profile still requires revocation and the grant types.
    assert_eq!(
        parse(without(spec(), "revocation_endpoint"), tolerant).unwrap_err(),
        MetadataError::MissingField {
            field: MetadataField::RevocationEndpoint
        }
    );
}

/// The generic OAuth profile needs only RFC 8414's fields (and `code`).
#[test]
fn oauth_profile_for_non_matrix_servers() {
    let minimal = json!({
        "issuer": "https://op.example.org",
        "authorization_endpoint": "https://op.example.org/authorize",
        "token_endpoint": "https://op.example.org/token",
        "response_types_supported": ["code"]
    });
    let m = parse(minimal.clone(), ValidationOptions::oauth()).unwrap();
    // Absent lists take RFC 8414's defaults.
    assert!(m.supports_grant_type("authorization_code"));
    assert!(!m.supports_grant_type("refresh_token"));
    assert!(!m.supports_pkce_s256());
    // The same document is not enough for Matrix.
    assert_eq!(
        parse(minimal.clone(), ValidationOptions::matrix()).unwrap_err(),
        MetadataError::MissingField {
            field: MetadataField::RevocationEndpoint
        }
    );
    assert_eq!(
        parse(
            without(minimal, "response_types_supported"),
            ValidationOptions::oauth()
        )
        .unwrap_err(),
        MetadataError::MissingField {
            field: MetadataField::ResponseTypesSupported
        }
    );
}

#[test]
fn expected_issuer_must_match() {
    let expected = Url::parse("https://account.example.com/").unwrap();
    let doc = serde_json::to_vec(&spec()).unwrap();
    assert!(
        AuthorizationServerMetadata::from_json(&doc, &ValidationOptions::matrix(), Some(&expected))
            .is_ok()
    );
    // Without a path, a trailing slash makes no difference.
    let no_slash = Url::parse("https://account.example.com").unwrap();
    assert!(
        AuthorizationServerMetadata::from_json(&doc, &ValidationOptions::matrix(), Some(&no_slash))
            .is_ok()
    );
    let other = Url::parse("https://evil.example.com/").unwrap();
    let err =
        AuthorizationServerMetadata::from_json(&doc, &ValidationOptions::matrix(), Some(&other))
            .unwrap_err();
    assert_eq!(
        err,
        MetadataError::IssuerMismatch {
            expected: "https://evil.example.com/".to_owned(),
            found: "https://account.example.com/".to_owned()
        }
    );
}

/// "Bring your own metadata": a typed value is validated the same way.
#[test]
fn validate_typed_metadata() {
    let mut m = parse(spec(), ValidationOptions::matrix()).unwrap();
    assert!(m.validate(&ValidationOptions::matrix(), None).is_ok());
    m.token_endpoint = Url::parse("http://account.example.com/token").unwrap();
    assert_eq!(
        m.validate(&ValidationOptions::matrix(), None),
        Err(MetadataError::InsecureUrl {
            field: MetadataField::TokenEndpoint,
            url: "http://account.example.com/token".to_owned()
        })
    );
    m.token_endpoint = Url::parse("https://account.example.com/token").unwrap();
    m.code_challenge_methods_supported = None;
    assert_eq!(
        m.validate(&ValidationOptions::matrix(), None),
        Err(MetadataError::MissingField {
            field: MetadataField::CodeChallengeMethodsSupported
        })
    );
}

/// MSC4191's unstable metadata names are read when the stable ones are absent.
#[test]
fn unstable_account_management_names() {
    let doc = with(
        with(
            without(
                without(spec(), "account_management_uri"),
                "account_management_actions_supported",
            ),
            "org.matrix.msc4191.account_management_uri",
            json!("https://account.example.com/unstable"),
        ),
        "org.matrix.msc4191.account_management_actions_supported",
        json!(["org.matrix.profile"]),
    );
    let m = parse(doc, ValidationOptions::matrix()).unwrap();
    assert_eq!(
        m.account_management_uri.as_ref().map(Url::as_str),
        Some("https://account.example.com/unstable")
    );
    assert_eq!(
        m.account_management_actions_supported.as_deref(),
        Some(&["org.matrix.profile".into()][..])
    );
}
