//! Time as an input: the core never reads a clock.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An instant on the wall clock, in milliseconds since the Unix epoch.
///
/// The core never reads the system clock: every operation whose outcome depends on time takes a
/// `Timestamp` argument named `now`. Callers on native targets get one from
/// `SystemTime::now()`; tests use fixed values, so that expiry and caching are deterministic.
///
/// ```
/// use matrix_oidc_core::Timestamp;
/// use std::time::Duration;
/// let t = Timestamp::from_unix_seconds(1_700_000_000);
/// assert_eq!(t + Duration::from_secs(60), Timestamp::from_unix_seconds(1_700_000_060));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// From whole seconds since the Unix epoch.
    pub const fn from_unix_seconds(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub const fn as_unix_seconds(self) -> u64 {
        self.0 / 1000
    }

    /// From a `SystemTime` (saturating at the epoch for times before it).
    pub fn from_system_time(time: std::time::SystemTime) -> Self {
        match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Self(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            Err(_) => Self::UNIX_EPOCH,
        }
    }

    /// `self + d`, saturating instead of overflowing.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        self.saturating_add(rhs)
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        self.saturating_sub(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_millis(u64::MAX - 1);
        assert_eq!(
            t + Duration::from_secs(10),
            Timestamp::from_unix_millis(u64::MAX)
        );
        assert_eq!(
            Timestamp::from_unix_millis(5) - Duration::from_secs(1),
            Timestamp::UNIX_EPOCH
        );
        assert_eq!(
            Timestamp::from_unix_seconds(10).duration_since(Timestamp::from_unix_seconds(20)),
            Duration::ZERO
        );
    }
}
