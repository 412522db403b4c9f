//! `GET /account/whoami` answers, which bind the session to a user and device.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::{Secret, WhoamiRequest};
use matrix_oidc_fuzz::response;

fuzz_target!(|data: &[u8]| {
    let Ok(homeserver) = url::Url::parse("https://matrix.example.org/") else {
        return;
    };
    let Ok(request) = WhoamiRequest::new(&homeserver, &Secret::new("mat_access")) else {
        panic!("harness whoami request");
    };
    let response = response(data);
    if let Ok(whoami) = request.parse(&response) {
        let _ = whoami.check_device(
            &matrix_oidc_core::DeviceId::parse("AAABBBCCCD").unwrap_or_else(|_| unreachable!()),
        );
    }
});
