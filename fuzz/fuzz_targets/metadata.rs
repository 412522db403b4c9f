//! Authorization server metadata (`auth_metadata`, `openid-configuration`): parse and validation under
//! each profile, and the Matrix discovery state machine fed the fuzzed document as its answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::discovery::{DiscoveryOptions, MatrixDiscovery, Step};
use matrix_oidc_core::metadata::{MetadataError, Profile, ValidationOptions};
use matrix_oidc_core::{AuthorizationServerMetadata, Timestamp};
use matrix_oidc_fuzz::response;

fuzz_target!(|data: &[u8]| {
    let issuer = url::Url::parse("https://auth.example.org/").ok();
    let value = serde_json::from_slice::<serde_json::Value>(data);
    for options in [ValidationOptions::matrix(), ValidationOptions::oauth()] {
        let read = AuthorizationServerMetadata::from_json(data, &options, issuer.as_ref());
        // `from_json` reads the bytes itself; it must answer exactly as parsing a `Value` first
        // (what it did before) and validating that, unknown members and first problem included.
        let through_value = match &value {
            Ok(v) => {
                AuthorizationServerMetadata::from_json_value(v.clone(), &options, issuer.as_ref())
            }
            Err(e) => Err(MetadataError::NotAnObject {
                reason: e.to_string(),
            }),
        };
        assert_eq!(read, through_value);
        match read {
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
    if let Ok(value) = value {
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
