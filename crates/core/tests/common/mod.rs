//! Helpers shared by the integration tests: fixtures and a replaying "server".
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use matrix_oidc_core::discovery::Step;
use matrix_oidc_core::{Discovered, DiscoveryError, OutgoingRequest, Timestamp};
use std::path::PathBuf;

/// 2023-11-14T22:13:20Z, the `Date` of the Synapse fixtures.
pub const NOW: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// Reads a `.http` fixture: status line, headers, blank line, body.
pub fn http_fixture(name: &str) -> http::Response<Vec<u8>> {
    let raw = fixture(name);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a blank line after the headers");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut builder = http::Response::builder().status(status);
    for line in lines {
        let (k, v) = line.split_once(':').unwrap();
        builder = builder.header(k.trim(), v.trim());
    }
    builder.body(body).unwrap()
}

pub fn response(status: u16, content_type: Option<&str>, body: &[u8]) -> http::Response<Vec<u8>> {
    let mut b = http::Response::builder().status(status);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(body.to_vec()).unwrap()
}

pub fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
    response(status, Some("application/json"), body.as_bytes())
}

pub fn unrecognized() -> http::Response<Vec<u8>> {
    http_fixture("synapse_unrecognized.http")
}

/// A discovery-like state machine, so that one driver serves both kinds.
pub trait Machine {
    fn start(&mut self) -> Result<Step, DiscoveryError>;
    fn handle(&mut self, r: &http::Response<Vec<u8>>) -> Result<Step, DiscoveryError>;
}

impl Machine for matrix_oidc_core::MatrixDiscovery {
    fn start(&mut self) -> Result<Step, DiscoveryError> {
        matrix_oidc_core::MatrixDiscovery::start(self)
    }
    fn handle(&mut self, r: &http::Response<Vec<u8>>) -> Result<Step, DiscoveryError> {
        self.handle_response(r, NOW)
    }
}

impl Machine for matrix_oidc_core::IssuerDiscovery {
    fn start(&mut self) -> Result<Step, DiscoveryError> {
        matrix_oidc_core::IssuerDiscovery::start(self)
    }
    fn handle(&mut self, r: &http::Response<Vec<u8>>) -> Result<Step, DiscoveryError> {
        self.handle_response(r, NOW)
    }
}

/// What a replayed exchange produced: the requests made, in order, and the outcome.
pub struct Replay {
    pub requests: Vec<OutgoingRequest>,
    pub outcome: Result<Discovered, DiscoveryError>,
}

impl Replay {
    pub fn urls(&self) -> Vec<String> {
        self.requests.iter().map(|r| r.url()).collect()
    }

    pub fn discovered(self) -> Discovered {
        let urls = self.urls();
        match self.outcome {
            Ok(d) => d,
            Err(e) => panic!("discovery failed: {e}; requests {urls:?}"),
        }
    }

    pub fn error(self) -> DiscoveryError {
        match self.outcome {
            Ok(d) => panic!("discovery succeeded unexpectedly: {d:?}"),
            Err(e) => e,
        }
    }
}

/// Drives `machine`, answering each request with `answer(url)`. Panics after 20 requests.
pub fn replay(
    machine: &mut dyn Machine,
    mut answer: impl FnMut(&str) -> http::Response<Vec<u8>>,
) -> Replay {
    let mut requests = Vec::new();
    let mut step = match machine.start() {
        Ok(s) => s,
        Err(e) => {
            return Replay {
                requests,
                outcome: Err(e),
            };
        }
    };
    loop {
        match step {
            Step::Send(request) => {
                assert!(requests.len() < 20, "runaway discovery");
                let response = answer(&request.url());
                requests.push(request);
                step = match machine.handle(&response) {
                    Ok(s) => s,
                    Err(e) => {
                        return Replay {
                            requests,
                            outcome: Err(e),
                        };
                    }
                };
            }
            Step::Done(d) => {
                return Replay {
                    requests,
                    outcome: Ok(*d),
                };
            }
        }
    }
}
