//! The callback the browser hands back: a full redirect URL, or its query or fragment, in both
//! response modes; parsed, then checked against a pending authorization.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::ResponseMode;
use matrix_oidc_core::callback::{self, CallbackResponse};
use matrix_oidc_fuzz::{pending, printable};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mode = if which & 1 == 0 {
        ResponseMode::Fragment
    } else {
        ResponseMode::Query
    };
    let input = String::from_utf8_lossy(rest);
    let pending = pending(mode);
    let parsed = CallbackResponse::parse(&input, mode);
    // Reading the text against the redirect URI must agree with parsing the URL, for any input.
    let at = CallbackResponse::parse_at(&input, mode, &pending.redirect_uri);
    assert_eq!(at, parsed);
    if let (Ok(at), Ok(parsed)) = (&at, &parsed) {
        assert_eq!(at.verify(pending), parsed.verify(pending));
    }
    match parsed {
        Ok(parsed) => {
            let verified = parsed.verify(pending);
            if verified.is_ok() {
                // A code is only ever handed out for the callback's own pending login.
                assert_eq!(parsed.state(), Some(pending.state.as_str()));
            }
            if let Err(e) = &verified {
                assert!(printable(&e.to_string()), "{e}");
            }
            let _ = parsed.find([pending]);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = callback::complete(&input, pending);
});
