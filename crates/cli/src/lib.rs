//! # matrix-oidc-cli
//!
//! The `matrix-oidc` command-line tool: sign in to a Matrix homeserver through its OAuth 2.0 API
//! (authorization code flow with a loopback redirect, or the device authorization grant), keep the
//! session in a durable store, and use it from scripts.
//!
//! ```text
//! matrix-oidc discover matrix.example.org     what the homeserver's authorization server supports
//! matrix-oidc login matrix.example.org        sign in in the system browser (RFC 8252 loopback)
//! matrix-oidc login --device matrix.example.org   sign in on another device: code + QR code
//! matrix-oidc whoami                          who is signed in, asked of the homeserver
//! matrix-oidc token                           a valid access token (refreshed when due), for scripts
//! matrix-oidc refresh                         refresh now
//! matrix-oidc account [action]                the account management page
//! matrix-oidc sessions                        the stored sessions
//! matrix-oidc logout                          revoke the tokens, delete the session
//! ```
//!
//! ## Contract for scripts
//!
//! * **stdout** carries the result only: text, or with `--json` one JSON object (`login --json`
//!   prints JSON Lines: a progress event first — `{"event":"authorization_url",…}` or
//!   `{"event":"device_authorization",…}` with the address and code — then the session, the same
//!   object `whoami --json` prints). `token` prints the bare token.
//! * **stderr** carries everything for the person: the address to open, the QR code, the live
//!   countdown (only on a terminal), `-v` diagnostics, and errors (`--json`: one JSON object
//!   `{"error":{"kind","message","hint","exit_code"}}`).
//! * **Exit codes**: 0 success, 1 local failure, 2 usage, 3 not signed in (no session, or the
//!   server ended it), 4 network, 5 server or protocol error, 6 cancelled or timed out,
//!   130 interrupted.
//!
//! Sessions live in a [`FileStore`](matrix_oidc_storage::FileStore) under the user's data
//! directory (`$XDG_DATA_HOME/matrix-oidc`, else `~/.local/share/matrix-oidc` on Linux), or
//! `--store` / `MATRIX_OIDC_STORE`; several processes may use it at once (refreshes are
//! single-flight across them).
//!
//! ## Layout
//!
//! The binary is a thin `main` over this library, so that its parts are unit-tested:
//! [`args`] (the command line), [`run`] (the commands over the async client), [`error`] (messages
//! and exit codes), [`output`] (human text and JSON), [`loopback`] (the RFC 8252 redirect
//! listener), [`device`] (the device-flow display: QR code and countdown), [`select`] (which
//! stored session), [`env`](mod@env) (store location, browser, terminal) and [`logging`] (`-v`).
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
pub mod run;
pub mod select;
