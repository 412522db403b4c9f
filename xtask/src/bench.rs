//! `cargo xtask bench`: the benchmarks against the anchors.

use crate::util::Result;

pub(crate) fn run(_args: &[String]) -> Result {
    Err("not yet".into())
}
