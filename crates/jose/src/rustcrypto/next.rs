//! RSA and ECDSA on `rsa` 0.10 (`crypto-bigint`, Montgomery parameters computed once per key),
//! `p256` 0.14 and `p384` 0.14 (feature `rustcrypto-next`, Rust 1.87).

use matrix_oidc_core::oidc::{JwsAlgorithm, MAX_RSA_BITS, MIN_RSA_BITS, VerifyError};
use p256_next::ecdsa::signature::Verifier as _;
use sha2_next::{Digest, Sha256, Sha384, Sha512};

pub(super) type RsaKey = rsa_next::PublicKey;
pub(super) type P256Key = p256_next::ecdsa::VerifyingKey;
pub(super) type P384Key = p384_next::ecdsa::VerifyingKey;

pub(super) fn rsa_key(n: &[u8], e: &[u8]) -> Result<RsaKey, VerifyError> {
    use rsa_next::BoxedUint;
    // The JWK layer already bounds the modulus (2048–8192 bits, odd) and the exponent; the
    // variable-time conversions are fine for public values.
    rsa_next::PublicKey::new_with_size_limits(
        BoxedUint::from_be_slice_vartime(n),
        BoxedUint::from_be_slice_vartime(e),
        MIN_RSA_BITS..=MAX_RSA_BITS,
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
    use rsa_next::{Pkcs1v15Sign, Pss};
    // PSS: RFC 7518 §3.5 fixes the salt length to the hash length, which `Pss::new` uses.
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
        JwsAlgorithm::Ps256 => public.verify(Pss::<Sha256>::new(), &Sha256::digest(input), sig),
        JwsAlgorithm::Ps384 => public.verify(Pss::<Sha384>::new(), &Sha384::digest(input), sig),
        JwsAlgorithm::Ps512 => public.verify(Pss::<Sha512>::new(), &Sha512::digest(input), sig),
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
    let sig =
        p256_next::ecdsa::Signature::from_slice(sig).map_err(|_| VerifyError::InvalidSignature)?;
    key.verify(input, &sig)
        .map_err(|_| VerifyError::InvalidSignature)
}

pub(super) fn p384_verify(key: &P384Key, input: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    let sig =
        p384_next::ecdsa::Signature::from_slice(sig).map_err(|_| VerifyError::InvalidSignature)?;
    key.verify(input, &sig)
        .map_err(|_| VerifyError::InvalidSignature)
}
