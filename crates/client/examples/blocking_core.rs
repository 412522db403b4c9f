//! The whole Matrix OAuth 2.0 life cycle — discovery, registration, login, whoami, refresh,
//! logout — driven by `matrix-oidc-core` alone, with a blocking HTTP/1.1 client on
//! `std::net::TcpStream` and no async runtime at all.
//!
//! This is how to embed the core in a runtime of your own (a game loop, an embedded event loop, a
//! C host): every step is "build a request → send it however you like → hand the response back",
//! with the time and the randomness passed in.
//!
//! ```sh
//! cargo run -p matrix-oidc --example blocking_core -- http://127.0.0.1:8008
//! ```
//!
//! It speaks plain `http` only, so it works against a homeserver on a loopback address; put a TLS
//! library behind [`send`] for anything else.

use matrix_oidc_core::discovery::{DiscoveryOptions, MatrixDiscovery, Step};
use matrix_oidc_core::registration::{ClientMetadata, MetadataRules, Registration};
use matrix_oidc_core::revoke::RevocationRequest;
use matrix_oidc_core::whoami::WhoamiRequest;
use matrix_oidc_core::{
    AuthorizationRequest, DeviceId, OsRandom, OutgoingRequest, Scope, Session, Timestamp,
    TokenRequest, UrlPolicy, callback,
};
use std::error::Error;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use url::Url;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn now() -> Timestamp {
    Timestamp::from_system_time(std::time::SystemTime::now())
}

fn main() -> Result<()> {
    let homeserver = Url::parse(
        &std::env::args()
            .nth(1)
            .ok_or("usage: blocking_core <homeserver URL>")?,
    )?;
    let mut rng = OsRandom;

    // 1. Discovery: a small state machine; feed it responses until it is done.
    let options = DiscoveryOptions::default().with_url_policy(UrlPolicy::AllowInsecureLoopback);
    let mut discovery = MatrixDiscovery::new(&homeserver, options)?;
    let mut step = discovery.start()?;
    let discovered = loop {
        match step {
            Step::Send(request) => step = discovery.handle_response(&send(request)?, now())?,
            Step::Done(discovered) => break discovered,
        }
    };
    let metadata = &discovered.metadata;
    println!("Authorization server: {}", metadata.issuer);

    // 2. Registration (a fresh one for every login, as the Matrix specification asks).
    let app = ClientMetadata::native(Url::parse("https://example.org/")?)
        .with_client_name("matrix-oidc blocking example")
        .with_redirect_uri(Url::parse("http://127.0.0.1/callback")?);
    let registration = Registration::new(metadata, &app, MetadataRules::MatrixSpec)?;
    let client_id = registration
        .handle_response(&send(registration.request()?)?)?
        .client_id;

    // 3. The authorization URL; the pending part would be persisted by a real application.
    let scope = Scope::matrix(DeviceId::generate(&mut rng)?).build()?;
    let redirect_uri = Url::parse("http://127.0.0.1:8765/callback")?;
    let start = AuthorizationRequest::new(metadata, client_id, redirect_uri, scope)
        .homeserver(homeserver.clone())
        .build(now(), &mut rng)?;
    println!(
        "Open this URL, sign in, and paste the address you land on:\n{}",
        start.url
    );
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;

    // 4. The callback and the code exchange.
    let code = callback::complete(line.trim(), &start.pending)?;
    let exchange = TokenRequest::authorization_code(&start.pending, &code)?;
    let sent_at = now();
    let tokens = exchange.parse(&send(exchange.request.clone())?, sent_at)?;
    let mut session = Session::from_pending(&start.pending, tokens);

    // 5. Who signed in.
    let whoami = WhoamiRequest::new(&homeserver, &session.tokens.access_token)?;
    let who = whoami.parse(&send(whoami.request.clone())?)?;
    who.apply_to(&mut session)?;
    println!(
        "Signed in as {} on device {}",
        who.user_id,
        who.device_id.unwrap_or_default()
    );

    // 6. A refresh (the refresh token rotates; keep the new one).
    let refresh = TokenRequest::refresh(
        &metadata.token_endpoint,
        &session.client_id,
        &session.tokens,
    )?;
    let sent_at = now();
    session.tokens = refresh.parse(&send(refresh.request.clone())?, sent_at)?;
    println!("Refreshed the access token");

    // 7. Logout: one revocation ends the grant.
    let revocation = RevocationRequest::for_session(metadata, &session)?;
    revocation.parse(&send(revocation.request.clone())?)?;
    println!("Logged out");
    Ok(())
}

/// A minimal blocking HTTP/1.1 client: one connection per request, `Connection: close`, the
/// request's expectations (timeout, body bound) honoured, redirects returned as they are.
fn send(request: OutgoingRequest) -> Result<http::Response<Vec<u8>>> {
    let url = Url::parse(&request.url())?;
    if url.scheme() != "http" {
        return Err(format!("{url}: this example speaks plain http only").into());
    }
    let host = url.host_str().ok_or("no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let mut stream = TcpStream::connect((host, port))?;
    stream.set_read_timeout(Some(request.expect.timeout))?;
    stream.set_write_timeout(Some(request.expect.timeout))?;

    let (parts, body) = request.request.into_parts();
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        parts.method,
        body.len()
    );
    for (name, value) in &parts.headers {
        head.push_str(&format!("{name}: {}\r\n", value.to_str()?));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;

    // Headers get 64 KiB on top of the body bound; anything larger is refused, not buffered.
    let limit = request.expect.max_body_bytes + 64 * 1024;
    let mut raw = Vec::new();
    stream.take(limit as u64 + 1).read_to_end(&mut raw)?;
    if raw.len() > limit {
        return Err(format!("{url}: response larger than {limit} bytes").into());
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split])?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .ok_or("no status line")?
        .parse()?;
    let mut response = http::Response::builder().status(status);
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or("malformed header")?;
        chunked |= name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked");
        response = response.header(name.trim(), value.trim());
    }
    if chunked {
        return Err("chunked responses are not supported by this small client".into());
    }
    Ok(response.body(raw[split + 4..].to_vec())?)
}
