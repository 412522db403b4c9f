//! Matrix device ids: generating one for a new login and validating one a caller wants to reuse.
//!
//! The device id travels inside the `urn:matrix:client:device:<device_id>` scope token, so the Matrix
//! specification only allows RFC 6749 scope-token characters in it (printable ASCII without space, `"`
//! and `\`). Matrix Authentication Service is stricter: it wants at least 10 characters and rejects
//! `%`, `#`, `?`, `[`, `]` and a few more. [`DeviceId::parse`] applies the specification's rule;
//! [`DeviceId::check_mas_rules`] applies MAS's, so an application can reject an id that would fail at the
//! server before the user ever sees a browser.
//!
//! ```
//! use matrix_oidc_core::{DeviceId, SeededRandom};
//! let id = DeviceId::generate(&mut SeededRandom::new(1)).unwrap();
//! assert!(id.as_str().len() >= 10);
//! assert!(id.check_mas_rules().is_ok());
//!
//! assert!(DeviceId::parse("ABCDEFGH").is_ok()); // allowed by the spec …
//! assert!(DeviceId::parse("ABCDEFGH").unwrap().check_mas_rules().is_err()); // … too short for MAS
//! assert!(DeviceId::parse("has space").is_err());
//! ```

use crate::random::{RandomError, RandomSource};
use serde::{Deserialize, Serialize};

/// How many characters [`DeviceId::generate`] produces: 12 characters from 62 symbols, about 71 bits.
pub const GENERATED_DEVICE_ID_LEN: usize = 12;

/// The shortest device id Matrix Authentication Service accepts.
pub const MAS_MIN_DEVICE_ID_LEN: usize = 10;

/// The longest device id this crate accepts. Synapse stores at most 255 characters.
pub const MAX_DEVICE_ID_LEN: usize = 255;

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Punctuation MAS allows in a device id besides ASCII letters and digits.
const MAS_EXTRA_CHARS: &str = "._~!$&'()*+,;=:@/-";

/// A Matrix device id that is valid inside a scope token.
///
/// Serializes as a plain string; deserializing validates it with [`DeviceId::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

/// Why a device id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceIdError {
    /// The device id is empty.
    #[error("the device id is empty")]
    Empty,
    /// The device id is longer than [`MAX_DEVICE_ID_LEN`].
    #[error("the device id is {len} bytes long; at most {MAX_DEVICE_ID_LEN} are accepted")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character the specification does not allow in a scope token.
    #[error(
        "the device id contains {found:?} at byte {index}, which is not allowed in a scope token \
         (printable ASCII except space, '\"' and '\\')"
    )]
    InvalidCharacter {
        /// The offending character.
        found: char,
        /// Its byte offset.
        index: usize,
    },
    /// Shorter than Matrix Authentication Service accepts.
    #[error(
        "the device id is {len} characters long; Matrix Authentication Service requires at least \
         {MAS_MIN_DEVICE_ID_LEN}"
    )]
    MasTooShort {
        /// Its length.
        len: usize,
    },
    /// A character the specification allows but Matrix Authentication Service rejects.
    #[error(
        "the device id contains {found:?} at byte {index}, which Matrix Authentication Service \
         rejects (it allows letters, digits and {MAS_EXTRA_CHARS})"
    )]
    MasInvalidCharacter {
        /// The offending character.
        found: char,
        /// Its byte offset.
        index: usize,
    },
}

/// Whether `c` may appear in an RFC 6749 §3.3 scope token (`%x21 / %x23-5B / %x5D-7E`).
pub(crate) fn is_scope_token_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

impl DeviceId {
    /// A fresh random device id: [`GENERATED_DEVICE_ID_LEN`] characters from `[A-Za-z0-9]`, drawn
    /// uniformly (rejection sampling, no modulo bias). Such an id passes every server's rules.
    pub fn generate(rng: &mut dyn RandomSource) -> Result<Self, RandomError> {
        let mut out = String::with_capacity(GENERATED_DEVICE_ID_LEN);
        let mut buf = [0u8; 32];
        while out.len() < GENERATED_DEVICE_ID_LEN {
            rng.fill(&mut buf)?;
            for &b in &buf {
                // 248 = 4 × 62: bytes at or above it would make the low symbols likelier.
                if b < 248 && out.len() < GENERATED_DEVICE_ID_LEN {
                    out.push(char::from(ALPHANUMERIC[usize::from(b % 62)]));
                }
            }
        }
        Ok(Self(out))
    }

    /// Validates a caller-supplied device id against the Matrix specification: non-empty, at most
    /// [`MAX_DEVICE_ID_LEN`] bytes, only scope-token characters.
    pub fn parse(value: impl Into<String>) -> Result<Self, DeviceIdError> {
        let value = value.into();
        Self::check(&value)?;
        Ok(Self(value))
    }

    /// [`parse`](Self::parse)'s checks without keeping the value.
    pub(crate) fn check(value: &str) -> Result<(), DeviceIdError> {
        if value.is_empty() {
            return Err(DeviceIdError::Empty);
        }
        if value.len() > MAX_DEVICE_ID_LEN {
            return Err(DeviceIdError::TooLong { len: value.len() });
        }
        // Every allowed character is ASCII: scan bytes, decode only where one fails.
        if let Some(index) = value
            .bytes()
            .position(|b| !is_scope_token_char(char::from(b)))
        {
            if let Some(found) = value.get(index..).and_then(|rest| rest.chars().next()) {
                return Err(DeviceIdError::InvalidCharacter { found, index });
            }
        }
        Ok(())
    }

    /// Checks Matrix Authentication Service's stricter rule (its authorization-grant policy): at least
    /// [`MAS_MIN_DEVICE_ID_LEN`] characters, each a letter, a digit or one of `._~!$&'()*+,;=:@/-`.
    pub fn check_mas_rules(&self) -> Result<(), DeviceIdError> {
        if let Some((index, found)) = self
            .0
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || MAS_EXTRA_CHARS.contains(c)))
        {
            return Err(DeviceIdError::MasInvalidCharacter { found, index });
        }
        if self.0.len() < MAS_MIN_DEVICE_ID_LEN {
            return Err(DeviceIdError::MasTooShort { len: self.0.len() });
        }
        Ok(())
    }

    /// The device id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DeviceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DeviceId {
    type Error = DeviceIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<DeviceId> for String {
    fn from(value: DeviceId) -> Self {
        value.0
    }
}

impl std::str::FromStr for DeviceId {
    type Err = DeviceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;

    /// A source that always yields the same byte: shows rejection sampling skips biased bytes.
    struct Constant(u8);
    impl RandomSource for Constant {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
            buf.fill(self.0);
            Ok(())
        }
    }

    struct Failing;
    impl RandomSource for Failing {
        fn fill(&mut self, _: &mut [u8]) -> Result<(), RandomError> {
            Err(RandomError("no entropy".into()))
        }
    }

    #[test]
    fn generated_ids_pass_spec_and_mas_rules_for_many_seeds() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..500 {
            let id = DeviceId::generate(&mut SeededRandom::new(seed)).unwrap();
            assert_eq!(id.as_str().len(), GENERATED_DEVICE_ID_LEN);
            assert!(id.as_str().chars().all(|c| c.is_ascii_alphanumeric()));
            assert_eq!(DeviceId::parse(id.as_str()).unwrap(), id);
            id.check_mas_rules().unwrap();
            assert!(seen.insert(id), "seed {seed} repeated an id");
        }
    }

    #[test]
    fn generation_uses_every_symbol_and_no_other() {
        let mut counts = [0usize; 62];
        let mut rng = SeededRandom::new(42);
        for _ in 0..2000 {
            for c in DeviceId::generate(&mut rng).unwrap().as_str().bytes() {
                let i = ALPHANUMERIC.iter().position(|&a| a == c).unwrap();
                counts[i] += 1;
            }
        }
        // 24 000 draws over 62 symbols: every symbol shows up, none dominates.
        assert!(counts.iter().all(|&n| n > 200 && n < 600), "{counts:?}");
    }

    #[test]
    fn generation_rejects_biased_bytes_and_reports_rng_failure() {
        // 0xFF is ≥ 248 and always rejected: with only such bytes generation could never finish,
        // so use 61 (maps to '9') to show accepted bytes are used.
        let id = DeviceId::generate(&mut Constant(61)).unwrap();
        assert_eq!(id.as_str(), "999999999999");
        assert_eq!(
            DeviceId::generate(&mut Failing),
            Err(RandomError("no entropy".into()))
        );
    }

    #[test]
    fn spec_rule_accepts_every_scope_token_char_and_nothing_else() {
        for b in 0u8..=127 {
            let c = char::from(b);
            let r = DeviceId::parse(format!("ABCDEFGHIJ{c}"));
            let allowed = (0x21..=0x7E).contains(&b) && c != '"' && c != '\\';
            assert_eq!(r.is_ok(), allowed, "char {c:?}");
            if !allowed {
                assert_eq!(
                    r,
                    Err(DeviceIdError::InvalidCharacter {
                        found: c,
                        index: 10
                    })
                );
            }
        }
        assert!(matches!(
            DeviceId::parse("ABCDEFGHIJé"),
            Err(DeviceIdError::InvalidCharacter { found: 'é', .. })
        ));
        assert_eq!(DeviceId::parse(""), Err(DeviceIdError::Empty));
        assert_eq!(
            DeviceId::parse("A".repeat(256)),
            Err(DeviceIdError::TooLong { len: 256 })
        );
        assert!(DeviceId::parse("A".repeat(255)).is_ok());
    }

    #[test]
    fn mas_rule_is_stricter() {
        // Fixtures from the MSCs and SDK tests: fine for the spec, too short for MAS.
        for short in ["ABCDEFGH", "D3V1C31D", "deadbeef"] {
            let id = DeviceId::parse(short).unwrap();
            assert_eq!(
                id.check_mas_rules(),
                Err(DeviceIdError::MasTooShort { len: 8 })
            );
        }
        DeviceId::parse("AABBBCCCDDD")
            .unwrap()
            .check_mas_rules()
            .unwrap();
        DeviceId::parse("a.b_c~d!$&'()*+,;=:@/-")
            .unwrap()
            .check_mas_rules()
            .unwrap();
        for bad in ['%', '#', '?', '[', ']', '^', '`', '{', '|', '}', '<', '>'] {
            let id = DeviceId::parse(format!("ABCDEFGHIJ{bad}")).unwrap();
            assert_eq!(
                id.check_mas_rules(),
                Err(DeviceIdError::MasInvalidCharacter {
                    found: bad,
                    index: 10
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn serde_validates() {
        let id: DeviceId = serde_json::from_str("\"ABCDEFGHIJ\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"ABCDEFGHIJ\"");
        assert!(serde_json::from_str::<DeviceId>("\"bad id\"").is_err());
    }
}
