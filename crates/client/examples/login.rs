//! Signs in to a Matrix homeserver with the reqwest transport and keeps the session in files.
//!
//! ```sh
//! cargo run -p matrix-oidc --example login -- https://matrix.example.org
//! ```
//!
//! It prints the authorization URL; open it, sign in, and paste the address the browser lands on
//! (`http://127.0.0.1:8765/callback?…`; nothing needs to listen there).

use matrix_oidc::storage::FileStore;
use matrix_oidc::{ClientMetadata, LoginOptions, OAuthClient};
use matrix_oidc_reqwest::ReqwestTransport;
use url::Url;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let homeserver = Url::parse(
        &std::env::args()
            .nth(1)
            .ok_or("usage: login <homeserver URL>")?,
    )?;
    let mut builder = OAuthClient::builder(ReqwestTransport::try_default()?)
        .store(FileStore::open("matrix-oidc-example")?);
    if homeserver.scheme() == "http" {
        builder = builder.allow_insecure_loopback(); // a local test server; never in production
    }
    let client = builder.build();

    let app = ClientMetadata::native(Url::parse("https://example.org/")?)
        .with_client_name("matrix-oidc example")
        .with_redirect_uri(Url::parse("http://127.0.0.1/callback")?);
    let redirect_uri = Url::parse("http://127.0.0.1:8765/callback")?;
    let start = client
        .start_login(&LoginOptions::new(homeserver, redirect_uri, app))
        .await?;
    println!(
        "Open this URL, sign in, and paste the address you land on:\n{}",
        start.url
    );
    let mut callback = String::new();
    std::io::stdin().read_line(&mut callback)?;
    let session = client.finish_login(callback.trim()).await?;
    println!(
        "Signed in as {} on device {}",
        session.user_id().unwrap_or_default(),
        session.device_id().unwrap_or_default()
    );
    Ok(())
}
