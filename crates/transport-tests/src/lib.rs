//! The test suite every matrix-oidc transport must pass, shared by `matrix-oidc-reqwest` and
//! `matrix-oidc-hyper` (and any future adapter).
//!
//! It holds an in-process HTTP/1.1 server on 127.0.0.1 ([`TestServer`], optionally over TLS with a CA
//! generated on the spot by [`TestPki`]) whose routes misbehave on purpose — endless bodies, lying
//! `Content-Length`s, stalls, redirects, garbage — and one generic test function per guarantee in
//! [`suite`]. An adapter's integration test implements [`Adapter`] and expands [`transport_suite!`]:
//!
//! ```text
//! struct Reqwest;
//! impl matrix_oidc_transport_tests::Adapter for Reqwest { /* constructors */ }
//! matrix_oidc_transport_tests::transport_suite!(Reqwest);
//! ```
//!
//! The server is hand-written on tokio + `httparse` rather than on hyper's server so that each route
//! controls the bytes on the wire exactly and can see the client hang up (a failed write or a read of
//! end-of-file), which is what the "abandoned, not read to the end" tests assert on.
//!
//! Nothing here asserts on durations: a test that would hang is cut off by [`run`]'s generous bound
//! and fails.

// Test-support code: a panic is how a broken expectation or fixture reports itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod server;
pub mod suite;
pub mod tls;

pub use server::{RecordedRequest, TestServer};
pub use tls::TestPki;

use matrix_oidc_core::transport::HttpClient;
use std::future::Future;
use std::time::Duration;

/// How long any one suite test may run before it is failed as hung. Generous on purpose: it is a
/// safety net against a transport that never returns, not a performance assertion.
pub const HANG_LIMIT: Duration = Duration::from_secs(60);

/// How an adapter under test builds its transports.
pub trait Adapter {
    /// The transport type.
    type Transport: HttpClient + 'static;

    /// The adapter's convenient default: the platform's root CAs, no redirects.
    fn default_transport() -> Self::Transport;

    /// The platform's root CAs plus the CA(s) in `ca_pem`.
    fn trusting(ca_pem: &str) -> Self::Transport;

    /// Only the CA(s) in `ca_pem`, not the platform's.
    fn trusting_only(ca_pem: &str) -> Self::Transport;
}

/// Runs `test` on a fresh tokio runtime, failing it if it takes longer than [`HANG_LIMIT`].
pub fn run<F: Future<Output = ()>>(test: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        if tokio::time::timeout(HANG_LIMIT, test).await.is_err() {
            panic!("the test did not finish within {HANG_LIMIT:?}: the transport hung");
        }
    });
}

/// Expands to one `#[test]` per function in [`suite`], run against the given [`Adapter`].
#[macro_export]
macro_rules! transport_suite {
    ($adapter:ty) => {
        $crate::transport_suite!(@each $adapter;
            json_exchange,
            get_without_body,
            body_at_the_bound_is_accepted,
            endless_body_is_abandoned,
            content_length_over_the_bound_is_rejected_early,
            stall_before_headers_times_out,
            stall_inside_body_times_out,
            redirect_is_returned_not_followed,
            tls_with_trusted_test_ca,
            tls_with_only_the_test_ca,
            a_pem_bundle_adds_every_certificate,
            tls_untrusted_is_a_tls_error,
            connection_refused_is_a_connect_error,
            malformed_response_is_an_other_error,
            errors_never_print_header_values_or_bodies,
            usable_as_a_shared_trait_object,
        );
    };
    (@each $adapter:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run($crate::suite::$name::<$adapter>());
            }
        )*
    };
}
