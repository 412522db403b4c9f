//! reqwest transport for matrix-oidc
