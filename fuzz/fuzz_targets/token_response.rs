//! Token endpoint answers (code exchange, refresh, device code polling): envelope, error
//! classification, fields, scope and expiry. Secrets in the body never reach an error message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::{
    AuthorizationCode, ResponseMode, Scope, Secret, Timestamp, TokenRequest, TokenSet,
};
use matrix_oidc_fuzz::{assert_hides, pending, response, secrets_in};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let pending = pending(ResponseMode::Fragment);
    let request = match which % 3 {
        0 => {
            TokenRequest::authorization_code(pending, &AuthorizationCode::new(Secret::new("c0de")))
        }
        1 => {
            let tokens = TokenSet::new(Secret::new("old-access"))
                .with_refresh_token(Some(Secret::new("old-refresh")))
                .with_scope(Some(pending.scope.to_string()));
            TokenRequest::refresh(&pending.token_endpoint, "client-1", &tokens)
        }
        _ => TokenRequest::device_code(
            &pending.token_endpoint,
            "client-1",
            &Secret::new("device-code"),
            Scope::parse("openid").ok().as_ref(),
        ),
    };
    let Ok(request) = request else {
        panic!("the harness's token request does not build");
    };
    let response = response(rest);
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    match request.parse(&response, now) {
        Ok(tokens) => {
            let t = tokens.access_token.expose();
            assert!(!t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()));
            assert!(tokens.expires_at.is_none_or(|at| at >= now));
            assert_eq!(response.status(), 200);
        }
        Err(e) => {
            let secrets = secrets_in(response.body());
            assert_hides(&e.to_string(), &secrets);
            assert_hides(&format!("{e:?}"), &secrets);
        }
    }
});
