//! The contract every `JwsVerifier` backend must meet, run against each backend: signatures made
//! with freshly generated keys verify for every algorithm, and any change to input, signature,
//! key or algorithm makes them fail — without panicking.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use matrix_oidc_core::oidc::{JwsAlgorithm, VerifyError};

const INPUT: &[u8] = b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0In0";

fn every_algorithm_round_trips(v: Verifier<'_>) {
    for alg in JwsAlgorithm::ALL {
        assert!(v.supports(alg), "{alg}");
        let signer = Signer::for_alg(alg, 1, "k");
        let sig = signer.sign(alg, INPUT);
        assert_eq!(v.verify(alg, &signer.jwk, INPUT, &sig), Ok(()), "{alg}");

        let mut input = INPUT.to_vec();
        input[3] ^= 0x20;
        assert_eq!(
            v.verify(alg, &signer.jwk, &input, &sig),
            Err(VerifyError::InvalidSignature),
            "{alg}: altered input"
        );
        for i in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                v.verify(alg, &signer.jwk, INPUT, &bad),
                Err(VerifyError::InvalidSignature),
                "{alg}: altered signature byte {i}"
            );
        }
        let other = Signer::for_alg(alg, 2, "k");
        assert_eq!(
            v.verify(alg, &other.jwk, INPUT, &sig),
            Err(VerifyError::InvalidSignature),
            "{alg}: another key"
        );
    }
}

fn rsa_paddings_and_hashes_are_not_interchangeable(v: Verifier<'_>) {
    use JwsAlgorithm as A;
    let signer = Signer::rsa(1, "k");
    let rsa_algs = [A::Rs256, A::Rs384, A::Rs512, A::Ps256, A::Ps384, A::Ps512];
    for signed in rsa_algs {
        let sig = signer.sign(signed, INPUT);
        for checked in rsa_algs {
            let r = v.verify(checked, &signer.jwk, INPUT, &sig);
            if signed == checked {
                assert_eq!(r, Ok(()));
            } else {
                assert_eq!(
                    r,
                    Err(VerifyError::InvalidSignature),
                    "{signed} as {checked}"
                );
            }
        }
    }
}

fn keys_of_the_wrong_type_are_refused(v: Verifier<'_>) {
    use JwsAlgorithm as A;
    let rsa = Signer::rsa(1, "r");
    let p256 = Signer::p256(1, "e");
    let p384 = Signer::p384(1, "f");
    let ed = Signer::ed25519(1, "o");
    let cases = [
        (A::Es256, &rsa),
        (A::Es256, &p384),
        (A::Es384, &p256),
        (A::Rs256, &p256),
        (A::Ps256, &ed),
        (A::EdDsa, &p256),
        (A::Ed25519, &rsa),
    ];
    for (alg, signer) in cases {
        assert_eq!(
            v.verify(alg, &signer.jwk, INPUT, &[0u8; 64]),
            Err(VerifyError::KeyMismatch { alg }),
            "{alg} with {:?}",
            signer.jwk
        );
    }
}

fn malformed_signatures_never_panic(v: Verifier<'_>) {
    for alg in JwsAlgorithm::ALL {
        let signer = Signer::for_alg(alg, 3, "k");
        let good = signer.sign(alg, INPUT);
        let candidates: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0],
            vec![0; good.len()],
            vec![0xff; good.len()],
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0]].concat(),
            vec![0xff; 1024],
        ];
        for sig in candidates {
            assert!(
                v.verify(alg, &signer.jwk, INPUT, &sig).is_err(),
                "{alg}: {} bytes accepted",
                sig.len()
            );
        }
    }
}

for_each_backend!(
    every_algorithm_round_trips,
    rsa_paddings_and_hashes_are_not_interchangeable,
    keys_of_the_wrong_type_are_refused,
    malformed_signatures_never_panic,
);

#[cfg(feature = "ring")]
#[test]
fn the_backends_agree() {
    use matrix_oidc_core::oidc::JwsVerifier as _;
    use matrix_oidc_jose::{RingVerifier, RustCryptoVerifier};
    for alg in JwsAlgorithm::ALL {
        let signer = Signer::for_alg(alg, 5, "k");
        let sig = signer.sign(alg, INPUT);
        for input in [INPUT, b"other input".as_slice()] {
            assert_eq!(
                RustCryptoVerifier.verify(alg, &signer.jwk, input, &sig),
                RingVerifier.verify(alg, &signer.jwk, input, &sig),
                "{alg}"
            );
        }
    }
}
