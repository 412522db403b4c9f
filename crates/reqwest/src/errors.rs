//! Turning reqwest's errors into [`TransportError`]s that name the URL and the cause, and nothing
//! else: the reasons come from the error chain (reqwest, hyper, io, rustls), none of which quotes a
//! header value or a body.

use matrix_oidc_core::transport::TransportError;
use std::error::Error as StdError;
use std::time::Duration;

/// The URL as shown in errors: the request's, less any `user:password@`.
pub(crate) fn shown_url(uri: &http::Uri) -> String {
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

pub(crate) fn millis(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn classify(err: &reqwest::Error, url: &str, timeout: Duration) -> TransportError {
    let url = url.to_owned();
    if let Some(reason) = tls_failure(err) {
        return TransportError::Tls { url, reason };
    }
    // Only if the caller's own client carries a shorter timeout than the request's.
    if err.is_timeout() {
        return TransportError::Timeout {
            url,
            timeout_ms: millis(timeout),
        };
    }
    let reason = causes(err);
    if err.is_connect() {
        TransportError::Connect { url, reason }
    } else {
        TransportError::Other { url, reason }
    }
}

/// The message of the first rustls error in the chain, if any. rustls errors travel inside
/// `io::Error`s, whose `source()` skips the wrapped error, so those are opened by hand.
pub(crate) fn tls_failure(err: &(dyn StdError + 'static)) -> Option<String> {
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

/// The causes below the top-level error (which only restates the URL), joined with `: `.
pub(crate) fn causes(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
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
}
