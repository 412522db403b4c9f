//! hyper transport for matrix-oidc
