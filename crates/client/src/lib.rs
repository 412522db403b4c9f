//! Matrix OAuth 2.0 / OpenID Connect client: the async API applications call
