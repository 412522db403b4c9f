//! Dynamic client registration (RFC 7591, Matrix "Client registration", MSC2966).
//!
//! A Matrix client registers itself at the start of every authorization flow and keeps the
//! `client_id` with the session it obtains (the spec says both "store the client_id" and "register
//! at the start of each flow"; servers such as MAS hand back the same id for identical metadata).
//!
//! ```text
//! ClientMetadata::native(client_uri)          describe the client
//!     .with_client_name(…)
//!     .with_redirect_uri(…)
//!         │
//!         ▼
//! Registration::new(&server_metadata, &client, rules)
//!         │   ├─ no registration_endpoint, grant type not offered ──▶ Err(NotSupported)
//!         │   └─ local rules broken (redirect URIs, URIs' hosts)    ──▶ Err(InvalidClientMetadata)
//!         ▼
//! registration.request()  ──▶  POST <registration_endpoint>  (JSON)
//!         │
//!         ▼
//! registration.handle_response(&response)
//!         ├─ 201 (or 200) with client_id ──▶ Ok(ClientRegistration)
//!         ├─ 400 {"error": "invalid_redirect_uri", …} ──▶ Err(Rejected)
//!         └─ anything else ──▶ Err(Http | InvalidResponse)
//! ```
//!
//! ```
//! use matrix_oidc_core::registration::{ClientMetadata, MetadataRules, Registration};
//! use matrix_oidc_core::metadata::{AuthorizationServerMetadata, ValidationOptions};
//! use url::Url;
//!
//! let server = AuthorizationServerMetadata::from_json(br#"{
//!   "issuer": "https://account.example.com/",
//!   "authorization_endpoint": "https://account.example.com/oauth2/auth",
//!   "token_endpoint": "https://account.example.com/oauth2/token",
//!   "revocation_endpoint": "https://account.example.com/oauth2/revoke",
//!   "registration_endpoint": "https://account.example.com/oauth2/clients/register",
//!   "response_types_supported": ["code"],
//!   "grant_types_supported": ["authorization_code", "refresh_token"],
//!   "response_modes_supported": ["query", "fragment"],
//!   "code_challenge_methods_supported": ["S256"]
//! }"#, &ValidationOptions::matrix(), None)?;
//!
//! let client = ClientMetadata::native(Url::parse("https://example.com/")?)
//!     .with_client_name("My App")
//!     .with_localized_client_name("fr", "Mon application")
//!     .with_redirect_uri(Url::parse("http://127.0.0.1/callback")?);
//! let registration = Registration::new(&server, &client, MetadataRules::MatrixSpec)?;
//! let request = registration.request()?;
//! assert_eq!(request.url(), "https://account.example.com/oauth2/clients/register");
//!
//! let response = http::Response::builder()
//!     .status(201)
//!     .header("content-type", "application/json")
//!     .body(br#"{"client_id": "01J9ZQ", "client_id_issued_at": 1750000000}"#.to_vec())?;
//! let registered = registration.handle_response(&response)?;
//! assert_eq!(registered.client_id, "01J9ZQ");
//!
//! // A redirect URI that breaks the spec's rules never reaches the server.
//! let bad = client.clone().with_redirect_uri(Url::parse("http://localhost:8080/callback")?);
//! let err = Registration::new(&server, &bad, MetadataRules::MatrixSpec).unwrap_err();
//! assert!(err.to_string().contains("MUST NOT have a port"), "{err}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod exchange;
mod rules;

pub use exchange::{
    ClientRegistration, NotSupportedReason, Registration, RegistrationError, RegistrationErrorCode,
};
pub use rules::{ClientMetadataError, MetadataRules, RuleSource};

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use url::Url;

/// The kind of client, which decides the redirect URI rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ApplicationType {
    /// A web application: https redirect URIs on the client URI's host.
    #[default]
    Web,
    /// A native (desktop, mobile, command-line) application: private-use scheme, loopback or claimed
    /// https redirect URIs.
    Native,
}

impl ApplicationType {
    /// The protocol value (`web` / `native`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ApplicationType::Web => "web",
            ApplicationType::Native => "native",
        }
    }
}

/// A human-readable value with translations (RFC 7591 §2.2): sent as `name` and `name#<tag>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Localized<T> {
    /// The value without a language tag.
    pub default: Option<T>,
    /// Translations by BCP 47 language tag (`fr`, `en-GB`).
    pub translations: BTreeMap<String, T>,
}

impl<T> Default for Localized<T> {
    fn default() -> Self {
        Self {
            default: None,
            translations: BTreeMap::new(),
        }
    }
}

impl<T> Localized<T> {
    /// A value without translations.
    pub fn new(default: T) -> Self {
        Self {
            default: Some(default),
            translations: BTreeMap::new(),
        }
    }

    /// Every value with its language tag (`None` for the default).
    pub fn iter(&self) -> impl Iterator<Item = (Option<&str>, &T)> {
        self.default
            .iter()
            .map(|v| (None, v))
            .chain(self.translations.iter().map(|(k, v)| (Some(k.as_str()), v)))
    }
}

/// The registration grant type of the authorization code flow.
pub const AUTHORIZATION_CODE: &str = "authorization_code";
/// The refresh token grant type.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// The metadata a client registers (RFC 7591 §2, the Matrix `OAuthClientMetadata` schema).
///
/// Build it with [`ClientMetadata::native`] or [`ClientMetadata::web`], which set what every Matrix
/// client sends (`authorization_code` + `refresh_token` grants, `code` response type, public client
/// with `token_endpoint_auth_method=none`), then the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientMetadata {
    /// `web` or `native`.
    pub application_type: ApplicationType,
    /// The client's home page; every other URI must be on its host or a subdomain.
    pub client_uri: Url,
    /// The client's name.
    pub client_name: Option<Localized<String>>,
    /// The client's logo.
    pub logo_uri: Option<Localized<Url>>,
    /// Terms of service.
    pub tos_uri: Option<Localized<Url>>,
    /// Privacy policy.
    pub policy_uri: Option<Localized<Url>>,
    /// Where the authorization server may send the user back.
    pub redirect_uris: Vec<Url>,
    /// Where the user may land after an RP-initiated logout (OpenID; not used by Matrix).
    pub post_logout_redirect_uris: Vec<Url>,
    /// Grant types the client will use.
    pub grant_types: Vec<String>,
    /// Response types the client will use.
    pub response_types: Vec<String>,
    /// How the client authenticates at the token endpoint (`none` for a public client).
    pub token_endpoint_auth_method: String,
    /// Contact e-mail addresses.
    pub contacts: Vec<String>,
    /// RFC 7591 `software_id`.
    pub software_id: Option<String>,
    /// RFC 7591 `software_version`.
    pub software_version: Option<String>,
    /// Any other field to send, verbatim.
    pub extra: Map<String, Value>,
}

impl ClientMetadata {
    fn base(application_type: ApplicationType, client_uri: Url) -> Self {
        Self {
            application_type,
            client_uri,
            client_name: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec![AUTHORIZATION_CODE.to_owned(), REFRESH_TOKEN.to_owned()],
            response_types: vec!["code".to_owned()],
            token_endpoint_auth_method: "none".to_owned(),
            contacts: Vec::new(),
            software_id: None,
            software_version: None,
            extra: Map::new(),
        }
    }

    /// A native application at `client_uri`.
    pub fn native(client_uri: Url) -> Self {
        Self::base(ApplicationType::Native, client_uri)
    }

    /// A web application at `client_uri`.
    pub fn web(client_uri: Url) -> Self {
        Self::base(ApplicationType::Web, client_uri)
    }

    /// Sets the client name (without a language tag).
    pub fn with_client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name
            .get_or_insert_with(Localized::default)
            .default = Some(name.into());
        self
    }

    /// Adds a translation of the client name (`lang` is a BCP 47 tag such as `fr` or `en-GB`).
    pub fn with_localized_client_name(
        mut self,
        lang: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        self.client_name
            .get_or_insert_with(Localized::default)
            .translations
            .insert(lang.into(), name.into());
        self
    }

    /// Sets the logo URI.
    pub fn with_logo_uri(mut self, uri: Url) -> Self {
        self.logo_uri.get_or_insert_with(Localized::default).default = Some(uri);
        self
    }

    /// Adds a localized logo URI.
    pub fn with_localized_logo_uri(mut self, lang: impl Into<String>, uri: Url) -> Self {
        self.logo_uri
            .get_or_insert_with(Localized::default)
            .translations
            .insert(lang.into(), uri);
        self
    }

    /// Sets the terms of service URI.
    pub fn with_tos_uri(mut self, uri: Url) -> Self {
        self.tos_uri.get_or_insert_with(Localized::default).default = Some(uri);
        self
    }

    /// Adds a localized terms of service URI.
    pub fn with_localized_tos_uri(mut self, lang: impl Into<String>, uri: Url) -> Self {
        self.tos_uri
            .get_or_insert_with(Localized::default)
            .translations
            .insert(lang.into(), uri);
        self
    }

    /// Sets the privacy policy URI.
    pub fn with_policy_uri(mut self, uri: Url) -> Self {
        self.policy_uri
            .get_or_insert_with(Localized::default)
            .default = Some(uri);
        self
    }

    /// Adds a localized privacy policy URI.
    pub fn with_localized_policy_uri(mut self, lang: impl Into<String>, uri: Url) -> Self {
        self.policy_uri
            .get_or_insert_with(Localized::default)
            .translations
            .insert(lang.into(), uri);
        self
    }

    /// Adds a redirect URI. For a native app on the loopback interface, register it without a port
    /// (`http://127.0.0.1/callback`): the spec requires the server to accept any port at authorization
    /// time, and forbids a port in the registered URI.
    pub fn with_redirect_uri(mut self, uri: Url) -> Self {
        self.redirect_uris.push(uri);
        self
    }

    /// Adds a post-logout redirect URI.
    pub fn with_post_logout_redirect_uri(mut self, uri: Url) -> Self {
        self.post_logout_redirect_uris.push(uri);
        self
    }

    /// Adds the device authorization grant (RFC 8628), for sign-in on another device.
    pub fn with_device_code_grant(mut self) -> Self {
        if !self.uses_grant_type(crate::DEVICE_CODE_GRANT_TYPE) {
            self.grant_types
                .push(crate::DEVICE_CODE_GRANT_TYPE.to_owned());
        }
        self
    }

    /// Registers for the device authorization grant (and refresh) only: no authorization code grant,
    /// no response type, no redirect URI needed. For input-constrained devices.
    pub fn device_code_only(mut self) -> Self {
        self.grant_types = vec![
            crate::DEVICE_CODE_GRANT_TYPE.to_owned(),
            REFRESH_TOKEN.to_owned(),
        ];
        self.response_types.clear();
        self
    }

    /// Adds a contact address.
    pub fn with_contact(mut self, contact: impl Into<String>) -> Self {
        self.contacts.push(contact.into());
        self
    }

    /// Sets `software_id` and `software_version`.
    pub fn with_software(mut self, id: impl Into<String>, version: impl Into<String>) -> Self {
        self.software_id = Some(id.into());
        self.software_version = Some(version.into());
        self
    }

    /// Adds any other field, sent verbatim (it does not replace a field this struct names).
    pub fn with_extra(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// Whether `grant_type` is among the grant types.
    pub fn uses_grant_type(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    /// The JSON document sent to the registration endpoint. Empty lists and absent values are left out;
    /// translations become `name#tag` keys.
    pub fn to_json(&self) -> Value {
        let mut map = self.extra.clone();
        let mut put = |k: &str, v: Value| {
            map.insert(k.to_owned(), v);
        };
        put("application_type", self.application_type.as_str().into());
        put("client_uri", self.client_uri.as_str().into());
        put(
            "token_endpoint_auth_method",
            self.token_endpoint_auth_method.clone().into(),
        );
        let strings = |v: &[String]| Value::from(v.to_vec());
        let urls = |v: &[Url]| Value::from(v.iter().map(Url::as_str).collect::<Vec<_>>());
        if !self.grant_types.is_empty() {
            put("grant_types", strings(&self.grant_types));
        }
        if !self.response_types.is_empty() {
            put("response_types", strings(&self.response_types));
        }
        if !self.redirect_uris.is_empty() {
            put("redirect_uris", urls(&self.redirect_uris));
        }
        if !self.post_logout_redirect_uris.is_empty() {
            put(
                "post_logout_redirect_uris",
                urls(&self.post_logout_redirect_uris),
            );
        }
        if !self.contacts.is_empty() {
            put("contacts", strings(&self.contacts));
        }
        if let Some(id) = &self.software_id {
            put("software_id", id.clone().into());
        }
        if let Some(version) = &self.software_version {
            put("software_version", version.clone().into());
        }
        put_localized(&mut map, "client_name", &self.client_name, String::clone);
        put_localized(&mut map, "logo_uri", &self.logo_uri, Url::to_string);
        put_localized(&mut map, "tos_uri", &self.tos_uri, Url::to_string);
        put_localized(&mut map, "policy_uri", &self.policy_uri, Url::to_string);
        Value::Object(map)
    }
}

/// Inserts `name` and `name#<tag>` keys for a localized value.
fn put_localized<T>(
    map: &mut Map<String, Value>,
    name: &str,
    value: &Option<Localized<T>>,
    to_string: impl Fn(&T) -> String,
) {
    for (lang, v) in value.iter().flat_map(Localized::iter) {
        let key = match lang {
            Some(lang) => format!("{name}#{lang}"),
            None => name.to_owned(),
        };
        map.insert(key, to_string(v).into());
    }
}
