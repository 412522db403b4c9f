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
    let media = value.split(';').next().unwrap_or("").trim().as_bytes();
    let suffix = media.len().checked_sub(5).and_then(|at| media.get(at..));
    media.eq_ignore_ascii_case(b"application/json")
        || (media
            .get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"application/"))
            && suffix.is_some_and(|s| s.eq_ignore_ascii_case(b"+json")))
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

/// The members of a 200 answer whose body may hold secrets (tokens, a device code), read straight
/// from the body: the `N` members named by the caller, borrowed where the JSON has no escapes, every
/// other member skipped. Nothing of the body is ever quoted: an undefined success status withholds
/// it, and the deserializer accepts any JSON value for any member (types are judged afterwards by
/// [`string`](Self::string) and [`seconds`](Self::seconds)), so serde never builds an error that
/// could quote a value; a syntax error is reported by category and position only.
///
/// A member repeated in the body counts with its last value, as a JSON object read into a map would.
pub(crate) struct SecretAnswer<'a, const N: usize> {
    names: &'static [&'static str; N],
    values: [Member<'a>; N],
}

/// One member's value, as far as the answer's readers need to tell them apart.
#[derive(Debug, Clone, PartialEq)]
enum Member<'a> {
    Absent,
    Null,
    String(std::borrow::Cow<'a, str>),
    Unsigned(u64),
    Float(f64),
    /// A boolean, array, object or negative integer.
    Other,
}

impl<'a, const N: usize> SecretAnswer<'a, N> {
    pub(crate) fn read<B: AsRef<[u8]>>(
        response: &'a http::Response<B>,
        expect: &Expectations,
        names: &'static [&'static str; N],
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
        let body = json_body(response, expect, &[200]).map_err(SecretAnswerError::Response)?;
        // A body checked as UTF-8 once, up front, is read as text: serde_json then skips its check
        // of every string. Any other body is read as bytes, which refuses it as before.
        let parsed = match std::str::from_utf8(body) {
            Ok(text) => members::read(serde_json::Deserializer::from_str(text), names),
            Err(_) => members::read(serde_json::Deserializer::from_slice(body), names),
        };
        match parsed {
            Ok(Some(values)) => Ok(Self { names, values }),
            Ok(None) => Err(SecretAnswerError::Invalid {
                field: "(body)",
                reason: "the body is not a JSON object",
            }),
            Err(e) => Err(SecretAnswerError::Response(ResponseError::InvalidJson {
                reason: value_free_json_error(&e),
                body: BodyExcerpt::withheld(body),
            })),
        }
    }

    fn get(&self, field: &'static str) -> &Member<'a> {
        self.names
            .iter()
            .position(|n| *n == field)
            .and_then(|i| self.values.get(i))
            .unwrap_or(&Member::Absent)
    }

    /// A non-empty string field; `None` when absent or null.
    pub(crate) fn string(&self, field: &'static str) -> Result<Option<&str>, SecretAnswerError> {
        let invalid = |reason| SecretAnswerError::Invalid { field, reason };
        match self.get(field) {
            Member::Absent | Member::Null => Ok(None),
            Member::String(s) if s.is_empty() => Err(invalid("is an empty string")),
            Member::String(s) => Ok(Some(s)),
            _ => Err(invalid("is not a string")),
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
        match self.get(field) {
            Member::Absent | Member::Null => Ok(None),
            Member::Unsigned(n) => Ok(Some(Duration::from_secs(*n))),
            Member::Float(f) => Duration::try_from_secs_f64(*f)
                .map(Some)
                .map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}

/// serde_json's message for a JSON syntax error names only what was expected and where; a data
/// error (which the answer's own deserializer never raises) could quote a value, so it is reduced to
/// its position.
fn value_free_json_error(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => e.to_string(),
        serde_json::error::Category::Data | serde_json::error::Category::Io => {
            format!("unexpected data at line {} column {}", e.line(), e.column())
        }
    }
}

/// The deserializers behind [`SecretAnswer`]: none of them ever fails on a value's type.
mod members {
    use super::Member;
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::borrow::Cow;
    use std::fmt;

    /// Reads a whole document: the named members of an object, `None` for any other JSON value.
    pub(super) fn read<'de, R: serde_json::de::Read<'de>, const N: usize>(
        mut de: serde_json::Deserializer<R>,
        names: &'static [&'static str; N],
    ) -> Result<Option<[Member<'de>; N]>, serde_json::Error> {
        let value = Object { names }.deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }

    /// The top-level value: `Some` with the named members of an object, `None` for anything else.
    pub(super) struct Object<const N: usize> {
        pub(super) names: &'static [&'static str; N],
    }

    impl<'de, const N: usize> DeserializeSeed<'de> for Object<N> {
        type Value = Option<[Member<'de>; N]>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de, const N: usize> Visitor<'de> for Object<N> {
        type Value = Option<[Member<'de>; N]>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut values = std::array::from_fn(|_| Member::Absent);
            while let Some(index) = map.next_key_seed(Key { names: self.names })? {
                match index.and_then(|i| values.get_mut(i)) {
                    Some(slot) => *slot = map.next_value_seed(AnyMember)?,
                    None => map.next_value_seed(Skip)?,
                }
            }
            Ok(Some(values))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Skip.visit_seq(seq).map(|()| None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    /// A member name: its index among the wanted names, `None` for any other.
    struct Key<const N: usize> {
        names: &'static [&'static str; N],
    }

    impl<'de, const N: usize> DeserializeSeed<'de> for Key<N> {
        type Value = Option<usize>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<const N: usize> Visitor<'_> for Key<N> {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a member name")
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(self.names.iter().position(|n| *n == v))
        }
    }

    /// Any JSON value, kept as far as [`Member`] tells values apart.
    struct AnyMember;

    impl<'de> DeserializeSeed<'de> for AnyMember {
        type Value = Member<'de>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for AnyMember {
        type Value = Member<'de>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Member::String(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Member::String(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Member::String(Cow::Owned(v)))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Member::Null)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Member::Null)
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Member::Unsigned(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            // serde_json hands non-negative integers to `visit_u64`; these are negative.
            Ok(u64::try_from(v).map_or(Member::Other, Member::Unsigned))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Member::Float(v))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Member::Other)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Skip.visit_seq(seq).map(|()| Member::Other)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Skip.visit_map(map).map(|()| Member::Other)
        }
    }

    /// Any JSON value, read and dropped. Unlike `serde::de::IgnoredAny` (which serde_json skims
    /// without its nesting limit or number range checks) this reads the value as `serde_json::Value`
    /// would, so a body is refused for exactly the same reasons as before, just without allocating.
    struct Skip;

    impl<'de> DeserializeSeed<'de> for Skip {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Skip {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Skip)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map.next_key_seed(Skip)?.is_some() {
                map.next_value_seed(Skip)?;
            }
            Ok(())
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
        const NAMES: [&str; 9] = [
            "s", "empty", "n", "null", "whole", "frac", "neg", "text", "absent",
        ];
        let e = Expectations::json();
        let json = Some("application/json");
        // The error cases own everything they report; the answer itself borrows its response.
        let read =
            |status, body| SecretAnswer::read(&resp(status, json, body), &e, &NAMES).map(|_| ());
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

        let response = resp(
            200,
            json,
            r#"{"s":"x","empty":"","n":1,"null":null,"whole":5,"frac":1.5,"neg":-1,"text":"5"}"#,
        );
        let Ok(answer) = SecretAnswer::read(&response, &e, &NAMES) else {
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

    /// The borrowed reader gives, member by member, what the former reading through a
    /// `serde_json::Value` map gave, and refuses the same bodies with the same message.
    #[test]
    fn answers_read_as_a_json_map_would() {
        const NAMES: [&str; 3] = ["a", "b", "n"];
        /// Per member: the string, the seconds, whether reading it as a string succeeds.
        type Read = Vec<(Option<String>, Option<Duration>, bool)>;
        fn via_map(body: &str) -> Result<Read, String> {
            let value: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
            let Some(obj) = value.as_object() else {
                return Err("(body)".into());
            };
            Ok(NAMES
                .iter()
                .map(|n| {
                    let string = match obj.get(*n) {
                        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
                        _ => None,
                    };
                    let string_ok = matches!(obj.get(*n), None | Some(serde_json::Value::Null))
                        || string.is_some();
                    let seconds = match obj.get(*n) {
                        Some(serde_json::Value::Number(x)) => {
                            x.as_u64().map(Duration::from_secs).or_else(|| {
                                x.as_f64().and_then(|f| Duration::try_from_secs_f64(f).ok())
                            })
                        }
                        _ => None,
                    };
                    (string, seconds, string_ok)
                })
                .collect())
        }
        let deep = format!(r#"{{"a":"x","z":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        let bodies = [
            r#"{"a":"x","b":"y","n":3}"#,
            r#"{"a":"first","a":"second"}"#,
            r#"{"a":"x","a":5}"#,
            r#"{"\u0061":"esc\"aped\u00e9","b":"\ud83d\ude00"}"#,
            r#"{"a":"x","other":{"nested":[1,2,{"c":null}],"s":"t"},"n":1.25}"#,
            r#"{"n":-3,"b":true,"a":["x"]}"#,
            r#"{"n":1e400}"#,
            r#"{"zz":1e400,"a":"x"}"#,
            r#"{"a":"x"} trailing"#,
            r#"{"a":"x","#,
            r#"{"a":"x" "b":"y"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"q":"\x"}"#,
            r#"[{"a":"x"}]"#,
            r#""just a string""#,
            "null",
            "12",
            "",
            r#"{"n":18446744073709551615,"b":null,"a":""}"#,
            deep.as_str(),
        ];
        let e = Expectations::json();
        for body in bodies {
            let response = resp(200, Some("application/json"), body);
            let ours = match SecretAnswer::read(&response, &e, &NAMES) {
                Ok(answer) => Ok(NAMES
                    .iter()
                    .map(|n| {
                        let string = answer.string(n);
                        let ok = string.is_ok();
                        (
                            string.ok().flatten().map(str::to_owned),
                            answer.seconds(n).ok().flatten(),
                            ok,
                        )
                    })
                    .collect::<Vec<_>>()),
                Err(SecretAnswerError::Invalid {
                    field: "(body)", ..
                }) => Err("(body)".to_owned()),
                Err(SecretAnswerError::Response(ResponseError::InvalidJson { reason, .. })) => {
                    Err(reason)
                }
                Err(_) => Err("another error".to_owned()),
            };
            assert_eq!(ours, via_map(body), "{body}");
        }
    }

    /// A body that is not UTF-8 is refused with serde_json's own message, as before.
    #[test]
    fn non_utf8_answers_are_refused_as_before() {
        const NAMES: [&str; 1] = ["a"];
        for body in [
            &b"{\"a\":\"x\xff\"}"[..],
            b"{\"z\":\"\xc3\",\"a\":\"x\"}",
            b"{\"a\":\"x\"}\xff",
            b"\xef\xbb\xbf{\"a\":\"x\"}",
        ] {
            let response = http::Response::builder()
                .status(200)
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec())
                .unwrap();
            let expected = serde_json::from_slice::<serde_json::Value>(body)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let ours = match SecretAnswer::read(&response, &Expectations::json(), &NAMES) {
                Ok(_) => Ok(()),
                Err(SecretAnswerError::Response(ResponseError::InvalidJson { reason, .. })) => {
                    Err(reason)
                }
                Err(_) => Err("another error".to_owned()),
            };
            assert_eq!(ours, expected, "{body:?}");
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
