//! The RustCrypto backend.

use matrix_oidc_core::oidc::{EcCurve, Jwk, JwkKey, JwsAlgorithm, JwsVerifier, VerifyError};

/// JWS verification on the RustCrypto crates (`rsa`, `p256`, `p384`, `ed25519-dalek`).
///
/// Stateless and free to copy. The key object each crate needs (a big-number modulus, a
/// validated curve point) is built on a key's first use and kept with the [`Jwk`]
/// ([`Jwk::with_prepared`]), so it is built once per fetched key set rather than per token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RustCryptoVerifier;

// The RSA and ECDSA primitives come from one of two generations of the RustCrypto crates: `rsa`
// 0.9 / `p256` 0.13 / `p384` 0.13 by default, `rsa` 0.10 / `p256` 0.14 / `p384` 0.14 with the
// feature `rustcrypto-next` (see the crate docs). Each module has the same items.
#[cfg(not(feature = "rustcrypto-next"))]
#[path = "rustcrypto/current.rs"]
mod primitives;
#[cfg(feature = "rustcrypto-next")]
#[path = "rustcrypto/next.rs"]
mod primitives;

/// A JWK as the RustCrypto crates use it.
enum Prepared {
    Rsa(primitives::RsaKey),
    P256(primitives::P256Key),
    P384(primitives::P384Key),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Prepared {
    fn new(key: &JwkKey) -> Result<Self, VerifyError> {
        let invalid = |reason: &str| VerifyError::InvalidKey {
            reason: reason.to_owned(),
        };
        Ok(match key {
            JwkKey::Rsa(k) => Self::Rsa(primitives::rsa_key(k.modulus(), k.exponent())?),
            JwkKey::Ec(k) => {
                let mut buf = [0u8; 97];
                let sec1 = k.write_sec1_uncompressed(&mut buf);
                match k.curve() {
                    EcCurve::P256 => Self::P256(
                        primitives::p256_key(sec1)
                            .ok_or_else(|| invalid("the P-256 point is not on the curve"))?,
                    ),
                    EcCurve::P384 => Self::P384(
                        primitives::p384_key(sec1)
                            .ok_or_else(|| invalid("the P-384 point is not on the curve"))?,
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
            Prepared::Rsa(k) => primitives::rsa_verify(alg, k, signing_input, signature),
            Prepared::P256(k) => primitives::p256_verify(k, signing_input, signature),
            Prepared::P384(k) => primitives::p384_verify(k, signing_input, signature),
            Prepared::Ed25519(k) => ed25519_verify(k, signing_input, signature),
        })?
    }
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
