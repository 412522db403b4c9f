//! Matrix OAuth 2.0 / OpenID Connect client: the async API applications call.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod runtime;
mod single_flight;

pub use runtime::{BoxFuture, Clock, ManualClock, Sleep, Spawn, SystemClock};
#[cfg(feature = "tokio")]
pub use runtime::{TokioSleep, TokioSpawner};
