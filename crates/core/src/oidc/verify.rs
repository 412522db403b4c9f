//! The pluggable signature check ([`JwsVerifier`]) and the algorithm-and-key decision around it.
//!
//! The order matters and is the defence against algorithm confusion:
//!
//! ```text
//!   header.alg ──► none?  HMAC?  unknown?  not allowed by the RP?  ──► refuse
//!        │
//!        ▼ (one of the RP's allowed asymmetric algorithms)
//!   keys = trusted set ∩ kid ∩ key type/curve ∩ key.alg ∩ use/key_ops
//!        │            (empty ⇒ NoMatchingKey: the cache may refetch once)
//!        ▼
//!   verifier.verify(alg, key, signing input, signature), keys tried in document order
//! ```
//!
//! The header only ever *selects among* algorithms and keys the relying party already trusts; a
//! symmetric algorithm never reaches a verifier, so an RSA public key can never be used as an HMAC
//! secret.

use super::alg::{AlgClass, JwsAlgorithm, classify};
use super::json::short;
use super::jwk::{Jwk, JwkSet, KeyMismatch};
use super::jws::CompactJws;

/// A signature backend: RustCrypto (`matrix-oidc-jose`, the default), a native library, a hardware
/// module, WebCrypto behind a synchronous facade…
///
/// The caller has already checked that `key` fits `alg` (type, curve, `alg`, `use`, `key_ops`) and
/// that fixed-size signatures have the right length, so an implementation only maps the key and
/// runs the primitive. It must not panic on any input.
pub trait JwsVerifier {
    /// Whether this backend implements `alg`.
    fn supports(&self, alg: JwsAlgorithm) -> bool;

    /// Checks that `signature` is a valid `alg` signature of `signing_input` under `key`.
    fn verify(
        &self,
        alg: JwsAlgorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError>;
}

impl<V: JwsVerifier + ?Sized> JwsVerifier for &V {
    fn supports(&self, alg: JwsAlgorithm) -> bool {
        (**self).supports(alg)
    }
    fn verify(
        &self,
        alg: JwsAlgorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        (**self).verify(alg, key, signing_input, signature)
    }
}

/// What a [`JwsVerifier`] reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature does not verify.
    #[error("the signature does not verify")]
    InvalidSignature,
    /// The backend does not implement this algorithm.
    #[error("the verifier does not implement {0}")]
    UnsupportedAlgorithm(JwsAlgorithm),
    /// The key does not fit the algorithm (a backend's own double check).
    #[error("the key does not fit {alg}")]
    KeyMismatch {
        /// The algorithm.
        alg: JwsAlgorithm,
    },
    /// The key is malformed for the backend (e.g. an EC point not on the curve).
    #[error("the key cannot be used: {reason}")]
    InvalidKey {
        /// Why.
        reason: String,
    },
}

/// Why a JWS signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// `alg: none`: an unsecured JWS.
    #[error("the token is unsigned (`alg: none`)")]
    Unsecured,
    /// An HMAC algorithm, which is never accepted for tokens from a provider with public keys
    /// (this is what stops "an RSA public key used as an HMAC secret").
    #[error("the token uses the symmetric algorithm `{alg}`, which is refused")]
    SymmetricAlgorithm {
        /// The `alg` value.
        alg: String,
    },
    /// An algorithm this crate does not implement.
    #[error("the token uses the unsupported algorithm `{alg}`")]
    UnsupportedAlgorithm {
        /// The `alg` value.
        alg: String,
    },
    /// A supported algorithm that the relying party does not accept for this token.
    #[error("the token is signed with {alg}, but only {allowed:?} are accepted")]
    AlgorithmNotAllowed {
        /// The token's algorithm.
        alg: JwsAlgorithm,
        /// The accepted ones.
        allowed: Vec<JwsAlgorithm>,
    },
    /// The verifier in use does not implement the algorithm.
    #[error("the configured verifier does not implement {alg}")]
    AlgorithmNotImplemented {
        /// The algorithm.
        alg: JwsAlgorithm,
    },
    /// No trusted key has the token's `kid` (or, without `kid`, none fits the algorithm). After a
    /// key rotation a refetch of the key set may help.
    #[error("no trusted key matches kid {kid:?} for {alg}")]
    NoMatchingKey {
        /// The token's `kid`.
        kid: Option<String>,
        /// The algorithm.
        alg: JwsAlgorithm,
    },
    /// Keys with the token's `kid` exist but cannot verify this algorithm (wrong key type, curve,
    /// pinned `alg` or usage).
    #[error("the key {kid:?} cannot verify this token: {mismatch}")]
    IncompatibleKey {
        /// The `kid`.
        kid: String,
        /// Why the (first) key with that id does not fit.
        mismatch: KeyMismatch,
    },
    /// A fixed-size signature (ECDSA, Ed25519) or an RSA signature of the wrong length.
    #[error("the signature is {found} bytes, {alg} signatures with this key are {expected}")]
    SignatureLength {
        /// The algorithm.
        alg: JwsAlgorithm,
        /// The length required.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// The signature does not verify under any candidate key.
    #[error("the signature does not verify ({tried} key(s) tried)")]
    BadSignature {
        /// How many keys were tried.
        tried: usize,
    },
    /// The verifier failed for another reason (e.g. an EC key not on its curve).
    #[error("the verifier rejected the key: {0}")]
    Verifier(VerifyError),
}

impl SignatureError {
    /// Whether refetching the key set might help (a key rotation the cache has not seen yet).
    pub fn is_unknown_key(&self) -> bool {
        matches!(self, SignatureError::NoMatchingKey { .. })
    }
}

/// Decides the algorithm of `jws` from the relying party's `allowed` list: the header may only
/// name one of them.
pub fn check_algorithm(
    header_alg: &str,
    allowed: &[JwsAlgorithm],
) -> Result<JwsAlgorithm, SignatureError> {
    match classify(header_alg) {
        AlgClass::Unsecured => Err(SignatureError::Unsecured),
        AlgClass::Symmetric => Err(SignatureError::SymmetricAlgorithm {
            alg: short(header_alg),
        }),
        AlgClass::Unsupported => Err(SignatureError::UnsupportedAlgorithm {
            alg: short(header_alg),
        }),
        AlgClass::Asymmetric(alg) if allowed.contains(&alg) => Ok(alg),
        AlgClass::Asymmetric(alg) => Err(SignatureError::AlgorithmNotAllowed {
            alg,
            allowed: allowed.to_vec(),
        }),
    }
}

/// Verifies the signature of `jws` with a key from `keys`, accepting only `allowed` algorithms.
/// Returns the algorithm and the key that verified.
///
/// Candidate keys are those with the header's `kid` (all keys when there is none) that fit the
/// algorithm; they are tried in document order and the first that verifies wins, so duplicate
/// `kid`s resolve the same way every time.
pub fn verify_jws<'k>(
    jws: &CompactJws<'_>,
    keys: &'k JwkSet,
    allowed: &[JwsAlgorithm],
    verifier: &dyn JwsVerifier,
) -> Result<(JwsAlgorithm, &'k Jwk), SignatureError> {
    let header = jws.header();
    let alg = check_algorithm(&header.alg, allowed)?;
    if !verifier.supports(alg) {
        return Err(SignatureError::AlgorithmNotImplemented { alg });
    }
    if let Some(expected) = alg.fixed_signature_len() {
        if jws.signature().len() != expected {
            return Err(SignatureError::SignatureLength {
                alg,
                expected,
                found: jws.signature().len(),
            });
        }
    }
    let kid = header.kid.as_deref();
    let mut first_mismatch = None;
    let mut any_with_kid = false;
    let mut tried = 0;
    let mut rejected = 0;
    let mut backend_error = None;
    let mut length_error = None;
    for key in keys.keys() {
        if kid.is_some() && key.kid() != kid {
            continue;
        }
        any_with_kid = true;
        if let Err(m) = key.check_usable_for(alg) {
            first_mismatch.get_or_insert(m);
            continue;
        }
        if let super::jwk::JwkKey::Rsa(rsa) = key.key() {
            if jws.signature().len() != rsa.modulus().len() {
                length_error.get_or_insert(SignatureError::SignatureLength {
                    alg,
                    expected: rsa.modulus().len(),
                    found: jws.signature().len(),
                });
                continue;
            }
        }
        tried += 1;
        match verifier.verify(alg, key, jws.signing_input(), jws.signature()) {
            Ok(()) => return Ok((alg, key)),
            Err(VerifyError::InvalidSignature) => rejected += 1,
            Err(e) => {
                backend_error.get_or_insert(SignatureError::Verifier(e));
            }
        }
    }
    if rejected > 0 {
        return Err(SignatureError::BadSignature { tried });
    }
    if let Some(e) = backend_error.or(length_error) {
        return Err(e);
    }
    match (kid, first_mismatch) {
        (Some(kid), Some(mismatch)) if any_with_kid => Err(SignatureError::IncompatibleKey {
            kid: short(kid),
            mismatch,
        }),
        _ => Err(SignatureError::NoMatchingKey {
            kid: kid.map(short),
            alg,
        }),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A stand-in verifier for the core's own tests: a "signature" is SHA-256 over a key
    //! fingerprint and the signing input, padded to the algorithm's length. It has the shape of a
    //! real backend (keys, lengths, failures) without pulling crypto into the core.

    use super::*;
    use crate::oidc::jwk::JwkKey;
    use sha2::{Digest, Sha256};

    pub(crate) struct FakeVerifier {
        pub(crate) algorithms: Vec<JwsAlgorithm>,
    }

    impl Default for FakeVerifier {
        fn default() -> Self {
            Self {
                algorithms: JwsAlgorithm::ALL.to_vec(),
            }
        }
    }

    pub(crate) fn fingerprint(key: &Jwk) -> Vec<u8> {
        match key.key() {
            JwkKey::Rsa(k) => k.modulus().to_vec(),
            JwkKey::Ec(k) => k.x().to_vec(),
            JwkKey::Ed25519(k) => k.as_bytes().to_vec(),
        }
    }

    pub(crate) fn fake_sign(alg: JwsAlgorithm, key: &Jwk, input: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(alg.as_str().as_bytes());
        h.update(fingerprint(key));
        h.update(input);
        let digest = h.finalize();
        let len = match key.key() {
            JwkKey::Rsa(k) => k.modulus().len(),
            _ => alg.fixed_signature_len().unwrap_or(64),
        };
        digest.iter().copied().cycle().take(len).collect()
    }

    impl JwsVerifier for FakeVerifier {
        fn supports(&self, alg: JwsAlgorithm) -> bool {
            self.algorithms.contains(&alg)
        }
        fn verify(
            &self,
            alg: JwsAlgorithm,
            key: &Jwk,
            input: &[u8],
            signature: &[u8],
        ) -> Result<(), VerifyError> {
            if fake_sign(alg, key, input) == signature {
                Ok(())
            } else {
                Err(VerifyError::InvalidSignature)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::oidc::jwk::{EcCurve, JwkSet};
    use crate::oidc::jws::encode;

    fn ed(seed: u8, kid: &str) -> Jwk {
        Jwk::ed25519(&[seed; 32]).unwrap().with_kid(kid)
    }

    fn p256(seed: u8, kid: &str) -> Jwk {
        Jwk::ec(EcCurve::P256, &[seed; 32], &[seed; 32])
            .unwrap()
            .with_kid(kid)
    }

    fn signed(alg: &str, kid: Option<&str>, key: &Jwk) -> String {
        let header = match kid {
            Some(k) => format!(r#"{{"alg":"{alg}","kid":"{k}"}}"#),
            None => format!(r#"{{"alg":"{alg}"}}"#),
        };
        let input = format!("{}.{}", encode(header.as_bytes()), encode(b"{}"));
        let a = JwsAlgorithm::from_name(alg).unwrap_or(JwsAlgorithm::EdDsa);
        let sig = fake_sign(a, key, input.as_bytes());
        format!("{input}.{}", encode(&sig))
    }

    fn check(token: &str, set: &JwkSet, allowed: &[JwsAlgorithm]) -> Result<Jwk, SignatureError> {
        let jws = CompactJws::parse(token).unwrap();
        verify_jws(&jws, set, allowed, &FakeVerifier::default()).map(|(_, k)| k.clone())
    }

    const ALL: &[JwsAlgorithm] = &JwsAlgorithm::ALL;

    #[test]
    fn selects_by_kid_and_type() {
        let (a, b) = (ed(1, "a"), ed(2, "b"));
        let set = JwkSet::from_keys(vec![a.clone(), b.clone()]);
        assert_eq!(
            check(&signed("EdDSA", Some("b"), &b), &set, ALL),
            Ok(b.clone())
        );
        // Without kid every fitting key is tried.
        assert_eq!(check(&signed("EdDSA", None, &b), &set, ALL), Ok(b.clone()));
        // Signed by b but labelled a: a is the only candidate, and it does not verify.
        assert_eq!(
            check(&signed("EdDSA", Some("a"), &b), &set, ALL),
            Err(SignatureError::BadSignature { tried: 1 })
        );
    }

    #[test]
    fn duplicate_kids_resolve_deterministically() {
        // Same kid for an EC and an Ed25519 key: the algorithm picks the key type.
        let (e, o) = (p256(3, "dup"), ed(4, "dup"));
        let set = JwkSet::from_keys(vec![e.clone(), o.clone()]);
        assert_eq!(
            check(&signed("ES256", Some("dup"), &e), &set, ALL),
            Ok(e.clone())
        );
        assert_eq!(
            check(&signed("EdDSA", Some("dup"), &o), &set, ALL),
            Ok(o.clone())
        );
        // Two keys of one type under one kid: tried in document order, the signer wins.
        let (o1, o2) = (ed(5, "same"), ed(6, "same"));
        let set = JwkSet::from_keys(vec![o1.clone(), o2.clone()]);
        assert_eq!(
            check(&signed("EdDSA", Some("same"), &o2), &set, ALL),
            Ok(o2)
        );
        assert_eq!(
            check(&signed("EdDSA", Some("same"), &ed(7, "x")), &set, ALL),
            Err(SignatureError::BadSignature { tried: 2 })
        );
    }

    #[test]
    fn unknown_and_incompatible_keys() {
        let e = p256(3, "ec");
        let set = JwkSet::from_keys(vec![e.clone()]);
        let err = check(&signed("EdDSA", Some("new"), &ed(1, "new")), &set, ALL).unwrap_err();
        assert!(err.is_unknown_key(), "{err:?}");
        let err = check(&signed("EdDSA", Some("ec"), &ed(1, "ec")), &set, ALL).unwrap_err();
        assert!(
            matches!(&err, SignatureError::IncompatibleKey { kid, mismatch: KeyMismatch::KeyType { .. } } if kid == "ec"),
            "{err:?}"
        );
        assert!(!err.is_unknown_key());
        let err = check(&signed("EdDSA", None, &ed(1, "x")), &set, ALL).unwrap_err();
        assert_eq!(
            err,
            SignatureError::NoMatchingKey {
                kid: None,
                alg: JwsAlgorithm::EdDsa
            }
        );
    }

    #[test]
    fn algorithm_policy_comes_first() {
        let o = ed(1, "a");
        let set = JwkSet::from_keys(vec![o.clone()]);
        let t = signed("EdDSA", Some("a"), &o);
        assert_eq!(
            check(&t, &set, &[JwsAlgorithm::Rs256]),
            Err(SignatureError::AlgorithmNotAllowed {
                alg: JwsAlgorithm::EdDsa,
                allowed: vec![JwsAlgorithm::Rs256]
            })
        );
        let none = format!("{}.{}.", encode(br#"{"alg":"none"}"#), encode(b"{}"));
        // An empty signature is a parse error; a forged one still meets the policy first.
        let none = format!("{none}AAAA");
        assert_eq!(check(&none, &set, ALL), Err(SignatureError::Unsecured));
        let hs = format!("{}.{}.AAAA", encode(br#"{"alg":"HS256"}"#), encode(b"{}"));
        assert!(matches!(
            check(&hs, &set, ALL),
            Err(SignatureError::SymmetricAlgorithm { .. })
        ));
        let es512 = format!("{}.{}.AAAA", encode(br#"{"alg":"ES512"}"#), encode(b"{}"));
        assert!(matches!(
            check(&es512, &set, ALL),
            Err(SignatureError::UnsupportedAlgorithm { .. })
        ));
        let jws = CompactJws::parse(&t).unwrap();
        let limited = FakeVerifier {
            algorithms: vec![JwsAlgorithm::Rs256],
        };
        assert_eq!(
            verify_jws(&jws, &set, ALL, &limited).unwrap_err(),
            SignatureError::AlgorithmNotImplemented {
                alg: JwsAlgorithm::EdDsa
            }
        );
    }

    #[test]
    fn signature_lengths_are_checked_before_the_backend() {
        let o = ed(1, "a");
        let set = JwkSet::from_keys(vec![o]);
        let t = format!("{}.{}.AAAA", encode(br#"{"alg":"EdDSA"}"#), encode(b"{}"));
        assert_eq!(
            check(&t, &set, ALL),
            Err(SignatureError::SignatureLength {
                alg: JwsAlgorithm::EdDsa,
                expected: 64,
                found: 3
            })
        );
        let mut n = vec![0xc3u8; 256];
        n[255] |= 1;
        let rsa = Jwk::rsa(&n, &[1, 0, 1]).unwrap();
        let set = JwkSet::from_keys(vec![rsa]);
        let t = format!("{}.{}.AAAA", encode(br#"{"alg":"RS256"}"#), encode(b"{}"));
        assert!(matches!(
            check(&t, &set, ALL),
            Err(SignatureError::SignatureLength { expected: 256, .. })
        ));
    }
}
