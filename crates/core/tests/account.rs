//! Account management URLs (ACC-1 … ACC-6).

// Test helpers unwrap freely: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixture_json;
use matrix_oidc_core::account::{AccountAction, LOGIN_HINT_PARAM};
use matrix_oidc_core::metadata::{AuthorizationServerMetadata, ValidationOptions};
use serde_json::json;

fn metadata(doc: serde_json::Value) -> AuthorizationServerMetadata {
    AuthorizationServerMetadata::from_json_value(doc, &ValidationOptions::matrix(), None).unwrap()
}

fn spec() -> AuthorizationServerMetadata {
    metadata(fixture_json("spec_auth_metadata.json"))
}

fn mas() -> AuthorizationServerMetadata {
    metadata(fixture_json("mas_openid_configuration.json"))
}

fn with_actions(actions: &[&str]) -> AuthorizationServerMetadata {
    let mut doc = fixture_json("spec_auth_metadata.json");
    doc["account_management_actions_supported"] = json!(actions);
    metadata(doc)
}

/// ACC-1: both fields are read from the metadata.
#[test]
fn acc1_fields_are_read() {
    let m = spec();
    assert_eq!(
        m.account_management_uri.as_ref().map(|u| u.as_str()),
        Some("https://account.example.com/manage")
    );
    assert_eq!(m.supported_account_actions(), AccountAction::ALL.to_vec());
}

/// ACC-2: `action` and `device_id` query parameters, as in the spec's example; existing parameters kept.
#[test]
fn acc2_query_parameters() {
    let mut doc = fixture_json("spec_auth_metadata.json");
    doc["account_management_uri"] = json!("https://account.example.com/myaccount");
    let m = metadata(doc);
    let url = m
        .account_management_url(AccountAction::DeviceDelete, Some("ABCDEFGH"))
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://account.example.com/myaccount?action=org.matrix.device_delete&device_id=ABCDEFGH"
    );
    let url = m
        .account_management_url(AccountAction::Profile, None)
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://account.example.com/myaccount?action=org.matrix.profile"
    );
    // A device id with reserved characters is encoded.
    let url = m
        .account_management_url(AccountAction::DeviceView, Some("a&b=c d"))
        .unwrap();
    assert_eq!(
        url.query(),
        Some("action=org.matrix.device_view&device_id=a%26b%3Dc+d")
    );

    let mut doc = fixture_json("spec_auth_metadata.json");
    doc["account_management_uri"] = json!("https://account.example.com/manage?lang=fr");
    let url = metadata(doc)
        .account_management_url(AccountAction::DevicesList, None)
        .unwrap();
    assert_eq!(url.query(), Some("lang=fr&action=org.matrix.devices_list"));

    // No account management URI: no URL.
    let mut doc = fixture_json("spec_auth_metadata.json");
    doc.as_object_mut()
        .unwrap()
        .remove("account_management_uri");
    assert_eq!(
        metadata(doc).account_management_url(AccountAction::Profile, None),
        None
    );
}

/// ACC-3: the six stable actions and their names.
#[test]
fn acc3_stable_actions() {
    let names: Vec<&str> = AccountAction::ALL.iter().map(|a| a.stable_name()).collect();
    assert_eq!(
        names,
        [
            "org.matrix.profile",
            "org.matrix.devices_list",
            "org.matrix.device_view",
            "org.matrix.device_delete",
            "org.matrix.account_deactivate",
            "org.matrix.cross_signing_reset"
        ]
    );
    for a in AccountAction::ALL {
        assert_eq!(AccountAction::from_name(a.stable_name()), Some(a));
    }
    assert_eq!(AccountAction::from_name("org.matrix.unknown"), None);
    assert!(AccountAction::DeviceView.takes_device_id());
    assert!(AccountAction::DeviceDelete.takes_device_id());
    assert!(!AccountAction::Profile.takes_device_id());
}

/// ACC-4: stable/unstable selection — stable if advertised, else the advertised unstable one, else
/// stable; stable and unstable names count as the same action.
#[test]
fn acc4_stable_and_unstable_names() {
    // MAS advertises both: the stable name wins.
    let m = mas();
    assert_eq!(
        m.account_action_name(AccountAction::DeviceDelete),
        "org.matrix.device_delete"
    );
    assert!(!m.is_account_action_supported(AccountAction::AccountDeactivate));
    assert_eq!(
        m.supported_account_actions(),
        [
            AccountAction::Profile,
            AccountAction::DevicesList,
            AccountAction::DeviceView,
            AccountAction::DeviceDelete,
            AccountAction::CrossSigningReset
        ]
    );

    // Only unstable names advertised: those are used.
    let m = with_actions(&[
        "org.matrix.sessions_list",
        "org.matrix.session_view",
        "session_end",
        "profile",
    ]);
    assert_eq!(
        m.account_action_name(AccountAction::DevicesList),
        "org.matrix.sessions_list"
    );
    assert_eq!(
        m.account_action_name(AccountAction::DeviceView),
        "org.matrix.session_view"
    );
    assert_eq!(
        m.account_action_name(AccountAction::DeviceDelete),
        "session_end"
    );
    assert_eq!(m.account_action_name(AccountAction::Profile), "profile");
    for a in [
        AccountAction::DevicesList,
        AccountAction::DeviceView,
        AccountAction::DeviceDelete,
        AccountAction::Profile,
    ] {
        assert!(m.is_account_action_supported(a), "{a}");
    }
    assert!(!m.is_account_action_supported(AccountAction::CrossSigningReset));
    let url = m
        .account_management_url(AccountAction::DeviceView, Some("DEVICEID01"))
        .unwrap();
    assert_eq!(
        url.query(),
        Some("action=org.matrix.session_view&device_id=DEVICEID01")
    );

    // The org.matrix.-prefixed unstable name is preferred over the bare one.
    let m = with_actions(&["session_end", "org.matrix.session_end"]);
    assert_eq!(
        m.account_action_name(AccountAction::DeviceDelete),
        "org.matrix.session_end"
    );

    // Nothing advertised: the stable name.
    let m = with_actions(&[]);
    assert_eq!(
        m.account_action_name(AccountAction::DeviceDelete),
        "org.matrix.device_delete"
    );
    assert!(!m.is_account_action_supported(AccountAction::DeviceDelete));
    assert!(m.supported_account_actions().is_empty());

    for (unstable, action) in [
        ("org.matrix.sessions_list", AccountAction::DevicesList),
        ("sessions_list", AccountAction::DevicesList),
        ("org.matrix.session_view", AccountAction::DeviceView),
        ("session_view", AccountAction::DeviceView),
        ("org.matrix.session_end", AccountAction::DeviceDelete),
        ("session_end", AccountAction::DeviceDelete),
        ("profile", AccountAction::Profile),
    ] {
        assert_eq!(
            AccountAction::from_name(unstable),
            Some(action),
            "{unstable}"
        );
    }
}

/// ACC-5: the login hint goes in MSC4198's unstable parameter, which MAS reads.
#[test]
fn acc5_login_hint() {
    let url = spec()
        .account_management_url_with_login_hint(
            AccountAction::Profile,
            None,
            Some("mxid:@alice:example.com"),
        )
        .unwrap();
    assert_eq!(LOGIN_HINT_PARAM, "org.matrix.msc4198.login_hint");
    assert_eq!(
        url.query(),
        Some(
            "action=org.matrix.profile&org.matrix.msc4198.login_hint=mxid%3A%40alice%3Aexample.com"
        )
    );
}

/// ACC-6: destructive actions are flagged so that clients confirm before opening them.
#[test]
fn acc6_destructive_actions() {
    let destructive: Vec<AccountAction> = AccountAction::ALL
        .into_iter()
        .filter(|a| a.is_destructive())
        .collect();
    assert_eq!(
        destructive,
        [
            AccountAction::DeviceDelete,
            AccountAction::AccountDeactivate
        ]
    );
}
