//! One test binary for every store: the shared conformance suite, store-specific format and
//! damage tests, and the multi-process tests (crash safety, cross-process lock), whose child
//! processes are this same binary re-executed (see `processes::child_process`).

// Test helpers outside `#[test]` functions panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod conformance;
mod file;
mod memory;
mod processes;
mod sqlite;
