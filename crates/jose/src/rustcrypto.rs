//! The RustCrypto backend.

use matrix_oidc_core::oidc::{
    EcCurve, Jwk, JwkKey, JwsAlgorithm, JwsVerifier, MAX_RSA_BITS, VerifyError,
};
use p256::ecdsa::signature::Verifier as _;
use sha2::{Sha256, Sha384, Sha512};

/// JWS verification on the RustCrypto crates (`rsa`, `p256`, `p384`, `ed25519-dalek`).
///
/// Stateless and free to copy. The key object each crate needs (a big-number modulus, a
/// validated curve point) is built on a key's first use and kept with the [`Jwk`]
/// ([`Jwk::with_prepared`]), so it is built once per fetched key set rather than per token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RustCryptoVerifier;

/// A JWK as the RustCrypto crates use it.
enum Prepared {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Prepared {
    fn new(key: &JwkKey) -> Result<Self, VerifyError> {
        let invalid = |reason: &str| VerifyError::InvalidKey {
            reason: reason.to_owned(),
        };
        Ok(match key {
            JwkKey::Rsa(k) => Self::Rsa(
                rsa::RsaPublicKey::new_with_max_size(
                    rsa::BigUint::from_bytes_be(k.modulus()),
                    rsa::BigUint::from_bytes_be(k.exponent()),
                    MAX_RSA_BITS,
                )
                .map_err(|e| VerifyError::InvalidKey {
                    reason: e.to_string(),
                })?,
            ),
            JwkKey::Ec(k) => {
                let mut buf = [0u8; 97];
                let sec1 = k.write_sec1_uncompressed(&mut buf);
                match k.curve() {
                    EcCurve::P256 => Self::P256(
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
                            .map_err(|_| invalid("the P-256 point is not on the curve"))?,
                    ),
                    EcCurve::P384 => Self::P384(
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
                            .map_err(|_| invalid("the P-384 point is not on the curve"))?,
                    ),
                    _ => return Err(invalid("unsupported curve")),
                }
            }
            JwkKey::Ed25519(k) => Self::Ed25519(
                ed25519_dalek::VerifyingKey::from_bytes(k.as_bytes())
                    .map_err(|_| invalid("the Ed25519 key is not a valid point"))?,
            ),
            _ => return Err(invalid("unsupported key type")),
        })
    }
}

impl JwsVerifier for RustCryptoVerifier {
    fn supports(&self, alg: JwsAlgorithm) -> bool {
        crate::implemented(alg)
    }

    fn verify(
        &self,
        alg: JwsAlgorithm,
        key: &Jwk,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        use JwsAlgorithm as A;
        let fits = match (alg, key.key()) {
            (A::Rs256 | A::Rs384 | A::Rs512 | A::Ps256 | A::Ps384 | A::Ps512, JwkKey::Rsa(_)) => {
                true
            }
            (A::Es256, JwkKey::Ec(k)) => k.curve() == EcCurve::P256,
            (A::Es384, JwkKey::Ec(k)) => k.curve() == EcCurve::P384,
            (A::EdDsa | A::Ed25519, JwkKey::Ed25519(_)) => true,
            _ => false,
        };
        if !fits {
            return Err(if self.supports(alg) {
                VerifyError::KeyMismatch { alg }
            } else {
                VerifyError::UnsupportedAlgorithm(alg)
            });
        }
        key.with_prepared(Prepared::new, |prepared| match prepared {
            Prepared::Rsa(k) => rsa_verify(alg, k, signing_input, signature),
            Prepared::P256(k) => p256_verify(k, signing_input, signature),
            Prepared::P384(k) => p384_verify(k, signing_input, signature),
            Prepared::Ed25519(k) => ed25519_verify(k, signing_input, signature),
        })?
    }
}

fn rsa_verify(
    alg: JwsAlgorithm,
    public: &rsa::RsaPublicKey,
    input: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    use rsa::{Pkcs1v15Sign, Pss};
    use sha2::Digest;
    // The scheme objects of `rsa` verify a digest with a borrowed key, so the prepared key is used
    // as it is. PSS: RFC 7518 §3.5 fixes the salt length to the hash length, which `Pss::new`
    // requires.
    let result = match alg {
        JwsAlgorithm::Rs256 => {
            public.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(input), sig)
        }
        JwsAlgorithm::Rs384 => {
            public.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(input), sig)
        }
        JwsAlgorithm::Rs512 => {
            public.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(input), sig)
        }
        JwsAlgorithm::Ps256 => public.verify(Pss::new::<Sha256>(), &Sha256::digest(input), sig),
        JwsAlgorithm::Ps384 => public.verify(Pss::new::<Sha384>(), &Sha384::digest(input), sig),
        JwsAlgorithm::Ps512 => public.verify(Pss::new::<Sha512>(), &Sha512::digest(input), sig),
        _ => return Err(VerifyError::KeyMismatch { alg }),
    };
    result.map_err(|_| VerifyError::InvalidSignature)
}

fn p256_verify(
    key: &p256::ecdsa::VerifyingKey,
    input: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| VerifyError::InvalidSignature)?;
    key.verify(input, &sig)
        .map_err(|_| VerifyError::InvalidSignature)
}

fn p384_verify(
    key: &p384::ecdsa::VerifyingKey,
    input: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    let sig = p384::ecdsa::Signature::from_slice(sig).map_err(|_| VerifyError::InvalidSignature)?;
    key.verify(input, &sig)
        .map_err(|_| VerifyError::InvalidSignature)
}

fn ed25519_verify(
    key: &ed25519_dalek::VerifyingKey,
    input: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    let sig: [u8; 64] = sig.try_into().map_err(|_| VerifyError::InvalidSignature)?;
    // `verify_strict` also refuses small-order keys and non-canonical signatures, which no honest
    // signer produces.
    key.verify_strict(input, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| VerifyError::InvalidSignature)
}
