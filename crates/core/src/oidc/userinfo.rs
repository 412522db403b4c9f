//! The userinfo endpoint (OpenID Connect Core §5.3): a bearer `GET`, answered with JSON or — when
//! the client registered `userinfo_signed_response_alg` — with a signed JWT.
//!
//! Either way the response's `sub` must equal the ID token's (§5.3.2), otherwise the claims may
//! describe another user and are refused.

use super::JwsAlgorithm;
use super::claims::{ClaimsError, UserInfo};
use super::id_token::issuer_matches;
use super::json::{self, short};
use super::jwk::JwkSet;
use super::jws::{CompactJws, DEFAULT_MAX_JWS_BYTES, JwsError};
use super::verify::{JwsVerifier, SignatureError, verify_jws};
use crate::error::{OAuthErrorBody, ResponseError};
use crate::http::{
    BuildError, Expectations, OutgoingRequest, check_envelope, error_from_response,
    is_json_content_type,
};
use crate::{Secret, Timestamp};
use http::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use std::time::Duration;
use url::Url;

/// The largest userinfo response accepted: 256 KiB.
pub const MAX_USERINFO_BYTES: usize = 256 * 1024;

/// The userinfo request: `GET` with the access token as a bearer token. `signed` asks for
/// `application/jwt` (for clients registered for signed responses).
///
/// ```
/// use matrix_oidc_core::oidc::userinfo_request;
/// use matrix_oidc_core::Secret;
/// let url = url::Url::parse("https://id.example/userinfo").unwrap();
/// let req = userinfo_request(&url, &Secret::new("at"), false).unwrap();
/// assert_eq!(req.request.headers()["authorization"], "Bearer at");
/// ```
pub fn userinfo_request(
    endpoint: &Url,
    access_token: &Secret,
    signed: bool,
) -> Result<OutgoingRequest, BuildError> {
    let mut req = OutgoingRequest::get_json(endpoint)?
        .with_bearer(access_token)?
        .with_expectations(Expectations::any(MAX_USERINFO_BYTES));
    let accept = if signed {
        "application/jwt"
    } else {
        "application/json"
    };
    req.request
        .headers_mut()
        .insert(ACCEPT, http::HeaderValue::from_static(accept));
    Ok(req)
}

/// What a signed userinfo response must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedUserinfoExpectations {
    /// The issuer; `iss`, when present, must match it.
    pub issuer: String,
    /// This client; `aud`, when present, must include it.
    pub client_id: String,
    /// The registered `userinfo_signed_response_alg` (exactly one, normally).
    pub algorithms: Vec<JwsAlgorithm>,
    /// Tolerance for `exp`, when present.
    pub clock_skew: Duration,
}

impl SignedUserinfoExpectations {
    /// Expectations for responses signed by `issuer` for `client_id` with one of `algorithms`.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        algorithms: Vec<JwsAlgorithm>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            algorithms,
            clock_skew: super::DEFAULT_CLOCK_SKEW,
        }
    }
}

/// Why a userinfo call failed, or its response was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserinfoError {
    /// The server metadata has no `userinfo_endpoint`.
    #[error("the server has no userinfo endpoint")]
    NotSupported,
    /// The request could not be built (the access token cannot go in a header, …).
    #[error(transparent)]
    Request(#[from] BuildError),
    /// The access token was refused (`401` with a `WWW-Authenticate: Bearer` challenge).
    #[error("the userinfo endpoint refused the access token (HTTP {status}): {}",
        error.as_ref().map_or("no error code".to_owned(), ToString::to_string))]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The challenge's `error`, `error_description` and `error_uri`, when given.
        error: Option<OAuthErrorBody>,
    },
    /// Any other unusable response.
    #[error("the userinfo response is unusable: {0}")]
    Response(ResponseError),
    /// A `Content-Type` that is neither JSON nor JWT.
    #[error("the userinfo response has Content-Type {found:?}, expected {expected}")]
    UnexpectedContentType {
        /// The `Content-Type` received.
        found: Option<String>,
        /// What was expected.
        expected: &'static str,
    },
    /// A signed response was required (the client registered for one) but plain JSON came.
    #[error("the userinfo response is not signed, but the client registered for signed responses")]
    NotSigned,
    /// The body is not a JSON object with unique members.
    #[error("the userinfo response is not a JSON object: {reason}")]
    InvalidJson {
        /// What the parser said.
        reason: String,
    },
    /// The signed response is not a well-formed JWS.
    #[error("the signed userinfo response is malformed: {0}")]
    Malformed(#[from] JwsError),
    /// The signature was not accepted.
    #[error("the signed userinfo response's signature was not accepted: {0}")]
    Signature(#[from] SignatureError),
    /// The claims are not well-typed (no `sub`, …).
    #[error("the userinfo claims are invalid: {0}")]
    Claims(#[from] ClaimsError),
    /// `sub` is not the ID token's.
    #[error("the userinfo response is for another subject than the ID token")]
    SubjectMismatch,
    /// Signed response: `iss` is not the issuer.
    #[error("the signed userinfo response was issued by `{found}`")]
    IssuerMismatch {
        /// The `iss` value.
        found: String,
    },
    /// Signed response: `aud` does not include this client.
    #[error("the signed userinfo response is not addressed to this client")]
    AudienceMismatch,
    /// Signed response: `exp` has passed.
    #[error("the signed userinfo response expired at {exp:?}")]
    Expired {
        /// The `exp` value.
        exp: Timestamp,
    },
}

/// Handles a userinfo response for a client that did **not** register for signed responses. The
/// claims are returned only if their `sub` equals `expected_sub` (the ID token's).
pub fn handle_userinfo_response<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    expected_sub: &str,
) -> Result<UserInfo, UserinfoError> {
    check_status(response)?;
    let ct = content_type(response);
    if !ct.as_deref().is_some_and(is_json_content_type) {
        return Err(UserinfoError::UnexpectedContentType {
            found: ct,
            expected: "application/json",
        });
    }
    let map = json::parse_object(response.body().as_ref())
        .map_err(|reason| UserinfoError::InvalidJson { reason })?;
    let info = UserInfo::from_map(map)?;
    check_sub(&info, expected_sub)?;
    Ok(info)
}

/// Handles a userinfo response for a client registered for signed responses: the body must be an
/// `application/jwt` signed with one of `expect.algorithms` by a key in `keys`; `iss` and `aud`,
/// when present, must name the issuer and this client; `exp`, when present, must not have passed.
pub fn handle_signed_userinfo_response<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    expected_sub: &str,
    expect: &SignedUserinfoExpectations,
    keys: &JwkSet,
    verifier: &dyn JwsVerifier,
    now: Timestamp,
) -> Result<UserInfo, UserinfoError> {
    check_status(response)?;
    let ct = content_type(response);
    let media = ct.as_deref().map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    match media.as_deref() {
        Some("application/jwt") => {}
        Some(m) if is_json_content_type(m) => return Err(UserinfoError::NotSigned),
        _ => {
            return Err(UserinfoError::UnexpectedContentType {
                found: ct,
                expected: "application/jwt",
            });
        }
    }
    let body = std::str::from_utf8(response.body().as_ref())
        .map_err(|_| UserinfoError::Malformed(JwsError::Segments { found: 0 }))?
        .trim();
    let jws = CompactJws::parse_with_limit(body, DEFAULT_MAX_JWS_BYTES)?;
    verify_jws(&jws, keys, &expect.algorithms, verifier)?;
    let map = jws.decode_claims()?;
    // Typed checks on the JWT claims; the values stay in `extra` for the caller.
    if let Some(v) = map.get("iss") {
        match v.as_str() {
            Some(iss) if issuer_matches(&expect.issuer, iss) => {}
            _ => {
                return Err(UserinfoError::IssuerMismatch {
                    found: short(&v.to_string()),
                });
            }
        }
    }
    if let Some(v) = map.get("aud") {
        let ok = match v {
            serde_json::Value::String(a) => a == &expect.client_id,
            serde_json::Value::Array(items) => items.iter().any(|a| a == expect.client_id.as_str()),
            _ => false,
        };
        if !ok {
            return Err(UserinfoError::AudienceMismatch);
        }
    }
    if let Some(v) = map.get("exp") {
        let exp = json::as_numeric_date(v).ok_or(UserinfoError::Claims(ClaimsError::Type(
            super::claims::ClaimTypeError {
                claim: "exp",
                expected: "a non-negative number of seconds (NumericDate)",
            },
        )))?;
        if now >= exp + expect.clock_skew {
            return Err(UserinfoError::Expired { exp });
        }
    }
    let info = UserInfo::from_map(map)?;
    check_sub(&info, expected_sub)?;
    Ok(info)
}

fn check_sub(info: &UserInfo, expected: &str) -> Result<(), UserinfoError> {
    if crate::secret::constant_time_eq(&info.sub, expected) {
        Ok(())
    } else {
        Err(UserinfoError::SubjectMismatch)
    }
}

fn content_type<B>(response: &http::Response<B>) -> Option<String> {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn check_status<B: AsRef<[u8]>>(response: &http::Response<B>) -> Result<(), UserinfoError> {
    check_envelope(response, &Expectations::any(MAX_USERINFO_BYTES))
        .map_err(UserinfoError::Response)?;
    let status = response.status().as_u16();
    if status == 200 {
        return Ok(());
    }
    if status == 401 || status == 403 {
        let challenge = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_bearer_challenge);
        if challenge.is_some() || response.headers().contains_key(WWW_AUTHENTICATE) {
            return Err(UserinfoError::Unauthorized {
                status,
                error: challenge.flatten(),
            });
        }
    }
    Err(UserinfoError::Response(error_from_response(response)))
}

/// Parses a `Bearer` challenge (RFC 6750 §3). `None`: not a Bearer challenge; `Some(None)`: one
/// without an `error`.
fn parse_bearer_challenge(value: &str) -> Option<Option<OAuthErrorBody>> {
    let value = value.trim_start();
    let scheme_end = value.find([' ', ',']).unwrap_or(value.len());
    if !value[..scheme_end].eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut rest = &value[scheme_end..];
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let val;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            out.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            val = out;
            rest = quoted.get(end..).unwrap_or("");
        } else {
            let end = rest.find([',', ' ']).unwrap_or(rest.len());
            val = rest[..end].to_owned();
            rest = &rest[end..];
        }
        pairs.push((name, val));
        if pairs.len() > 16 {
            break;
        }
    }
    Some(OAuthErrorBody::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::jwk::Jwk;
    use crate::oidc::jws::encode;
    use crate::oidc::verify::testing::{FakeVerifier, fake_sign};

    fn resp(status: u16, ct: Option<&str>, body: &str) -> http::Response<Vec<u8>> {
        let mut b = http::Response::builder().status(status);
        if let Some(ct) = ct {
            b = b.header(CONTENT_TYPE, ct);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn request_shape() {
        let url = Url::parse("https://id.example/userinfo").unwrap();
        let r = userinfo_request(&url, &Secret::new("tok"), true).unwrap();
        assert_eq!(r.request.method(), http::Method::GET);
        assert_eq!(r.request.headers()[ACCEPT], "application/jwt");
        assert!(!r.expect.follow_redirects);
        assert!(!format!("{r:?}").contains("tok"));
    }

    #[test]
    fn json_response() {
        let ok = resp(
            200,
            Some("application/json; charset=utf-8"),
            r#"{"sub":"u1","email":"a@b","groups":["x"]}"#,
        );
        let info = handle_userinfo_response(&ok, "u1").unwrap();
        assert_eq!(info.profile.email.as_deref(), Some("a@b"));
        assert!(info.extra.contains_key("groups"));
        assert_eq!(
            handle_userinfo_response(&ok, "u2"),
            Err(UserinfoError::SubjectMismatch)
        );
        assert!(matches!(
            handle_userinfo_response(
                &resp(200, Some("application/json"), r#"{"email":"a"}"#),
                "u1"
            ),
            Err(UserinfoError::Claims(ClaimsError::Missing("sub")))
        ));
        assert!(matches!(
            handle_userinfo_response(
                &resp(200, Some("application/json"), r#"{"sub":"a","sub":"u1"}"#),
                "u1"
            ),
            Err(UserinfoError::InvalidJson { .. })
        ));
        assert!(matches!(
            handle_userinfo_response(&resp(200, Some("application/jwt"), "a.b.c"), "u1"),
            Err(UserinfoError::UnexpectedContentType { .. })
        ));
    }

    #[test]
    fn bearer_challenges() {
        let r = http::Response::builder()
            .status(401)
            .header(
                WWW_AUTHENTICATE,
                r#"Bearer realm="example", error="invalid_token", error_description="The \"token\" expired""#,
            )
            .body(Vec::new())
            .unwrap();
        match handle_userinfo_response(&r, "u") {
            Err(UserinfoError::Unauthorized {
                status: 401,
                error: Some(e),
            }) => {
                assert_eq!(e.error, "invalid_token");
                assert_eq!(
                    e.error_description.as_deref(),
                    Some("The \"token\" expired")
                );
            }
            other => panic!("{other:?}"),
        }
        let r = http::Response::builder()
            .status(401)
            .header(WWW_AUTHENTICATE, "Bearer")
            .body(Vec::new())
            .unwrap();
        assert!(matches!(
            handle_userinfo_response(&r, "u"),
            Err(UserinfoError::Unauthorized { error: None, .. })
        ));
        assert!(matches!(
            handle_userinfo_response(&resp(500, None, "oops"), "u"),
            Err(UserinfoError::Response(ResponseError::UnexpectedStatus {
                status: 500,
                ..
            }))
        ));
        assert_eq!(parse_bearer_challenge("Basic realm=\"x\""), None);
        // Garbage never panics.
        for s in [
            "Bearer =",
            "Bearer error=\"",
            "Bearer ,,,=,\"\\",
            "bearer error=x",
        ] {
            let _ = parse_bearer_challenge(s);
        }
    }

    fn signed_body(claims: &str, key: &Jwk) -> String {
        let input = format!(
            "{}.{}",
            encode(br#"{"alg":"EdDSA","kid":"k"}"#),
            encode(claims.as_bytes())
        );
        let sig = fake_sign(JwsAlgorithm::EdDsa, key, input.as_bytes());
        format!("{input}.{}", encode(&sig))
    }

    #[test]
    fn signed_response() {
        let key = Jwk::ed25519(&[3; 32]).unwrap().with_kid("k");
        let keys = JwkSet::from_keys(vec![key.clone()]);
        let expect =
            SignedUserinfoExpectations::new("https://id.example", "c1", vec![JwsAlgorithm::EdDsa]);
        let now = Timestamp::from_unix_seconds(1000);
        let run = |body: &str, ct: &str| {
            handle_signed_userinfo_response(
                &resp(200, Some(ct), body),
                "u1",
                &expect,
                &keys,
                &FakeVerifier::default(),
                now,
            )
        };
        let good = signed_body(
            r#"{"sub":"u1","iss":"https://id.example/","aud":"c1","exp":2000,"name":"N"}"#,
            &key,
        );
        let info = run(&good, "application/jwt").unwrap();
        assert_eq!(info.profile.name.as_deref(), Some("N"));
        assert_eq!(
            run(r#"{"sub":"u1"}"#, "application/json"),
            Err(UserinfoError::NotSigned)
        );
        let other_key = Jwk::ed25519(&[4; 32]).unwrap();
        assert!(matches!(
            run(
                &signed_body(r#"{"sub":"u1"}"#, &other_key),
                "application/jwt"
            ),
            Err(UserinfoError::Signature(
                SignatureError::BadSignature { .. }
            ))
        ));
        assert!(matches!(
            run(
                &signed_body(r#"{"sub":"u1","iss":"https://evil.example"}"#, &key),
                "application/jwt"
            ),
            Err(UserinfoError::IssuerMismatch { .. })
        ));
        assert_eq!(
            run(
                &signed_body(r#"{"sub":"u1","aud":["x"]}"#, &key),
                "application/jwt"
            ),
            Err(UserinfoError::AudienceMismatch)
        );
        assert!(matches!(
            run(
                &signed_body(r#"{"sub":"u1","exp":900}"#, &key),
                "application/jwt"
            ),
            Err(UserinfoError::Expired { .. })
        ));
        assert_eq!(
            run(&signed_body(r#"{"sub":"u2"}"#, &key), "application/jwt"),
            Err(UserinfoError::SubjectMismatch)
        );
    }
}
