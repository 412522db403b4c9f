//! `AuthorizationServerMetadata::from_json` reads the document's bytes directly (no `serde_json::Value`,
//! lazy `extra`, issuer-relative URL parsing). Its answers must be exactly those of parsing a `Value`
//! and calling `from_json_value`, which is what `from_json` did before: same metadata (unknown members
//! included), same first problem, same message. This compares the two on a table of documents, under
//! every profile and URL policy, with and without an expected issuer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixture, http_fixture};
use matrix_oidc_core::metadata::{
    AuthorizationServerMetadata, MetadataError, Profile, UrlPolicy, ValidationOptions,
};
use serde_json::Value;
use url::Url;

/// What `from_json` did before it read the bytes itself.
fn through_value(
    json: &[u8],
    options: &ValidationOptions,
    expected: Option<&Url>,
) -> Result<AuthorizationServerMetadata, MetadataError> {
    match serde_json::from_slice::<Value>(json) {
        Ok(value) => AuthorizationServerMetadata::from_json_value(value, options, expected),
        Err(e) => Err(MetadataError::NotAnObject {
            reason: e.to_string(),
        }),
    }
}

fn all_options() -> Vec<ValidationOptions> {
    let mut out = Vec::new();
    for profile in [Profile::Matrix, Profile::MatrixTolerant, Profile::OAuth] {
        for policy in [UrlPolicy::HttpsOnly, UrlPolicy::AllowInsecureLoopback] {
            out.push(
                ValidationOptions::matrix()
                    .with_profile(profile)
                    .with_url_policy(policy),
            );
        }
    }
    out
}

/// Compares both readings of `json`; returns how many of the combinations were accepted.
fn assert_same(name: &str, json: &[u8]) -> usize {
    let issuers = [
        None,
        Some(Url::parse("https://auth.example.org/").unwrap()),
        Some(Url::parse("https://account.example.com/").unwrap()),
    ];
    let mut accepted = 0;
    for options in all_options() {
        for expected in &issuers {
            let new = AuthorizationServerMetadata::from_json(json, &options, expected.as_ref());
            let old = through_value(json, &options, expected.as_ref());
            assert_eq!(new, old, "{name} under {options:?}, issuer {expected:?}");
            match (&new, &old) {
                (Ok(n), Ok(o)) => {
                    accepted += 1;
                    // Also what is not compared by `==`: the order and form of the unknown members,
                    // and the serialized form a cache stores.
                    assert_eq!(format!("{n:?}"), format!("{o:?}"), "{name}");
                    assert_eq!(
                        serde_json::to_string(n).unwrap(),
                        serde_json::to_string(o).unwrap(),
                        "{name}"
                    );
                    assert_eq!(n.extra.is_empty(), o.extra.is_empty(), "{name}");
                }
                (Err(n), Err(o)) => assert_eq!(n.to_string(), o.to_string(), "{name}"),
                _ => unreachable!(),
            }
        }
    }
    accepted
}

const BASE: &str = r#""issuer": "https://auth.example.org/",
  "authorization_endpoint": "https://auth.example.org/authorize",
  "token_endpoint": "https://auth.example.org/oauth2/token",
  "revocation_endpoint": "https://auth.example.org/oauth2/revoke",
  "registration_endpoint": "https://auth.example.org/oauth2/registration",
  "response_types_supported": ["code"],
  "grant_types_supported": ["authorization_code", "refresh_token"],
  "response_modes_supported": ["query", "fragment"],
  "code_challenge_methods_supported": ["S256"]"#;

/// `BASE` with `members` added after it (a repeated name replaces the earlier member).
fn doc(members: &str) -> String {
    if members.is_empty() {
        format!("{{{BASE}}}")
    } else {
        format!("{{{BASE}, {members}}}")
    }
}

#[test]
fn recorded_and_committed_documents_read_the_same() {
    let mut accepted = 0;
    for name in [
        "spec_auth_metadata.json",
        "mas_openid_configuration.json",
        "oidc_provider_openid_configuration.json",
    ] {
        accepted += assert_same(name, &fixture(name));
    }
    for server in ["mas", "msc3861"] {
        for file in [
            "auth_metadata.http",
            "auth_metadata_unstable.http",
            "openid_configuration.http",
        ] {
            let name = format!("recorded/{server}/{file}");
            let response = http_fixture(&name);
            accepted += assert_same(&name, response.body());
        }
    }
    let bench =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/fixtures/discovery.json");
    accepted += assert_same("bench discovery.json", &std::fs::read(bench).unwrap());
    assert!(accepted > 0, "the table must contain valid documents");
}

#[test]
fn tricky_documents_read_the_same() {
    let members = [
        // Accepted, with and without unknown members.
        "",
        r#""subject_types_supported": ["public"], "x": {"nested": [1, 2.5, null, true, {"a": "b"}]}"#,
        r#""authorization_response_iss_parameter_supported": true"#,
        r#""authorization_response_iss_parameter_supported": null"#,
        // Duplicates: the last member counts, whatever the earlier one was.
        r#""token_endpoint": 42, "token_endpoint": "https://auth.example.org/t2""#,
        r#""token_endpoint": "https://auth.example.org/t2", "token_endpoint": 42"#,
        r#""grant_types_supported": ["refresh_token"]"#,
        r#""x": 1, "x": 2"#,
        // Wrong types, each reported for its field.
        r#""token_endpoint": 42"#,
        r#""token_endpoint": ["https://auth.example.org/t"]"#,
        r#""token_endpoint": {"url": "https://auth.example.org/t"}"#,
        r#""token_endpoint": true"#,
        r#""grant_types_supported": "authorization_code""#,
        r#""response_types_supported": ["code", 1]"#,
        r#""response_types_supported": [1, "code"]"#,
        r#""response_types_supported": ["code", ["nested"]]"#,
        r#""response_types_supported": ["code", null]"#,
        r#""response_types_supported": {}"#,
        r#""authorization_response_iss_parameter_supported": "yes""#,
        r#""authorization_response_iss_parameter_supported": 1"#,
        r#""issuer": 1, "token_endpoint": 2, "scopes_supported": 3"#,
        // Nulls count as missing.
        r#""issuer": null"#,
        r#""revocation_endpoint": null"#,
        r#""response_modes_supported": null"#,
        // URLs: invalid, insecure, loopback, on and off the issuer's origin.
        r#""token_endpoint": "/oauth2/token""#,
        r#""token_endpoint": "https://""#,
        r#""token_endpoint": "https://auth.example.org:99999/""#,
        r#""token_endpoint": "http://auth.example.org/t""#,
        r#""token_endpoint": "http://127.0.0.1:8080/t""#,
        r#""token_endpoint": "https://auth.example.org//evil.example/t""#,
        r#""token_endpoint": "https://auth.example.org/\\evil.example/t""#,
        r#""token_endpoint": "https://auth.example.org/\t/evil.example/t""#,
        r#""token_endpoint": "https://auth.example.org/a/../b/./c?x=1#f""#,
        r#""token_endpoint": "https://auth.example.org/p\u00e4th""#,
        r#""token_endpoint": "https:\/\/auth.example.org\/escaped""#,
        r#""token_endpoint": "https://AUTH.example.org/t""#,
        r#""token_endpoint": "https://auth.example.org:443/t""#,
        r#""token_endpoint": "https://auth.example.org.evil.example/t""#,
        r#""token_endpoint": " https://auth.example.org/t ""#,
        r#""jwks_uri": "ftp://auth.example.org/keys""#,
        r#""account_management_uri": "https://auth.example.org/account/""#,
        // The issuer itself.
        r#""issuer": "https://auth.example.org/?tenant=1""#,
        r#""issuer": "https://auth.example.org/#x""#,
        r#""issuer": "http://127.0.0.1:3000/""#,
        r#""issuer": "https://auth.example.org""#,
        r#""issuer": "https://auth.example.org/realm/""#,
        r#""issuer": "not a url""#,
        r#""issuer": "mailto:a@example.org""#,
        // MSC4191's unstable names, alone, with the stable ones, with a null stable one.
        r#""org.matrix.msc4191.account_management_uri": "https://auth.example.org/u""#,
        r#""org.matrix.msc4191.account_management_uri": 5"#,
        r#""org.matrix.msc4191.account_management_actions_supported": ["org.matrix.profile"]"#,
        r#""org.matrix.msc4191.account_management_actions_supported": "x""#,
        r#""account_management_uri": "https://auth.example.org/s", "org.matrix.msc4191.account_management_uri": "https://auth.example.org/u""#,
        r#""account_management_uri": null, "org.matrix.msc4191.account_management_uri": "https://auth.example.org/u""#,
        r#""account_management_actions_supported": ["a"], "org.matrix.msc4191.account_management_actions_supported": ["b"]"#,
        // Escaped names are the names they decode to.
        r#""\u0069ssuer": "https://auth.example.org/other/""#,
        r#""iss\u0075er": 5"#,
        // Strings with escapes, in every kind of member.
        r#""scopes_supported": ["openid", "urn:matrix:client:api:\u002a", "a\"b"]"#,
        r#""x": "a\nb\u00e9\ud83d\ude00""#,
    ];
    let mut accepted = 0;
    for m in members {
        accepted += assert_same(m, doc(m).as_bytes());
    }
    assert!(accepted > 0);
}

#[test]
fn documents_that_are_not_metadata_read_the_same() {
    let cases: &[&[u8]] = &[
        b"",
        b"   ",
        b"<html>",
        b"[]",
        b"[1, {\"a\": [2]}]",
        b"\"string\"",
        b"42",
        b"-1.5e3",
        b"true",
        b"null",
        b"{}",
        b"{",
        b"{\"issuer\": }",
        b"{\"issuer\": \"https://a.example/\",}",
        b"{\"a\": 1} trailing",
        b"{} {}",
        b"[1,",
        b"\xff",
        b"{\"x\": \"\xff\"}",
        // What `IgnoredAny` would let through in a member nobody reads, but a `Value` does not.
        b"{\"x\": 1e400}",
        b"{\"x\": [1e400]}",
        b"{\"x\": \"\\ud800\"}",
        b"{\"x\": {\"\\ud800\": 1}}",
        b"{\"x\": \"a\x01b\"}",
        b"{\"x\": \"\\q\"}",
        b"{\"token_endpoint\": 1e400}",
        b"{\"response_types_supported\": [\"\\ud800\"]}",
        b"{1: 2}",
    ];
    for case in cases {
        assert_same(&String::from_utf8_lossy(case), case);
    }
    // Nesting deeper than serde_json's limit fails the same way in a member nobody reads.
    let deep = format!("{{\"x\": {}{}}}", "[".repeat(200), "]".repeat(200));
    assert_same("deep", deep.as_bytes());
    let deep_ok = format!("{{\"x\": {}{}}}", "[".repeat(100), "]".repeat(100));
    assert_same("deep_ok", deep_ok.as_bytes());
}

/// The unknown members are built on first use, and a clone shares what it was built from.
#[test]
fn extra_is_built_on_demand_and_survives_clones() {
    let json = doc(r#""subject_types_supported": ["public"], "custom": {"k": [1]}"#);
    let m =
        AuthorizationServerMetadata::from_json(json.as_bytes(), &ValidationOptions::matrix(), None)
            .unwrap();
    let copy = m.clone();
    assert_eq!(m.extra.len(), 2);
    assert_eq!(copy.extra["custom"]["k"][0], 1);
    assert_eq!(
        copy.extra.get("subject_types_supported").unwrap()[0],
        "public"
    );
    let map: serde_json::Map<String, Value> = copy.extra.into_map();
    assert_eq!(map.len(), 2);
    // Serialized and read back (a stored copy), the members are still there.
    let stored = serde_json::to_string(&m).unwrap();
    let back: AuthorizationServerMetadata = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.extra["custom"]["k"][0], 1);
}
