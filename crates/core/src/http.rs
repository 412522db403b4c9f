//! The contract between the core and a transport: requests with their expectations, and the checks a
//! response handler makes before it reads JSON.
//!
//! Every round trip in the core is "build an [`OutgoingRequest`]" then "hand the `http::Response` to the
//! matching handler". The [`Expectations`] travel with the request so that the transport can enforce
//! them (size bound, no redirects, timeout); the handler re-checks what it can with [`check_json`]
//! (and [`check_envelope`] / [`error_from_response`] for non-JSON answers).

use crate::Secret;
use crate::error::{BodyExcerpt, MatrixErrorBody, OAuthErrorBody, ResponseError};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use std::time::Duration;
use url::Url;

/// The default bound on a response body: 1 MiB. Real metadata documents are a few kilobytes.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The default per-request timeout a transport should apply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What kind of body the handler of a response expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpectedBody {
    /// A JSON document (`application/json` or a `+json` media type).
    Json,
    /// Anything, including nothing (revocation answers 200 with an empty body).
    Any,
}

/// What the transport must enforce for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expectations {
    /// Stop reading and fail once the body passes this many bytes.
    pub max_body_bytes: usize,
    /// Whether 3xx responses may be followed. Always `false` in this crate: a redirect comes back to the
    /// handler as a response, which turns it into [`ResponseError::Redirect`].
    pub follow_redirects: bool,
    /// The body the handler expects.
    pub expected_body: ExpectedBody,
    /// How long the whole exchange (connect, send, read) may take.
    pub timeout: Duration,
}

impl Expectations {
    /// JSON body, [`DEFAULT_MAX_BODY`], no redirects, [`DEFAULT_TIMEOUT`].
    pub const fn json() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY,
            follow_redirects: false,
            expected_body: ExpectedBody::Json,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Any body (possibly empty) of at most `max_body_bytes`.
    pub const fn any(max_body_bytes: usize) -> Self {
        Self {
            max_body_bytes,
            follow_redirects: false,
            expected_body: ExpectedBody::Any,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same expectations with another body bound.
    pub const fn with_max_body(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// The same expectations with another timeout.
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Default for Expectations {
    fn default() -> Self {
        Self::json()
    }
}

/// A request the core wants sent, with what the transport must enforce.
///
/// `Debug` never prints header values (an `Authorization` header holds a token) nor the body (a form
/// may hold a refresh token or code verifier).
#[derive(Clone)]
pub struct OutgoingRequest {
    /// The HTTP request.
    pub request: http::Request<Vec<u8>>,
    /// What the transport must enforce.
    pub expect: Expectations,
}

impl std::fmt::Debug for OutgoingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.request.headers().keys().map(|k| k.as_str()).collect();
        f.debug_struct("OutgoingRequest")
            .field("method", self.request.method())
            .field("uri", self.request.uri())
            .field("header_names", &headers)
            .field("body_len", &self.request.body().len())
            .field("expect", &self.expect)
            .finish()
    }
}

/// A request could not be built (an URL that `http` cannot represent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build a request for {url}: {reason}")]
pub struct BuildError {
    /// The URL.
    pub url: String,
    /// Why.
    pub reason: String,
}

impl OutgoingRequest {
    fn build(
        method: http::Method,
        url: &Url,
        content_type: Option<&str>,
        body: Vec<u8>,
        expect: Expectations,
    ) -> Result<Self, BuildError> {
        let mut builder = http::Request::builder().method(method).uri(url.as_str());
        if expect.expected_body == ExpectedBody::Json {
            builder = builder.header(ACCEPT, "application/json");
        }
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        let request = builder.body(body).map_err(|e| BuildError {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self { request, expect })
    }

    /// `GET url` expecting JSON.
    pub fn get_json(url: &Url) -> Result<Self, BuildError> {
        Self::build(
            http::Method::GET,
            url,
            None,
            Vec::new(),
            Expectations::json(),
        )
    }

    /// `POST url` with an `application/x-www-form-urlencoded` body built from `pairs`, expecting JSON.
    pub fn post_form<'a>(
        url: &Url,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, BuildError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes();
        Self::build(
            http::Method::POST,
            url,
            Some("application/x-www-form-urlencoded"),
            body,
            Expectations::json(),
        )
    }

    /// `POST url` with a JSON body, expecting JSON.
    pub fn post_json(url: &Url, body: &impl serde::Serialize) -> Result<Self, BuildError> {
        let body = serde_json::to_vec(body).map_err(|e| BuildError {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Self::build(
            http::Method::POST,
            url,
            Some("application/json"),
            body,
            Expectations::json(),
        )
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn with_bearer(mut self, token: &Secret) -> Result<Self, BuildError> {
        let value =
            http::HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
                BuildError {
                    url: self.request.uri().to_string(),
                    reason: "the access token contains characters not allowed in a header"
                        .to_owned(),
                }
            })?;
        let mut value = value;
        value.set_sensitive(true);
        self.request.headers_mut().insert(AUTHORIZATION, value);
        Ok(self)
    }

    /// Replaces the expectations.
    pub fn with_expectations(mut self, expect: Expectations) -> Self {
        self.expect = expect;
        self
    }

    /// The URL this request goes to.
    pub fn url(&self) -> String {
        self.request.uri().to_string()
    }
}

/// Whether a `Content-Type` value names JSON (`application/json` or `application/<x>+json`, any parameters).
pub fn is_json_content_type(value: &str) -> bool {
    let media = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// The checks every handler makes first: size bound and redirects.
pub fn check_envelope<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    expect: &Expectations,
) -> Result<(), ResponseError> {
    let len = response.body().as_ref().len();
    if len > expect.max_body_bytes {
        return Err(ResponseError::BodyTooLarge {
            limit: expect.max_body_bytes,
            actual: len,
        });
    }
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        return Err(ResponseError::Redirect {
            status: status.as_u16(),
            location,
        });
    }
    Ok(())
}

/// Turns a non-success response into the most specific [`ResponseError`]: an OAuth error body, a Matrix
/// error body, or the status with an excerpt of the body.
pub fn error_from_response<B: AsRef<[u8]>>(response: &http::Response<B>) -> ResponseError {
    let status = response.status().as_u16();
    let body = response.body().as_ref();
    // Matrix first: a Matrix error body also has an `error` string (its human-readable text), so it
    // would pass for an OAuth body; only Matrix bodies have `errcode`.
    if let Some(error) = MatrixErrorBody::parse(body) {
        return ResponseError::Matrix { status, error };
    }
    if let Some(error) = OAuthErrorBody::parse(body) {
        return ResponseError::OAuth { status, error };
    }
    ResponseError::UnexpectedStatus {
        status,
        body: BodyExcerpt::new(body),
    }
}

/// Checks the envelope, that the status is one of `ok_statuses`, and that the content type is JSON; then
/// deserializes the body. `sensitive` withholds the body from error excerpts (token responses).
pub fn check_json<T: serde::de::DeserializeOwned, B: AsRef<[u8]>>(
    response: &http::Response<B>,
    expect: &Expectations,
    ok_statuses: &[u16],
    sensitive: bool,
) -> Result<T, ResponseError> {
    let body = json_body(response, expect, ok_statuses)?;
    serde_json::from_slice(body).map_err(|e| invalid_json(&e, body, sensitive))
}

/// [`check_json`] up to the parse: the body of a response with an expected status and a JSON content
/// type, for a caller that reads the JSON its own way.
pub(crate) fn json_body<'r, B: AsRef<[u8]>>(
    response: &'r http::Response<B>,
    expect: &Expectations,
    ok_statuses: &[u16],
) -> Result<&'r [u8], ResponseError> {
    check_envelope(response, expect)?;
    if !ok_statuses.contains(&response.status().as_u16()) {
        return Err(error_from_response(response));
    }
    let ct = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !ct.is_some_and(is_json_content_type) {
        return Err(ResponseError::NotJson {
            found: ct.map(str::to_owned),
        });
    }
    Ok(response.body().as_ref())
}

/// How [`check_json`] reports a body that is not JSON.
pub(crate) fn invalid_json(
    error: &serde_json::Error,
    body: &[u8],
    sensitive: bool,
) -> ResponseError {
    ResponseError::InvalidJson {
        reason: error.to_string(),
        body: if sensitive {
            BodyExcerpt::withheld(body)
        } else {
            BodyExcerpt::new(body)
        },
    }
}

/// Why an answer that may carry secrets could not be read; each endpoint maps this onto its own
/// error type.
pub(crate) enum SecretAnswerError {
    /// An error status with an OAuth error body.
    Rejected { status: u16, error: OAuthErrorBody },
    /// The envelope, status, content type or JSON is wrong.
    Response(ResponseError),
    /// A field (or `(body)`, the body as a whole) is not what it must be.
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

/// The JSON object of a 200 answer whose body may hold secrets (tokens, a device code). Nothing of
/// the body is ever quoted: an undefined success status withholds it, and the body is parsed to a
/// generic value rather than a typed struct, whose serde errors may quote values.
pub(crate) struct SecretAnswer(serde_json::Map<String, serde_json::Value>);

impl SecretAnswer {
    pub(crate) fn read<B: AsRef<[u8]>>(
        response: &http::Response<B>,
        expect: &Expectations,
    ) -> Result<Self, SecretAnswerError> {
        check_envelope(response, expect).map_err(SecretAnswerError::Response)?;
        let status = response.status();
        if status != http::StatusCode::OK {
            if status.is_success() {
                return Err(SecretAnswerError::Response(
                    ResponseError::UnexpectedStatus {
                        status: status.as_u16(),
                        body: BodyExcerpt::withheld(response.body().as_ref()),
                    },
                ));
            }
            return Err(match error_from_response(response) {
                ResponseError::OAuth { status, error } => {
                    SecretAnswerError::Rejected { status, error }
                }
                // The body of an error status is excerpted, unless it may carry credentials.
                other => {
                    SecretAnswerError::Response(other.withhold_tokens(response.body().as_ref()))
                }
            });
        }
        match check_json(response, expect, &[200], true).map_err(SecretAnswerError::Response)? {
            serde_json::Value::Object(obj) => Ok(Self(obj)),
            _ => Err(SecretAnswerError::Invalid {
                field: "(body)",
                reason: "the body is not a JSON object",
            }),
        }
    }

    /// A non-empty string field; `None` when absent or null.
    pub(crate) fn string(&self, field: &'static str) -> Result<Option<&str>, SecretAnswerError> {
        let invalid = |reason| SecretAnswerError::Invalid { field, reason };
        match self.0.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.is_empty() => {
                Err(invalid("is an empty string"))
            }
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid("is not a string")),
        }
    }

    /// A duration field in seconds, whole or fractional; `None` when absent or null.
    pub(crate) fn seconds(
        &self,
        field: &'static str,
    ) -> Result<Option<Duration>, SecretAnswerError> {
        let invalid = || SecretAnswerError::Invalid {
            field,
            reason: "is not a non-negative number of seconds",
        };
        match self.0.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .map(Duration::from_secs)
                .or_else(|| n.as_f64().and_then(|f| Duration::try_from_secs_f64(f).ok()))
                .map(Some)
                .ok_or_else(invalid),
            Some(_) => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, ct: Option<&str>, body: &str) -> http::Response<Vec<u8>> {
        let mut b = http::Response::builder().status(status);
        if let Some(ct) = ct {
            b = b.header(CONTENT_TYPE, ct);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    /// A secret-bearing answer is never quoted, and each way it can fail is told apart.
    #[test]
    fn secret_answers() {
        let e = Expectations::json();
        let json = Some("application/json");
        let read = |status, body| SecretAnswer::read(&resp(status, json, body), &e);
        assert!(matches!(
            read(201, r#"{"access_token":"SECRET"}"#),
            Err(SecretAnswerError::Response(ResponseError::UnexpectedStatus { status: 201, body }))
                if !format!("{body:?}{body}").contains("SECRET")
        ));
        assert!(matches!(
            read(400, r#"{"error":"invalid_grant"}"#),
            Err(SecretAnswerError::Rejected { status: 400, error }) if error.error == "invalid_grant"
        ));
        assert!(matches!(
            read(200, r#"["SECRET"]"#),
            Err(SecretAnswerError::Invalid {
                field: "(body)",
                ..
            })
        ));
        assert!(matches!(
            read(200, r#"{"a":"SECRET""#),
            Err(SecretAnswerError::Response(ResponseError::InvalidJson { body, .. }))
                if !format!("{body:?}{body}").contains("SECRET")
        ));

        let Ok(answer) = read(
            200,
            r#"{"s":"x","empty":"","n":1,"null":null,"whole":5,"frac":1.5,"neg":-1,"text":"5"}"#,
        ) else {
            panic!("a JSON object is an answer");
        };
        assert!(matches!(answer.string("s"), Ok(Some("x"))));
        assert!(matches!(answer.string("absent"), Ok(None)));
        assert!(matches!(answer.string("null"), Ok(None)));
        for field in ["empty", "n"] {
            assert!(
                matches!(answer.string(field), Err(SecretAnswerError::Invalid { field: f, .. }) if f == field)
            );
        }
        assert!(matches!(answer.seconds("whole"), Ok(Some(d)) if d == Duration::from_secs(5)));
        assert!(matches!(answer.seconds("frac"), Ok(Some(d)) if d == Duration::from_millis(1500)));
        assert!(matches!(answer.seconds("absent"), Ok(None)));
        for field in ["neg", "text"] {
            assert!(
                matches!(answer.seconds(field), Err(SecretAnswerError::Invalid { field: f, .. }) if f == field)
            );
        }
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/jwk-set+json"));
        assert!(!is_json_content_type("text/html"));
        assert!(!is_json_content_type("application/jsonp"));
    }

    #[test]
    fn check_json_reports_each_problem() {
        let e = Expectations::json().with_max_body(4);
        assert!(matches!(
            check_json::<serde_json::Value, _>(
                &resp(200, Some("application/json"), "{\"a\":1}"),
                &e,
                &[200],
                false
            ),
            Err(ResponseError::BodyTooLarge {
                limit: 4,
                actual: 7
            })
        ));
        let e = Expectations::json();
        assert!(matches!(
            check_json::<serde_json::Value, _>(
                &resp(200, Some("text/html"), "{}"),
                &e,
                &[200],
                false
            ),
            Err(ResponseError::NotJson { .. })
        ));
        assert!(matches!(
            check_json::<serde_json::Value, _>(&resp(302, None, ""), &e, &[200], false),
            Err(ResponseError::Redirect { status: 302, .. })
        ));
        let err = check_json::<serde_json::Value, _>(
            &resp(
                400,
                Some("application/json"),
                r#"{"error":"invalid_request"}"#,
            ),
            &e,
            &[200],
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.oauth_error().map(|b| b.error.as_str()),
            Some("invalid_request")
        );
        let err = check_json::<Vec<u8>, _>(
            &resp(200, Some("application/json"), r#"{"access_token":"s3cr3t""#),
            &e,
            &[200],
            true,
        )
        .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn matrix_error_with_text_is_not_mistaken_for_oauth() {
        let r = resp(
            401,
            Some("application/json"),
            r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed.","soft_logout":true}"#,
        );
        match error_from_response(&r) {
            ResponseError::Matrix { status: 401, error } => {
                assert_eq!(error.errcode, "M_UNKNOWN_TOKEN");
                assert_eq!(error.soft_logout, Some(true));
            }
            other => panic!("{other:?}"),
        }
        let r = resp(400, None, r#"{"error":"invalid_grant"}"#);
        assert!(error_from_response(&r).oauth_error().is_some());
    }

    #[test]
    fn debug_hides_headers_and_body() {
        let url = Url::parse("https://example.com/token").unwrap();
        let r = OutgoingRequest::post_form(&url, [("refresh_token", "rt-secret")])
            .unwrap()
            .with_bearer(&Secret::new("at-secret"))
            .unwrap();
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
        assert_eq!(r.request.body(), b"refresh_token=rt-secret");
    }
}
