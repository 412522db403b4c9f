//! The HTTP client the harness, the scripted browser and the smoke check share.

use crate::util::Result;
use std::path::Path;
use std::time::Duration;

/// A current-thread Tokio runtime for the harness's HTTP calls.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a Tokio runtime: {e}"))
}

/// A reqwest client that never follows redirects (callers read `Location` themselves), keeps
/// cookies when asked, and — given the harness CA — trusts that CA and nothing else.
pub(crate) fn client(ca_pem: Option<&Path>, cookies: bool) -> Result<reqwest::Client> {
    // reqwest is built without a default crypto provider; ring is the one the workspace uses.
    // Installing fails harmlessly when a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("matrix-oidc-xtask/", env!("CARGO_PKG_VERSION")))
        .cookie_store(cookies);
    if let Some(path) = ca_pem {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| format!("{} is not a PEM certificate: {e}", path.display()))?;
        builder = builder.tls_certs_only([cert]);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}
