//! The pieces of a [`TransportError`](matrix_oidc_core::transport::TransportError) the adapters
//! take from their library's errors: the URL and the cause, and nothing else. The reasons come from
//! the error chain (the HTTP library, io, rustls), none of which quotes a header value or a body.

use std::error::Error as StdError;
use std::time::Duration;

/// The URL as shown in errors: the request's, less any `user:password@`.
pub fn shown_url(uri: &http::Uri) -> String {
    match uri.authority() {
        Some(authority) if authority.as_str().contains('@') => {
            let host = authority
                .as_str()
                .rsplit_once('@')
                .map_or(authority.as_str(), |(_, host)| host);
            let scheme = uri.scheme_str().unwrap_or("http");
            let path = uri.path_and_query().map_or("", |p| p.as_str());
            format!("{scheme}://{host}{path}")
        }
        _ => uri.to_string(),
    }
}

/// `timeout` in whole milliseconds, saturating.
pub fn millis(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
}

/// The message of the first rustls error in the chain, if any. rustls errors travel inside
/// `io::Error`s, whose `source()` skips the wrapped error, so those are opened by hand.
pub fn tls_failure(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(tls) = tls_failure(inner) {
                return Some(tls);
            }
        }
        next = e.source();
    }
    None
}

/// The error and its causes, joined with `: `, repeats dropped.
pub fn with_causes(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The causes below the top-level error, for libraries whose top level only restates the URL (as
/// reqwest's does); the top level itself when it has no cause.
pub fn causes(err: &(dyn StdError + 'static)) -> String {
    match err.source() {
        Some(source) => with_causes(source),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_not_shown() {
        let uri: http::Uri = "https://alice:pa55word@example.com:8448/_matrix/x?y=1"
            .parse()
            .unwrap();
        assert_eq!(shown_url(&uri), "https://example.com:8448/_matrix/x?y=1");
        let uri: http::Uri = "https://example.com/a".parse().unwrap();
        assert_eq!(shown_url(&uri), "https://example.com/a");
    }

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer = std::io::Error::other(io);
        assert!(tls_failure(&outer).is_some_and(|r| r.contains("UnknownIssuer")));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(tls_failure(&plain), None);
    }

    /// An error with a fixed message and an optional cause.
    #[derive(Debug)]
    struct Link(&'static str, Option<Box<Link>>);

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Link {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn chains_are_joined_without_repeats() {
        let chain = Link(
            "client error",
            Some(Box::new(Link(
                "connect",
                Some(Box::new(Link(
                    "connect",
                    Some(Box::new(Link("refused", None))),
                ))),
            ))),
        );
        assert_eq!(with_causes(&chain), "client error: connect: refused");
        assert_eq!(causes(&chain), "connect: refused");
        let alone = Link("builder error", None);
        assert_eq!(with_causes(&alone), "builder error");
        assert_eq!(causes(&alone), "builder error");
    }
}
