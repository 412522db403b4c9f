//! matrix-oidc command-line tool.

fn main() {}
