//! The RFC 8252 loopback redirect: a tiny HTTP/1.1 server on 127.0.0.1 that receives the one
//! authorization response the browser brings back.
//!
//! ```text
//!   bind 127.0.0.1:0 ──▶ redirect_uri() = http://127.0.0.1:<port>/callback  (sent in the request)
//!                        registered_redirect_uri() = http://127.0.0.1/callback (registered: no port)
//!        │
//!        ▼
//!   wait(state, timeout) ──accepts connections, each in its own task──┐
//!        │                                                            │
//!        │   GET /favicon.ico, other paths ─────────────▶ 404          │
//!        │   not GET ───────────────────────────────────▶ 405          │
//!        │   garbage / head over 8 KiB / silent 10 s ───▶ 400/431/close│
//!        │   /callback, state missing or foreign ───────▶ 400, keep waiting
//!        │   /callback, our state, after the first ─────▶ 409 "already done"
//!        │   /callback, our state, error=… ─────────────▶ error page, wait() → Err(Cancelled/Authorization)
//!        │   /callback, our state, code=… ──────────────▶ wait() → Ok(Callback); the tab waits for
//!        │                                                Callback::respond (final page)
//!        └── no valid callback before the deadline ─────▶ Err(Timeout)
//! ```
//!
//! The listener checks `state` only to tell the genuine response from stray or forged requests (any
//! local process can connect); the full verification (redirect URI, RFC 9207 `iss`, PKCE) is the
//! core's, on the URL that [`Callback::url`] returns. Every page is sent with `Connection: close`,
//! `Cache-Control: no-store` and `Referrer-Policy: no-referrer`, so the code in the address bar does
//! not travel further.

use matrix_oidc_core::secret::constant_time_eq;
use matrix_oidc_core::{OAuthErrorBody, Secret};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use url::Url;

/// The path of the redirect URI.
pub const CALLBACK_PATH: &str = "/callback";

/// The largest request head accepted (request line and headers).
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a connection may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections are served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 32;

/// How long the browser tab of the genuine callback waits for [`Callback::respond`] before it gets
/// a generic page.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// What went wrong while waiting for the browser.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// No valid callback arrived in time (the browser never came back).
    #[error("no sign-in response arrived at {redirect_uri} within {} s", after.as_secs())]
    Timeout {
        /// Where it was expected.
        redirect_uri: String,
        /// How long the listener waited.
        after: Duration,
    },
    /// The server sent `error=access_denied`: the person declined.
    #[error("the sign-in was cancelled: {error}")]
    Cancelled {
        /// What the server sent.
        error: OAuthErrorBody,
    },
    /// The server sent another error.
    #[error("the authorization server answered with error {error}")]
    Authorization {
        /// What the server sent.
        error: OAuthErrorBody,
    },
    /// The callback carried the right `state` but neither a code nor an error.
    #[error("the sign-in response carries neither a code nor an error")]
    MissingCode,
    /// The listening socket failed.
    #[error("the loopback listener failed: {0}")]
    Io(#[from] io::Error),
}

/// The genuine callback: the URL to verify and exchange, and the browser tab waiting for a page.
///
/// Dropping it without [`Callback::respond`] sends the tab a generic "return to the terminal" page.
#[derive(Debug)]
pub struct Callback {
    url: Secret,
    reply: oneshot::Sender<(Page, oneshot::Sender<()>)>,
    accept: AcceptTask,
}

impl Callback {
    /// The full URL the browser requested (`http://127.0.0.1:<port>/callback?code=…&state=…`).
    /// It holds the authorization code, hence a [`Secret`].
    pub fn url(&self) -> &Secret {
        &self.url
    }

    /// Shows `page` in the waiting browser tab, and returns once it is written (or the tab went
    /// away; at most a few seconds).
    pub async fn respond(self, page: Page) {
        let (written_tx, written_rx) = oneshot::channel();
        if self.reply.send((page, written_tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), written_rx).await;
        }
        self.accept.stop().await;
    }
}

/// A small HTML page for the browser tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    status: u16,
    title: String,
    message: String,
}

impl Page {
    /// "Signed in" with `message` (e.g. who).
    pub fn success(message: impl Into<String>) -> Self {
        Self {
            status: 200,
            title: "Signed in".into(),
            message: message.into(),
        }
    }

    /// "Sign-in failed" with `message`.
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            status: 200,
            title: "Sign-in failed".into(),
            message: message.into(),
        }
    }

    fn with_status(status: u16, title: &str, message: &str) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
        }
    }

    fn received() -> Self {
        Page::success("The sign-in response was received.")
    }

    /// The HTML document, every text HTML-escaped.
    pub fn html(&self) -> String {
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <title>matrix-oidc: {title}</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:34em;margin:4em auto;padding:0 1em;\
             line-height:1.5}}h1{{font-size:1.4em}}</style></head>\n\
             <body><h1>{title}</h1><p>{message}</p>\
             <p>You can close this tab and return to the terminal.</p></body></html>\n",
            title = escape_html(&self.title),
            message = escape_html(&self.message),
        )
    }

    /// The HTTP status sent with it.
    pub fn status(&self) -> u16 {
        self.status
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A bound loopback listener; [`LoopbackListener::wait`] serves it until the callback arrives.
#[derive(Debug)]
pub struct LoopbackListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl LoopbackListener {
    /// Binds 127.0.0.1 on a port the system chooses.
    pub async fn bind() -> io::Result<Self> {
        Self::bind_port(0).await
    }

    /// Binds 127.0.0.1 on `port` (0: any free port).
    pub async fn bind_port(port: u16) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The redirect URI to send in the authorization request: `http://127.0.0.1:<port>/callback`.
    pub fn redirect_uri(&self) -> Url {
        let mut url = Self::registered_redirect_uri();
        // Setting a port on an http URL with an IP host cannot fail.
        let _ = url.set_port(Some(self.addr.port()));
        url
    }

    /// The redirect URI to register: `http://127.0.0.1/callback`, without a port, as the Matrix
    /// spec requires for loopback redirects (the server accepts any port at authorization time).
    pub fn registered_redirect_uri() -> Url {
        let mut url = Url::parse("http://127.0.0.1/").unwrap_or_else(|_| unreachable!());
        url.set_path(CALLBACK_PATH);
        url
    }

    /// Serves requests until the callback carrying `expected_state` arrives, or `timeout` passes.
    ///
    /// Returns the callback with a code (whose tab then waits for [`Callback::respond`]), or the
    /// server's error when the callback carries one. Requests that are not the callback are
    /// answered and otherwise ignored. After a callback with a code, the listener keeps answering
    /// (a reload gets "already received") until the [`Callback`] is responded to or dropped; in
    /// every other case the listening socket is closed when this returns.
    pub async fn wait(
        self,
        expected_state: &str,
        timeout: Duration,
    ) -> Result<Callback, LoopbackError> {
        let redirect_uri = self.redirect_uri().to_string();
        let (tx, mut rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            expected_state: expected_state.to_owned(),
            base: format!("http://{}", self.addr),
            done: AtomicBool::new(false),
            tx,
        });
        tracing::info!(%redirect_uri, "waiting for the browser to come back");
        let accept = AcceptTask(Some(tokio::spawn(accept_loop(self.listener, shared))));
        let outcome = tokio::select! {
            Some(outcome) = rx.recv() => outcome,
            () = tokio::time::sleep(timeout) => Err(LoopbackError::Timeout { redirect_uri, after: timeout }),
        };
        match outcome {
            Ok(mut callback) => {
                callback.accept = accept;
                Ok(callback)
            }
            Err(error) => {
                accept.stop().await;
                Err(error)
            }
        }
    }
}

/// The task that accepts connections; stopping it closes the listening socket.
#[derive(Debug, Default)]
struct AcceptTask(Option<tokio::task::JoinHandle<()>>);

impl AcceptTask {
    /// Stops the task and waits until the socket is closed.
    async fn stop(mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for AcceptTask {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match Arc::clone(&permits).try_acquire_owned() {
                Ok(permit) => {
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        serve(stream, &shared).await;
                        drop(permit);
                    });
                }
                Err(_) => tracing::warn!(%peer, "too many connections; closing one"),
            },
            // Per-connection failures (reset before accept, out of descriptors) must not end the
            // wait; pause briefly so that a persistent one does not spin.
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

struct Shared {
    expected_state: String,
    base: String,
    done: AtomicBool,
    tx: mpsc::Sender<Result<Callback, LoopbackError>>,
}

enum Head {
    Request { method: String, target: String },
    TooLarge,
    Malformed,
    Closed,
}

async fn read_head(stream: &mut TcpStream) -> Head {
    let mut buf = vec![0u8; MAX_REQUEST_HEAD];
    let mut len = 0;
    loop {
        let Some(space) = buf.get_mut(len..) else {
            return Head::TooLarge;
        };
        if space.is_empty() {
            return Head::TooLarge;
        }
        let n = match stream.read(space).await {
            Ok(0) | Err(_) => return Head::Closed,
            Ok(n) => n,
        };
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(buf.get(..len).unwrap_or_default()) {
            Ok(httparse::Status::Complete(_)) => {
                return match (request.method, request.path) {
                    (Some(m), Some(p)) => Head::Request {
                        method: m.to_owned(),
                        target: p.to_owned(),
                    },
                    _ => Head::Malformed,
                };
            }
            Ok(httparse::Status::Partial) => continue,
            Err(httparse::Error::TooManyHeaders) => return Head::TooLarge,
            Err(_) => return Head::Malformed,
        }
    }
}

async fn serve(mut stream: TcpStream, shared: &Shared) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head,
        Err(_) => {
            tracing::debug!("a connection sent no request in time; closing it");
            return;
        }
    };
    let page = match head {
        Head::Closed => return,
        Head::TooLarge => Page::with_status(431, "Request too large", "The request is too large."),
        Head::Malformed => Page::with_status(400, "Bad request", "The request is not HTTP/1.1."),
        Head::Request { method, target } => match route(&method, &target, shared) {
            Route::Page(page) => page,
            Route::Callback { url } => {
                let (reply, wait_reply) = oneshot::channel();
                let callback = Callback {
                    url,
                    reply,
                    accept: AcceptTask::default(),
                };
                if shared.tx.send(Ok(callback)).await.is_err() {
                    return;
                }
                match tokio::time::timeout(REPLY_TIMEOUT, wait_reply).await {
                    Ok(Ok((page, written))) => {
                        write_page(&mut stream, &page).await;
                        let _ = written.send(());
                        return;
                    }
                    _ => Page::received(),
                }
            }
            Route::Error { page, error } => {
                write_page(&mut stream, &page).await;
                let _ = shared.tx.send(Err(error)).await;
                return;
            }
        },
    };
    write_page(&mut stream, &page).await;
}

enum Route {
    Page(Page),
    Callback { url: Secret },
    Error { page: Page, error: LoopbackError },
}

fn route(method: &str, target: &str, shared: &Shared) -> Route {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        return Route::Page(Page::with_status(
            404,
            "Not found",
            "There is nothing here.",
        ));
    }
    if method != "GET" {
        return Route::Page(Page::with_status(
            405,
            "Method not allowed",
            "Only GET is served here.",
        ));
    }
    let mut state = None;
    let mut states = 0;
    let mut code = None;
    let mut codes = 0;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "state" => {
                states += 1;
                state = Some(v.into_owned());
            }
            "code" => {
                codes += 1;
                code = Some(v);
            }
            _ => {}
        }
    }
    let genuine = states == 1
        && state
            .as_deref()
            .is_some_and(|s| constant_time_eq(s, &shared.expected_state));
    if !genuine {
        tracing::warn!("a request reached the callback without this sign-in's state; ignoring it");
        return Route::Page(Page::with_status(
            400,
            "Not this sign-in",
            "This response does not belong to the sign-in in progress in the terminal \
             (it may be from an earlier attempt).",
        ));
    }
    if shared.done.swap(true, Ordering::SeqCst) {
        return Route::Page(Page::with_status(
            409,
            "Already done",
            "This sign-in response was already received.",
        ));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some(error) =
        OAuthErrorBody::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        let cancelled = error.error == "access_denied";
        let page = Page::failure(if cancelled {
            "The sign-in was cancelled.".to_owned()
        } else {
            format!("The server answered: {error}")
        });
        let error = if cancelled {
            LoopbackError::Cancelled { error }
        } else {
            LoopbackError::Authorization { error }
        };
        return Route::Error { page, error };
    }
    if codes != 1 || code.as_deref().is_none_or(str::is_empty) {
        return Route::Error {
            page: Page::failure("The response from the server carries no authorization code."),
            error: LoopbackError::MissingCode,
        };
    }
    Route::Callback {
        url: Secret::new(format!("{}{}", shared.base, target)),
    }
}

async fn write_page(stream: &mut TcpStream, page: &Page) {
    let body = page.html();
    let reason = match page.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        431 => "Request Header Fields Too Large",
        _ => "",
    };
    let allow = if page.status == 405 {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {} {reason}\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         {allow}\
         Connection: close\r\n\
         Cache-Control: no-store\r\n\
         Referrer-Policy: no-referrer\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         \r\n{body}",
        page.status,
        body.len(),
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    if let Err(error) = tokio::time::timeout(READ_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    {
        tracing::debug!(%error, "could not send a page to the browser");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const STATE: &str = "s7-aBc_DEF";

    /// Sends raw bytes, returns (status, whole response).
    async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    async fn get(addr: SocketAddr, target: &str) -> (u16, String) {
        raw(
            addr,
            format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n\r\n").as_bytes(),
        )
        .await
    }

    async fn listener() -> (LoopbackListener, SocketAddr) {
        let l = LoopbackListener::bind().await.unwrap();
        let addr = l.local_addr();
        (l, addr)
    }

    #[tokio::test]
    async fn redirect_uris_are_loopback_with_and_without_port() {
        let (l, addr) = listener().await;
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);
        assert_eq!(
            l.redirect_uri().as_str(),
            format!("http://127.0.0.1:{}/callback", addr.port())
        );
        assert_eq!(
            LoopbackListener::registered_redirect_uri().as_str(),
            "http://127.0.0.1/callback"
        );
    }

    #[tokio::test]
    async fn the_genuine_callback_is_delivered_and_its_tab_gets_the_final_page() {
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        let browser = tokio::spawn(async move {
            get(
                addr,
                &format!("/callback?code=the-code&state={STATE}&iss=http%3A%2F%2Fop"),
            )
            .await
        });
        let callback = wait.await.unwrap().unwrap();
        assert_eq!(
            callback.url().expose(),
            format!("http://{addr}/callback?code=the-code&state={STATE}&iss=http%3A%2F%2Fop")
        );
        // The code stays out of Debug output.
        assert!(!format!("{callback:?}").contains("the-code"));
        callback
            .respond(Page::success("Signed in as @alice:example.org <script>"))
            .await;
        let (status, response) = browser.await.unwrap();
        assert_eq!(status, 200);
        assert!(
            response.contains("Signed in as @alice:example.org &lt;script&gt;"),
            "{response}"
        );
        assert!(response.contains("close this tab"));
        assert!(response.contains("Referrer-Policy: no-referrer"));
        assert!(response.contains("Cache-Control: no-store"));
        assert!(response.contains("Connection: close"));
    }

    #[tokio::test]
    async fn a_dropped_callback_still_answers_the_tab() {
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        let browser =
            tokio::spawn(
                async move { get(addr, &format!("/callback?state={STATE}&code=c")).await },
            );
        drop(wait.await.unwrap().unwrap());
        let (status, response) = browser.await.unwrap();
        assert_eq!(status, 200);
        assert!(response.contains("response was received"), "{response}");
    }

    #[tokio::test]
    async fn a_wrong_or_missing_state_is_refused_and_the_wait_goes_on() {
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        for target in [
            "/callback?code=forged&state=other".to_owned(),
            "/callback?code=forged".to_owned(),
            format!("/callback?code=forged&state={STATE}x"),
            // A repeated state is not accepted even when one copy is right.
            format!("/callback?code=forged&state={STATE}&state=other"),
            "/callback?error=access_denied&state=other".to_owned(),
        ] {
            let (status, page) = get(addr, &target).await;
            assert_eq!(status, 400, "{target}");
            assert!(page.contains("does not belong to the sign-in"), "{page}");
        }
        assert!(!wait.is_finished());
        let browser =
            tokio::spawn(
                async move { get(addr, &format!("/callback?state={STATE}&code=real")).await },
            );
        let callback = wait.await.unwrap().unwrap();
        assert!(callback.url().expose().contains("code=real"));
        callback.respond(Page::success("ok")).await;
        assert_eq!(browser.await.unwrap().0, 200);
    }

    #[tokio::test]
    async fn access_denied_means_cancelled() {
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        let (status, page) = get(
            addr,
            &format!("/callback?error=access_denied&error_description=User+said+no&state={STATE}"),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            page.contains("Sign-in failed") && page.contains("cancelled"),
            "{page}"
        );
        match wait.await.unwrap() {
            Err(LoopbackError::Cancelled { error }) => {
                assert_eq!(error.error, "access_denied");
                assert_eq!(error.error_description.as_deref(), Some("User said no"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn other_errors_are_reported_with_the_servers_words() {
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        let (_, page) = get(
            addr,
            &format!(
                "/callback?state={STATE}&error=invalid_scope&error_description=%3Cb%3Ebad%3C%2Fb%3E"
            ),
        )
        .await;
        assert!(
            page.contains("invalid_scope: &lt;b&gt;bad&lt;/b&gt;"),
            "{page}"
        );
        match wait.await.unwrap() {
            Err(LoopbackError::Authorization { error }) => assert_eq!(error.error, "invalid_scope"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_callback_without_code_or_error_fails_the_wait() {
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        let (_, page) = get(addr, &format!("/callback?state={STATE}")).await;
        assert!(page.contains("no authorization code"));
        assert!(matches!(
            wait.await.unwrap(),
            Err(LoopbackError::MissingCode)
        ));
    }

    #[tokio::test]
    async fn a_second_request_after_the_first_is_told_it_is_already_done() {
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        let first =
            tokio::spawn(
                async move { get(addr, &format!("/callback?state={STATE}&code=one")).await },
            );
        let callback = wait.await.unwrap().unwrap();
        // While the first tab still waits for its page, the listener's tasks answer the reload …
        let (status, page) = get(addr, &format!("/callback?state={STATE}&code=two")).await;
        assert_eq!(status, 409);
        assert!(page.contains("already received"), "{page}");
        callback.respond(Page::success("ok")).await;
        assert_eq!(first.await.unwrap().0, 200);
        // … and once the callback is answered, the socket is closed: nothing more is accepted.
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_when_the_browser_never_returns() {
        let (l, addr) = listener().await;
        let err = l.wait(STATE, Duration::from_secs(300)).await.unwrap_err();
        match &err {
            LoopbackError::Timeout {
                redirect_uri,
                after,
            } => {
                assert_eq!(*after, Duration::from_secs(300));
                assert_eq!(*redirect_uri, format!("http://{addr}/callback"));
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("within 300 s"));
    }

    #[tokio::test]
    async fn unrelated_paths_and_methods_get_404_and_405() {
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        assert_eq!(get(addr, "/favicon.ico").await.0, 404);
        assert_eq!(get(addr, "/").await.0, 404);
        assert_eq!(get(addr, "/callback/x").await.0, 404);
        let (status, response) = raw(
            addr,
            format!("POST /callback?state={STATE}&code=c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!(status, 405);
        assert!(response.contains("Allow: GET"));
        // A HEAD (a link preview, say) must not consume the code either.
        let (status, _) = raw(
            addr,
            format!("HEAD /callback?state={STATE}&code=c HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(status, 405);
        assert!(!wait.is_finished());
        wait.abort();
    }

    #[tokio::test]
    async fn garbage_is_refused_without_disturbing_the_wait() {
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        assert_eq!(
            raw(addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                .await
                .0,
            400
        );
        assert_eq!(raw(addr, b"GET\r\n\r\n").await.0, 400);
        assert_eq!(
            raw(addr, b"GET /callback HTTP/1.1\r\nBad Header\r\n\r\n")
                .await
                .0,
            400
        );
        // A head that never ends within the limit.
        let mut huge = b"GET /callback?state=x HTTP/1.1\r\n".to_vec();
        while huge.len() <= MAX_REQUEST_HEAD {
            huge.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let mut s = TcpStream::connect(addr).await.unwrap();
        // The server may close before reading everything; only the answer matters.
        let _ = s.write_all(&huge).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        assert!(
            String::from_utf8_lossy(&out).starts_with("HTTP/1.1 431"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        // A connection that closes at once.
        drop(TcpStream::connect(addr).await.unwrap());
        // Non-UTF-8 in the query does not panic.
        assert_eq!(get(addr, "/callback?state=%FF%FE&code=%C3").await.0, 400);
        assert!(!wait.is_finished());
        let browser =
            tokio::spawn(
                async move { get(addr, &format!("/callback?state={STATE}&code=ok")).await },
            );
        wait.await
            .unwrap()
            .unwrap()
            .respond(Page::success("ok"))
            .await;
        assert_eq!(browser.await.unwrap().0, 200);
    }

    #[tokio::test]
    async fn a_silent_connection_does_not_block_the_callback() {
        // Browsers open speculative connections that send nothing; the callback must get through.
        let (l, addr) = listener().await;
        let wait = tokio::spawn(async move { l.wait(STATE, Duration::from_secs(10)).await });
        let _idle: Vec<TcpStream> = futures_idle(addr, 3).await;
        let browser =
            tokio::spawn(
                async move { get(addr, &format!("/callback?state={STATE}&code=ok")).await },
            );
        let callback = tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("the callback was blocked by idle connections")
            .unwrap()
            .unwrap();
        callback.respond(Page::success("ok")).await;
        assert_eq!(browser.await.unwrap().0, 200);
    }

    async fn futures_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(TcpStream::connect(addr).await.unwrap());
        }
        v
    }

    #[test]
    fn pages_escape_everything() {
        let html = Page::failure("<img src=x onerror=alert(1)> & \"quotes\"\u{7}").html();
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot; "));
    }
}
