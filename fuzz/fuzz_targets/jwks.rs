//! JWK Sets (`jwks_uri` answers): keys are read, checked and the unusable ones set aside; each usable
//! key is then offered to both verifiers (which must refuse a garbage signature without panicking).
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::oidc::{Jwk, JwkSet, JwsAlgorithm, JwsVerifier, MAX_KEYS_PER_SET};
use matrix_oidc_jose::RustCryptoVerifier;

fuzz_target!(|data: &[u8]| {
    let _ = Jwk::from_json(data);
    let Ok(set) = JwkSet::from_json(data) else {
        return;
    };
    assert!(set.keys().len() <= MAX_KEYS_PER_SET);
    for key in set.keys().iter().take(4) {
        for alg in JwsAlgorithm::ALL {
            if key.check_usable_for(alg).is_ok() && RustCryptoVerifier.supports(alg) {
                assert!(
                    RustCryptoVerifier
                        .verify(alg, key, b"a.b", &[0u8; 64])
                        .is_err()
                );
            }
        }
        let round_trip = Jwk::from_value(key.to_value());
        assert!(
            round_trip.is_ok(),
            "a key that was read must read back: {round_trip:?}"
        );
    }
});
