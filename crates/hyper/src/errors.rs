//! Turning hyper's errors into [`TransportError`]s that name the URL and the cause, and nothing
//! else: the reasons come from the error chain (hyper-util, hyper, io, rustls), none of which quotes
//! a header value or a body.

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

/// A failure of the request itself (connecting, sending, reading the head).
pub(crate) fn classify_request(
    err: &hyper_util::client::legacy::Error,
    url: &str,
) -> TransportError {
    let url = url.to_owned();
    if let Some(reason) = tls_failure(err) {
        return TransportError::Tls { url, reason };
    }
    let reason = with_causes(err);
    if err.is_connect() {
        TransportError::Connect { url, reason }
    } else {
        TransportError::Other { url, reason }
    }
}

/// A failure while reading the body.
pub(crate) fn classify_body(err: &hyper::Error, url: &str) -> TransportError {
    let url = url.to_owned();
    if let Some(reason) = tls_failure(err) {
        return TransportError::Tls { url, reason };
    }
    TransportError::Other {
        url,
        reason: format!("while reading the body: {}", with_causes(err)),
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

/// The error and its causes, joined with `: `, repeats dropped.
pub(crate) fn with_causes(err: &(dyn StdError + 'static)) -> String {
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
