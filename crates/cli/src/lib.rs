//! # matrix-oidc-cli
//!
//! The `matrix-oidc` command-line tool: sign in to a Matrix homeserver through its OAuth 2.0 API
//! (authorization code flow with a loopback redirect, or the device authorization grant), keep the
//! session in a durable store, and use it from scripts (`matrix-oidc token`).
//!
//! The binary is a thin `main` over this library, so that its parts are unit-tested:
//! [`args`] (the command line), [`error`] (messages and exit codes), [`output`] (human text and
//! JSON), [`loopback`] (the RFC 8252 redirect listener), [`device`] (the device-flow display: QR
//! code and countdown), [`select`] (which stored session), [`env`](mod@env) (store location, browser,
//! terminal) and [`logging`] (`-v`).
//!
//! ## Dependencies, and why
//! `clap` parses the command line (derive, help, environment fallbacks); `tokio` runs the async
//! client and the loopback listener; `httparse` parses request heads in the listener, so garbage is
//! refused rather than mis-read; `qrcode` encodes the device-flow address; `webbrowser` opens the
//! system browser; `dirs` finds the per-user data directory (XDG on Linux); `tracing-subscriber`
//! prints `-v` diagnostics.

pub mod args;
pub mod device;
pub mod env;
pub mod error;
pub mod logging;
pub mod loopback;
pub mod output;
pub mod select;
