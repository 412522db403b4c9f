//! The RustCrypto backend.

use matrix_oidc_core::oidc::{
    EcCurve, EcPublicKey, Ed25519PublicKey, Jwk, JwkKey, JwsAlgorithm, JwsVerifier, MAX_RSA_BITS,
    RsaPublicKey, VerifyError,
};
use rsa::signature::Verifier as _;
use sha2::{Sha256, Sha384, Sha512};

/// JWS verification on the RustCrypto crates (`rsa`, `p256`, `p384`, `ed25519-dalek`).
///
/// Stateless and free to copy; keys are built from the JWK on each call, which costs little next
/// to the verification itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RustCryptoVerifier;

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
        match (alg, key.key()) {
            (A::Rs256 | A::Rs384 | A::Rs512 | A::Ps256 | A::Ps384 | A::Ps512, JwkKey::Rsa(k)) => {
                rsa_verify(alg, k, signing_input, signature)
            }
            (A::Es256, JwkKey::Ec(k)) if k.curve() == EcCurve::P256 => {
                p256_verify(k, signing_input, signature)
            }
            (A::Es384, JwkKey::Ec(k)) if k.curve() == EcCurve::P384 => {
                p384_verify(k, signing_input, signature)
            }
            (A::EdDsa | A::Ed25519, JwkKey::Ed25519(k)) => {
                ed25519_verify(k, signing_input, signature)
            }
            _ if !self.supports(alg) => Err(VerifyError::UnsupportedAlgorithm(alg)),
            _ => Err(VerifyError::KeyMismatch { alg }),
        }
    }
}

fn rsa_verify(
    alg: JwsAlgorithm,
    key: &RsaPublicKey,
    input: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    use rsa::{pkcs1v15, pss};
    let public = rsa::RsaPublicKey::new_with_max_size(
        rsa::BigUint::from_bytes_be(key.modulus()),
        rsa::BigUint::from_bytes_be(key.exponent()),
        MAX_RSA_BITS,
    )
    .map_err(|e| VerifyError::InvalidKey {
        reason: e.to_string(),
    })?;
    let bad = |_| VerifyError::InvalidSignature;
    match alg {
        JwsAlgorithm::Rs256 | JwsAlgorithm::Rs384 | JwsAlgorithm::Rs512 => {
            let sig = pkcs1v15::Signature::try_from(sig).map_err(bad)?;
            match alg {
                JwsAlgorithm::Rs256 => {
                    pkcs1v15::VerifyingKey::<Sha256>::new(public).verify(input, &sig)
                }
                JwsAlgorithm::Rs384 => {
                    pkcs1v15::VerifyingKey::<Sha384>::new(public).verify(input, &sig)
                }
                _ => pkcs1v15::VerifyingKey::<Sha512>::new(public).verify(input, &sig),
            }
            .map_err(bad)
        }
        _ => {
            // RFC 7518 §3.5: the salt is as long as the hash; `VerifyingKey::new` requires that.
            let sig = pss::Signature::try_from(sig).map_err(bad)?;
            match alg {
                JwsAlgorithm::Ps256 => pss::VerifyingKey::<Sha256>::new(public).verify(input, &sig),
                JwsAlgorithm::Ps384 => pss::VerifyingKey::<Sha384>::new(public).verify(input, &sig),
                _ => pss::VerifyingKey::<Sha512>::new(public).verify(input, &sig),
            }
            .map_err(bad)
        }
    }
}

fn p256_verify(key: &EcPublicKey, input: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    use p256::ecdsa::{Signature, VerifyingKey};
    let mut buf = [0u8; 97];
    let vk =
        VerifyingKey::from_sec1_bytes(key.write_sec1_uncompressed(&mut buf)).map_err(|_| {
            VerifyError::InvalidKey {
                reason: "the P-256 point is not on the curve".to_owned(),
            }
        })?;
    let sig = Signature::from_slice(sig).map_err(|_| VerifyError::InvalidSignature)?;
    vk.verify(input, &sig)
        .map_err(|_| VerifyError::InvalidSignature)
}

fn p384_verify(key: &EcPublicKey, input: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    use p384::ecdsa::{Signature, VerifyingKey};
    let mut buf = [0u8; 97];
    let vk =
        VerifyingKey::from_sec1_bytes(key.write_sec1_uncompressed(&mut buf)).map_err(|_| {
            VerifyError::InvalidKey {
                reason: "the P-384 point is not on the curve".to_owned(),
            }
        })?;
    let sig = Signature::from_slice(sig).map_err(|_| VerifyError::InvalidSignature)?;
    vk.verify(input, &sig)
        .map_err(|_| VerifyError::InvalidSignature)
}

fn ed25519_verify(key: &Ed25519PublicKey, input: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes()).map_err(|_| {
        VerifyError::InvalidKey {
            reason: "the Ed25519 key is not a valid point".to_owned(),
        }
    })?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| VerifyError::InvalidSignature)?;
    // `verify_strict` also refuses small-order keys and non-canonical signatures, which no honest
    // signer produces.
    vk.verify_strict(input, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| VerifyError::InvalidSignature)
}
