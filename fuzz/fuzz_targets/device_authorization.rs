//! Device authorization answers (RFC 8628 §3.2) and the polling that follows: the poller is fed a
//! fuzzed token endpoint answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::device_grant::PollAction;
use matrix_oidc_core::{DeviceAuthorizationRequest, DeviceId, Scope, Timestamp};
use matrix_oidc_fuzz::{assert_hides, metadata, response, secrets_in};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let md = metadata();
    let Some(scope) = DeviceId::parse("AAABBBCCCD")
        .ok()
        .and_then(|d| Scope::matrix(d).build().ok())
    else {
        panic!("harness scope");
    };
    let Ok(request) = DeviceAuthorizationRequest::new(md, "client-1", scope) else {
        panic!("harness device authorization request");
    };
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    if which & 1 == 0 {
        // The device authorization answer itself.
        let response = response(rest);
        match request.parse(&response, now) {
            Ok(auth) => {
                assert!(auth.expires_at > now);
                assert!(!auth.user_code.is_empty());
                let _ = auth.poller(now);
            }
            Err(e) => {
                let secrets = secrets_in(response.body());
                assert_hides(&e.to_string(), &secrets);
                assert_hides(&format!("{e:?}"), &secrets);
            }
        }
        return;
    }
    // A poll answered with fuzzed bytes.
    let valid = matrix_oidc_fuzz::json_ok(
        br#"{"device_code":"dc-0123456789","user_code":"WDJB-MJHT","verification_uri":"https://auth.example.org/device","expires_in":600,"interval":5}"#,
        200,
    );
    let Ok(auth) = request.parse(&valid, now) else {
        panic!("harness device authorization answer");
    };
    let mut poller = auth.poller(now);
    // The first poll is due one interval after the authorization.
    let mut at = now;
    loop {
        match poller.poll(at) {
            Ok(PollAction::Send(_)) => break,
            Ok(PollAction::Wait { until }) if until > at => at = until,
            other => panic!("a fresh poller must wait, then send: {other:?}"),
        }
    }
    let answer = response(rest);
    match poller.handle_response(&answer, at) {
        Ok(_) => {}
        Err(e) => {
            let secrets = secrets_in(answer.body());
            assert_hides(&e.to_string(), &secrets);
        }
    }
    // Whatever happened, the poller answers the next call without panicking.
    let _ = poller.poll(at);
});
