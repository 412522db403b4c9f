//! # matrix-oidc-jose
//!
//! Signature backends for the OpenID Connect layer of `matrix-oidc-core`
//! ([`matrix_oidc_core::oidc`]): implementations of its [`JwsVerifier`] trait.
//!
//! * [`RustCryptoVerifier`] (always available): RS256/384/512, PS256/384/512, ES256, ES384 and
//!   EdDSA/Ed25519 on the RustCrypto crates. Pure Rust, builds for `wasm32-unknown-unknown` with no
//!   imports, needs no randomness (verification is deterministic).
//! * `RingVerifier` (feature `ring`): the same algorithms on `ring`, for servers and desktop
//!   applications that verify many tokens.
//!
//! ```
//! use matrix_oidc_core::oidc::{CompactJws, JwkSet, JwsAlgorithm, verify_jws};
//! use matrix_oidc_jose::RustCryptoVerifier;
//!
//! // RFC 8037 §A.4: an Ed25519-signed JWS and its public key.
//! let keys = JwkSet::from_json(br#"{"keys":[{"kty":"OKP","crv":"Ed25519",
//!     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
//! let token = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
//!     hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
//! let jws = CompactJws::parse(token).unwrap();
//! let (alg, _key) = verify_jws(&jws, &keys, &[JwsAlgorithm::EdDsa], &RustCryptoVerifier).unwrap();
//! assert_eq!(alg, JwsAlgorithm::EdDsa);
//! ```
//!
//! ## Why these crates
//!
//! * **RustCrypto `rsa`, `p256`, `p384`, `ed25519-dalek`, `sha2`** as the default: pure Rust, so the
//!   OpenID Connect layer works in browsers (`wasm32-unknown-unknown`) and without a C toolchain.
//!   All are used with default features off and only their verification paths, which draw no
//!   random numbers; with their defaults they would pull `getrandom` into wasm builds, where it
//!   refuses to compile without a JavaScript backend chosen by the final application. They are
//!   3–9× slower than native code on RSA and ECDSA (≈ 0.2 ms for RS256, ≈ 0.3 ms for ES256 on a
//!   2-vCPU machine), which does not matter for a client that verifies a few ID tokens per session.
//!   RUSTSEC-2023-0071 (Marvin) concerns private-key operations, which this crate never performs.
//! * **Feature `rustcrypto-next`**: the RSA and ECDSA of [`RustCryptoVerifier`] on the next
//!   released generation of the same crates, `rsa` 0.10 and `p256`/`p384` 0.14. `rsa` 0.10 is
//!   built on `crypto-bigint` (constant-time, no heap-allocating big numbers) and computes a
//!   key's Montgomery parameters once, when the key is built; since the verifier keeps the built
//!   key with the key set ([`Jwk::with_prepared`](matrix_oidc_core::oidc::Jwk::with_prepared)),
//!   an RS256 verification costs ≈ 0.82 M instructions instead of 2.47 M with `rsa` 0.9
//!   (`num-bigint-dig`, which redoes the Montgomery setup on every call), and a P-256 one ≈ 2.46 M
//!   instead of 3.24 M. It is opt-in because that generation needs Rust 1.87 (`crypto-bigint`
//!   0.7), above this workspace's 1.85, and brings a second `sha2`/`digest`/`signature`; it
//!   stays pure Rust and builds for `wasm32-unknown-unknown` with no imports. When the MSRV
//!   reaches 1.87 it should become the only RustCrypto path. The `precomputed-tables` feature of
//!   `p256` 0.14 is not used: it speeds up multiplying the base point alone, which verification
//!   (a two-point linear combination) does not do.
//! * **`ring`** as the optional native backend: the transports of this workspace already build it
//!   (through rustls), it compiles faster than `aws-lc-rs`, and it implements every algorithm
//!   above. It needs a C compiler and is awkward on `wasm32-unknown-unknown`, hence optional.
//! * **Not `jsonwebtoken`**: its crypto provider is a process-global choice (two libraries choosing
//!   differently fail at run time), its wasm build pushes getrandom's JavaScript backend onto
//!   applications, its generic `Validation` knows nothing of OpenID Connect (nonce, `azp`,
//!   `at_hash`, refresh rules), and a recent claim-validation CVE shows the risk of delegating
//!   validation semantics. Here, parsing, key selection and validation live in
//!   `matrix-oidc-core`; a backend only runs the primitive, and is passed as a value.
//!
//! Both backends are tested against the same suite (RFC 7515, RFC 7520 and RFC 8037 vectors, and
//! tokens signed in the tests with freshly generated keys for every algorithm).

pub use matrix_oidc_core::oidc::{JwsVerifier, VerifyError};

mod rustcrypto;
pub use rustcrypto::RustCryptoVerifier;

#[cfg(feature = "ring")]
mod ring_backend;
#[cfg(feature = "ring")]
pub use ring_backend::RingVerifier;

/// The verifier this crate recommends for the current build: `RingVerifier` when the `ring`
/// feature is on, [`RustCryptoVerifier`] otherwise.
///
/// ```
/// use matrix_oidc_core::oidc::{JwsAlgorithm, JwsVerifier};
/// assert!(matrix_oidc_jose::default_verifier().supports(JwsAlgorithm::Es256));
/// ```
pub fn default_verifier() -> &'static (dyn JwsVerifier + Send + Sync) {
    #[cfg(feature = "ring")]
    {
        &RingVerifier
    }
    #[cfg(not(feature = "ring"))]
    {
        &RustCryptoVerifier
    }
}

/// Every algorithm both backends implement.
pub(crate) fn implemented(alg: matrix_oidc_core::oidc::JwsAlgorithm) -> bool {
    use matrix_oidc_core::oidc::JwsAlgorithm as A;
    matches!(
        alg,
        A::Rs256
            | A::Rs384
            | A::Rs512
            | A::Ps256
            | A::Ps384
            | A::Ps512
            | A::Es256
            | A::Es384
            | A::EdDsa
            | A::Ed25519
    )
}
