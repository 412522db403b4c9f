//! Authorization server metadata (`auth_metadata`, `openid-configuration`): the JSON envelope checks
//! and the parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::AuthorizationServerMetadata;
use matrix_oidc_core::http::{Expectations, check_json};

fuzz_target!(|data: &[u8]| {
    let response = matrix_oidc_fuzz::response(data);
    let parsed = check_json::<AuthorizationServerMetadata, _>(
        &response,
        &Expectations::json(),
        &[200],
        false,
    );
    if let Ok(m) = parsed {
        let _ = m.supports_device_grant();
    }
});
