//! Storage for matrix-oidc: pending authorizations and sessions, in memory, in files and in SQLite
