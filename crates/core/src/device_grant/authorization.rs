//! First step of the device grant: asking for a device code and a user code (RFC 8628 §3.1–3.2).

use super::DeviceGrantError;
use super::poller::DevicePoller;
use crate::http::{OutgoingRequest, SecretAnswer, SecretAnswerError};
use crate::metadata::AuthorizationServerMetadata;
use crate::scope::Scope;
use crate::secret::Secret;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use url::Url;

/// The polling interval when the server names none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// The shortest interval the poller uses, whatever the server says: an `interval` of 0 must not turn
/// into a busy loop.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The longest `user_code` accepted (RFC 8628 suggests about 8 characters).
const MAX_USER_CODE_LEN: usize = 256;

/// A request to the device authorization endpoint.
#[derive(Debug, Clone)]
pub struct DeviceAuthorizationRequest {
    /// The request to send.
    pub request: OutgoingRequest,
    endpoint: Url,
    token_endpoint: Url,
    client_id: String,
    scope: Scope,
}

impl DeviceAuthorizationRequest {
    /// Asks `metadata`'s device authorization endpoint for a code for `client_id` and `scope` (a public
    /// client: `client_id` in the form). Fails unless the server advertises both the endpoint and the
    /// grant type.
    pub fn new(
        metadata: &AuthorizationServerMetadata,
        client_id: &str,
        scope: Scope,
    ) -> Result<Self, DeviceGrantError> {
        let issuer = || metadata.issuer.to_string();
        let endpoint = metadata
            .device_authorization_endpoint
            .as_ref()
            .ok_or_else(|| DeviceGrantError::NotSupported {
                issuer: issuer(),
                reason: "no device_authorization_endpoint",
            })?;
        if !metadata.supports_device_grant() {
            return Err(DeviceGrantError::NotSupported {
                issuer: issuer(),
                reason: "grant_types_supported lacks urn:ietf:params:oauth:grant-type:device_code",
            });
        }
        let scope_str = scope.to_string();
        let request = OutgoingRequest::post_form(
            endpoint,
            [("client_id", client_id), ("scope", scope_str.as_str())],
        )
        .map_err(DeviceGrantError::Request)?;
        Ok(Self {
            request,
            endpoint: endpoint.clone(),
            token_endpoint: metadata.token_endpoint.clone(),
            client_id: client_id.to_owned(),
            scope,
        })
    }

    /// The device authorization endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Reads the answer. `sent_at` is when the request was sent; the device code expires
    /// `expires_in` seconds after it.
    pub fn parse<B: AsRef<[u8]>>(
        &self,
        response: &http::Response<B>,
        sent_at: Timestamp,
    ) -> Result<DeviceAuthorization, DeviceGrantError> {
        let endpoint = || self.endpoint.to_string();
        let fail = |source| DeviceGrantError::Response {
            endpoint: endpoint(),
            source,
        };
        let invalid = |field: &'static str, reason: &str| DeviceGrantError::InvalidResponse {
            endpoint: endpoint(),
            field,
            reason: reason.to_owned(),
        };
        // The body holds the device code, a secret.
        let answer_error = |e| match e {
            SecretAnswerError::Rejected { status, error } => DeviceGrantError::Rejected {
                endpoint: endpoint(),
                status,
                error,
            },
            SecretAnswerError::Response(source) => fail(source),
            SecretAnswerError::Invalid { field, reason } => invalid(field, reason),
        };
        let answer =
            SecretAnswer::read(response, &self.request.expect, &DEVICE_AUTHORIZATION_FIELDS)
                .map_err(answer_error)?;
        let string = |field| answer.string(field).map_err(answer_error);
        let seconds = |field| answer.seconds(field).map_err(answer_error);
        let web_url = |field: &'static str, value: &str| -> Result<Url, DeviceGrantError> {
            let url =
                Url::parse(value).map_err(|e| invalid(field, &format!("is not a URL ({e})")))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(invalid(field, "is not an http(s) URL"));
            }
            Ok(url)
        };

        let device_code =
            string("device_code")?.ok_or_else(|| invalid("device_code", "is missing"))?;
        let user_code = string("user_code")?.ok_or_else(|| invalid("user_code", "is missing"))?;
        if user_code.len() > MAX_USER_CODE_LEN || user_code.chars().any(char::is_control) {
            return Err(invalid(
                "user_code",
                "is longer than 256 bytes or has control characters",
            ));
        }
        let verification_uri = web_url(
            "verification_uri",
            string("verification_uri")?.ok_or_else(|| invalid("verification_uri", "is missing"))?,
        )?;
        let verification_uri_complete = string("verification_uri_complete")?
            .map(|v| web_url("verification_uri_complete", v))
            .transpose()?;
        let expires_in =
            seconds("expires_in")?.ok_or_else(|| invalid("expires_in", "is missing"))?;
        if expires_in.is_zero() {
            return Err(invalid("expires_in", "is zero"));
        }
        let interval = seconds("interval")?
            .unwrap_or(DEFAULT_INTERVAL)
            .max(MIN_INTERVAL);
        Ok(DeviceAuthorization {
            device_code: Secret::new(device_code),
            user_code: user_code.to_owned(),
            verification_uri,
            verification_uri_complete,
            expires_at: sent_at + expires_in,
            interval,
            token_endpoint: self.token_endpoint.clone(),
            client_id: self.client_id.clone(),
            scope: self.scope.clone(),
        })
    }
}

/// The members of a device authorization response this crate reads.
const DEVICE_AUTHORIZATION_FIELDS: [&str; 6] = [
    "device_code",
    "user_code",
    "verification_uri",
    "verification_uri_complete",
    "expires_in",
    "interval",
];

/// A device code the user can now approve. Serializable, so that polling can resume after a restart;
/// the device code is redacted in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The device code (secret), sent when polling.
    pub device_code: Secret,
    /// The code to show the user.
    pub user_code: String,
    /// Where the user enters the code.
    pub verification_uri: Url,
    /// The same page with the code filled in, when the server offers it (show it as a link or QR code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<Url>,
    /// When the device code expires (request send time + `expires_in`).
    pub expires_at: Timestamp,
    /// The polling interval the server asked for (default 5 s, at least 1 s).
    pub interval: Duration,
    /// Where to poll.
    pub token_endpoint: Url,
    /// The client id.
    pub client_id: String,
    /// The requested scope, checked against the granted one.
    pub scope: Scope,
}

impl DeviceAuthorization {
    /// The URL to present: `verification_uri_complete` when offered, else `verification_uri` (then
    /// show [`user_code`](Self::user_code) beside it).
    pub fn uri_to_show(&self) -> &Url {
        self.verification_uri_complete
            .as_ref()
            .unwrap_or(&self.verification_uri)
    }

    /// Starts polling at `now`. The first poll is one interval away.
    pub fn poller(self, now: Timestamp) -> DevicePoller {
        DevicePoller::new(self, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceId;

    pub(crate) fn metadata() -> AuthorizationServerMetadata {
        serde_json::from_value(serde_json::json!({
            "issuer": "https://account.example.com/",
            "authorization_endpoint": "https://account.example.com/oauth2/auth",
            "token_endpoint": "https://account.example.com/oauth2/token",
            "device_authorization_endpoint": "https://account.example.com/oauth2/device",
            "grant_types_supported": ["authorization_code", "refresh_token", crate::DEVICE_CODE_GRANT_TYPE],
        }))
        .unwrap()
    }

    fn scope() -> Scope {
        Scope::matrix(DeviceId::parse("AABBBCCCDDD").unwrap())
            .build()
            .unwrap()
    }

    fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    const T0: Timestamp = Timestamp::from_unix_seconds(1_000);

    #[test]
    fn error_statuses_never_excerpt_the_device_code() {
        let r = DeviceAuthorizationRequest::new(&metadata(), "s6BhdRkqt3", scope()).unwrap();
        let body = r#"{"device_code":"dc-s3cr3t-0123","user_code":"WDJB-MJHT","verification_uri":"https://x/d","expires_in":600}"#;
        let e = r.parse(&json(502, body), T0).unwrap_err();
        assert!(!e.to_string().contains("dc-s3cr3t-0123"), "{e}");
        assert!(!format!("{e:?}").contains("dc-s3cr3t-0123"), "{e:?}");
    }

    #[test]
    fn request_matches_the_spec_sample() {
        let r = DeviceAuthorizationRequest::new(&metadata(), "s6BhdRkqt3", scope()).unwrap();
        assert_eq!(
            r.request.request.uri(),
            "https://account.example.com/oauth2/device"
        );
        // The spec sample percent-encodes differently; compare decoded pairs.
        let sample = "client_id=s6BhdRkqt3&scope=urn%3Amatrix%3Aclient%3Aapi%3A%2A%20urn%3Amatrix%3Aclient%3Adevice%3AAABBBCCCDDD";
        let decode = |b: &[u8]| -> Vec<(String, String)> {
            form_urlencoded::parse(b)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        };
        assert_eq!(decode(r.request.request.body()), decode(sample.as_bytes()));
    }

    #[test]
    fn not_supported_without_endpoint_or_grant_type() {
        let mut md = metadata();
        md.grant_types_supported = Some(vec!["authorization_code".into()]);
        assert!(matches!(
            DeviceAuthorizationRequest::new(&md, "c", scope()),
            Err(DeviceGrantError::NotSupported { reason, .. }) if reason.contains("grant_types_supported")
        ));
        md.device_authorization_endpoint = None;
        assert!(matches!(
            DeviceAuthorizationRequest::new(&md, "c", scope()),
            Err(DeviceGrantError::NotSupported {
                reason: "no device_authorization_endpoint",
                ..
            })
        ));
    }

    #[test]
    fn parses_the_spec_sample_and_defaults_the_interval() {
        let r = DeviceAuthorizationRequest::new(&metadata(), "s6BhdRkqt3", scope()).unwrap();
        let a = r
            .parse(
                &json(
                    200,
                    r#"{"device_code":"GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS","user_code":"WDJB-MJHT",
                        "verification_uri":"https://account.example.com/link",
                        "verification_uri_complete":"https://account.example.com/link?code=WDJB-MJHT",
                        "expires_in":1800,"interval":5}"#,
                ),
                T0,
            )
            .unwrap();
        assert_eq!(
            a.device_code.expose(),
            "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS"
        );
        assert_eq!(a.user_code, "WDJB-MJHT");
        assert_eq!(a.expires_at, T0 + Duration::from_secs(1800));
        assert_eq!(a.interval, Duration::from_secs(5));
        assert_eq!(
            a.uri_to_show().as_str(),
            "https://account.example.com/link?code=WDJB-MJHT"
        );
        assert_eq!(a.client_id, "s6BhdRkqt3");
        assert!(!format!("{a:?}").contains("GmRhmhcx"));
        let json_form = serde_json::to_string(&a).unwrap();
        assert_eq!(
            serde_json::from_str::<DeviceAuthorization>(&json_form).unwrap(),
            a
        );

        let a = r
            .parse(
                &json(
                    200,
                    r#"{"device_code":"d","user_code":"ABC123","verification_uri":"https://a.example/link","expires_in":1200}"#,
                ),
                T0,
            )
            .unwrap();
        assert_eq!(a.interval, DEFAULT_INTERVAL);
        assert_eq!(a.uri_to_show().as_str(), "https://a.example/link");
        let a = r
            .parse(
                &json(
                    200,
                    r#"{"device_code":"d","user_code":"A","verification_uri":"https://a.example/","expires_in":60,"interval":0}"#,
                ),
                T0,
            )
            .unwrap();
        assert_eq!(a.interval, MIN_INTERVAL);
    }

    #[test]
    fn invalid_responses_name_the_field() {
        let r = DeviceAuthorizationRequest::new(&metadata(), "c", scope()).unwrap();
        let base = serde_json::json!({
            "device_code": "secret-device-code", "user_code": "U", "verification_uri": "https://a.example/",
            "expires_in": 60
        });
        let cases: &[(&str, serde_json::Value)] = &[
            ("device_code", serde_json::Value::Null),
            ("device_code", serde_json::json!(5)),
            ("user_code", serde_json::Value::Null),
            ("user_code", serde_json::json!("a\nb")),
            ("verification_uri", serde_json::Value::Null),
            ("verification_uri", serde_json::json!("javascript:alert(1)")),
            ("verification_uri", serde_json::json!("/relative")),
            (
                "verification_uri_complete",
                serde_json::json!("ftp://a.example/"),
            ),
            ("expires_in", serde_json::Value::Null),
            ("expires_in", serde_json::json!("60")),
            ("expires_in", serde_json::json!(0)),
            ("interval", serde_json::json!(-5)),
        ];
        for (field, value) in cases {
            let mut body = base.clone();
            body[*field] = value.clone();
            let e = r.parse(&json(200, &body.to_string()), T0).unwrap_err();
            assert!(
                matches!(e, DeviceGrantError::InvalidResponse { field: f, .. } if f == *field),
                "{field}={value}: {e}"
            );
            assert!(!e.to_string().contains("secret-device-code"));
        }
        let e = r
            .parse(
                &json(
                    400,
                    r#"{"error":"invalid_scope","error_description":"nope"}"#,
                ),
                T0,
            )
            .unwrap_err();
        assert!(
            matches!(e, DeviceGrantError::Rejected { status: 400, ref error, .. } if error.error == "invalid_scope")
        );
        let e = r
            .parse(&json(201, r#"{"device_code":"secret-device-code"}"#), T0)
            .unwrap_err();
        assert!(!e.to_string().contains("secret-device-code"));
        let e = r.parse(&json(200, "[1]"), T0).unwrap_err();
        assert!(matches!(
            e,
            DeviceGrantError::InvalidResponse {
                field: "(body)",
                ..
            }
        ));
    }
}
