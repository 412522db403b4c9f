//! Authorization server metadata (RFC 8414, OpenID Connect Discovery 1.0, the Matrix profile).
//!
//! The struct deserializes leniently (every list may be absent, unknown fields land in `extra`);
//! whether it is *usable* is decided by the validation in the `discovery` module, which every
//! constructor used by applications goes through.

use serde::{Deserialize, Serialize};
use url::Url;

/// Metadata of an OAuth 2.0 authorization server as served at `auth_metadata` or
/// `/.well-known/openid-configuration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier.
    pub issuer: Url,
    /// Where the user is sent to authorize.
    pub authorization_endpoint: Url,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: Url,
    /// RFC 7009 revocation endpoint (required by the Matrix profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    /// RFC 7591 registration endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<Url>,
    /// RFC 8628 device authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<Url>,
    /// RFC 7662 introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<Url>,
    /// RFC 9126 pushed authorization request endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<Url>,
    /// OpenID Connect userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<Url>,
    /// JWK Set of the server's signing keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<Url>,
    /// OpenID Connect RP-initiated logout endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<Url>,
    /// Matrix account management page (MSC4191).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_management_uri: Option<Url>,
    /// Account management actions the page supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_management_actions_supported: Option<Vec<String>>,
    /// Supported `response_type` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    /// Supported `response_mode` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_modes_supported: Option<Vec<String>>,
    /// Supported grant types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    /// Supported PKCE methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// Supported `prompt` values (`create` for sign-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_values_supported: Option<Vec<String>>,
    /// Supported scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// Supported client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// JWS algorithms the server signs ID tokens with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    /// RFC 9207: the server sends `iss` in authorization responses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub authorization_response_iss_parameter_supported: bool,
    /// Every field this struct does not name, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl AuthorizationServerMetadata {
    /// Whether `list` (absent = empty) contains `value`.
    pub(crate) fn list_contains(list: &Option<Vec<String>>, value: &str) -> bool {
        list.as_deref()
            .is_some_and(|l| l.iter().any(|v| v == value))
    }

    /// Whether the server advertises `prompt=create` (sign-up).
    pub fn supports_prompt_create(&self) -> bool {
        Self::list_contains(&self.prompt_values_supported, "create")
    }

    /// Whether the server offers the device authorization grant (endpoint and grant type both present).
    pub fn supports_device_grant(&self) -> bool {
        self.device_authorization_endpoint.is_some()
            && Self::list_contains(&self.grant_types_supported, crate::DEVICE_CODE_GRANT_TYPE)
    }
}
