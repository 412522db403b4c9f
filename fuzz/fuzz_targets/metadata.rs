//! Authorization server metadata (`auth_metadata`, `openid-configuration`): parse and validation under
//! each profile, and the Matrix discovery state machine fed the fuzzed document as its answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::discovery::{DiscoveryOptions, MatrixDiscovery, Step};
use matrix_oidc_core::metadata::{Profile, ValidationOptions};
use matrix_oidc_core::{AuthorizationServerMetadata, Timestamp};
use matrix_oidc_fuzz::response;

fuzz_target!(|data: &[u8]| {
    let issuer = url::Url::parse("https://auth.example.org/").ok();
    for options in [ValidationOptions::matrix(), ValidationOptions::oauth()] {
        match AuthorizationServerMetadata::from_json(data, &options, issuer.as_ref()) {
            Ok(m) => {
                // What validation accepted, it accepts again (a stored copy is re-validated).
                assert!(m.validate(&options, issuer.as_ref()).is_ok());
                if options.profile == Profile::Matrix {
                    assert!(m.supports_pkce_s256());
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    if let Ok(value) = serde_json::from_slice(data) {
        let _ = AuthorizationServerMetadata::diagnose(value, &ValidationOptions::matrix(), None);
    }

    // The same bytes as the homeserver's answer to each step of Matrix discovery.
    let Ok(homeserver) = url::Url::parse("https://matrix.example.org/") else {
        return;
    };
    let Ok(mut discovery) = MatrixDiscovery::new(&homeserver, DiscoveryOptions::default()) else {
        return;
    };
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    let mut step = discovery.start();
    for _ in 0..4 {
        match step {
            Ok(Step::Send(_)) => step = discovery.handle_response(&response(data), now),
            Ok(Step::Done(done)) => {
                assert!(
                    done.metadata
                        .validate(&ValidationOptions::matrix(), None)
                        .is_ok()
                );
                break;
            }
            Err(_) => break,
        }
    }
});
