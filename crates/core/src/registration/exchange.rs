//! The registration round trip: request builder and response handler.

use super::{ClientMetadata, ClientMetadataError, MetadataRules};
use crate::error::{OAuthErrorBody, ResponseError};
use crate::http::{BuildError, Expectations, check_json};
use crate::metadata::AuthorizationServerMetadata;
use crate::{OutgoingRequest, Secret, Timestamp};
use serde_json::{Map, Value};
use url::Url;

/// Why the server cannot register this client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotSupportedReason {
    /// The metadata has no `registration_endpoint`.
    NoRegistrationEndpoint,
    /// The client needs a grant type the server does not list in `grant_types_supported`.
    GrantTypeNotSupported(String),
    /// The client wants the device code grant and the server has no `device_authorization_endpoint`.
    NoDeviceAuthorizationEndpoint,
}

impl std::fmt::Display for NotSupportedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotSupportedReason::NoRegistrationEndpoint => {
                f.write_str("the server metadata has no registration_endpoint")
            }
            NotSupportedReason::GrantTypeNotSupported(g) => write!(
                f,
                "the client needs the grant type {g:?}, which the server's grant_types_supported lacks"
            ),
            NotSupportedReason::NoDeviceAuthorizationEndpoint => f.write_str(
                "the client needs the device code grant, and the server has no device_authorization_endpoint",
            ),
        }
    }
}

/// The RFC 7591 §3.2.2 error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationErrorCode {
    /// `invalid_redirect_uri`.
    InvalidRedirectUri,
    /// `invalid_client_metadata`.
    InvalidClientMetadata,
    /// `invalid_software_statement`.
    InvalidSoftwareStatement,
    /// `unapproved_software_statement`.
    UnapprovedSoftwareStatement,
    /// Any other code (MAS answers malformed JSON with `invalid_request`).
    Other(String),
}

impl RegistrationErrorCode {
    /// The code for an `error` string.
    pub fn from_code(code: &str) -> Self {
        match code {
            "invalid_redirect_uri" => Self::InvalidRedirectUri,
            "invalid_client_metadata" => Self::InvalidClientMetadata,
            "invalid_software_statement" => Self::InvalidSoftwareStatement,
            "unapproved_software_statement" => Self::UnapprovedSoftwareStatement,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Why a registration failed. Mirrors matrix-js-sdk's `DynamicRegistrationNotSupported`
/// ([`RegistrationError::NotSupported`]), `DynamicRegistrationFailed` ([`RegistrationError::Rejected`],
/// [`RegistrationError::Http`]) and `DynamicRegistrationInvalid`
/// ([`RegistrationError::InvalidResponse`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// The server cannot register this client.
    #[error("dynamic client registration is not supported: {reason}")]
    NotSupported {
        /// Why.
        reason: NotSupportedReason,
    },
    /// The client metadata breaks a rule, found before anything was sent.
    #[error("the client metadata is invalid: {0}")]
    InvalidClientMetadata(#[from] ClientMetadataError),
    /// The server refused the registration with an RFC 7591 error.
    #[error("the registration endpoint {url} refused the client (HTTP {status}): {error}")]
    Rejected {
        /// The registration endpoint.
        url: String,
        /// The HTTP status (400 for RFC 7591 errors).
        status: u16,
        /// The error body.
        error: OAuthErrorBody,
    },
    /// The response was not a registration answer (unexpected status, not JSON, too large, redirect).
    #[error("registration at {url} failed: {error}")]
    Http {
        /// The registration endpoint.
        url: String,
        /// What was wrong.
        error: ResponseError,
    },
    /// A success response without a usable `client_id` or with mistyped fields.
    #[error("the registration response from {url} is invalid: {reason}")]
    InvalidResponse {
        /// The registration endpoint.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The request could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
}

impl RegistrationError {
    /// The RFC 7591 error code, when the server refused with one.
    pub fn code(&self) -> Option<RegistrationErrorCode> {
        match self {
            RegistrationError::Rejected { error, .. } => {
                Some(RegistrationErrorCode::from_code(&error.error))
            }
            _ => None,
        }
    }
}

/// A successful registration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientRegistration {
    /// The client id to use in every later request; keep it with the session.
    pub client_id: String,
    /// A client secret, if the server issued one (a public client normally gets none).
    pub client_secret: Option<Secret>,
    /// When the client id was issued.
    pub client_id_issued_at: Option<Timestamp>,
    /// When the client secret expires (`None` also when the server said `0`, "never").
    pub client_secret_expires_at: Option<Timestamp>,
    /// RFC 7592 token for managing the registration, if issued.
    pub registration_access_token: Option<Secret>,
    /// RFC 7592 URL for managing the registration, if given.
    pub registration_client_uri: Option<Url>,
    /// The registered metadata as the server echoed it (it may have dropped values it does not
    /// support, such as translations or unknown grant types).
    pub metadata: Map<String, Value>,
}

/// One registration: validated client metadata bound for a server's registration endpoint.
#[derive(Debug, Clone)]
pub struct Registration {
    endpoint: Url,
    body: Value,
    expect: Expectations,
}

impl Registration {
    /// Checks that `server` can register `client` and that `client` passes `rules`, and prepares the
    /// request.
    ///
    /// The server must have a `registration_endpoint` and, when it lists `grant_types_supported`, list
    /// every grant type of the client; the device code grant also needs a
    /// `device_authorization_endpoint`.
    pub fn new(
        server: &AuthorizationServerMetadata,
        client: &ClientMetadata,
        rules: MetadataRules,
    ) -> Result<Self, RegistrationError> {
        let not_supported = |reason| RegistrationError::NotSupported { reason };
        let endpoint = server
            .registration_endpoint
            .clone()
            .ok_or(not_supported(NotSupportedReason::NoRegistrationEndpoint))?;
        if let Some(supported) = &server.grant_types_supported {
            if let Some(missing) = client
                .grant_types
                .iter()
                .find(|g| !supported.iter().any(|s| s == *g))
            {
                return Err(not_supported(NotSupportedReason::GrantTypeNotSupported(
                    missing.clone(),
                )));
            }
        }
        if client.uses_grant_type(crate::DEVICE_CODE_GRANT_TYPE)
            && server.device_authorization_endpoint.is_none()
        {
            return Err(not_supported(
                NotSupportedReason::NoDeviceAuthorizationEndpoint,
            ));
        }
        client.validate(rules)?;
        Ok(Self {
            endpoint,
            body: client.to_json(),
            expect: Expectations::json(),
        })
    }

    /// The same registration with other request expectations.
    pub fn with_expectations(mut self, expect: Expectations) -> Self {
        self.expect = expect;
        self
    }

    /// The registration endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The JSON document that will be sent.
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// `POST <registration_endpoint>` with the client metadata as JSON.
    pub fn request(&self) -> Result<OutgoingRequest, RegistrationError> {
        Ok(OutgoingRequest::post_json(&self.endpoint, &self.body)?
            .with_expectations(self.expect.clone()))
    }

    /// Reads the registration endpoint's answer.
    ///
    /// RFC 7591 and the Matrix spec answer `201 Created`; `200 OK` with the same body is accepted too,
    /// because the client is registered either way and refusing it would only leak a registration.
    /// The body may hold a client secret, so it never appears in an error.
    pub fn handle_response<B: AsRef<[u8]>>(
        &self,
        response: &http::Response<B>,
    ) -> Result<ClientRegistration, RegistrationError> {
        let url = self.endpoint.to_string();
        let value: Value =
            check_json(response, &self.expect, &[201, 200], true).map_err(|error| match error {
                ResponseError::OAuth { status, error } => RegistrationError::Rejected {
                    url: url.clone(),
                    status,
                    error,
                },
                error => RegistrationError::Http {
                    url: url.clone(),
                    error,
                },
            })?;
        let invalid = |reason: &str| RegistrationError::InvalidResponse {
            url: url.clone(),
            reason: reason.to_owned(),
        };
        let Value::Object(mut map) = value else {
            return Err(invalid("the body is not a JSON object"));
        };
        let client_id = match map.remove("client_id") {
            Some(Value::String(id)) if !id.is_empty() => id,
            Some(Value::String(_)) => return Err(invalid("client_id is empty")),
            Some(_) => return Err(invalid("client_id is not a string")),
            None => return Err(invalid("client_id is missing")),
        };
        let secret = |map: &mut Map<String, Value>, name: &str| match map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(Secret::new(s))),
            Some(_) => Err(invalid(&format!("{name} is not a string"))),
        };
        let client_secret = secret(&mut map, "client_secret")?;
        let registration_access_token = secret(&mut map, "registration_access_token")?;
        let time = |map: &mut Map<String, Value>, name: &str| match map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) if name == "client_secret_expires_at" => Ok(None),
                Some(secs) => Ok(Some(Timestamp::from_unix_seconds(secs))),
                None => Err(invalid(&format!(
                    "{name} is not a non-negative whole number of seconds"
                ))),
            },
            Some(_) => Err(invalid(&format!("{name} is not a number"))),
        };
        let client_id_issued_at = time(&mut map, "client_id_issued_at")?;
        let client_secret_expires_at = time(&mut map, "client_secret_expires_at")?;
        let registration_client_uri = match map.remove("registration_client_uri") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                Url::parse(&s)
                    .map_err(|_| invalid("registration_client_uri is not an absolute URL"))?,
            ),
            Some(_) => return Err(invalid("registration_client_uri is not a string")),
        };
        Ok(ClientRegistration {
            client_id,
            client_secret,
            client_id_issued_at,
            client_secret_expires_at,
            registration_access_token,
            registration_client_uri,
            metadata: map,
        })
    }
}
