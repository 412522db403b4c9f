//! Randomness as an input: the core never draws random bytes from a hidden source.

/// Randomness could not be obtained from the operating system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the random source failed: {0}")]
pub struct RandomError(pub String);

/// A source of cryptographically secure random bytes.
///
/// Everything in the core that needs randomness (state, PKCE verifier, nonce, device id) takes a
/// `&mut dyn RandomSource`, so tests can use a [`SeededRandom`] and applications the [`OsRandom`]
/// default (or their own, e.g. a hardware RNG).
pub trait RandomSource {
    /// Fills `buf` entirely with random bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The operating system's random source, through `getrandom`.
///
/// On `wasm32-unknown-unknown` it exists only with the `wasm-js` feature (which uses the browser's
/// `crypto.getRandomValues`); without it, pass your own [`RandomSource`].
#[cfg(any(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    feature = "wasm-js"
))]
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

#[cfg(any(
    not(all(target_arch = "wasm32", target_os = "unknown")),
    feature = "wasm-js"
))]
impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
    }
}

/// A deterministic generator for tests and reproducible examples. **Not** for production use:
/// anyone who knows the seed can predict every state, verifier and device id.
///
/// ```
/// use matrix_oidc_core::{RandomSource, SeededRandom};
/// let (mut a, mut b) = (SeededRandom::new(7), SeededRandom::new(7));
/// let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
/// a.fill(&mut x).unwrap();
/// b.fill(&mut y).unwrap();
/// assert_eq!(x, y);
/// ```
#[derive(Debug, Clone)]
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    /// A generator whose output is fully determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    // SplitMix64: tiny, fast, and good enough to make test values look random.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_differs_by_seed_and_fills_odd_lengths() {
        let mut a = SeededRandom::new(1);
        let mut b = SeededRandom::new(2);
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill(&mut x).unwrap();
        b.fill(&mut y).unwrap();
        assert_ne!(x, y);
        assert!(x.iter().any(|&v| v != 0));
    }

    #[test]
    fn os_random_fills() {
        let mut buf = [0u8; 32];
        OsRandom.fill(&mut buf).unwrap();
        assert!(buf.iter().any(|&v| v != 0));
    }
}
