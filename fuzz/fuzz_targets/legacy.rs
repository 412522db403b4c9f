//! Legacy login discovery: `GET /login` flows and the OAuth stage of a user-interactive-auth body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::legacy::{LoginFlowsRequest, OAuthUiaStage};
use matrix_oidc_fuzz::response;

fuzz_target!(|data: &[u8]| {
    let Ok(homeserver) = url::Url::parse("https://matrix.example.org/") else {
        return;
    };
    let Ok(request) = LoginFlowsRequest::new(&homeserver) else {
        panic!("harness login flows request");
    };
    let response = response(data);
    if let Ok(flows) = request.parse(&response) {
        let _ = flows.sso();
        let _ = flows.oauth_aware_preferred();
        let _ = flows.offered();
    }
    if let Ok(Some(stage)) = OAuthUiaStage::from_body(response.body()) {
        let _ = stage.auth_dict();
    }
});
