//! Strict JSON objects and typed member extraction, shared by headers, claims and key sets.
//!
//! RFC 7515 §5.2 lets a recipient either reject duplicate member names or keep the last one; this
//! module rejects them, so that two parsers can never disagree about which `alg` or `sub` counts.

use crate::Timestamp;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A JSON object whose top level has no repeated member names.
pub(crate) struct StrictObject(pub(crate) Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(duplicate(&key));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(StrictObject(map))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// A member name as the parser hands it: borrowed from the input unless it had escapes, so that
/// members read straight into typed fields cost no allocation.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The error for a member name seen twice (RFC 7515 §5.2: this crate rejects them).
pub(crate) fn duplicate<E: serde::de::Error>(name: &str) -> E {
    E::custom(format_args!("duplicate member `{}`", short(name)))
}

/// Parses `bytes` as one JSON object with unique top-level member names.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    parse_with::<StrictObject>(bytes).map(|o| o.0)
}

/// Parses `bytes` as one `T`, with the error message bounded like [`parse_object`]'s.
pub(crate) fn parse_with<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, String> {
    serde_json::from_slice::<T>(bytes).map_err(|e| bounded(e.to_string()))
}

/// What a member should have been, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    String,
    StringOrArray,
    NumericDate,
    Bool,
    StringArray,
}

impl Expected {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Expected::String => "a string",
            Expected::StringOrArray => "a string or an array of strings",
            Expected::NumericDate => "a non-negative number of seconds (NumericDate)",
            Expected::Bool => "a boolean",
            Expected::StringArray => "an array of strings",
        }
    }
}

/// A member had the wrong JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeMismatch {
    pub(crate) expected: Expected,
}

pub(crate) type Taken<T> = Result<Option<T>, TypeMismatch>;

/// Removes `name` and returns it as a string (absent → `None`).
pub(crate) fn take_string(map: &mut Map<String, Value>, name: &str) -> Taken<String> {
    string_value(map.remove(name))
}

/// A member already taken out of its object, as a string.
pub(crate) fn string_value(value: Option<Value>) -> Taken<String> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TypeMismatch {
            expected: Expected::String,
        }),
    }
}

/// Removes `name` as an array of strings.
pub(crate) fn take_string_array(map: &mut Map<String, Value>, name: &str) -> Taken<Vec<String>> {
    string_array_value(map.remove(name))
}

/// A member already taken out of its object, as an array of strings.
pub(crate) fn string_array_value(value: Option<Value>) -> Taken<Vec<String>> {
    match value {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(TypeMismatch {
                    expected: Expected::StringArray,
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(TypeMismatch {
            expected: Expected::StringArray,
        }),
    }
}

/// A member already taken out of its object, as a string or an array of strings.
pub(crate) fn string_or_array_value(value: Option<Value>) -> Taken<Vec<String>> {
    match value {
        Some(Value::String(s)) => Ok(Some(vec![s])),
        v @ Some(Value::Array(_)) => string_array_value(v).map_err(|_| TypeMismatch {
            expected: Expected::StringOrArray,
        }),
        Some(_) => Err(TypeMismatch {
            expected: Expected::StringOrArray,
        }),
        None => Ok(None),
    }
}

/// Removes `name` as a NumericDate (RFC 7519 §2): a JSON number of seconds, possibly fractional.
///
/// Strings, booleans and negative or non-finite numbers are type errors: a claim that is not a
/// number must never be read as "no limit".
pub(crate) fn take_numeric_date(map: &mut Map<String, Value>, name: &str) -> Taken<Timestamp> {
    numeric_date_of(map.remove(name))
}

/// A member already taken out of its object, as a NumericDate (see [`take_numeric_date`]).
pub(crate) fn numeric_date_of(value: Option<Value>) -> Taken<Timestamp> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => numeric_date(&n).map(Some).ok_or(TypeMismatch {
            expected: Expected::NumericDate,
        }),
        Some(_) => Err(TypeMismatch {
            expected: Expected::NumericDate,
        }),
    }
}

/// A JSON value as a NumericDate, if it is one.
pub(crate) fn as_numeric_date(v: &Value) -> Option<Timestamp> {
    match v {
        Value::Number(n) => numeric_date(n),
        _ => None,
    }
}

fn numeric_date(n: &serde_json::Number) -> Option<Timestamp> {
    if let Some(secs) = n.as_u64() {
        return Some(Timestamp::from_unix_seconds(secs));
    }
    let secs = n.as_f64()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    let millis = (secs * 1000.0).floor();
    // `as` saturates for floats above u64::MAX, which is the behaviour wanted here.
    Some(Timestamp::from_unix_millis(millis as u64))
}

/// Removes `name` as a boolean. `lenient_strings` also accepts `"true"`/`"false"` (some providers
/// send `email_verified` as a string).
pub(crate) fn take_bool(
    map: &mut Map<String, Value>,
    name: &str,
    lenient_strings: bool,
) -> Taken<bool> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => {
            let b = *b;
            map.remove(name);
            Ok(Some(b))
        }
        Some(Value::String(s)) if lenient_strings && (s == "true" || s == "false") => {
            let b = s == "true";
            map.remove(name);
            Ok(Some(b))
        }
        Some(_) => Err(TypeMismatch {
            expected: Expected::Bool,
        }),
    }
}

/// Takes `name` as a string, but leaves a wrongly typed value where it is (for profile claims,
/// where a provider's quirk must not fail a login).
pub(crate) fn take_string_lenient(map: &mut Map<String, Value>, name: &str) -> Option<String> {
    match map.get(name) {
        Some(Value::String(_)) => take_string(map, name).ok().flatten(),
        _ => None,
    }
}

/// Inserts `value` under `name` when present.
pub(crate) fn put<T: Into<Value>>(map: &mut Map<String, Value>, name: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(name.to_owned(), v.into());
    }
}

/// A NumericDate for output: whole seconds when the timestamp has no fraction.
pub(crate) fn numeric_date_value(t: Timestamp) -> Value {
    let ms = t.as_unix_millis();
    if ms % 1000 == 0 {
        Value::from(ms / 1000)
    } else {
        // Precision loss only past 2^53 ms, far beyond any real date.
        Value::from(ms as f64 / 1000.0)
    }
}

/// At most 64 characters of an untrusted string, for error messages.
pub(crate) fn short(s: &str) -> String {
    const LIMIT: usize = 64;
    if s.len() <= LIMIT {
        return s.escape_debug().to_string();
    }
    let mut cut = LIMIT;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", s[..cut].escape_debug())
}

/// Bounds an error message that may quote input.
pub(crate) fn bounded(s: String) -> String {
    crate::error::truncate(s, 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_rejected_at_the_top_level_only() {
        let err = parse_object(br#"{"alg":"RS256","alg":"none"}"#).unwrap_err();
        assert!(err.contains("duplicate member `alg`"), "{err}");
        assert!(parse_object(br#"{"a":{"b":1,"b":2}}"#).is_ok());
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"\"str\"").is_err());
    }

    #[test]
    fn numeric_dates_are_strict_numbers() {
        let mut m = parse_object(br#"{"a":10,"b":1.5,"c":"10","d":-1,"e":true}"#).unwrap();
        assert_eq!(
            take_numeric_date(&mut m, "a"),
            Ok(Some(Timestamp::from_unix_seconds(10)))
        );
        assert_eq!(
            take_numeric_date(&mut m, "b"),
            Ok(Some(Timestamp::from_unix_millis(1500)))
        );
        for name in ["c", "d", "e"] {
            assert!(take_numeric_date(&mut m, name).is_err(), "{name}");
        }
        assert_eq!(take_numeric_date(&mut m, "missing"), Ok(None));
    }

    #[test]
    fn audience_shapes() {
        let mut m = parse_object(br#"{"a":"x","b":["x","y"],"c":[1],"d":3}"#).unwrap();
        let mut take = |name: &str| string_or_array_value(m.remove(name));
        assert_eq!(take("a"), Ok(Some(vec!["x".into()])));
        assert_eq!(take("b"), Ok(Some(vec!["x".into(), "y".into()])));
        assert!(take("c").is_err());
        assert!(take("d").is_err());
        assert_eq!(take("e"), Ok(None));
    }

    #[test]
    fn short_cuts_on_char_boundaries() {
        let s = "é".repeat(100);
        assert!(short(&s).ends_with('…'));
        assert_eq!(short("a\nb"), "a\\nb");
    }
}
