//! RSA and ECDSA on `rsa` 0.9 (`num-bigint-dig`), `p256` 0.13 and `p384` 0.13: the default, for
//! Rust 1.85.

use matrix_oidc_core::oidc::{JwsAlgorithm, MAX_RSA_BITS, VerifyError};
use p256::ecdsa::signature::Verifier as _;
use sha2::{Digest, Sha256, Sha384, Sha512};

pub(super) type RsaKey = rsa::RsaPublicKey;
pub(super) type P256Key = p256::ecdsa::VerifyingKey;
pub(super) type P384Key = p384::ecdsa::VerifyingKey;

pub(super) fn rsa_key(n: &[u8], e: &[u8]) -> Result<RsaKey, VerifyError> {
    rsa::RsaPublicKey::new_with_max_size(
        rsa::BigUint::from_bytes_be(n),
        rsa::BigUint::from_bytes_be(e),
        MAX_RSA_BITS,
    )
    .map_err(|e| VerifyError::InvalidKey {
        reason: e.to_string(),
    })
}

pub(super) fn rsa_verify(
    alg: JwsAlgorithm,
    public: &RsaKey,
    input: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    use rsa::{Pkcs1v15Sign, Pss};
    // The scheme objects of `rsa` verify a digest with a borrowed key, so the prepared key is used
    // as it is. PSS: RFC 7518 §3.5 fixes the salt length to the hash length, which `Pss::new`
    // uses.
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

pub(super) fn p256_key(sec1: &[u8]) -> Option<P256Key> {
    P256Key::from_sec1_bytes(sec1).ok()
}

pub(super) fn p384_key(sec1: &[u8]) -> Option<P384Key> {
    P384Key::from_sec1_bytes(sec1).ok()
}

pub(super) fn p256_verify(key: &P256Key, input: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| VerifyError::InvalidSignature)?;
    key.verify(input, &sig)
        .map_err(|_| VerifyError::InvalidSignature)
}

pub(super) fn p384_verify(key: &P384Key, input: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    let sig = p384::ecdsa::Signature::from_slice(sig).map_err(|_| VerifyError::InvalidSignature)?;
    key.verify(input, &sig)
        .map_err(|_| VerifyError::InvalidSignature)
}
