//! Randomness as an input: the core never draws random bytes from a hidden source.

use zeroize::Zeroize;

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

/// Random bytes a Matrix login draws: 32 for the device id, 32 for the PKCE verifier, 24 for the
/// `state` and 24 for an OpenID Connect `nonce`.
pub const LOGIN_RANDOM_BYTES: usize = 112;

/// The most bytes a [`PrefetchedRandom`] holds.
pub const MAX_PREFETCH_BYTES: usize = 256;

/// Draws the bytes of several values in one call of another source, then hands them out in order.
///
/// With [`OsRandom`] every [`fill`](RandomSource::fill) is a system call, which costs more than
/// everything else a login computes. Create one of these for a login, pass it wherever a
/// `&mut dyn RandomSource` is asked for ([`DeviceId::generate`](crate::DeviceId::generate), then
/// [`AuthorizationRequest::build`](crate::AuthorizationRequest::build)), and drop it: the source is
/// called once, on the first fill, for [`capacity`](Self::capacity) bytes. A process that starts
/// many logins can keep a [`RandomPool`] instead, which makes that one call per many logins.
///
/// Rules, so that nothing is reused or kept:
/// - every byte is handed out at most once, and is wiped from the buffer as it is handed out;
/// - a fill larger than what is left wipes the rest and draws again (a fill larger than the capacity
///   goes to the source directly), so a fill never fails for lack of bytes;
/// - dropping it wipes what was not handed out.
///
/// The bytes handed out are the source's bytes, in the order the source gives them. With a
/// deterministic source such as [`SeededRandom`] (which makes 8 bytes at a time), fills whose
/// lengths are multiples of 8 get the very bytes they would get from the source directly — a login's
/// device id, verifier, state and nonce are the same either way — except that unused bytes left at
/// the end are skipped.
///
/// ```
/// use matrix_oidc_core::{
///     AuthorizationRequest, AuthorizationServerMetadata, DeviceId, OsRandom, PrefetchedRandom,
///     Scope, Timestamp,
/// };
/// # let metadata: AuthorizationServerMetadata = serde_json::from_str(r#"{
/// #     "issuer": "https://account.example.com/",
/// #     "authorization_endpoint": "https://account.example.com/oauth2/auth",
/// #     "token_endpoint": "https://account.example.com/oauth2/token",
/// #     "code_challenge_methods_supported": ["S256"] }"#).unwrap();
/// # let redirect = "https://app.example.com/cb".parse().unwrap();
/// let mut os = OsRandom;
/// // One system call for the device id, the PKCE verifier and the state.
/// let mut rng = PrefetchedRandom::for_login(&mut os);
/// let scope = Scope::matrix(DeviceId::generate(&mut rng)?).build()?;
/// let start = AuthorizationRequest::new(&metadata, "client-id", redirect, scope)
///     .build(Timestamp::from_unix_seconds(1_700_000_000), &mut rng)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PrefetchedRandom<'a> {
    source: &'a mut dyn RandomSource,
    reservoir: Reservoir<[u8; MAX_PREFETCH_BYTES]>,
}

impl<'a> PrefetchedRandom<'a> {
    /// Draws from `source`, `bytes` at a time (at most [`MAX_PREFETCH_BYTES`]).
    pub fn new(source: &'a mut dyn RandomSource, bytes: usize) -> Self {
        Self {
            source,
            reservoir: Reservoir::new([0; MAX_PREFETCH_BYTES], bytes),
        }
    }

    /// Enough for one login, nonce included: [`LOGIN_RANDOM_BYTES`].
    pub fn for_login(source: &'a mut dyn RandomSource) -> Self {
        Self::new(source, LOGIN_RANDOM_BYTES)
    }

    /// How many bytes each call of the source draws.
    pub fn capacity(&self) -> usize {
        self.reservoir.capacity
    }

    /// How many drawn bytes are left to hand out.
    pub fn remaining(&self) -> usize {
        self.reservoir.remaining()
    }
}

impl RandomSource for PrefetchedRandom<'_> {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), RandomError> {
        self.reservoir.fill(self.source, out)
    }
}

impl std::fmt::Debug for PrefetchedRandom<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefetchedRandom")
            .field("capacity", &self.capacity())
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

/// How many bytes a [`RandomPool`] draws at a time unless told otherwise: 4 KiB.
pub const DEFAULT_POOL_BYTES: usize = 4096;

/// The most bytes a [`RandomPool`] draws at a time: 64 KiB.
pub const MAX_POOL_BYTES: usize = 65_536;

/// A pool of random bytes for a process that starts many logins (a web backend, a bridge): it draws
/// [`capacity`](Self::capacity) bytes from its source in one call when it runs dry, then hands them
/// out in order.
///
/// With [`OsRandom`] every draw is a system call, which costs more than everything else a login
/// start computes; a 4 KiB pool makes that one call per forty-odd logins. It follows the same rules
/// as [`PrefetchedRandom`] (the two share their code):
/// - every byte is handed out at most once, and is wiped from the pool as it is handed out;
/// - a fill larger than what is left wipes the rest and draws again, and a fill larger than the
///   capacity goes to the source directly, so a fill never fails for lack of bytes;
/// - dropping the pool wipes what was not handed out.
///
/// It is an object you create and pass around like any other [`RandomSource`] (for example behind
/// your own mutex, or one per worker thread); the core keeps no pool, or any other state, of its
/// own. It is deliberately not `Clone`: a copy would hand out the same bytes twice.
///
/// **After `fork`**, a child process must not keep using a pool it inherited from its parent: both
/// would hand out the same bytes. Create a new pool in the child (or drop the parent's before
/// forking). Undrawn bytes also sit in memory until handed out or dropped, like any buffered
/// randomness; they are never written anywhere else.
///
/// ```
/// use matrix_oidc_core::{
///     AuthorizationRequest, AuthorizationServerMetadata, DeviceId, OsRandom, RandomPool, Scope,
///     Timestamp,
/// };
/// # let metadata: AuthorizationServerMetadata = serde_json::from_str(r#"{
/// #     "issuer": "https://account.example.com/",
/// #     "authorization_endpoint": "https://account.example.com/oauth2/auth",
/// #     "token_endpoint": "https://account.example.com/oauth2/token",
/// #     "code_challenge_methods_supported": ["S256"] }"#).unwrap();
/// # let redirect: url::Url = "https://app.example.com/cb".parse().unwrap();
/// // Created once, at start-up, and kept (here for two logins; a server keeps it for many).
/// let mut pool = RandomPool::new(OsRandom);
/// for _ in 0..2 {
///     let scope = Scope::matrix(DeviceId::generate(&mut pool)?).build()?;
///     let start = AuthorizationRequest::new(&metadata, "client-id", redirect.clone(), scope)
///         .build(Timestamp::from_unix_seconds(1_700_000_000), &mut pool)?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RandomPool<R: RandomSource> {
    source: R,
    reservoir: Reservoir<Box<[u8]>>,
}

impl<R: RandomSource> RandomPool<R> {
    /// A pool over `source` drawing [`DEFAULT_POOL_BYTES`] at a time.
    pub fn new(source: R) -> Self {
        Self::with_capacity(source, DEFAULT_POOL_BYTES)
    }

    /// A pool over `source` drawing `bytes` at a time (at least 1, at most [`MAX_POOL_BYTES`]).
    pub fn with_capacity(source: R, bytes: usize) -> Self {
        let capacity = bytes.clamp(1, MAX_POOL_BYTES);
        Self {
            source,
            reservoir: Reservoir::new(vec![0; capacity].into_boxed_slice(), capacity),
        }
    }

    /// How many bytes each call of the source draws.
    pub fn capacity(&self) -> usize {
        self.reservoir.capacity
    }

    /// How many drawn bytes are left to hand out.
    pub fn remaining(&self) -> usize {
        self.reservoir.remaining()
    }
}

impl<R: RandomSource> RandomSource for RandomPool<R> {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), RandomError> {
        self.reservoir.fill(&mut self.source, out)
    }
}

impl<R: RandomSource> std::fmt::Debug for RandomPool<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RandomPool")
            .field("capacity", &self.capacity())
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

/// Bytes drawn ahead from a source, handed out in order, each once, wiped as they leave and on drop:
/// the one implementation behind [`PrefetchedRandom`] (a buffer on the stack) and [`RandomPool`]
/// (on the heap).
struct Reservoir<B: AsMut<[u8]>> {
    buf: B,
    /// How many bytes a draw takes; at most the buffer's length.
    capacity: usize,
    /// Bytes drawn into `buf`; `buf[next..drawn]` is what is left to hand out.
    drawn: usize,
    next: usize,
}

impl<B: AsMut<[u8]>> Reservoir<B> {
    fn new(mut buf: B, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, buf.as_mut().len().max(1));
        Self {
            buf,
            capacity,
            drawn: 0,
            next: 0,
        }
    }

    fn remaining(&self) -> usize {
        self.drawn - self.next
    }

    fn wipe_rest(&mut self) {
        if let Some(rest) = self.buf.as_mut().get_mut(self.next..self.drawn) {
            rest.zeroize();
        }
        self.next = 0;
        self.drawn = 0;
    }

    fn fill(
        &mut self,
        source: &mut (impl RandomSource + ?Sized),
        out: &mut [u8],
    ) -> Result<(), RandomError> {
        if out.len() > self.remaining() {
            self.wipe_rest();
            if out.len() > self.capacity {
                return source.fill(out);
            }
            let target = self
                .buf
                .as_mut()
                .get_mut(..self.capacity)
                .ok_or_else(|| RandomError("random buffer too small".to_owned()))?;
            if let Err(e) = source.fill(target) {
                target.zeroize();
                return Err(e);
            }
            self.drawn = self.capacity;
        }
        let end = self.next + out.len();
        let handed = self
            .buf
            .as_mut()
            .get_mut(self.next..end)
            .ok_or_else(|| RandomError("random buffer too small".to_owned()))?;
        out.copy_from_slice(handed);
        handed.zeroize();
        self.next = end;
        Ok(())
    }
}

impl<B: AsMut<[u8]>> Drop for Reservoir<B> {
    fn drop(&mut self) {
        // Handed-out bytes were wiped as they left; the rest goes now.
        self.wipe_rest();
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

    /// Counts the calls to the source: each is a system call with the OS source.
    struct Counting(SeededRandom, usize);
    impl RandomSource for Counting {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
            self.1 += 1;
            self.0.fill(buf)
        }
    }

    #[test]
    fn prefetched_hands_out_the_source_bytes_once_and_wipes_them() {
        let mut direct = SeededRandom::new(5);
        let mut counting = Counting(SeededRandom::new(5), 0);
        let mut pre = PrefetchedRandom::new(&mut counting, 64);
        for len in [32, 24, 8] {
            let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
            direct.fill(&mut a).unwrap();
            pre.fill(&mut b).unwrap();
            assert_eq!(a, b, "fill of {len}");
        }
        assert_eq!(pre.remaining(), 0);
        // Handed-out bytes are gone from the buffer.
        assert!(pre.reservoir.buf.iter().all(|&b| b == 0));
        // More than is left: a new draw; more than the capacity: straight from the source.
        let mut b = [0u8; 16];
        pre.fill(&mut b).unwrap();
        assert_eq!(pre.remaining(), 48);
        assert!(pre.reservoir.buf.get(..16).unwrap().iter().all(|&b| b == 0));
        assert!(
            pre.reservoir
                .buf
                .get(16..64)
                .unwrap()
                .iter()
                .any(|&b| b != 0)
        );
        let mut big = [0u8; 100];
        pre.fill(&mut big).unwrap();
        assert_eq!(pre.remaining(), 0, "the rest was wiped, not kept");
        assert!(pre.reservoir.buf.iter().all(|&b| b == 0));
        drop(pre);
        assert_eq!(counting.1, 3);
    }

    #[test]
    fn prefetched_passes_failures_on() {
        struct Failing;
        impl RandomSource for Failing {
            fn fill(&mut self, _: &mut [u8]) -> Result<(), RandomError> {
                Err(RandomError("no entropy".into()))
            }
        }
        let mut failing = Failing;
        let mut pre = PrefetchedRandom::for_login(&mut failing);
        assert_eq!(
            pre.fill(&mut [0u8; 8]),
            Err(RandomError("no entropy".into()))
        );
        assert_eq!(pre.remaining(), 0);
        assert!(!format!("{pre:?}").contains("buf"));
    }

    #[test]
    fn pool_hands_out_the_source_bytes_in_order_drawing_once_per_capacity() {
        let mut direct = SeededRandom::new(9);
        let mut pool = RandomPool::with_capacity(Counting(SeededRandom::new(9), 0), 64);
        assert_eq!(pool.capacity(), 64);
        // 32 + 24 + 8 = 64 (one draw), then 16 + 32 + 16 = 64 (a second one).
        for len in [32, 24, 8, 16, 32, 16] {
            let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
            direct.fill(&mut a).unwrap();
            pool.fill(&mut b).unwrap();
            assert_eq!(a, b, "fill of {len}");
        }
        assert_eq!(pool.source.1, 2, "one call of the source per 64 bytes");
        assert_eq!(pool.remaining(), 0);
        // Every byte handed out was wiped from the pool.
        assert!(pool.reservoir.buf.iter().all(|&b| b == 0));
        // Half a draw handed out: the other half is still there, and differs from what was given.
        let mut first = [0u8; 32];
        pool.fill(&mut first).unwrap();
        assert_eq!(pool.source.1, 3);
        assert_eq!(pool.remaining(), 32);
        assert!(
            pool.reservoir
                .buf
                .get(..32)
                .unwrap()
                .iter()
                .all(|&b| b == 0)
        );
        assert!(
            pool.reservoir
                .buf
                .get(32..)
                .unwrap()
                .iter()
                .any(|&b| b != 0)
        );
        // More than the capacity: wipes the rest and goes to the source directly.
        let mut big = [0u8; 100];
        pool.fill(&mut big).unwrap();
        assert_eq!(pool.source.1, 4);
        assert_eq!(pool.remaining(), 0, "the rest was wiped, not kept");
        assert!(pool.reservoir.buf.iter().all(|&b| b == 0));
        assert_ne!(first.get(..), big.get(..32), "no byte is handed out twice");
    }

    #[test]
    fn pool_capacity_is_bounded_and_failures_pass_on() {
        assert_eq!(
            RandomPool::new(SeededRandom::new(1)).capacity(),
            DEFAULT_POOL_BYTES
        );
        assert_eq!(
            RandomPool::with_capacity(SeededRandom::new(1), 0).capacity(),
            1
        );
        assert_eq!(
            RandomPool::with_capacity(SeededRandom::new(1), usize::MAX).capacity(),
            MAX_POOL_BYTES
        );
        struct Failing;
        impl RandomSource for Failing {
            fn fill(&mut self, _: &mut [u8]) -> Result<(), RandomError> {
                Err(RandomError("no entropy".into()))
            }
        }
        let mut pool = RandomPool::new(Failing);
        assert_eq!(
            pool.fill(&mut [0u8; 8]),
            Err(RandomError("no entropy".into()))
        );
        assert_eq!(pool.remaining(), 0);
    }

    #[test]
    fn pool_debug_shows_no_bytes() {
        let mut pool = RandomPool::with_capacity(SeededRandom::new(4), 16);
        let mut out = [0u8; 8];
        pool.fill(&mut out).unwrap();
        assert_eq!(
            format!("{pool:?}"),
            "RandomPool { capacity: 16, remaining: 8, .. }"
        );
    }

    /// What is left in the buffer is wiped when the pool (or a `PrefetchedRandom`) goes away.
    #[test]
    fn reservoir_wipes_the_rest_on_drop() {
        let mut buf = [0u8; 32];
        let mut reservoir = Reservoir::new(&mut buf, 32);
        let mut out = [0u8; 8];
        reservoir.fill(&mut SeededRandom::new(2), &mut out).unwrap();
        assert_eq!(reservoir.remaining(), 24);
        assert!(reservoir.buf.iter().skip(8).any(|&b| b != 0));
        drop(reservoir);
        assert!(buf.iter().all(|&b| b == 0));
    }

    #[test]
    fn os_random_fills() {
        let mut buf = [0u8; 32];
        OsRandom.fill(&mut buf).unwrap();
        assert!(buf.iter().any(|&v| v != 0));
    }
}
