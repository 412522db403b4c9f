//! Shared fixtures for the benchmarks of matrix-oidc against `openidconnect` / `oauth2`.
//!
//! The documents were generated once by `cargo xtask bench --regenerate-fixtures` (the `fixtures`
//! bench target: keys come from a seeded RNG, so regeneration reproduces the same bytes) and are
//! committed, so that every run and every library reads exactly the same input.
//!
//! * [`DISCOVERY`]: a ~3 KB server metadata document with ~40 fields, valid under the Matrix profile
//!   and as OpenID Connect discovery.
//! * [`TOKEN_RESPONSE`]: a token endpoint answer with Matrix scopes.
//! * [`JWKS`]: the provider's keys (RSA-2048, P-256, P-384), and [`ID_TOKEN_RS256`] /
//!   [`ID_TOKEN_ES256`] signed with them, valid at [`NOW`] for [`CLIENT_ID`] with [`NONCE`].

/// The issuer of every document.
pub const ISSUER: &str = "https://auth.example.org/";
/// The client the tokens are for.
pub const CLIENT_ID: &str = "01J9ZB8W3QXK7M5TQ2V4N6R8SD";
/// Where the authorization server sends the browser back.
pub const REDIRECT_URI: &str = "https://app.example.org/oauth2/callback";
/// The nonce sent in the authorization request and carried by the ID tokens.
pub const NONCE: &str = "n-0S6_WzA2Mj4Tl2Ev8QZrfc";
/// The moment (Unix seconds) at which the fixtures are validated: one minute after issue.
pub const NOW: u64 = ISSUED_AT + 60;
/// When the ID tokens were issued (Unix seconds).
pub const ISSUED_AT: u64 = 1_750_000_000;
/// How long the ID tokens are valid.
pub const ID_TOKEN_LIFETIME: u64 = 3600;
/// The Matrix device id in the token response's scope.
pub const DEVICE_ID: &str = "AAABBBCCCD";

/// The server metadata document.
pub const DISCOVERY: &str = include_str!("../fixtures/discovery.json");
/// The token endpoint's answer to the code exchange.
pub const TOKEN_RESPONSE: &str = include_str!("../fixtures/token_response.json");
/// The provider's JWK Set.
pub const JWKS: &str = include_str!("../fixtures/jwks.json");
/// An ID token signed with the RSA key (`RS256`).
pub const ID_TOKEN_RS256: &str = include_str!("../fixtures/id_token_rs256.jwt");
/// An ID token signed with the P-256 key (`ES256`).
pub const ID_TOKEN_ES256: &str = include_str!("../fixtures/id_token_es256.jwt");

/// Where the fixture files live, for the generator.
pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}
