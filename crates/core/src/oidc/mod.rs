//! OpenID Connect on top of OAuth 2.0: ID tokens, the provider's keys, userinfo and RP-initiated
//! logout. Matrix's OAuth 2.0 API needs none of this; nothing outside this module depends on it.
//!
//! * [`CompactJws`] parses a token (bounded, strict base64url, checked header).
//! * [`JwkSet`] holds the provider's public keys; [`JwksCache`] keeps them fresh as a sans-IO state
//!   machine (maximum age from HTTP caching, one throttled refetch for an unknown `kid`).
//! * [`JwsVerifier`] is the signature backend, passed as a value: `matrix-oidc-jose` provides
//!   RustCrypto (default) and `ring` implementations, and an application may bring its own. This
//!   crate itself contains no cryptographic primitive besides SHA-2.
//! * [`validate_id_token`] / [`validate_refreshed_id_token`] apply OpenID Connect Core §3.1.3.7 and
//!   §12.2 and return [`IdTokenClaims`]; [`IdTokenValidation`] drives them with the cache.
//! * [`userinfo_request`], [`handle_userinfo_response`], [`handle_signed_userinfo_response`].
//! * [`EndSessionRequest`] builds the end-session URL.
//!
//! ```text
//!   token endpoint ─► id_token ─► IdTokenValidation::poll ─┬─► Fetch(request) ─► transport
//!                                   ▲                       │        │
//!                                   │   JwksCache::handle_response ◄─┘
//!                                   └───────────────────────┴─► Done(IdTokenClaims)
//! ```
//!
//! The algorithm of a token is never taken from the token alone: its `alg` must be one the client
//! registered (`id_token_signed_response_alg`) or, without a registration, one the server
//! advertises; `none` and HMAC algorithms are refused outright, and the key must be of the type the
//! algorithm needs.

mod alg;
mod claims;
mod id_token;
mod json;
mod jwk;
mod jwks_cache;
mod jws;
mod logout;
mod userinfo;
mod verify;

pub use alg::{HashAlgorithm, JwsAlgorithm};
pub use claims::{Address, ClaimTypeError, ClaimsError, IdTokenClaims, ProfileClaims, UserInfo};
pub use id_token::{
    AlgorithmPolicyError, DEFAULT_CLOCK_SKEW, DEFAULT_ID_TOKEN_ALGORITHM, IdTokenError,
    IdTokenExpectations, id_token_algorithms, issuer_matches, token_hash, validate_id_token,
    validate_refreshed_id_token,
};
pub use jwk::{
    EcCurve, EcPublicKey, Ed25519PublicKey, IgnoreReason, IgnoredKey, Jwk, JwkError, JwkKey,
    JwkSet, JwkSetError, KeyMismatch, MAX_KEYS_PER_SET, MAX_RSA_BITS, MIN_RSA_BITS, RsaPublicKey,
};
pub use jwks_cache::{IdTokenValidation, JwksCache, JwksCacheConfig, JwksError, ValidationStep};
pub use jws::{CompactJws, DEFAULT_MAX_JWS_BYTES, JwsError, JwsHeader, JwsPart};
pub use logout::{EndSessionRequest, EndSessionUrl, LogoutError};
pub use userinfo::{
    MAX_USERINFO_BYTES, SignedUserinfoExpectations, UserinfoError, handle_signed_userinfo_response,
    handle_userinfo_response, userinfo_request,
};
pub use verify::{JwsVerifier, SignatureError, VerifyError, check_algorithm, verify_jws};

#[cfg(test)]
mod tests;
