//! JWS algorithms this crate verifies, and how an algorithm name from a token is classified.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An asymmetric JWS algorithm (RFC 7518 §3, RFC 8037, RFC 9864) that ID tokens may be signed with.
///
/// There is deliberately no `none` and no HMAC variant: an ID token from a provider with published
/// public keys is only ever verified with one of these.
///
/// ```
/// use matrix_oidc_core::oidc::JwsAlgorithm;
/// assert_eq!(JwsAlgorithm::from_name("ES256"), Some(JwsAlgorithm::Es256));
/// assert_eq!(JwsAlgorithm::Es256.as_str(), "ES256");
/// assert_eq!(JwsAlgorithm::from_name("none"), None);
/// assert_eq!(JwsAlgorithm::from_name("HS256"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256 (salt length 32).
    Ps256,
    /// RSASSA-PSS with SHA-384 (salt length 48).
    Ps384,
    /// RSASSA-PSS with SHA-512 (salt length 64).
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// EdDSA (RFC 8037); this crate accepts it only with Ed25519 keys.
    EdDsa,
    /// Ed25519, the fully specified name of RFC 9864.
    Ed25519,
}

/// The hash an algorithm uses, which also decides `at_hash` / `c_hash` (OpenID Connect Core §3.1.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// The family of keys an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl JwsAlgorithm {
    /// Every algorithm, in the order of preference used when nothing else decides.
    pub const ALL: [JwsAlgorithm; 10] = [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Rs384,
        JwsAlgorithm::Rs512,
        JwsAlgorithm::Ps256,
        JwsAlgorithm::Ps384,
        JwsAlgorithm::Ps512,
        JwsAlgorithm::Es256,
        JwsAlgorithm::Es384,
        JwsAlgorithm::EdDsa,
        JwsAlgorithm::Ed25519,
    ];

    /// The algorithm registered under `name` (case-sensitive, as RFC 7515 §4.1.1 requires).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The registered name (`RS256`, `EdDSA`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Rs384 => "RS384",
            JwsAlgorithm::Rs512 => "RS512",
            JwsAlgorithm::Ps256 => "PS256",
            JwsAlgorithm::Ps384 => "PS384",
            JwsAlgorithm::Ps512 => "PS512",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::EdDsa => "EdDSA",
            JwsAlgorithm::Ed25519 => "Ed25519",
        }
    }

    /// The hash that `at_hash` and `c_hash` use with this algorithm. Ed25519 uses SHA-512, as its
    /// signature scheme does.
    pub const fn hash(self) -> HashAlgorithm {
        match self {
            JwsAlgorithm::Rs256 | JwsAlgorithm::Ps256 | JwsAlgorithm::Es256 => {
                HashAlgorithm::Sha256
            }
            JwsAlgorithm::Rs384 | JwsAlgorithm::Ps384 | JwsAlgorithm::Es384 => {
                HashAlgorithm::Sha384
            }
            JwsAlgorithm::Rs512
            | JwsAlgorithm::Ps512
            | JwsAlgorithm::EdDsa
            | JwsAlgorithm::Ed25519 => HashAlgorithm::Sha512,
        }
    }

    /// The exact signature length for fixed-size schemes (ECDSA `r‖s`, Ed25519); `None` for RSA,
    /// whose signature is as long as the modulus.
    pub const fn fixed_signature_len(self) -> Option<usize> {
        match self {
            JwsAlgorithm::Es256 => Some(64),
            JwsAlgorithm::Es384 => Some(96),
            JwsAlgorithm::EdDsa | JwsAlgorithm::Ed25519 => Some(64),
            _ => None,
        }
    }

    pub(crate) const fn key_family(self) -> KeyFamily {
        match self {
            JwsAlgorithm::Rs256
            | JwsAlgorithm::Rs384
            | JwsAlgorithm::Rs512
            | JwsAlgorithm::Ps256
            | JwsAlgorithm::Ps384
            | JwsAlgorithm::Ps512 => KeyFamily::Rsa,
            JwsAlgorithm::Es256 => KeyFamily::P256,
            JwsAlgorithm::Es384 => KeyFamily::P384,
            JwsAlgorithm::EdDsa | JwsAlgorithm::Ed25519 => KeyFamily::Ed25519,
        }
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JwsAlgorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JwsAlgorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        JwsAlgorithm::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "unsupported JWS algorithm `{}`",
                super::json::short(&name)
            ))
        })
    }
}

/// What an `alg` name from a header or from metadata means to this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlgClass {
    /// A supported asymmetric algorithm.
    Asymmetric(JwsAlgorithm),
    /// `none` in any letter case: an unsecured JWS.
    Unsecured,
    /// An HMAC algorithm (`HS256`, …), keyed with a shared secret.
    Symmetric,
    /// Anything else (`ES512`, `RSA1_5`, made-up names).
    Unsupported,
}

pub(crate) fn classify(name: &str) -> AlgClass {
    if let Some(a) = JwsAlgorithm::from_name(name) {
        AlgClass::Asymmetric(a)
    } else if name.eq_ignore_ascii_case("none") {
        AlgClass::Unsecured
    } else if matches!(name, "HS256" | "HS384" | "HS512") {
        AlgClass::Symmetric
    } else {
        AlgClass::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for a in JwsAlgorithm::ALL {
            assert_eq!(JwsAlgorithm::from_name(a.as_str()), Some(a));
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<JwsAlgorithm>(&json).unwrap(), a);
        }
        assert_eq!(JwsAlgorithm::from_name("rs256"), None);
        assert!(serde_json::from_str::<JwsAlgorithm>("\"HS256\"").is_err());
    }

    #[test]
    fn classification() {
        assert_eq!(classify("none"), AlgClass::Unsecured);
        assert_eq!(classify("NoNe"), AlgClass::Unsecured);
        assert_eq!(classify("HS384"), AlgClass::Symmetric);
        assert_eq!(classify("ES512"), AlgClass::Unsupported);
        assert_eq!(classify("PS512"), AlgClass::Asymmetric(JwsAlgorithm::Ps512));
    }

    #[test]
    fn hashes_follow_the_algorithm() {
        assert_eq!(JwsAlgorithm::Es384.hash(), HashAlgorithm::Sha384);
        assert_eq!(JwsAlgorithm::EdDsa.hash(), HashAlgorithm::Sha512);
        assert_eq!(JwsAlgorithm::Ps256.hash(), HashAlgorithm::Sha256);
    }
}
