//! OAuth scopes, and the Matrix scope tokens that grant Client-Server API access and allocate a device.
//!
//! A Matrix login asks for `urn:matrix:client:api:*` and exactly one
//! `urn:matrix:client:device:<device_id>`. Servers older than Matrix 1.15 know only the unstable
//! MSC2967 forms (`urn:matrix:org.matrix.msc2967.client:…`); Matrix Authentication Service refuses a
//! request that mixes the two. [`Scope`] keeps these invariants for every scope it holds, whether built
//! with [`MatrixScopeBuilder`] or parsed from a server.
//!
//! ```
//! use matrix_oidc_core::{DeviceId, Scope, ScopeFlavor};
//! let device = DeviceId::parse("AABBBCCCDDD").unwrap();
//! let scope = Scope::matrix(device.clone()).build().unwrap();
//! assert_eq!(scope.to_string(), "urn:matrix:client:api:* urn:matrix:client:device:AABBBCCCDDD");
//!
//! let old = Scope::matrix(device.clone()).flavor(ScopeFlavor::Unstable).openid().build().unwrap();
//! assert_eq!(
//!     old.to_string(),
//!     "openid urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:AABBBCCCDDD"
//! );
//! assert_eq!(old.device_id(), Some(device));
//! ```

use crate::device_id::{DeviceId, DeviceIdError, is_scope_token_char};
use serde::{Deserialize, Serialize};

/// Prefix of stable Matrix Client-Server scopes (Matrix 1.15).
pub const STABLE_PREFIX: &str = "urn:matrix:client:";
/// Prefix of the unstable MSC2967 scopes.
pub const UNSTABLE_PREFIX: &str = "urn:matrix:org.matrix.msc2967.client:";
/// The OpenID Connect scope.
pub const OPENID: &str = "openid";

// The API tokens of both flavors as constants, so that checking for them needs no formatting.
const STABLE_API_TOKEN: &str = "urn:matrix:client:api:*";
const UNSTABLE_API_TOKEN: &str = "urn:matrix:org.matrix.msc2967.client:api:*";
const DEVICE_INFIX: &str = "device:";

/// Which generation of Matrix scope tokens to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeFlavor {
    /// `urn:matrix:client:…`, Matrix 1.15 and later. The default.
    #[default]
    Stable,
    /// `urn:matrix:org.matrix.msc2967.client:…`, for servers that predate Matrix 1.15.
    Unstable,
}

impl ScopeFlavor {
    /// The prefix of this flavor's tokens.
    pub fn prefix(self) -> &'static str {
        match self {
            ScopeFlavor::Stable => STABLE_PREFIX,
            ScopeFlavor::Unstable => UNSTABLE_PREFIX,
        }
    }

    /// The full Client-Server API token, `<prefix>api:*`.
    pub fn api_token(self) -> String {
        self.api_token_str().to_owned()
    }

    pub(crate) fn api_token_str(self) -> &'static str {
        match self {
            ScopeFlavor::Stable => STABLE_API_TOKEN,
            ScopeFlavor::Unstable => UNSTABLE_API_TOKEN,
        }
    }

    /// The device token for `device_id`, `<prefix>device:<device_id>`.
    pub fn device_token(self, device_id: &DeviceId) -> String {
        let (prefix, id) = (self.prefix(), device_id.as_str());
        let mut token = String::with_capacity(prefix.len() + DEVICE_INFIX.len() + id.len());
        token.push_str(prefix);
        token.push_str(DEVICE_INFIX);
        token.push_str(id);
        token
    }

    fn of_token(token: &str) -> Option<Self> {
        // The unstable prefix does not start with the stable one, so the order does not matter.
        if token.starts_with(STABLE_PREFIX) {
            Some(ScopeFlavor::Stable)
        } else if token.starts_with(UNSTABLE_PREFIX) {
            Some(ScopeFlavor::Unstable)
        } else {
            None
        }
    }
}

/// Why a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The scope has no tokens.
    #[error("the scope is empty")]
    Empty,
    /// A token has a character RFC 6749 §3.3 does not allow, or the string has two spaces in a row.
    #[error("scope token {token:?} contains {found:?}, which is not allowed in a scope token")]
    InvalidCharacter {
        /// The token.
        token: String,
        /// The offending character.
        found: char,
    },
    /// Two spaces in a row, or a leading/trailing space.
    #[error("the scope string has an empty token (a leading, trailing or doubled space)")]
    EmptyToken,
    /// Stable and unstable Matrix tokens in the same scope.
    #[error("the scope mixes stable ({stable:?}) and unstable ({unstable:?}) Matrix scope tokens")]
    MixedFlavors {
        /// A stable token.
        stable: String,
        /// An unstable token.
        unstable: String,
    },
    /// More than one device token.
    #[error("the scope holds more than one device token: {first:?} and {second:?}")]
    MultipleDeviceScopes {
        /// The first device token.
        first: String,
        /// The second one.
        second: String,
    },
    /// A device token whose device id is not valid.
    #[error("invalid device id in scope token {token:?}: {source}")]
    InvalidDeviceId {
        /// The token.
        token: String,
        /// What is wrong with the id.
        source: DeviceIdError,
    },
}

/// A validated OAuth scope: an ordered set of scope tokens.
///
/// Invariants, whatever the constructor: at least one token; every token made of RFC 6749 scope-token
/// characters; no duplicates; stable and unstable Matrix tokens never mixed; at most one device token,
/// with a device id valid per [`DeviceId::parse`]. Displays as the space-separated protocol string and
/// (de)serializes as that string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope {
    tokens: Vec<String>,
}

impl Scope {
    /// Starts a Matrix login scope for `device_id` (stable flavor, `urn:matrix:client:api:*`).
    pub fn matrix(device_id: DeviceId) -> MatrixScopeBuilder {
        MatrixScopeBuilder::new(device_id)
    }

    /// Parses a space-separated scope string, as sent by a server or stored earlier.
    pub fn parse(value: &str) -> Result<Self, ScopeError> {
        if value.is_empty() {
            return Err(ScopeError::Empty);
        }
        Self::from_tokens(value.split(' ').map(str::to_owned))
    }

    /// Builds a scope from individual tokens, checking every invariant.
    pub fn from_tokens(tokens: impl IntoIterator<Item = String>) -> Result<Self, ScopeError> {
        let mut out: Vec<String> = Vec::new();
        for token in tokens {
            if token.is_empty() {
                return Err(ScopeError::EmptyToken);
            }
            if let Some(found) = first_invalid_char(&token) {
                return Err(ScopeError::InvalidCharacter { token, found });
            }
            if !out.contains(&token) {
                out.push(token);
            }
        }
        if out.is_empty() {
            return Err(ScopeError::Empty);
        }
        let scope = Self { tokens: out };
        scope.check_matrix_rules()?;
        Ok(scope)
    }

    fn check_matrix_rules(&self) -> Result<(), ScopeError> {
        let mut stable = None;
        let mut unstable = None;
        let mut device: Option<&str> = None;
        for token in &self.tokens {
            match ScopeFlavor::of_token(token) {
                Some(ScopeFlavor::Stable) => stable = stable.or(Some(token)),
                Some(ScopeFlavor::Unstable) => unstable = unstable.or(Some(token)),
                None => {}
            }
            if let Some(id) = device_id_of(token) {
                DeviceId::parse(id).map_err(|source| ScopeError::InvalidDeviceId {
                    token: token.clone(),
                    source,
                })?;
                if let Some(first) = device {
                    return Err(ScopeError::MultipleDeviceScopes {
                        first: first.to_owned(),
                        second: token.clone(),
                    });
                }
                device = Some(token);
            }
        }
        if let (Some(s), Some(u)) = (stable, unstable) {
            return Err(ScopeError::MixedFlavors {
                stable: s.clone(),
                unstable: u.clone(),
            });
        }
        Ok(())
    }

    /// The tokens, in order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(String::as_str)
    }

    /// Whether the scope holds `token`.
    pub fn contains(&self, token: &str) -> bool {
        self.tokens.iter().any(|t| t == token)
    }

    /// The Matrix flavor of the scope's Matrix tokens, if it has any.
    pub fn flavor(&self) -> Option<ScopeFlavor> {
        self.tokens.iter().find_map(|t| ScopeFlavor::of_token(t))
    }

    /// The device id of the scope's device token, if it has one.
    pub fn device_id(&self) -> Option<DeviceId> {
        self.tokens
            .iter()
            .find_map(|t| device_id_of(t))
            .and_then(|id| DeviceId::parse(id).ok())
    }

    /// The device token itself (`urn:matrix:client:device:…` or its unstable twin), if any.
    pub fn device_token(&self) -> Option<&str> {
        self.tokens
            .iter()
            .map(String::as_str)
            .find(|t| device_id_of(t).is_some())
    }

    /// Whether the scope grants full Client-Server API access (either flavor).
    pub fn has_matrix_api(&self) -> bool {
        self.tokens().any(is_api_token)
    }

    /// The tokens of `self` that `other` lacks.
    pub fn missing_from<'a>(&'a self, other: &Scope) -> Vec<&'a str> {
        self.tokens()
            .filter(|t| !other.contains(t))
            .collect::<Vec<_>>()
    }
}

/// The device id part of a device token of either flavor.
pub(crate) fn device_id_of(token: &str) -> Option<&str> {
    token
        .strip_prefix(STABLE_PREFIX)
        .or_else(|| token.strip_prefix(UNSTABLE_PREFIX))
        .and_then(|rest| rest.strip_prefix(DEVICE_INFIX))
}

/// Whether `token` is the Client-Server API token of either flavor.
pub(crate) fn is_api_token(token: &str) -> bool {
    token == STABLE_API_TOKEN || token == UNSTABLE_API_TOKEN
}

/// What [`check_scope_str`] learned about a valid scope string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScopeSummary<'a> {
    /// The device id of the first device token, as [`Scope::device_id`] would give it.
    pub(crate) device_id: Option<&'a str>,
    /// As [`Scope::has_matrix_api`].
    pub(crate) has_matrix_api: bool,
    /// Whether the string is already what `Scope::parse(value)?.to_string()` gives back, i.e. has
    /// no repeated token. Beyond 16 tokens repeats are not looked for and this is `false`.
    pub(crate) normalized: bool,
}

/// Checks a space-separated scope string exactly as [`Scope::parse`] does (same errors, in the same
/// order), without building a [`Scope`]: for answers that are only checked and then stored as text.
///
/// Repeated tokens do not change the verdict: a repeated token adds no flavor, and a repeated device
/// token is the same device (a `Scope` collapses repeats before its Matrix rules see them).
pub(crate) fn check_scope_str(value: &str) -> Result<ScopeSummary<'_>, ScopeError> {
    if value.is_empty() {
        return Err(ScopeError::Empty);
    }
    // Beyond a handful of tokens, keeping them for the second pass and searching for repeats pairwise
    // would cost more than splitting again; repeats are then not looked for.
    const KEPT: usize = 16;
    let mut kept: [&str; KEPT] = [""; KEPT];
    let mut count = 0;
    for token in value.split(' ') {
        if token.is_empty() {
            return Err(ScopeError::EmptyToken);
        }
        if !token.bytes().all(|b| is_scope_token_char(char::from(b))) {
            return Err(ScopeError::InvalidCharacter {
                token: token.to_owned(),
                found: first_invalid_char(token).unwrap_or(char::REPLACEMENT_CHARACTER),
            });
        }
        if let Some(slot) = kept.get_mut(count) {
            *slot = token;
        }
        count += 1;
    }
    let mut matrix = MatrixRules::default();
    if count <= KEPT {
        let tokens = kept.get(..count).unwrap_or_default();
        for (i, token) in tokens.iter().enumerate() {
            matrix.token(token)?;
            if tokens.iter().take(i).any(|t| t == token) {
                matrix.normalized = false;
            }
        }
    } else {
        matrix.normalized = false;
        for token in value.split(' ') {
            matrix.token(token)?;
        }
    }
    matrix.finish()
}

/// The Matrix rules of [`check_scope_str`], token by token.
struct MatrixRules<'a> {
    stable: Option<&'a str>,
    unstable: Option<&'a str>,
    device: Option<&'a str>,
    device_id: Option<&'a str>,
    has_matrix_api: bool,
    normalized: bool,
}

impl Default for MatrixRules<'_> {
    fn default() -> Self {
        Self {
            stable: None,
            unstable: None,
            device: None,
            device_id: None,
            has_matrix_api: false,
            normalized: true,
        }
    }
}

impl<'a> MatrixRules<'a> {
    fn token(&mut self, token: &'a str) -> Result<(), ScopeError> {
        self.has_matrix_api |= is_api_token(token);
        match ScopeFlavor::of_token(token) {
            Some(ScopeFlavor::Stable) => self.stable = self.stable.or(Some(token)),
            Some(ScopeFlavor::Unstable) => self.unstable = self.unstable.or(Some(token)),
            None => return Ok(()),
        }
        let Some(id) = device_id_of(token) else {
            return Ok(());
        };
        // The same token again collapses in a `Scope`: not a second device.
        if self.device == Some(token) {
            return Ok(());
        }
        DeviceId::check(id).map_err(|source| ScopeError::InvalidDeviceId {
            token: token.to_owned(),
            source,
        })?;
        if let Some(first) = self.device {
            return Err(ScopeError::MultipleDeviceScopes {
                first: first.to_owned(),
                second: token.to_owned(),
            });
        }
        self.device = Some(token);
        self.device_id = Some(id);
        Ok(())
    }

    fn finish(self) -> Result<ScopeSummary<'a>, ScopeError> {
        if let (Some(s), Some(u)) = (self.stable, self.unstable) {
            return Err(ScopeError::MixedFlavors {
                stable: s.to_owned(),
                unstable: u.to_owned(),
            });
        }
        Ok(ScopeSummary {
            device_id: self.device_id,
            has_matrix_api: self.has_matrix_api,
            normalized: self.normalized,
        })
    }
}

/// The first character of `token` that RFC 6749 does not allow in a scope token.
fn first_invalid_char(token: &str) -> Option<char> {
    // Every allowed character is ASCII: scan bytes, decode only where one fails.
    let at = token
        .bytes()
        .position(|b| !is_scope_token_char(char::from(b)))?;
    token.get(at..).and_then(|rest| rest.chars().next())
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for t in &self.tokens {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
            first = false;
        }
        Ok(())
    }
}

impl TryFrom<String> for Scope {
    type Error = ScopeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Scope> for String {
    fn from(value: Scope) -> Self {
        value.to_string()
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Builds the scope of a Matrix login: the Client-Server API token, exactly one device token, and
/// optionally `openid` and extra tokens.
///
/// Extra tokens are checked when [`build`](Self::build) runs: a second device token or a Matrix token of
/// the other flavor is an error, not silently dropped.
#[derive(Debug, Clone)]
#[must_use]
pub struct MatrixScopeBuilder {
    device_id: DeviceId,
    flavor: ScopeFlavor,
    openid: bool,
    extra: Vec<String>,
}

impl MatrixScopeBuilder {
    /// A builder for `device_id`, stable flavor, no `openid`, no extra tokens.
    pub fn new(device_id: DeviceId) -> Self {
        Self {
            device_id,
            flavor: ScopeFlavor::Stable,
            openid: false,
            extra: Vec::new(),
        }
    }

    /// Chooses stable or unstable Matrix tokens.
    pub fn flavor(mut self, flavor: ScopeFlavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Adds the `openid` token (first, as OpenID Connect servers expect it).
    pub fn openid(mut self) -> Self {
        self.openid = true;
        self
    }

    /// Adds an extra token, such as `urn:matrix:client:com.example.msc9999.foo`.
    pub fn extra(mut self, token: impl Into<String>) -> Self {
        self.extra.push(token.into());
        self
    }

    /// The scope.
    pub fn build(self) -> Result<Scope, ScopeError> {
        if self.extra.is_empty() {
            // Nothing to check: the API token is a constant, the device id was validated when the
            // `DeviceId` was made, and `openid`, API and device tokens are distinct and of one flavor.
            let mut tokens = Vec::with_capacity(3);
            if self.openid {
                tokens.push(OPENID.to_owned());
            }
            tokens.push(self.flavor.api_token_str().to_owned());
            tokens.push(self.flavor.device_token(&self.device_id));
            return Ok(Scope { tokens });
        }
        let mut tokens = Vec::with_capacity(3 + self.extra.len());
        if self.openid {
            tokens.push(OPENID.to_owned());
        }
        tokens.push(self.flavor.api_token());
        tokens.push(self.flavor.device_token(&self.device_id));
        tokens.extend(self.extra);
        Scope::from_tokens(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededRandom;

    fn dev(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap()
    }

    #[test]
    fn builder_forms_for_both_flavors() {
        let s = Scope::matrix(dev("AABBBCCCDDD")).build().unwrap();
        assert_eq!(
            s.to_string(),
            "urn:matrix:client:api:* urn:matrix:client:device:AABBBCCCDDD"
        );
        assert_eq!(s.flavor(), Some(ScopeFlavor::Stable));
        assert!(s.has_matrix_api());
        assert_eq!(
            s.device_token(),
            Some("urn:matrix:client:device:AABBBCCCDDD")
        );
        let u = Scope::matrix(dev("AABBBCCCDDD"))
            .flavor(ScopeFlavor::Unstable)
            .extra("urn:matrix:org.matrix.msc2967.client:com.example.foo")
            .build()
            .unwrap();
        assert_eq!(u.flavor(), Some(ScopeFlavor::Unstable));
        assert_eq!(u.tokens().count(), 3);
        assert!(u.has_matrix_api());
    }

    #[test]
    fn builder_never_mixes_and_never_doubles_the_device() {
        let e = Scope::matrix(dev("AABBBCCCDDD"))
            .extra("urn:matrix:org.matrix.msc2967.client:api:*")
            .build()
            .unwrap_err();
        assert!(matches!(e, ScopeError::MixedFlavors { .. }), "{e}");
        let e = Scope::matrix(dev("AABBBCCCDDD"))
            .extra("urn:matrix:client:device:OTHERDEVICE")
            .build()
            .unwrap_err();
        assert_eq!(
            e,
            ScopeError::MultipleDeviceScopes {
                first: "urn:matrix:client:device:AABBBCCCDDD".into(),
                second: "urn:matrix:client:device:OTHERDEVICE".into()
            }
        );
        // Repeating the same token is harmless and collapses.
        let s = Scope::matrix(dev("AABBBCCCDDD"))
            .openid()
            .extra("openid")
            .extra("urn:matrix:client:api:*")
            .build()
            .unwrap();
        assert_eq!(
            s.to_string(),
            "openid urn:matrix:client:api:* urn:matrix:client:device:AABBBCCCDDD"
        );
        let e = Scope::matrix(dev("AABBBCCCDDD"))
            .extra("bad\"token")
            .build()
            .unwrap_err();
        assert!(matches!(e, ScopeError::InvalidCharacter { found: '"', .. }));
        assert_eq!(
            Scope::matrix(dev("AABBBCCCDDD"))
                .extra("")
                .build()
                .unwrap_err(),
            ScopeError::EmptyToken
        );
    }

    #[test]
    fn parse_enforces_the_same_invariants() {
        assert_eq!(Scope::parse(""), Err(ScopeError::Empty));
        assert_eq!(Scope::parse("a  b"), Err(ScopeError::EmptyToken));
        assert_eq!(Scope::parse(" a"), Err(ScopeError::EmptyToken));
        assert!(matches!(
            Scope::parse(
                "urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:device:ABCDEFGHIJ"
            ),
            Err(ScopeError::MixedFlavors { .. })
        ));
        assert!(matches!(
            Scope::parse("urn:matrix:client:device:AAAAAAAAAA urn:matrix:client:device:BBBBBBBBBB"),
            Err(ScopeError::MultipleDeviceScopes { .. })
        ));
        assert!(matches!(
            Scope::parse("urn:matrix:client:device:"),
            Err(ScopeError::InvalidDeviceId {
                source: DeviceIdError::Empty,
                ..
            })
        ));
        assert!(matches!(
            Scope::parse("openid\temail"),
            Err(ScopeError::InvalidCharacter { found: '\t', .. })
        ));
        let s = Scope::parse("openid email").unwrap();
        assert_eq!(s.flavor(), None);
        assert_eq!(s.device_id(), None);
        assert!(!s.has_matrix_api());
    }

    #[test]
    fn property_builder_output_round_trips_through_parse() {
        let mut rng = SeededRandom::new(9);
        for i in 0..200 {
            let id = DeviceId::generate(&mut rng).unwrap();
            let flavor = if i % 2 == 0 {
                ScopeFlavor::Stable
            } else {
                ScopeFlavor::Unstable
            };
            let mut b = Scope::matrix(id.clone()).flavor(flavor);
            if i % 3 == 0 {
                b = b.openid();
            }
            let s = b.build().unwrap();
            let back = Scope::parse(&s.to_string()).unwrap();
            assert_eq!(back, s);
            assert_eq!(back.device_id(), Some(id.clone()));
            assert_eq!(back.flavor(), Some(flavor));
            assert_eq!(back.tokens().filter(|t| t.contains(":device:")).count(), 1);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), s);
        }
    }

    /// The text-only check gives `Scope::parse`'s verdict and error for every input, and says
    /// whether the text is already the scope's display form.
    #[test]
    fn str_check_agrees_with_parse() {
        let many: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        let many_distinct = many.join(" ");
        let many_repeated = format!("{many_distinct} t3");
        let inputs = [
            "",
            " ",
            "a  b",
            "a ",
            "openid",
            "openid openid",
            "openid email openid",
            "openid\temail",
            "bad\"token",
            "urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ",
            "urn:matrix:client:device:ABCDEFGHIJ urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ",
            "urn:matrix:client:device:AAAAAAAAAA urn:matrix:client:device:BBBBBBBBBB",
            "urn:matrix:client:device:AAAAAAAAAA urn:matrix:client:device:AAAAAAAAAA urn:matrix:client:device:",
            "urn:matrix:client:device:",
            "urn:matrix:client:api:* urn:matrix:org.matrix.msc2967.client:device:ABCDEFGHIJ",
            "urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:X",
            "urn:matrix:client:device:A urn:matrix:client:device:B urn:matrix:org.matrix.msc2967.client:api:*",
            "é",
            many_distinct.as_str(),
            many_repeated.as_str(),
        ];
        for input in inputs {
            let parsed = Scope::parse(input);
            let checked = check_scope_str(input);
            match (&parsed, &checked) {
                (Ok(scope), Ok(summary)) => {
                    if summary.normalized {
                        assert_eq!(scope.to_string(), input);
                    }
                    // Up to the pairwise limit, repeats are always detected.
                    if input.split(' ').count() <= 16 {
                        assert_eq!(summary.normalized, scope.to_string() == input, "{input}");
                    }
                    let device = scope.device_id();
                    assert_eq!(summary.device_id, device.as_ref().map(DeviceId::as_str));
                    assert_eq!(summary.has_matrix_api, scope.has_matrix_api(), "{input}");
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{input}"),
                _ => panic!("{input}: parse {parsed:?}, check {checked:?}"),
            }
        }
    }

    /// Without extra tokens the builder skips validation; it must give what validation gives.
    #[test]
    fn builder_without_extras_equals_the_checked_path() {
        let mut rng = SeededRandom::new(4);
        for i in 0..100 {
            let id = if i % 10 == 0 {
                DeviceId::parse("a.b~c!$&'()*+,;=:@/-[]{}|^`%?#").unwrap()
            } else {
                DeviceId::generate(&mut rng).unwrap()
            };
            for flavor in [ScopeFlavor::Stable, ScopeFlavor::Unstable] {
                for openid in [false, true] {
                    let mut builder = Scope::matrix(id.clone()).flavor(flavor);
                    let mut tokens = Vec::new();
                    if openid {
                        builder = builder.openid();
                        tokens.push(OPENID.to_owned());
                    }
                    tokens.push(flavor.api_token());
                    tokens.push(flavor.device_token(&id));
                    assert_eq!(builder.build(), Scope::from_tokens(tokens));
                }
            }
        }
    }

    #[test]
    fn missing_from_lists_dropped_tokens() {
        let requested =
            Scope::parse("openid urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJ")
                .unwrap();
        let granted = Scope::parse("urn:matrix:client:api:*").unwrap();
        assert_eq!(
            requested.missing_from(&granted),
            vec!["openid", "urn:matrix:client:device:ABCDEFGHIJ"]
        );
    }
}
