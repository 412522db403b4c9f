//! Compact JWS parsing (RFC 7515 §7.1): bounded, strict base64url, a checked protected header.
//!
//! Parsing never trusts anything: it only splits, decodes and type-checks. What the header claims
//! (`alg`, `kid`) is used later to *select among* keys and algorithms the relying party already
//! trusts, never to decide what to trust.

use super::json::{self, short};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The default bound on a compact JWS: 64 KiB. Real ID tokens are 1–4 KiB.
pub const DEFAULT_MAX_JWS_BYTES: usize = 64 * 1024;

/// Header parameters RFC 7515 §4.1 registers; `crit` may not list them.
const REGISTERED_HEADER_NAMES: [&str; 11] = [
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
];

/// Which part of a compact JWS a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwsPart {
    /// The protected header.
    Header,
    /// The payload.
    Payload,
    /// The signature.
    Signature,
}

impl std::fmt::Display for JwsPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JwsPart::Header => "header",
            JwsPart::Payload => "payload",
            JwsPart::Signature => "signature",
        })
    }
}

/// A compact JWS could not be parsed. Messages quote at most a short, escaped piece of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// The token is longer than the bound.
    #[error("the token is {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The bound.
        limit: usize,
    },
    /// Five dot-separated parts: an encrypted JWT (JWE), which this crate does not decrypt.
    #[error("the token is encrypted (JWE); only signed tokens are supported")]
    Encrypted,
    /// Not three dot-separated parts.
    #[error("a compact JWS has 3 dot-separated parts, this token has {found}")]
    Segments {
        /// How many parts the token has.
        found: usize,
    },
    /// A part is empty where content is required.
    #[error("the {part} of the token is empty")]
    Empty {
        /// Which part.
        part: JwsPart,
    },
    /// A part is not unpadded base64url (RFC 7515 §2): padding, `+`/`/`, whitespace or stray bits.
    #[error("the {part} of the token is not unpadded base64url")]
    Base64 {
        /// Which part.
        part: JwsPart,
    },
    /// The header or payload is not a JSON object with unique member names.
    #[error("the {part} of the token is not a JSON object: {reason}")]
    Json {
        /// Which part.
        part: JwsPart,
        /// What the parser said.
        reason: String,
    },
    /// The header has no `alg`.
    #[error("the header has no `alg`")]
    MissingAlgorithm,
    /// A header parameter has the wrong type.
    #[error("the header parameter `{name}` must be {expected}")]
    InvalidHeaderParameter {
        /// The parameter.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `crit` names an extension this crate does not implement (RFC 7515 §4.1.11 says reject).
    #[error("the header marks `{name}` as critical, which is not understood")]
    UnsupportedCritical {
        /// The extension named.
        name: String,
    },
    /// `crit` is malformed: empty, duplicated, naming a registered parameter or an absent one.
    #[error("the header's `crit` is invalid: {reason}")]
    InvalidCritical {
        /// Why.
        reason: String,
    },
    /// `b64: false` (RFC 7797 unencoded payload), which is never valid for a JWT.
    #[error("the header asks for an unencoded payload (`b64`), which JWTs never use")]
    UnencodedPayload,
}

/// The protected header of a JWS, with the parameters this crate reads typed and the rest kept.
///
/// Keys embedded in or referenced by the header (`jwk`, `jku`, `x5u`, `x5c`) are never used: keys come
/// only from the relying party's trusted key set.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JwsHeader {
    /// The `alg` value exactly as sent (it may name an algorithm this crate refuses).
    pub alg: String,
    /// The key id, if any.
    pub kid: Option<String>,
    /// The media type of the whole JWS (`JWT`), if any.
    pub typ: Option<String>,
    /// The content type of the payload (set for nested JWTs), if any.
    pub cty: Option<String>,
    /// Every other parameter, verbatim.
    pub extra: Map<String, Value>,
}

impl JwsHeader {
    fn from_json(bytes: &[u8]) -> Result<Self, JwsError> {
        let raw = json::parse_with::<RawHeader>(bytes).map_err(|reason| JwsError::Json {
            part: JwsPart::Header,
            reason,
        })?;
        let string = |value: Option<Value>, name: &'static str| {
            json::string_value(value).map_err(|_| JwsError::InvalidHeaderParameter {
                name,
                expected: "a string",
            })
        };
        let alg = string(raw.alg, "alg")?.ok_or(JwsError::MissingAlgorithm)?;
        let kid = string(raw.kid, "kid")?;
        let typ = string(raw.typ, "typ")?;
        let cty = string(raw.cty, "cty")?;
        let crit =
            json::string_array_value(raw.crit).map_err(|_| JwsError::InvalidHeaderParameter {
                name: "crit",
                expected: "an array of strings",
            })?;
        let map = raw.extra;
        if let Some(crit) = crit {
            check_crit(&crit, &map)?;
        }
        match map.get("b64") {
            None | Some(Value::Bool(true)) => {}
            Some(_) => return Err(JwsError::UnencodedPayload),
        }
        Ok(Self {
            alg,
            kid,
            typ,
            cty,
            extra: map,
        })
    }
}

/// The header object as parsed: the parameters read here in their own slots (no map entry, no
/// allocated name), every other one in `extra`. Duplicate names are refused as in
/// [`json::parse_object`], with the same message.
#[derive(Default)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    typ: Option<Value>,
    cty: Option<Value>,
    crit: Option<Value>,
    extra: Map<String, Value>,
}

impl<'de> serde::Deserialize<'de> for RawHeader {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> serde::de::Visitor<'de> for HeaderVisitor {
            type Value = RawHeader;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<RawHeader, A::Error> {
                let mut h = RawHeader::default();
                while let Some(json::Key(name)) = access.next_key()? {
                    let slot = match &*name {
                        "alg" => &mut h.alg,
                        "kid" => &mut h.kid,
                        "typ" => &mut h.typ,
                        "cty" => &mut h.cty,
                        "crit" => &mut h.crit,
                        _ => {
                            if h.extra.contains_key(&*name) {
                                return Err(json::duplicate(&name));
                            }
                            let value: Value = access.next_value()?;
                            h.extra.insert(name.into_owned(), value);
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(json::duplicate(&name));
                    }
                    *slot = Some(access.next_value()?);
                }
                Ok(h)
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}

fn check_crit(crit: &[String], rest: &Map<String, Value>) -> Result<(), JwsError> {
    if crit.is_empty() {
        return Err(JwsError::InvalidCritical {
            reason: "it is empty".to_owned(),
        });
    }
    for (i, name) in crit.iter().enumerate() {
        if REGISTERED_HEADER_NAMES.contains(&name.as_str()) {
            return Err(JwsError::InvalidCritical {
                reason: format!("it names the registered parameter `{}`", short(name)),
            });
        }
        if crit[..i].contains(name) {
            return Err(JwsError::InvalidCritical {
                reason: format!("it names `{}` twice", short(name)),
            });
        }
        if !rest.contains_key(name) {
            return Err(JwsError::InvalidCritical {
                reason: format!("`{}` is not in the header", short(name)),
            });
        }
    }
    // No extension is implemented, so any well-formed `crit` still means "do not accept".
    Err(JwsError::UnsupportedCritical {
        name: short(&crit[0]),
    })
}

/// A parsed compact JWS, borrowing the token. The payload stays encoded until asked for, because
/// nothing should read it before the signature is verified.
///
/// ```
/// use matrix_oidc_core::oidc::CompactJws;
/// // RFC 7515 §A.2's header and payload; the signature is irrelevant to parsing.
/// let jws = CompactJws::parse("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UifQ.c2ln").unwrap();
/// assert_eq!(jws.header().alg, "RS256");
/// assert_eq!(jws.signing_input(), b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UifQ");
/// assert_eq!(jws.signature(), b"sig");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CompactJws<'a> {
    signing_input: &'a str,
    payload_b64: &'a str,
    header: JwsHeader,
    signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Parses `token` with the [`DEFAULT_MAX_JWS_BYTES`] bound.
    pub fn parse(token: &'a str) -> Result<Self, JwsError> {
        Self::parse_with_limit(token, DEFAULT_MAX_JWS_BYTES)
    }

    /// Parses `token`, refusing it when longer than `max_len` bytes.
    pub fn parse_with_limit(token: &'a str, max_len: usize) -> Result<Self, JwsError> {
        if token.len() > max_len {
            return Err(JwsError::TooLarge {
                len: token.len(),
                limit: max_len,
            });
        }
        // Three parts split by the first two dots (a memchr each); the dots are counted only for
        // the error when there are not exactly two.
        let split = token.split_once('.').and_then(|(header, rest)| {
            let (payload, signature) = rest.split_once('.')?;
            (!signature.contains('.')).then_some((header, payload, signature))
        });
        let Some((header_b64, payload_b64, signature_b64)) = split else {
            let dots = token.bytes().filter(|&b| b == b'.').count();
            if dots == 4 {
                return Err(JwsError::Encrypted);
            }
            return Err(JwsError::Segments { found: dots + 1 });
        };
        if header_b64.is_empty() {
            return Err(JwsError::Empty {
                part: JwsPart::Header,
            });
        }
        if signature_b64.is_empty() {
            return Err(JwsError::Empty {
                part: JwsPart::Signature,
            });
        }
        // Headers are small: decoded on the stack, the heap only for an unusually large one.
        let mut stack = [0u8; 384];
        let header = match URL_SAFE_NO_PAD.decode_slice(header_b64, &mut stack) {
            Ok(len) => JwsHeader::from_json(stack.get(..len).unwrap_or_default())?,
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
                JwsHeader::from_json(&decode(header_b64, JwsPart::Header)?)?
            }
            Err(base64::DecodeSliceError::DecodeError(_)) => {
                return Err(JwsError::Base64 {
                    part: JwsPart::Header,
                });
            }
        };
        let signature = decode(signature_b64, JwsPart::Signature)?;
        // The payload is not decoded yet, but a malformed one is a parse error, not a later surprise.
        if !is_base64url(payload_b64) {
            return Err(JwsError::Base64 {
                part: JwsPart::Payload,
            });
        }
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        Ok(Self {
            signing_input,
            payload_b64,
            header,
            signature,
        })
    }

    /// The protected header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The bytes the signature covers: `BASE64URL(header) '.' BASE64URL(payload)`.
    pub fn signing_input(&self) -> &'a [u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Decodes the payload. Call this only after the signature has been verified.
    pub fn decode_payload(&self) -> Result<Vec<u8>, JwsError> {
        decode(self.payload_b64, JwsPart::Payload)
    }

    /// Decodes the payload as a JSON object with unique member names (a JWT claims set).
    pub fn decode_claims(&self) -> Result<Map<String, Value>, JwsError> {
        let bytes = self.decode_payload()?;
        if bytes.is_empty() {
            return Err(JwsError::Empty {
                part: JwsPart::Payload,
            });
        }
        json::parse_object(&bytes).map_err(|reason| JwsError::Json {
            part: JwsPart::Payload,
            reason,
        })
    }
}

fn is_base64url(s: &str) -> bool {
    // A table lookup per byte: this runs over every payload before anything else is done.
    const ALPHABET: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
            b += 1;
        }
        t
    };
    s.len() % 4 != 1 && s.bytes().all(|b| ALPHABET[usize::from(b)])
}

/// Strict unpadded base64url: the `URL_SAFE_NO_PAD` engine refuses padding and non-canonical
/// trailing bits, so each byte string has exactly one accepted encoding.
pub(crate) fn decode(s: &str, part: JwsPart) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwsError::Base64 { part })
}

/// Unpadded base64url encoding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        encode(s.as_bytes())
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64("sig"))
    }

    #[test]
    fn parses_header_parameters() {
        let t = token(
            r#"{"alg":"ES256","kid":"k1","typ":"JWT","x5u":"https://evil.example/"}"#,
            r#"{"sub":"a"}"#,
        );
        let jws = CompactJws::parse(&t).unwrap();
        let h = jws.header();
        assert_eq!(h.alg, "ES256");
        assert_eq!(h.kid.as_deref(), Some("k1"));
        assert_eq!(h.typ.as_deref(), Some("JWT"));
        assert!(h.extra.contains_key("x5u"));
        assert_eq!(jws.decode_claims().unwrap()["sub"], "a");
    }

    #[test]
    fn large_headers_parse_like_small_ones() {
        // Past the stack buffer the header is decoded on the heap, with the same checks.
        let pad = "x".repeat(600);
        let t = token(
            &format!(r#"{{"alg":"ES256","kid":"k1","pad":"{pad}"}}"#),
            "{}",
        );
        let jws = CompactJws::parse(&t).unwrap();
        assert_eq!(jws.header().kid.as_deref(), Some("k1"));
        assert_eq!(jws.header().extra["pad"], pad.as_str());
        let dup = token(
            &format!(r#"{{"alg":"ES256","pad":"{pad}","alg":"none"}}"#),
            "{}",
        );
        assert!(matches!(
            CompactJws::parse(&dup),
            Err(JwsError::Json { part: JwsPart::Header, reason }) if reason.contains("duplicate member `alg`")
        ));
        let bad = format!("{}=.e30.c2ln", b64(&format!(r#"{{"alg":"{pad}"}}"#)));
        assert_eq!(
            CompactJws::parse(&bad).unwrap_err(),
            JwsError::Base64 {
                part: JwsPart::Header
            }
        );
        // Duplicates among the other parameters, also when a name is escaped.
        let dup = token(r#"{"alg":"ES256","x":1,"x":2}"#, "{}");
        assert!(matches!(
            CompactJws::parse(&dup),
            Err(JwsError::Json { reason, .. }) if reason.contains("duplicate member `x`")
        ));
    }

    #[test]
    fn structure_errors() {
        assert_eq!(
            CompactJws::parse("a.b").unwrap_err(),
            JwsError::Segments { found: 2 }
        );
        assert_eq!(
            CompactJws::parse("a.b.c.d").unwrap_err(),
            JwsError::Segments { found: 4 }
        );
        assert_eq!(
            CompactJws::parse("a.b.c.d.e").unwrap_err(),
            JwsError::Encrypted
        );
        assert_eq!(
            CompactJws::parse(".e30.c2ln").unwrap_err(),
            JwsError::Empty {
                part: JwsPart::Header
            }
        );
        assert_eq!(
            CompactJws::parse(&format!("{}.e30.", b64(r#"{"alg":"RS256"}"#))).unwrap_err(),
            JwsError::Empty {
                part: JwsPart::Signature
            }
        );
        let big = "a".repeat(DEFAULT_MAX_JWS_BYTES + 1);
        assert!(matches!(
            CompactJws::parse(&big),
            Err(JwsError::TooLarge { .. })
        ));
    }

    #[test]
    fn base64url_is_strict() {
        let h = b64(r#"{"alg":"RS256"}"#);
        for bad in [
            format!("{h}=.e30.c2ln"),
            format!("{h}.e30=.c2ln"),
            format!("{h}.e30.c2ln="),
            format!("{h}.e3+.c2ln"),
            format!("{h}.e30.c2l/"),
            format!("{h} .e30.c2ln"),
            // "c2k" is "si"; "c2l" decodes to the same bytes with non-zero trailing bits.
            format!("{h}.e30.c2l"),
        ] {
            assert!(
                matches!(CompactJws::parse(&bad), Err(JwsError::Base64 { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn header_errors() {
        type Check = fn(&JwsError) -> bool;
        let cases: [(&str, Check); 8] = [
            (r#"{"typ":"JWT"}"#, |e| {
                matches!(e, JwsError::MissingAlgorithm)
            }),
            (r#"{"alg":1}"#, |e| {
                matches!(e, JwsError::InvalidHeaderParameter { name: "alg", .. })
            }),
            (r#"{"alg":"RS256","kid":7}"#, |e| {
                matches!(e, JwsError::InvalidHeaderParameter { name: "kid", .. })
            }),
            (
                r#"{"alg":"RS256","alg":"none"}"#,
                |e| matches!(e, JwsError::Json { part: JwsPart::Header, reason } if reason.contains("duplicate")),
            ),
            (
                r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
                |e| matches!(e, JwsError::UnsupportedCritical { name } if name == "exp"),
            ),
            (r#"{"alg":"RS256","crit":["kid"],"kid":"a"}"#, |e| {
                matches!(e, JwsError::InvalidCritical { .. })
            }),
            (r#"{"alg":"RS256","crit":["zzz"]}"#, |e| {
                matches!(e, JwsError::InvalidCritical { .. })
            }),
            (r#"{"alg":"RS256","b64":false}"#, |e| {
                matches!(e, JwsError::UnencodedPayload)
            }),
        ];
        for (header, check) in cases {
            let err = CompactJws::parse(&token(header, "{}")).unwrap_err();
            assert!(check(&err), "{header}: {err:?}");
        }
        let err = CompactJws::parse(&token("[]", "{}")).unwrap_err();
        assert!(matches!(err, JwsError::Json { .. }));
    }

    #[test]
    fn payload_is_checked_but_decoded_lazily() {
        let h = b64(r#"{"alg":"RS256"}"#);
        assert!(matches!(
            CompactJws::parse(&format!("{h}.e.c2ln")),
            Err(JwsError::Base64 {
                part: JwsPart::Payload
            })
        ));
        let empty = format!("{h}..c2ln");
        let jws = CompactJws::parse(&empty).unwrap();
        assert!(matches!(
            jws.decode_claims(),
            Err(JwsError::Empty {
                part: JwsPart::Payload
            })
        ));
        let t = token(r#"{"alg":"RS256"}"#, "not json");
        assert!(matches!(
            CompactJws::parse(&t).unwrap().decode_claims(),
            Err(JwsError::Json {
                part: JwsPart::Payload,
                ..
            })
        ));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A tiny deterministic fuzz: every prefix and every single-byte mutation of a valid token.
        let t = token(r#"{"alg":"RS256","kid":"k"}"#, r#"{"sub":"a","aud":["x"]}"#);
        for end in 0..=t.len() {
            let _ = CompactJws::parse(&t[..end]).map(|j| j.decode_claims());
        }
        let bytes = t.as_bytes();
        for i in 0..bytes.len() {
            for replacement in [b'.', b'=', b'A', b'_', 0xff] {
                let mut m = bytes.to_vec();
                m[i] = replacement;
                if let Ok(s) = std::str::from_utf8(&m) {
                    let _ = CompactJws::parse(s).map(|j| j.decode_claims());
                }
            }
        }
    }
}
