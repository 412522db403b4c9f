//! A small, deliberately misbehaving HTTP/1.1 server on 127.0.0.1.
//!
//! Routes (the query string is ignored for routing but recorded):
//!
//! | path | answer |
//! |---|---|
//! | `/echo` | `201`, `content-type: application/json`, `x-server: matrix-oidc-test`, body [`ECHO_BODY`] |
//! | `/fixed/N` | `200`, `Content-Length: N`, N bytes |
//! | `/chunked/N` | `200`, chunked, N bytes |
//! | `/endless` | `200`, chunked, 64 KiB chunks until the client hangs up (at most [`ENDLESS_CAP`]) |
//! | `/declared/N` | `200`, `Content-Length: N`, then no bytes: waits for the client to hang up |
//! | `/stall` | reads the request, never answers |
//! | `/trickle` | `200`, `Content-Length: 1000`, 10 bytes, then nothing |
//! | `/redirect` | `302`, `Location: <base>/echo?from=redirect` |
//! | `/garbage` | bytes that are not HTTP, then closes |
//!
//! Every wait is bounded ([`SERVER_PATIENCE`]) so the server stops by itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// The body `/echo` answers with.
pub const ECHO_BODY: &[u8] = br#"{"ok":true,"server":"matrix-oidc-test"}"#;

/// How much `/endless` sends at most before giving up on the client hanging up: far more than any
/// bound the suite uses, so reaching it means the client read on instead of abandoning the body.
pub const ENDLESS_CAP: u64 = 1 << 30;

/// How long a stalling route waits for the client to hang up before it gives up by itself.
pub const SERVER_PATIENCE: Duration = Duration::from_secs(90);

const CHUNK: usize = 64 * 1024;

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header names (lower-cased) and values, in arrival order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<RecordedRequest>>,
    /// Counts responses the client abandoned: a failed write or an end-of-file while the server
    /// still had more to say.
    abandoned: Mutex<Option<watch::Sender<usize>>>,
}

impl State {
    fn mark_abandoned(&self) {
        if let Some(tx) = self.abandoned.lock().unwrap().as_ref() {
            tx.send_modify(|n| *n += 1);
        }
    }
}

/// A running test server. It stops when dropped.
pub struct TestServer {
    base: String,
    state: Arc<State>,
    abandoned: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts a plain-HTTP server on 127.0.0.1 (a free port).
    pub async fn start() -> Self {
        Self::start_inner(None).await
    }

    /// Starts an HTTPS server on 127.0.0.1 presenting `pki`'s server certificate.
    pub async fn start_tls(pki: &crate::TestPki) -> Self {
        Self::start_inner(Some(pki.acceptor())).await
    }

    async fn start_inner(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{addr}");
        let (tx, rx) = watch::channel(0usize);
        let state = Arc::new(State::default());
        *state.abandoned.lock().unwrap() = Some(tx);
        let task = tokio::spawn({
            let state = state.clone();
            let base = base.clone();
            async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let state = state.clone();
                    let base = base.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            None => serve_connection(tcp, &state, &base).await,
                            Some(acceptor) => {
                                // A client that rejects the certificate aborts the handshake.
                                if let Ok(stream) = acceptor.accept(tcp).await {
                                    serve_connection(stream, &state, &base).await;
                                }
                            }
                        }
                    });
                }
            }
        });
        Self {
            base,
            state,
            abandoned: rx,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` or `https://…`, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The absolute URL of `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until the client has abandoned at least one response (hung up while the server still
    /// had body to send). Bounded by the caller's hang limit, not here.
    pub async fn client_hung_up(&self) {
        let mut rx = self.abandoned.clone();
        rx.wait_for(|n| *n > 0).await.unwrap();
    }
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    state: &State,
    base: &str,
) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        state.requests.lock().unwrap().push(request.clone());
        let path = request.target.split('?').next().unwrap_or("");
        let keep_going = respond(&mut stream, path, state, base).await;
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
        if !keep_going || close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Reads one request (head and `Content-Length` body). `None` on end-of-file or anything the suite
/// never sends (chunked request bodies, malformed heads).
async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Option<RecordedRequest> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head_len) = req.parse(buf).ok()? {
            let method = req.method?.to_owned();
            let target = req.path?.to_owned();
            let headers: Vec<(String, Vec<u8>)> = req
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                .collect();
            if headers.iter().any(|(n, _)| n == "transfer-encoding") {
                return None;
            }
            let body_len: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok())
                .unwrap_or(Some(0))?;
            while buf.len() < head_len + body_len {
                if !fill(stream, buf).await {
                    return None;
                }
            }
            let body = buf[head_len..head_len + body_len].to_vec();
            buf.drain(..head_len + body_len);
            return Some(RecordedRequest {
                method,
                target,
                headers,
                body,
            });
        }
        if !fill(stream, buf).await {
            return None;
        }
    }
}

async fn fill<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Waits (bounded) for the client to hang up, reading and discarding anything it sends. Returns
/// whether it did.
async fn wait_for_hang_up<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut sink = [0u8; 1024];
    let waited = tokio::time::timeout(SERVER_PATIENCE, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    waited.is_ok()
}

/// Answers one request. Returns whether the connection may carry another one.
async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    path: &str,
    state: &State,
    base: &str,
) -> bool {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let route = segments.next().unwrap_or("");
    let arg: Option<u64> = segments.next().and_then(|s| s.parse().ok());
    match (route, arg) {
        ("echo", None) => {
            let head = format!(
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nx-server: matrix-oidc-test\r\ncontent-length: {}\r\n\r\n",
                ECHO_BODY.len()
            );
            write(stream, head.as_bytes()).await && write(stream, ECHO_BODY).await
        }
        ("fixed", Some(n)) => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n");
            write(stream, head.as_bytes()).await && write(stream, &vec![b'a'; n as usize]).await
        }
        ("chunked", Some(n)) => {
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            if !write(stream, head.as_bytes()).await {
                return false;
            }
            let mut left = n as usize;
            while left > 0 {
                let len = left.min(1000);
                if !write_chunk(stream, &vec![b'c'; len]).await {
                    return false;
                }
                left -= len;
            }
            write(stream, b"0\r\n\r\n").await
        }
        ("endless", None) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if !write(stream, head.as_bytes()).await {
                state.mark_abandoned();
                return false;
            }
            let block = vec![b' '; CHUNK];
            let mut sent = 0u64;
            while sent < ENDLESS_CAP {
                if !write_chunk(stream, &block).await {
                    state.mark_abandoned();
                    return false;
                }
                sent += CHUNK as u64;
            }
            // The client read a whole gibibyte: it did not abandon the body. End the body
            // properly so that the test sees a successful (and wrong) outcome.
            write(stream, b"0\r\n\r\n").await;
            false
        }
        ("declared", Some(n)) => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n");
            if write(stream, head.as_bytes()).await && wait_for_hang_up(stream).await {
                state.mark_abandoned();
            }
            false
        }
        ("stall", None) => {
            wait_for_hang_up(stream).await;
            false
        }
        ("trickle", None) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789";
            if write(stream, head.as_bytes()).await && wait_for_hang_up(stream).await {
                state.mark_abandoned();
            }
            false
        }
        ("redirect", None) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nlocation: {base}/echo?from=redirect\r\ncontent-length: 0\r\n\r\n"
            );
            write(stream, head.as_bytes()).await
        }
        ("garbage", None) => {
            write(stream, b"this is not HTTP at all\r\n\r\n").await;
            false
        }
        _ => {
            write(
                stream,
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            )
            .await
        }
    }
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok() && stream.flush().await.is_ok()
}

async fn write_chunk<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) -> bool {
    let size = format!("{:x}\r\n", data.len());
    stream.write_all(size.as_bytes()).await.is_ok()
        && stream.write_all(data).await.is_ok()
        && write(stream, b"\r\n").await
}

#[cfg(test)]
mod tests {
    //! The fixtures themselves, driven by a raw TCP client, so that a suite failure points at the
    //! transport and not at the server.
    use super::*;
    use tokio::net::TcpStream;

    async fn raw(server: &TestServer, request: &str) -> TcpStream {
        let addr = server.base().trim_start_matches("http://").to_owned();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        tcp
    }

    #[test]
    fn echo_records_the_request_and_answers() {
        crate::run(async {
            let server = TestServer::start().await;
            let mut tcp = raw(
                &server,
                "POST /echo?x=1 HTTP/1.1\r\nhost: a\r\nx-custom: v\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
            )
            .await;
            let mut answer = Vec::new();
            tcp.read_to_end(&mut answer).await.unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 201 Created\r\n"));
            assert!(answer.ends_with(ECHO_BODY));
            let reqs = server.requests();
            assert_eq!(reqs.len(), 1);
            assert_eq!(reqs[0].method, "POST");
            assert_eq!(reqs[0].target, "/echo?x=1");
            assert_eq!(reqs[0].header("X-Custom"), Some(&b"v"[..]));
            assert_eq!(reqs[0].body, b"abc");
        });
    }

    #[test]
    fn endless_outlasts_a_reader_and_notices_a_hang_up() {
        crate::run(async {
            let server = TestServer::start().await;
            let mut tcp = raw(&server, "GET /endless HTTP/1.1\r\nhost: a\r\n\r\n").await;
            // Far more than any bound in the suite, and still going.
            let mut got = 0usize;
            let mut buf = vec![0u8; CHUNK];
            while got < 8 * 1024 * 1024 {
                let n = tcp.read(&mut buf).await.unwrap();
                assert_ne!(n, 0, "endless body ended");
                got += n;
            }
            assert_eq!(*server.abandoned.borrow(), 0);
            drop(tcp);
            server.client_hung_up().await;
        });
    }

    #[test]
    fn declared_sends_only_the_head() {
        crate::run(async {
            let server = TestServer::start().await;
            let mut tcp = raw(&server, "GET /declared/5000 HTTP/1.1\r\nhost: a\r\n\r\n").await;
            let mut buf = vec![0u8; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tcp.read(&mut buf).await.unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            assert!(head.ends_with(b"content-length: 5000\r\n\r\n"));
            drop(tcp);
            server.client_hung_up().await;
        });
    }
}
