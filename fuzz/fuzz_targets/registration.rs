//! Dynamic client registration answers (RFC 7591): `201` with the registered metadata, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_oidc_core::registration::{ClientMetadata, MetadataRules, Registration};
use matrix_oidc_fuzz::{metadata, printable, response};
use std::sync::OnceLock;

fn registration() -> &'static Registration {
    static R: OnceLock<Registration> = OnceLock::new();
    R.get_or_init(|| {
        let mut server = metadata().clone();
        server.registration_endpoint = url::Url::parse("https://auth.example.org/register").ok();
        let client_uri = url::Url::parse("https://app.example.org/")
            .unwrap_or_else(|e| panic!("harness URL: {e}"));
        let mut client = ClientMetadata::native(client_uri);
        client.redirect_uris = url::Url::parse("http://127.0.0.1/cb").into_iter().collect();
        Registration::new(&server, &client, MetadataRules::MatrixSpec)
            .unwrap_or_else(|e| panic!("harness registration: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let response = response(data);
    match registration().handle_response(&response) {
        Ok(registered) => assert!(!registered.client_id.is_empty()),
        Err(e) => assert!(printable(&e.to_string()), "{e}"),
    }
});
