//! The limits every exchange obeys, whatever the HTTP library: the request's body bound and its one
//! deadline.

use crate::errors::millis;
use matrix_oidc_core::transport::TransportError;
use std::future::Future;
use std::time::Duration;

/// A response body read under the request's bound: refused from the head when the declared length
/// is over it, and abandoned as soon as the chunks read pass it (the caller then drops the response,
/// which closes the connection, so the rest is never read).
#[derive(Debug)]
pub struct BoundedBody<'u> {
    bytes: Vec<u8>,
    limit: usize,
    url: &'u str,
}

impl<'u> BoundedBody<'u> {
    /// Starts a body for `url` bounded by `limit` bytes. `declared` is the length the head
    /// announces (`Content-Length`), if any: over `limit` it is refused with
    /// [`TransportError::BodyTooLarge`]; otherwise that much is reserved.
    pub fn new(declared: Option<u64>, limit: usize, url: &'u str) -> Result<Self, TransportError> {
        let body = Self {
            bytes: Vec::new(),
            limit,
            url,
        };
        match declared {
            Some(len) if len > limit as u64 => Err(body.too_large()),
            Some(len) => Ok(Self {
                bytes: Vec::with_capacity(usize::try_from(len).unwrap_or(limit).min(limit)),
                ..body
            }),
            None => Ok(body),
        }
    }

    /// Appends `chunk`, or fails with [`TransportError::BodyTooLarge`] if it would pass the bound.
    pub fn extend(&mut self, chunk: &[u8]) -> Result<(), TransportError> {
        if chunk.len() > self.limit - self.bytes.len() {
            return Err(self.too_large());
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The body read.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn too_large(&self) -> TransportError {
        TransportError::BodyTooLarge {
            url: self.url.to_owned(),
            limit: self.limit,
        }
    }
}

/// Runs `exchange` (connect to last body byte) under `timeout`; past it the exchange is dropped and
/// the result is [`TransportError::Timeout`] for `url`.
pub async fn with_deadline<T>(
    timeout: Duration,
    url: &str,
    exchange: impl Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_elapsed) => Err(TransportError::Timeout {
            url: url.to_owned(),
            timeout_ms: millis(timeout),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.com/a";

    fn is_too_large(err: &TransportError) -> bool {
        matches!(err, TransportError::BodyTooLarge { url, limit: 4 } if url == URL)
    }

    #[test]
    fn a_declared_length_over_the_bound_is_refused_from_the_head() {
        assert!(is_too_large(
            &BoundedBody::new(Some(5), 4, URL).unwrap_err()
        ));
        assert!(BoundedBody::new(Some(4), 4, URL).is_ok());
        // A length no `usize` holds is still over the bound, not a panic.
        assert!(is_too_large(
            &BoundedBody::new(Some(u64::MAX), 4, URL).unwrap_err()
        ));
    }

    #[test]
    fn chunks_are_taken_up_to_the_bound_and_not_past_it() {
        for declared in [None, Some(0), Some(4)] {
            let mut body = BoundedBody::new(declared, 4, URL).unwrap();
            body.extend(b"ab").unwrap();
            body.extend(b"cd").unwrap();
            body.extend(b"").unwrap();
            assert!(is_too_large(&body.extend(b"e").unwrap_err()));
            assert_eq!(body.into_bytes(), b"abcd");
        }
    }

    #[tokio::test]
    async fn the_deadline_ends_a_stalled_exchange() {
        let stalled = std::future::pending::<Result<(), TransportError>>();
        let err = with_deadline(Duration::from_millis(1), URL, stalled)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, TransportError::Timeout { url, timeout_ms: 1 } if url == URL),
            "{err:?}"
        );
        let done = with_deadline(Duration::from_secs(60), URL, async { Ok(7) }).await;
        assert_eq!(done.unwrap(), 7);
    }
}
