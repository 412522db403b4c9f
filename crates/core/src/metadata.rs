//! Authorization server metadata (RFC 8414, OpenID Connect Discovery 1.0, the Matrix profile) and its
//! validation.
//!
//! Parsing is lenient about what it does not need (every unknown field lands in `extra`, unknown
//! values in lists are ignored) and strict about what it does: [`AuthorizationServerMetadata::from_json`]
//! checks each field's type, then the rules of a [`Profile`] under a [`UrlPolicy`], and reports each
//! problem as its own [`MetadataError`] naming the field (and the value that is missing).
//!
//! | rule | [`Profile::Matrix`] | [`Profile::MatrixTolerant`] | [`Profile::OAuth`] |
//! |---|---|---|---|
//! | `issuer`, `authorization_endpoint`, `token_endpoint` present | ✓ | ✓ | ✓ |
//! | `revocation_endpoint` present | ✓ | ✓ | — |
//! | `registration_endpoint` present | ✓ | — (static client ids) | — |
//! | `response_types_supported` ∋ `code` | ✓ | ✓ | ✓ |
//! | `grant_types_supported` ∋ `authorization_code`, `refresh_token` | ✓ | ✓ | — |
//! | `response_modes_supported` ∋ `query`, `fragment` | ✓ | if present | — |
//! | `code_challenge_methods_supported` ∋ `S256` | ✓ | ✓ | — |
//! | issuer without query or fragment | ✓ | ✓ | ✓ |
//! | every endpoint URL allowed by the [`UrlPolicy`] | ✓ | ✓ | ✓ |
//!
//! [`Profile::Matrix`] is the Matrix specification (v1.15+, `GET /_matrix/client/v1/auth_metadata`) to
//! the letter. [`Profile::MatrixTolerant`] follows ruma / matrix-rust-sdk where they relax it: a server
//! without a registration endpoint can still be used with a pre-registered client id, and an absent
//! `response_modes_supported` means RFC 8414's default `["query", "fragment"]`.
//!
//! ```
//! use matrix_oidc_core::metadata::{AuthorizationServerMetadata, MetadataError, MetadataField, ValidationOptions};
//!
//! let doc = br#"{
//!   "issuer": "https://account.example.com/",
//!   "authorization_endpoint": "https://account.example.com/oauth2/auth",
//!   "token_endpoint": "https://account.example.com/oauth2/token",
//!   "registration_endpoint": "https://account.example.com/oauth2/clients/register",
//!   "response_types_supported": ["code"],
//!   "grant_types_supported": ["authorization_code", "refresh_token"],
//!   "response_modes_supported": ["query", "fragment"],
//!   "code_challenge_methods_supported": ["S256"]
//! }"#;
//! let err = AuthorizationServerMetadata::from_json(doc, &ValidationOptions::matrix(), None).unwrap_err();
//! assert_eq!(err, MetadataError::MissingField { field: MetadataField::RevocationEndpoint });
//! assert_eq!(err.to_string(), "the required field `revocation_endpoint` is missing");
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

mod extra;
mod raw;

pub use extra::ExtraMembers;

/// One value of a `*_supported` list. [`AuthorizationServerMetadata::from_json`] takes the values
/// registered for these lists (`code`, `S256`, `authorization_code`, `RS256`, …) as static strings
/// rather than allocating each one, as `http::HeaderName` does for standard headers; other values are
/// owned. Either way it reads as a `&str` (`v == "S256"`, `&*v`), and compares, prints and serializes
/// as its text.
pub type ListValue = std::borrow::Cow<'static, str>;

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
    pub account_management_actions_supported: Option<Vec<ListValue>>,
    /// Supported `response_type` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<ListValue>>,
    /// Supported `response_mode` values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_modes_supported: Option<Vec<ListValue>>,
    /// Supported grant types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<ListValue>>,
    /// Supported PKCE methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<ListValue>>,
    /// Supported `prompt` values (`create` for sign-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_values_supported: Option<Vec<ListValue>>,
    /// Supported scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<ListValue>>,
    /// Supported client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<ListValue>>,
    /// JWS algorithms the server signs ID tokens with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signing_alg_values_supported: Option<Vec<ListValue>>,
    /// RFC 9207: the server sends `iss` in authorization responses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub authorization_response_iss_parameter_supported: bool,
    /// Every member this struct does not name, kept verbatim (read as a `serde_json::Map`; built
    /// from the document when first read).
    #[serde(flatten)]
    pub extra: ExtraMembers,
}

impl AuthorizationServerMetadata {
    /// Whether `list` (absent = empty) contains `value`.
    pub(crate) fn list_contains(list: &Option<Vec<ListValue>>, value: &str) -> bool {
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

    /// Whether `grant_type` is supported. An absent `grant_types_supported` means RFC 8414's default,
    /// `["authorization_code", "implicit"]`.
    pub fn supports_grant_type(&self, grant_type: &str) -> bool {
        match &self.grant_types_supported {
            Some(list) => list.iter().any(|g| g == grant_type),
            None => matches!(grant_type, "authorization_code" | "implicit"),
        }
    }

    /// Whether `response_mode` (`query`, `fragment`, …) is supported. An absent
    /// `response_modes_supported` means RFC 8414's default, `["query", "fragment"]`.
    pub fn supports_response_mode(&self, response_mode: &str) -> bool {
        match &self.response_modes_supported {
            Some(list) => list.iter().any(|m| m == response_mode),
            None => matches!(response_mode, "query" | "fragment"),
        }
    }

    /// Whether PKCE with `S256` is advertised (RFC 8414: an absent list means no PKCE support).
    pub fn supports_pkce_s256(&self) -> bool {
        Self::list_contains(&self.code_challenge_methods_supported, "S256")
    }

    /// Parses a metadata document and validates it: field types first, then the rules of
    /// `options.profile` under `options.url_policy`, then, when `expected_issuer` is given, that the
    /// document's `issuer` equals it (OpenID Connect Discovery §4.3, RFC 8414 §3.3).
    ///
    /// Returns the first problem in field order; [`AuthorizationServerMetadata::diagnose`] lists all.
    /// Issuers are compared as parsed URLs, so `https://a.example` and `https://a.example/` are equal
    /// while `https://a.example/x` and `https://a.example/x/` are not.
    ///
    /// The answer is the same as [`AuthorizationServerMetadata::from_json_value`] on the parsed
    /// document, but cheaper: the bytes are read straight into the typed fields, and the members no
    /// field names are kept as the document's bytes until [`extra`](Self::extra) is first read.
    pub fn from_json(
        json: &[u8],
        options: &ValidationOptions,
        expected_issuer: Option<&Url>,
    ) -> Result<Self, MetadataError> {
        Self::from_document(json, options, expected_issuer).map_err(|e| match e {
            DocumentError::Syntax(e) => MetadataError::NotAnObject {
                reason: e.to_string(),
            },
            DocumentError::Metadata(e) => e,
        })
    }

    /// [`AuthorizationServerMetadata::from_json`], with a document that is not JSON told apart (a
    /// discovery response reports it as an HTTP-level problem).
    pub(crate) fn from_document(
        json: &[u8],
        options: &ValidationOptions,
        expected_issuer: Option<&Url>,
    ) -> Result<Self, DocumentError> {
        // The same answers as `from_json_value(serde_json::from_slice(json)?)`, without building the
        // `Value` (see `raw`); the unnamed members are built only if `extra` is read.
        let mut slots = raw::Slots::default();
        if let Some(kind) = raw::read(json, &mut slots).map_err(DocumentError::Syntax)? {
            return Err(DocumentError::Metadata(MetadataError::NotAnObject {
                reason: format!("found {kind}"),
            }));
        }
        let mut problems = Vec::new();
        let partial = slots.take_partial(json, expected_issuer, &mut problems);
        partial.check(options, expected_issuer, &mut problems);
        Self::complete(partial, problems).map_err(DocumentError::Metadata)
    }

    /// The metadata, or the first problem.
    fn complete(partial: Partial, problems: Vec<MetadataError>) -> Result<Self, MetadataError> {
        if let Some(first) = problems.into_iter().next() {
            return Err(first);
        }
        // `check` reports every missing required field, so a partial without problems is complete.
        partial.into_metadata().ok_or(MetadataError::NotAnObject {
            reason: "incomplete document".to_owned(),
        })
    }

    /// [`AuthorizationServerMetadata::from_json`] for a document already parsed as JSON.
    pub fn from_json_value(
        value: Value,
        options: &ValidationOptions,
        expected_issuer: Option<&Url>,
    ) -> Result<Self, MetadataError> {
        let mut problems = Vec::new();
        let partial = Partial::parse(value, &mut problems);
        if let Some(partial) = &partial {
            partial.check(options, expected_issuer, &mut problems);
        }
        if let Some(first) = problems.into_iter().next() {
            return Err(first);
        }
        // `check` reports every missing required field, so a partial without problems is complete.
        partial
            .and_then(Partial::into_metadata)
            .ok_or(MetadataError::NotAnObject {
                reason: "incomplete document".to_owned(),
            })
    }

    /// Every problem [`AuthorizationServerMetadata::from_json_value`] would report, in field order
    /// (empty when the document is valid): for diagnostics that show all of them at once.
    pub fn diagnose(
        value: Value,
        options: &ValidationOptions,
        expected_issuer: Option<&Url>,
    ) -> Vec<MetadataError> {
        let mut problems = Vec::new();
        if let Some(partial) = Partial::parse(value, &mut problems) {
            partial.check(options, expected_issuer, &mut problems);
        }
        problems
    }

    /// Validates metadata the caller already holds ("bring your own metadata", or a copy read back from
    /// a store) against `options`, and its issuer against `expected_issuer` when given.
    pub fn validate(
        &self,
        options: &ValidationOptions,
        expected_issuer: Option<&Url>,
    ) -> Result<(), MetadataError> {
        let mut problems = Vec::new();
        Partial::from_metadata(self).check(options, expected_issuer, &mut problems);
        problems.into_iter().next().map_or(Ok(()), Err)
    }
}

/// Why [`AuthorizationServerMetadata::from_document`] failed.
#[derive(Debug)]
pub(crate) enum DocumentError {
    /// The bytes are not JSON.
    Syntax(serde_json::Error),
    /// The JSON is not valid metadata.
    Metadata(MetadataError),
}

/// Which URL schemes the metadata's endpoints may use.
///
/// Tokens and codes travel to these URLs, so the default is `https` only. Development setups (a local
/// homeserver or OpenID provider on `http://127.0.0.1:<port>`) opt in to plain `http` on loopback
/// hosts by name, so that the choice is visible where it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum UrlPolicy {
    /// Every URL must use `https`.
    #[default]
    HttpsOnly,
    /// `https` everywhere, and also `http` when the host is `localhost`, a loopback IPv4 address
    /// (`127.0.0.0/8`) or `[::1]`. For development and tests only.
    AllowInsecureLoopback,
}

impl UrlPolicy {
    /// Whether `url` is acceptable under this policy.
    pub fn allows(self, url: &Url) -> bool {
        match url.scheme() {
            "https" => url.host().is_some(),
            "http" => self == UrlPolicy::AllowInsecureLoopback && is_loopback(url),
            _ => false,
        }
    }
}

/// Whether the URL's host is `localhost`, a loopback IPv4 address or `[::1]`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Which set of rules a metadata document must follow. See the [module docs](self) for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Profile {
    /// The Matrix specification's `auth_metadata` requirements, every required field and value.
    #[default]
    Matrix,
    /// The Matrix profile as ruma and matrix-rust-sdk apply it: `registration_endpoint` optional,
    /// `response_modes_supported` optional (checked when present).
    MatrixTolerant,
    /// A generic OAuth 2.0 / OpenID Connect authorization server (RFC 8414's required fields, and
    /// `code` among the response types), for relying parties that are not Matrix clients.
    OAuth,
}

/// How to validate a metadata document: which [`Profile`] and which [`UrlPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct ValidationOptions {
    /// The rules the document must follow.
    pub profile: Profile,
    /// Which URLs its endpoints may have.
    pub url_policy: UrlPolicy,
}

impl ValidationOptions {
    /// [`Profile::Matrix`] with [`UrlPolicy::HttpsOnly`] (the default).
    pub const fn matrix() -> Self {
        Self {
            profile: Profile::Matrix,
            url_policy: UrlPolicy::HttpsOnly,
        }
    }

    /// [`Profile::OAuth`] with [`UrlPolicy::HttpsOnly`].
    pub const fn oauth() -> Self {
        Self {
            profile: Profile::OAuth,
            url_policy: UrlPolicy::HttpsOnly,
        }
    }

    /// The same options with another profile.
    pub const fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// The same options with another URL policy.
    pub const fn with_url_policy(mut self, url_policy: UrlPolicy) -> Self {
        self.url_policy = url_policy;
        self
    }
}

/// A metadata field this crate reads, by its JSON name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the field of the same name
pub enum MetadataField {
    Issuer,
    AuthorizationEndpoint,
    TokenEndpoint,
    RevocationEndpoint,
    RegistrationEndpoint,
    ResponseTypesSupported,
    GrantTypesSupported,
    ResponseModesSupported,
    CodeChallengeMethodsSupported,
    DeviceAuthorizationEndpoint,
    IntrospectionEndpoint,
    PushedAuthorizationRequestEndpoint,
    UserinfoEndpoint,
    JwksUri,
    EndSessionEndpoint,
    AccountManagementUri,
    AccountManagementActionsSupported,
    PromptValuesSupported,
    ScopesSupported,
    TokenEndpointAuthMethodsSupported,
    IdTokenSigningAlgValuesSupported,
    AuthorizationResponseIssParameterSupported,
}

impl MetadataField {
    /// Every field, in the order their problems are reported.
    pub(crate) const ALL: [MetadataField; 22] = [
        MetadataField::Issuer,
        MetadataField::AuthorizationEndpoint,
        MetadataField::TokenEndpoint,
        MetadataField::RevocationEndpoint,
        MetadataField::RegistrationEndpoint,
        MetadataField::ResponseTypesSupported,
        MetadataField::GrantTypesSupported,
        MetadataField::ResponseModesSupported,
        MetadataField::CodeChallengeMethodsSupported,
        MetadataField::DeviceAuthorizationEndpoint,
        MetadataField::IntrospectionEndpoint,
        MetadataField::PushedAuthorizationRequestEndpoint,
        MetadataField::UserinfoEndpoint,
        MetadataField::JwksUri,
        MetadataField::EndSessionEndpoint,
        MetadataField::AccountManagementUri,
        MetadataField::AccountManagementActionsSupported,
        MetadataField::PromptValuesSupported,
        MetadataField::ScopesSupported,
        MetadataField::TokenEndpointAuthMethodsSupported,
        MetadataField::IdTokenSigningAlgValuesSupported,
        MetadataField::AuthorizationResponseIssParameterSupported,
    ];

    /// The JSON field name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetadataField::Issuer => "issuer",
            MetadataField::AuthorizationEndpoint => "authorization_endpoint",
            MetadataField::TokenEndpoint => "token_endpoint",
            MetadataField::RevocationEndpoint => "revocation_endpoint",
            MetadataField::RegistrationEndpoint => "registration_endpoint",
            MetadataField::ResponseTypesSupported => "response_types_supported",
            MetadataField::GrantTypesSupported => "grant_types_supported",
            MetadataField::ResponseModesSupported => "response_modes_supported",
            MetadataField::CodeChallengeMethodsSupported => "code_challenge_methods_supported",
            MetadataField::DeviceAuthorizationEndpoint => "device_authorization_endpoint",
            MetadataField::IntrospectionEndpoint => "introspection_endpoint",
            MetadataField::PushedAuthorizationRequestEndpoint => {
                "pushed_authorization_request_endpoint"
            }
            MetadataField::UserinfoEndpoint => "userinfo_endpoint",
            MetadataField::JwksUri => "jwks_uri",
            MetadataField::EndSessionEndpoint => "end_session_endpoint",
            MetadataField::AccountManagementUri => "account_management_uri",
            MetadataField::AccountManagementActionsSupported => {
                "account_management_actions_supported"
            }
            MetadataField::PromptValuesSupported => "prompt_values_supported",
            MetadataField::ScopesSupported => "scopes_supported",
            MetadataField::TokenEndpointAuthMethodsSupported => {
                "token_endpoint_auth_methods_supported"
            }
            MetadataField::IdTokenSigningAlgValuesSupported => {
                "id_token_signing_alg_values_supported"
            }
            MetadataField::AuthorizationResponseIssParameterSupported => {
                "authorization_response_iss_parameter_supported"
            }
        }
    }
}

impl std::fmt::Display for MetadataField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with an authorization server metadata document.
///
/// Mirrors matrix-js-sdk's `OAuth2Error.OpSupport` ("does not support required functions"), split so
/// that the caller can tell which field or value is the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The document is not a JSON object.
    #[error("the metadata is not a JSON object ({reason})")]
    NotAnObject {
        /// What the parser said.
        reason: String,
    },
    /// A field the profile requires is absent (or `null`).
    #[error("the required field `{field}` is missing")]
    MissingField {
        /// The field.
        field: MetadataField,
    },
    /// A field has the wrong JSON type.
    #[error("the field `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: MetadataField,
        /// What it must be, such as "a URL string" or "an array of strings".
        expected: &'static str,
    },
    /// A URL field does not hold an absolute URL.
    #[error("the field `{field}` is not a valid absolute URL ({value:?}: {reason})")]
    InvalidUrl {
        /// The field.
        field: MetadataField,
        /// The value (cut to 256 bytes).
        value: String,
        /// What the URL parser said.
        reason: String,
    },
    /// A URL is not allowed by the [`UrlPolicy`] (not `https`).
    #[error("the field `{field}` must be an https URL, found {url}{}", insecure_hint(.url))]
    InsecureUrl {
        /// The field.
        field: MetadataField,
        /// The URL.
        url: String,
    },
    /// The issuer has a query or a fragment component (RFC 8414 §2).
    #[error("the issuer {issuer} must not have a query or fragment component")]
    IssuerHasQueryOrFragment {
        /// The issuer.
        issuer: String,
    },
    /// A list field lacks a value the profile requires.
    #[error("the field `{field}` must contain `{value}`")]
    MissingValue {
        /// The list field.
        field: MetadataField,
        /// The required value.
        value: &'static str,
    },
    /// The document names another issuer than the one it was fetched for.
    #[error("the metadata's issuer is {found}, but it was fetched for the issuer {expected}")]
    IssuerMismatch {
        /// The issuer the document was fetched for.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
}

fn insecure_hint(url: &str) -> &'static str {
    if Url::parse(url).is_ok_and(|u| u.scheme() == "http" && is_loopback(&u)) {
        " (http on a loopback host is accepted only with UrlPolicy::AllowInsecureLoopback)"
    } else {
        ""
    }
}

/// Every field of [`AuthorizationServerMetadata`] optional: what a document holds before the
/// profile's rules are applied.
#[derive(Debug, Clone, Default)]
struct Partial {
    issuer: Option<Url>,
    authorization_endpoint: Option<Url>,
    token_endpoint: Option<Url>,
    revocation_endpoint: Option<Url>,
    registration_endpoint: Option<Url>,
    device_authorization_endpoint: Option<Url>,
    introspection_endpoint: Option<Url>,
    pushed_authorization_request_endpoint: Option<Url>,
    userinfo_endpoint: Option<Url>,
    jwks_uri: Option<Url>,
    end_session_endpoint: Option<Url>,
    account_management_uri: Option<Url>,
    account_management_actions_supported: Option<Vec<ListValue>>,
    response_types_supported: Option<Vec<ListValue>>,
    response_modes_supported: Option<Vec<ListValue>>,
    grant_types_supported: Option<Vec<ListValue>>,
    code_challenge_methods_supported: Option<Vec<ListValue>>,
    prompt_values_supported: Option<Vec<ListValue>>,
    scopes_supported: Option<Vec<ListValue>>,
    token_endpoint_auth_methods_supported: Option<Vec<ListValue>>,
    id_token_signing_alg_values_supported: Option<Vec<ListValue>>,
    authorization_response_iss_parameter_supported: bool,
    extra: ExtraMembers,
    /// Fields that were present with a wrong type: not reported again as missing.
    malformed: Vec<MetadataField>,
}

/// MSC4191's unstable names, read when the stable ones are absent.
const UNSTABLE_ACCOUNT_URI: &str = "org.matrix.msc4191.account_management_uri";
const UNSTABLE_ACCOUNT_ACTIONS: &str = "org.matrix.msc4191.account_management_actions_supported";

/// MSC4191: a member under its unstable name stands in for an absent stable one.
fn rename_unstable_names(map: &mut Map<String, Value>) {
    use MetadataField as F;
    for (stable, unstable) in [
        (F::AccountManagementUri, UNSTABLE_ACCOUNT_URI),
        (
            F::AccountManagementActionsSupported,
            UNSTABLE_ACCOUNT_ACTIONS,
        ),
    ] {
        if !map.contains_key(stable.as_str()) {
            if let Some(v) = map.remove(unstable) {
                map.insert(stable.as_str().to_owned(), v);
            }
        }
    }
}

impl Partial {
    fn parse(value: Value, problems: &mut Vec<MetadataError>) -> Option<Self> {
        use MetadataField as F;
        let mut map = match value {
            Value::Object(map) => map,
            other => {
                problems.push(MetadataError::NotAnObject {
                    reason: format!("found {}", json_kind(&other)),
                });
                return None;
            }
        };
        rename_unstable_names(&mut map);
        let mut p = Partial::default();
        let mut r = Reader {
            map: &mut map,
            problems,
            malformed: &mut p.malformed,
        };
        p.issuer = r.url(F::Issuer);
        p.authorization_endpoint = r.url(F::AuthorizationEndpoint);
        p.token_endpoint = r.url(F::TokenEndpoint);
        p.revocation_endpoint = r.url(F::RevocationEndpoint);
        p.registration_endpoint = r.url(F::RegistrationEndpoint);
        p.response_types_supported = r.list(F::ResponseTypesSupported);
        p.grant_types_supported = r.list(F::GrantTypesSupported);
        p.response_modes_supported = r.list(F::ResponseModesSupported);
        p.code_challenge_methods_supported = r.list(F::CodeChallengeMethodsSupported);
        p.device_authorization_endpoint = r.url(F::DeviceAuthorizationEndpoint);
        p.introspection_endpoint = r.url(F::IntrospectionEndpoint);
        p.pushed_authorization_request_endpoint = r.url(F::PushedAuthorizationRequestEndpoint);
        p.userinfo_endpoint = r.url(F::UserinfoEndpoint);
        p.jwks_uri = r.url(F::JwksUri);
        p.end_session_endpoint = r.url(F::EndSessionEndpoint);
        p.account_management_uri = r.url(F::AccountManagementUri);
        p.account_management_actions_supported = r.list(F::AccountManagementActionsSupported);
        p.prompt_values_supported = r.list(F::PromptValuesSupported);
        p.scopes_supported = r.list(F::ScopesSupported);
        p.token_endpoint_auth_methods_supported = r.list(F::TokenEndpointAuthMethodsSupported);
        p.id_token_signing_alg_values_supported = r.list(F::IdTokenSigningAlgValuesSupported);
        p.authorization_response_iss_parameter_supported =
            r.flag(F::AuthorizationResponseIssParameterSupported);
        p.extra = ExtraMembers::from(map);
        Some(p)
    }

    fn from_metadata(m: &AuthorizationServerMetadata) -> Self {
        Partial {
            issuer: Some(m.issuer.clone()),
            authorization_endpoint: Some(m.authorization_endpoint.clone()),
            token_endpoint: Some(m.token_endpoint.clone()),
            revocation_endpoint: m.revocation_endpoint.clone(),
            registration_endpoint: m.registration_endpoint.clone(),
            device_authorization_endpoint: m.device_authorization_endpoint.clone(),
            introspection_endpoint: m.introspection_endpoint.clone(),
            pushed_authorization_request_endpoint: m.pushed_authorization_request_endpoint.clone(),
            userinfo_endpoint: m.userinfo_endpoint.clone(),
            jwks_uri: m.jwks_uri.clone(),
            end_session_endpoint: m.end_session_endpoint.clone(),
            account_management_uri: m.account_management_uri.clone(),
            account_management_actions_supported: m.account_management_actions_supported.clone(),
            response_types_supported: m.response_types_supported.clone(),
            response_modes_supported: m.response_modes_supported.clone(),
            grant_types_supported: m.grant_types_supported.clone(),
            code_challenge_methods_supported: m.code_challenge_methods_supported.clone(),
            prompt_values_supported: m.prompt_values_supported.clone(),
            scopes_supported: m.scopes_supported.clone(),
            token_endpoint_auth_methods_supported: m.token_endpoint_auth_methods_supported.clone(),
            id_token_signing_alg_values_supported: m.id_token_signing_alg_values_supported.clone(),
            authorization_response_iss_parameter_supported: m
                .authorization_response_iss_parameter_supported,
            extra: ExtraMembers::default(),
            malformed: Vec::new(),
        }
    }

    fn into_metadata(self) -> Option<AuthorizationServerMetadata> {
        Some(AuthorizationServerMetadata {
            issuer: self.issuer?,
            authorization_endpoint: self.authorization_endpoint?,
            token_endpoint: self.token_endpoint?,
            revocation_endpoint: self.revocation_endpoint,
            registration_endpoint: self.registration_endpoint,
            device_authorization_endpoint: self.device_authorization_endpoint,
            introspection_endpoint: self.introspection_endpoint,
            pushed_authorization_request_endpoint: self.pushed_authorization_request_endpoint,
            userinfo_endpoint: self.userinfo_endpoint,
            jwks_uri: self.jwks_uri,
            end_session_endpoint: self.end_session_endpoint,
            account_management_uri: self.account_management_uri,
            account_management_actions_supported: self.account_management_actions_supported,
            response_types_supported: self.response_types_supported,
            response_modes_supported: self.response_modes_supported,
            grant_types_supported: self.grant_types_supported,
            code_challenge_methods_supported: self.code_challenge_methods_supported,
            prompt_values_supported: self.prompt_values_supported,
            scopes_supported: self.scopes_supported,
            token_endpoint_auth_methods_supported: self.token_endpoint_auth_methods_supported,
            id_token_signing_alg_values_supported: self.id_token_signing_alg_values_supported,
            authorization_response_iss_parameter_supported: self
                .authorization_response_iss_parameter_supported,
            extra: self.extra,
        })
    }

    /// Applies the profile's rules, in field order.
    fn check(
        &self,
        options: &ValidationOptions,
        expected_issuer: Option<&Url>,
        problems: &mut Vec<MetadataError>,
    ) {
        use MetadataField as F;
        let matrix = matches!(options.profile, Profile::Matrix | Profile::MatrixTolerant);
        let strict = options.profile == Profile::Matrix;
        let mut url = |field: MetadataField, value: &Option<Url>, required: bool| match value {
            None if required && !self.malformed.contains(&field) => {
                problems.push(MetadataError::MissingField { field })
            }
            None => {}
            Some(u) if !options.url_policy.allows(u) => problems.push(MetadataError::InsecureUrl {
                field,
                url: u.to_string(),
            }),
            Some(_) => {}
        };
        url(F::Issuer, &self.issuer, true);
        url(F::AuthorizationEndpoint, &self.authorization_endpoint, true);
        url(F::TokenEndpoint, &self.token_endpoint, true);
        url(F::RevocationEndpoint, &self.revocation_endpoint, matrix);
        url(F::RegistrationEndpoint, &self.registration_endpoint, strict);
        url(
            F::DeviceAuthorizationEndpoint,
            &self.device_authorization_endpoint,
            false,
        );
        url(
            F::IntrospectionEndpoint,
            &self.introspection_endpoint,
            false,
        );
        url(
            F::PushedAuthorizationRequestEndpoint,
            &self.pushed_authorization_request_endpoint,
            false,
        );
        url(F::UserinfoEndpoint, &self.userinfo_endpoint, false);
        url(F::JwksUri, &self.jwks_uri, false);
        url(F::EndSessionEndpoint, &self.end_session_endpoint, false);
        url(F::AccountManagementUri, &self.account_management_uri, false);

        if let Some(issuer) = &self.issuer {
            if issuer.query().is_some() || issuer.fragment().is_some() {
                problems.push(MetadataError::IssuerHasQueryOrFragment {
                    issuer: issuer.to_string(),
                });
            }
            if let Some(expected) = expected_issuer {
                if expected != issuer {
                    problems.push(MetadataError::IssuerMismatch {
                        expected: expected.to_string(),
                        found: issuer.to_string(),
                    });
                }
            }
        }

        let mut list = |field: MetadataField,
                        value: &Option<Vec<ListValue>>,
                        required: bool,
                        must_contain: &[&'static str]| {
            match value {
                None if required && !self.malformed.contains(&field) => {
                    problems.push(MetadataError::MissingField { field })
                }
                None => {}
                Some(values) => {
                    for needed in must_contain {
                        if !values.iter().any(|v| v == needed) {
                            problems.push(MetadataError::MissingValue {
                                field,
                                value: needed,
                            });
                        }
                    }
                }
            }
        };
        list(
            F::ResponseTypesSupported,
            &self.response_types_supported,
            true,
            &["code"],
        );
        let (grants, modes, pkce): (&[&str], &[&str], &[&str]) = if matrix {
            (
                &["authorization_code", "refresh_token"],
                &["query", "fragment"],
                &["S256"],
            )
        } else {
            (&[], &[], &[])
        };
        list(
            F::GrantTypesSupported,
            &self.grant_types_supported,
            matrix,
            grants,
        );
        list(
            F::ResponseModesSupported,
            &self.response_modes_supported,
            strict,
            modes,
        );
        list(
            F::CodeChallengeMethodsSupported,
            &self.code_challenge_methods_supported,
            matrix,
            pkce,
        );
    }
}

/// Takes typed fields out of a JSON object, recording type errors.
struct Reader<'a> {
    map: &'a mut Map<String, Value>,
    problems: &'a mut Vec<MetadataError>,
    malformed: &'a mut Vec<MetadataField>,
}

impl Reader<'_> {
    fn wrong(&mut self, field: MetadataField, expected: &'static str) {
        self.malformed.push(field);
        self.problems
            .push(MetadataError::WrongType { field, expected });
    }

    fn url(&mut self, field: MetadataField) -> Option<Url> {
        match self.map.remove(field.as_str()) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match Url::parse(&s) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.malformed.push(field);
                    self.problems.push(MetadataError::InvalidUrl {
                        field,
                        value: crate::error::truncate(s, 256),
                        reason: e.to_string(),
                    });
                    None
                }
            },
            Some(_) => {
                self.wrong(field, "a URL string");
                None
            }
        }
    }

    fn list(&mut self, field: MetadataField) -> Option<Vec<ListValue>> {
        match self.map.remove(field.as_str()) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => out.push(ListValue::Owned(s)),
                        _ => {
                            self.wrong(field, "an array of strings");
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.wrong(field, "an array of strings");
                None
            }
        }
    }

    fn flag(&mut self, field: MetadataField) -> bool {
        match self.map.remove(field.as_str()) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                self.wrong(field, "a boolean");
                false
            }
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
