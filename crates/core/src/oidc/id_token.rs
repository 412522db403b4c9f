//! ID-token validation: OpenID Connect Core §3.1.3.7 after a code exchange, §12.2 after a refresh.
//!
//! ```text
//!  token ─► CompactJws::parse ─► typ/cty ─► verify_jws (alg ∈ expectations, key ∈ JWKS)
//!        ─► claims types ─► iss ─► aud/azp ─► exp/iat/nbf (± clock skew) ─► nonce
//!        ─► auth_time (max_age) ─► at_hash/c_hash ─► [refresh: iss/sub/aud/… unchanged]
//!        ─► IdTokenClaims
//! ```
//!
//! Each failed check is its own [`IdTokenError`] variant. The signature is checked before any
//! claim is read, so nothing from an unverified payload is ever acted upon.

use super::alg::{AlgClass, HashAlgorithm, JwsAlgorithm, classify};
use super::claims::{ClaimsError, IdTokenClaims};
use super::json::short;
use super::jwk::JwkSet;
use super::jws::{CompactJws, DEFAULT_MAX_JWS_BYTES, JwsError, JwsPart, encode};
use super::verify::{JwsVerifier, SignatureError, verify_jws};
use crate::secret::constant_time_eq;
use crate::{AuthorizationServerMetadata, Secret, Timestamp};
use sha2::Digest;
use std::time::Duration;

/// The default tolerance for clocks that disagree: 60 seconds.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The algorithm a client gets when it registered none (OpenID Connect Dynamic Client
/// Registration §2, `id_token_signed_response_alg`).
pub const DEFAULT_ID_TOKEN_ALGORITHM: JwsAlgorithm = JwsAlgorithm::Rs256;

/// The registered or advertised algorithms leave nothing this crate can verify safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlgorithmPolicyError {
    /// The client registered `none`.
    #[error("the client is registered for unsigned ID tokens (`none`), which are refused")]
    Unsecured,
    /// The client registered an HMAC algorithm.
    #[error("the client is registered for `{alg}` ID tokens; HMAC-signed ID tokens are refused")]
    Symmetric {
        /// The registered algorithm.
        alg: String,
    },
    /// The client registered an algorithm this crate does not implement.
    #[error("the client is registered for `{alg}` ID tokens, which this crate cannot verify")]
    Unsupported {
        /// The registered algorithm.
        alg: String,
    },
    /// None of the server's advertised algorithms is supported.
    #[error("the server signs ID tokens only with {offered:?}, none of which is supported")]
    NoUsableAlgorithm {
        /// What the server advertised.
        offered: Vec<String>,
    },
}

/// Which algorithms an ID token may be signed with.
///
/// * The client's registered `id_token_signed_response_alg`, when it has one: exactly that.
/// * Otherwise the server's `id_token_signing_alg_values_supported`, minus `none`, HMAC and
///   anything unsupported.
/// * Otherwise [`DEFAULT_ID_TOKEN_ALGORITHM`] (RS256).
///
/// ```
/// use matrix_oidc_core::oidc::{id_token_algorithms, JwsAlgorithm};
/// let offered = ["HS256", "none", "ES256", "RS256"].map(Into::into);
/// assert_eq!(
///     id_token_algorithms(None, Some(&offered)).unwrap(),
///     [JwsAlgorithm::Es256, JwsAlgorithm::Rs256]
/// );
/// assert_eq!(id_token_algorithms(Some("PS256"), Some(&offered)).unwrap(), [JwsAlgorithm::Ps256]);
/// assert!(id_token_algorithms(Some("HS256"), None).is_err());
/// ```
pub fn id_token_algorithms(
    registered: Option<&str>,
    server_supported: Option<&[crate::metadata::ListValue]>,
) -> Result<Vec<JwsAlgorithm>, AlgorithmPolicyError> {
    if let Some(name) = registered {
        return match classify(name) {
            AlgClass::Asymmetric(a) => Ok(vec![a]),
            AlgClass::Unsecured => Err(AlgorithmPolicyError::Unsecured),
            AlgClass::Symmetric => Err(AlgorithmPolicyError::Symmetric { alg: short(name) }),
            AlgClass::Unsupported => Err(AlgorithmPolicyError::Unsupported { alg: short(name) }),
        };
    }
    let Some(offered) = server_supported else {
        return Ok(vec![DEFAULT_ID_TOKEN_ALGORITHM]);
    };
    let mut algs: Vec<JwsAlgorithm> = Vec::new();
    for a in offered.iter().filter_map(|n| JwsAlgorithm::from_name(n)) {
        if !algs.contains(&a) {
            algs.push(a);
        }
    }
    if algs.is_empty() {
        return Err(AlgorithmPolicyError::NoUsableAlgorithm {
            offered: offered.iter().take(16).map(|s| short(s)).collect(),
        });
    }
    Ok(algs)
}

/// What an ID token must satisfy. Build it with [`IdTokenExpectations::from_metadata`] (or
/// [`IdTokenExpectations::new`]) and add what the flow knows: the nonce sent, the access token
/// received.
///
/// ```
/// use matrix_oidc_core::oidc::{IdTokenExpectations, JwsAlgorithm};
/// use matrix_oidc_core::Secret;
/// use std::time::Duration;
/// let expect = IdTokenExpectations::new("https://id.example", "client-1", vec![JwsAlgorithm::Es256])
///     .with_nonce(Secret::new("n-0S6_WzA2Mj"))
///     .with_clock_skew(Duration::from_secs(30));
/// assert_eq!(expect.clock_skew, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdTokenExpectations {
    /// The issuer identifier, as discovered.
    pub issuer: String,
    /// This client's id; must be an audience.
    pub client_id: String,
    /// Accepted signature algorithms (see [`id_token_algorithms`]).
    pub algorithms: Vec<JwsAlgorithm>,
    /// The nonce sent in the authorization request; when set, the token must carry it.
    pub nonce: Option<Secret>,
    /// The access token issued with the ID token; when set and the token has `at_hash`, it is checked.
    pub access_token: Option<Secret>,
    /// The authorization code; when set and the token has `c_hash`, it is checked.
    pub code: Option<Secret>,
    /// Tolerance for `exp`, `iat`, `nbf` and `auth_time`.
    pub clock_skew: Duration,
    /// The `max_age` sent in the authorization request; when set, `auth_time` is required and checked.
    pub max_age: Option<Duration>,
    /// Refuse tokens issued longer ago than this (§3.1.3.7 item 10), when set.
    pub max_token_age: Option<Duration>,
    /// Audiences besides `client_id` that this client trusts; any other extra audience is refused.
    pub trusted_audiences: Vec<String>,
    /// The largest token accepted, in bytes.
    pub max_token_bytes: usize,
}

impl IdTokenExpectations {
    /// Expectations for tokens from `issuer` to `client_id` signed with one of `algorithms`.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        algorithms: Vec<JwsAlgorithm>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            algorithms,
            nonce: None,
            access_token: None,
            code: None,
            clock_skew: DEFAULT_CLOCK_SKEW,
            max_age: None,
            max_token_age: None,
            trusted_audiences: Vec::new(),
            max_token_bytes: DEFAULT_MAX_JWS_BYTES,
        }
    }

    /// Expectations from the server's metadata and the client's registration
    /// (`id_token_signed_response_alg`, if it registered one).
    pub fn from_metadata(
        metadata: &AuthorizationServerMetadata,
        client_id: impl Into<String>,
        registered_alg: Option<&str>,
    ) -> Result<Self, AlgorithmPolicyError> {
        let algorithms = id_token_algorithms(
            registered_alg,
            metadata.id_token_signing_alg_values_supported.as_deref(),
        )?;
        Ok(Self::new(metadata.issuer.as_str(), client_id, algorithms))
    }

    /// Requires this nonce (the one sent in the authorization request).
    pub fn with_nonce(mut self, nonce: Secret) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Requires the nonce of a pending authorization, if it sent one (the code flow's usual case).
    pub fn with_pending_nonce(mut self, pending: &crate::PendingAuthorization) -> Self {
        if let Some(n) = &pending.nonce {
            self.nonce = Some(n.clone());
        }
        self
    }

    /// Checks `at_hash` against this access token.
    pub fn with_access_token(mut self, access_token: Secret) -> Self {
        self.access_token = Some(access_token);
        self
    }

    /// Checks `c_hash` against this authorization code.
    pub fn with_code(mut self, code: Secret) -> Self {
        self.code = Some(code);
        self
    }

    /// Sets the clock-skew tolerance.
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Requires `auth_time` no older than `max_age` (sent as `max_age` in the request).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Refuses tokens whose `iat` is older than this.
    pub fn with_max_token_age(mut self, age: Duration) -> Self {
        self.max_token_age = Some(age);
        self
    }

    /// Trusts an additional audience.
    pub fn with_trusted_audience(mut self, audience: impl Into<String>) -> Self {
        self.trusted_audiences.push(audience.into());
        self
    }
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// Not a well-formed compact JWS.
    #[error("the ID token is malformed: {0}")]
    Malformed(#[from] JwsError),
    /// The header's `typ` is not `JWT` (a token of another kind, e.g. `at+jwt`, used as ID token).
    #[error("the ID token's `typ` is `{typ}`, not `JWT`")]
    UnexpectedType {
        /// The `typ` value.
        typ: String,
    },
    /// The header has `cty`: a nested JWT, which an ID token never is here.
    #[error("the ID token is a nested token (`cty: {cty}`), which is not supported")]
    Nested {
        /// The `cty` value.
        cty: String,
    },
    /// The signature (or the algorithm or key behind it) was not accepted.
    #[error("the ID token's signature was not accepted: {0}")]
    Signature(#[from] SignatureError),
    /// The claims set is not well-typed.
    #[error("the ID token's claims are invalid: {0}")]
    Claims(#[from] ClaimsError),
    /// `iss` is not the expected issuer.
    #[error("the ID token was issued by `{found}`, expected `{expected}`")]
    IssuerMismatch {
        /// The expected issuer.
        expected: String,
        /// The token's `iss`.
        found: String,
    },
    /// `aud` does not contain the client id.
    #[error("the ID token is for {found:?}, not for client `{client_id}`")]
    AudienceMismatch {
        /// This client.
        client_id: String,
        /// The token's audiences.
        found: Vec<String>,
    },
    /// `aud` contains an audience this client does not trust.
    #[error("the ID token also names the untrusted audience `{audience}`")]
    UntrustedAudience {
        /// The audience.
        audience: String,
    },
    /// Several audiences but no `azp`.
    #[error("the ID token has several audiences but no `azp`")]
    MissingAuthorizedParty,
    /// `azp` is not this client.
    #[error("the ID token's `azp` is `{found}`, not this client")]
    AuthorizedPartyMismatch {
        /// The token's `azp`.
        found: String,
    },
    /// `exp` has passed.
    #[error("the ID token expired at {exp:?} (now {now:?})")]
    Expired {
        /// The token's `exp`.
        exp: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// `iat` is in the future.
    #[error("the ID token claims to be issued at {iat:?}, in the future (now {now:?})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// `nbf` is in the future.
    #[error("the ID token is not valid before {nbf:?} (now {now:?})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// `iat` is older than [`IdTokenExpectations::max_token_age`].
    #[error("the ID token was issued at {iat:?}, longer ago than allowed")]
    TooOld {
        /// The token's `iat`.
        iat: Timestamp,
    },
    /// A nonce was sent but the token has none.
    #[error("the ID token has no `nonce`, but one was sent")]
    MissingNonce,
    /// The token's nonce is not the one sent.
    #[error("the ID token's `nonce` does not match the one sent")]
    NonceMismatch,
    /// `max_age` was requested but the token has no `auth_time`.
    #[error("the ID token has no `auth_time`, but `max_age` was requested")]
    MissingAuthTime,
    /// The authentication is older than the requested `max_age`.
    #[error("the user authenticated at {auth_time:?}, longer ago than the requested max_age")]
    AuthenticationTooOld {
        /// The token's `auth_time`.
        auth_time: Timestamp,
    },
    /// `at_hash` does not match the access token.
    #[error("the ID token's `at_hash` does not match the access token")]
    AccessTokenHashMismatch,
    /// `c_hash` does not match the authorization code.
    #[error("the ID token's `c_hash` does not match the authorization code")]
    CodeHashMismatch,
    /// Refresh: `iss` differs from the original token's.
    #[error("the refreshed ID token's issuer `{found}` differs from the original `{previous}`")]
    IssuerChanged {
        /// The original `iss`.
        previous: String,
        /// The new `iss`.
        found: String,
    },
    /// Refresh: `sub` differs from the original token's: another user.
    #[error("the refreshed ID token is for another subject")]
    SubjectChanged,
    /// Refresh: `aud` differs from the original token's.
    #[error("the refreshed ID token's audiences {found:?} differ from the original {previous:?}")]
    AudienceChanged {
        /// The original audiences.
        previous: Vec<String>,
        /// The new audiences.
        found: Vec<String>,
    },
    /// Refresh: `azp` differs from the original token's.
    #[error("the refreshed ID token's `azp` differs from the original")]
    AuthorizedPartyChanged,
    /// Refresh: `auth_time` differs from the original authentication's.
    #[error("the refreshed ID token's `auth_time` differs from the original authentication")]
    AuthTimeChanged,
    /// Refresh: the token carries a nonce other than the original one.
    #[error("the refreshed ID token carries a `nonce` other than the original")]
    NonceChanged,
    /// The provider's key set could not be fetched or read.
    #[error("the provider's key set is unavailable: {0}")]
    KeySet(#[from] super::jwks_cache::JwksError),
    /// The token response has no `id_token`, although the `openid` scope was requested.
    #[error("the token response has no `id_token`, although `openid` was requested")]
    Missing,
    /// No acceptable signature algorithm (see [`id_token_algorithms`]).
    #[error(transparent)]
    AlgorithmPolicy(#[from] AlgorithmPolicyError),
}

impl IdTokenError {
    /// Whether refetching the provider's key set might help (see [`SignatureError::is_unknown_key`]).
    pub fn is_unknown_key(&self) -> bool {
        matches!(self, IdTokenError::Signature(e) if e.is_unknown_key())
    }
}

/// Validates an ID token received from the token endpoint after a code exchange
/// (OpenID Connect Core §3.1.3.7) and returns its claims.
///
/// `keys` is the provider's key set (from a [`JwksCache`](super::JwksCache)); `verifier` the
/// signature backend (`matrix_oidc_jose::RustCryptoVerifier` by default). When this fails with
/// [`IdTokenError::is_unknown_key`], refetch the key set once and retry — or let
/// [`IdTokenValidation`](super::IdTokenValidation) drive it.
pub fn validate_id_token(
    token: &str,
    expectations: &IdTokenExpectations,
    keys: &JwkSet,
    verifier: &dyn JwsVerifier,
    now: Timestamp,
) -> Result<IdTokenClaims, IdTokenError> {
    validate(token, expectations, keys, verifier, now, None)
}

/// Validates an ID token received in a refresh response (OpenID Connect Core §12.2): all the checks
/// of [`validate_id_token`] except that the nonce may be absent (and must equal the original when
/// present), plus `iss`, `sub`, `aud`, `azp` and `auth_time` unchanged from `previous`.
///
/// `expectations.nonce` is not used here; the original nonce comes from `previous`.
pub fn validate_refreshed_id_token(
    token: &str,
    previous: &IdTokenClaims,
    expectations: &IdTokenExpectations,
    keys: &JwkSet,
    verifier: &dyn JwsVerifier,
    now: Timestamp,
) -> Result<IdTokenClaims, IdTokenError> {
    validate(token, expectations, keys, verifier, now, Some(previous))
}

pub(crate) fn validate(
    token: &str,
    expect: &IdTokenExpectations,
    keys: &JwkSet,
    verifier: &dyn JwsVerifier,
    now: Timestamp,
    previous: Option<&IdTokenClaims>,
) -> Result<IdTokenClaims, IdTokenError> {
    let jws = CompactJws::parse_with_limit(token, expect.max_token_bytes)?;
    check_header(&jws)?;
    let (alg, _key) = verify_jws(&jws, keys, &expect.algorithms, verifier)?;
    let payload = jws.decode_payload()?;
    if payload.is_empty() {
        return Err(JwsError::Empty {
            part: JwsPart::Payload,
        }
        .into());
    }
    // Read straight into the claims, as `from_map(decode_claims())` would, minus the map.
    let claims = IdTokenClaims::from_json(&payload).map_err(|e| match e {
        Ok(reason) => IdTokenError::Malformed(JwsError::Json {
            part: JwsPart::Payload,
            reason,
        }),
        Err(claims) => IdTokenError::Claims(claims),
    })?;

    if !issuer_matches(&expect.issuer, &claims.iss) {
        return Err(IdTokenError::IssuerMismatch {
            expected: short(&expect.issuer),
            found: short(&claims.iss),
        });
    }
    check_audience(&claims, expect)?;
    check_times(&claims, expect, now)?;
    match previous {
        None => check_nonce(claims.nonce.as_ref(), expect.nonce.as_ref())?,
        Some(prev) => check_continuity(&claims, prev)?,
    }
    if let Some(max_age) = expect.max_age {
        let auth_time = claims.auth_time.ok_or(IdTokenError::MissingAuthTime)?;
        if now > auth_time + max_age + expect.clock_skew {
            return Err(IdTokenError::AuthenticationTooOld { auth_time });
        }
    }
    if let (Some(claimed), Some(at)) = (&claims.at_hash, &expect.access_token) {
        if !constant_time_eq(claimed, &token_hash(alg.hash(), at.expose())) {
            return Err(IdTokenError::AccessTokenHashMismatch);
        }
    }
    if let (Some(claimed), Some(code)) = (&claims.c_hash, &expect.code) {
        if !constant_time_eq(claimed, &token_hash(alg.hash(), code.expose())) {
            return Err(IdTokenError::CodeHashMismatch);
        }
    }
    Ok(claims)
}

fn check_header(jws: &CompactJws<'_>) -> Result<(), IdTokenError> {
    let h = jws.header();
    if let Some(typ) = &h.typ {
        if !typ.eq_ignore_ascii_case("JWT") && !typ.eq_ignore_ascii_case("application/jwt") {
            return Err(IdTokenError::UnexpectedType { typ: short(typ) });
        }
    }
    if let Some(cty) = &h.cty {
        return Err(IdTokenError::Nested { cty: short(cty) });
    }
    Ok(())
}

fn check_audience(
    claims: &IdTokenClaims,
    expect: &IdTokenExpectations,
) -> Result<(), IdTokenError> {
    if !claims.aud.iter().any(|a| a == &expect.client_id) {
        return Err(IdTokenError::AudienceMismatch {
            client_id: short(&expect.client_id),
            found: claims.aud.iter().take(8).map(|a| short(a)).collect(),
        });
    }
    if let Some(other) = claims
        .aud
        .iter()
        .find(|a| *a != &expect.client_id && !expect.trusted_audiences.contains(a))
    {
        return Err(IdTokenError::UntrustedAudience {
            audience: short(other),
        });
    }
    match &claims.azp {
        None if claims.aud.len() > 1 => Err(IdTokenError::MissingAuthorizedParty),
        Some(azp) if azp != &expect.client_id => {
            Err(IdTokenError::AuthorizedPartyMismatch { found: short(azp) })
        }
        _ => Ok(()),
    }
}

fn check_times(
    claims: &IdTokenClaims,
    expect: &IdTokenExpectations,
    now: Timestamp,
) -> Result<(), IdTokenError> {
    let skew = expect.clock_skew;
    if now >= claims.exp + skew {
        return Err(IdTokenError::Expired {
            exp: claims.exp,
            now,
        });
    }
    if claims.iat > now + skew {
        return Err(IdTokenError::IssuedInFuture {
            iat: claims.iat,
            now,
        });
    }
    if let Some(nbf) = claims.nbf {
        if nbf > now + skew {
            return Err(IdTokenError::NotYetValid { nbf, now });
        }
    }
    if let Some(max) = expect.max_token_age {
        if now > claims.iat + max + skew {
            return Err(IdTokenError::TooOld { iat: claims.iat });
        }
    }
    Ok(())
}

fn check_nonce(found: Option<&Secret>, sent: Option<&Secret>) -> Result<(), IdTokenError> {
    match (sent, found) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(IdTokenError::MissingNonce),
        (Some(sent), Some(found)) if sent == found => Ok(()),
        (Some(_), Some(_)) => Err(IdTokenError::NonceMismatch),
    }
}

fn check_continuity(new: &IdTokenClaims, prev: &IdTokenClaims) -> Result<(), IdTokenError> {
    if new.iss != prev.iss {
        return Err(IdTokenError::IssuerChanged {
            previous: short(&prev.iss),
            found: short(&new.iss),
        });
    }
    if !constant_time_eq(&new.sub, &prev.sub) {
        return Err(IdTokenError::SubjectChanged);
    }
    let same_audiences = new.aud.len() == prev.aud.len()
        && new.aud.iter().all(|a| prev.aud.contains(a))
        && prev.aud.iter().all(|a| new.aud.contains(a));
    if !same_audiences {
        return Err(IdTokenError::AudienceChanged {
            previous: prev.aud.iter().take(8).map(|a| short(a)).collect(),
            found: new.aud.iter().take(8).map(|a| short(a)).collect(),
        });
    }
    if new.azp.is_some() && prev.azp.is_some() && new.azp != prev.azp {
        return Err(IdTokenError::AuthorizedPartyChanged);
    }
    if let (Some(a), Some(b)) = (new.auth_time, prev.auth_time) {
        if a != b {
            return Err(IdTokenError::AuthTimeChanged);
        }
    }
    match (&new.nonce, &prev.nonce) {
        (None, _) => Ok(()),
        (Some(n), Some(p)) if n == p => Ok(()),
        (Some(_), _) => Err(IdTokenError::NonceChanged),
    }
}

/// Whether `found` names the issuer `expected`: exact string equality (OpenID Connect Core
/// §3.1.3.7 item 2), except that an issuer without a path matches with or without the trailing `/`
/// — URL types add that slash (`https://id.example` becomes `https://id.example/`), and metadata
/// often passes through one.
pub fn issuer_matches(expected: &str, found: &str) -> bool {
    if expected == found {
        return true;
    }
    let bare = |s: &str| -> Option<String> {
        let u = url::Url::parse(s).ok()?;
        (u.path() == "/" && u.query().is_none() && u.fragment().is_none())
            .then(|| s.trim_end_matches('/').to_owned())
    };
    match (bare(expected), bare(found)) {
        (Some(a), Some(b)) => a == b && a.len() + 1 >= expected.len().max(found.len()),
        _ => false,
    }
}

/// `at_hash` / `c_hash`: base64url of the left half of the hash of the ASCII value.
pub fn token_hash(hash: HashAlgorithm, value: &str) -> String {
    fn half<D: Digest>(value: &str) -> String {
        let digest = D::digest(value.as_bytes());
        encode(&digest[..digest.len() / 2])
    }
    match hash {
        HashAlgorithm::Sha256 => half::<sha2::Sha256>(value),
        HashAlgorithm::Sha384 => half::<sha2::Sha384>(value),
        HashAlgorithm::Sha512 => half::<sha2::Sha512>(value),
    }
}
