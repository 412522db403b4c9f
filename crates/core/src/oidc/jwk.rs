//! JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037): the public keys an ID token may be verified with.
//!
//! Keys are checked once, when a key set is parsed: coordinates of the exact size, RSA moduli of
//! 2048–8192 bits with a sane exponent, no private material. A key that fails is *ignored* (RFC 7517
//! §5 asks for that) and recorded in [`JwkSet::ignored`], so a set with one odd key still works and
//! the reason stays visible.

use super::alg::{JwsAlgorithm, KeyFamily};
use super::json::{self, short};
use super::jws::{JwsPart, decode, encode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::any::Any;
use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::OnceLock;

/// The smallest RSA modulus accepted, in bits (RFC 7518 §3.3 requires 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits; larger keys only make verification slow.
pub const MAX_RSA_BITS: usize = 8192;
/// At most this many keys of one set are used; the rest are ignored.
pub const MAX_KEYS_PER_SET: usize = 64;

/// Members that only private (or symmetric) keys carry.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWK cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// The key is not a JSON object.
    #[error("the key is not a JSON object")]
    NotAnObject,
    /// A required member is missing.
    #[error("the key has no `{name}`")]
    MissingMember {
        /// The member.
        name: &'static str,
    },
    /// A member has the wrong type or is not unpadded base64url.
    #[error("the key's `{name}` must be {expected}")]
    InvalidMember {
        /// The member.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A `kty` this crate does not verify with (`oct` keys are symmetric and never trusted here).
    #[error("unsupported key type `{kty}`")]
    UnsupportedKeyType {
        /// The `kty` value.
        kty: String,
    },
    /// A curve this crate does not verify with.
    #[error("unsupported curve `{crv}` for key type {kty}")]
    UnsupportedCurve {
        /// The key type.
        kty: &'static str,
        /// The `crv` value.
        crv: String,
    },
    /// The key carries private material; a published key set must not, so the key is not trusted.
    #[error("the key contains private key material (`{member}`)")]
    PrivateKeyMaterial {
        /// The private member found.
        member: &'static str,
    },
    /// An RSA modulus outside 2048–8192 bits, or even.
    #[error("the RSA modulus has {bits} bits; 2048 to 8192 bits (odd) are accepted")]
    RsaModulus {
        /// The size found.
        bits: usize,
    },
    /// An RSA public exponent that is even, below 3 or above 2^33.
    #[error("the RSA public exponent is not usable")]
    RsaExponent,
    /// An EC or OKP coordinate of the wrong length.
    #[error("the key's `{name}` is {found} bytes, {expected} are required for this curve")]
    CoordinateLength {
        /// The member.
        name: &'static str,
        /// The size required.
        expected: usize,
        /// The size found.
        found: usize,
    },
    /// `use` and `key_ops` disagree, or `key_ops` repeats an operation.
    #[error("the key's `use` and `key_ops` are inconsistent")]
    InconsistentUsage,
}

/// An RSA public key: modulus and exponent, big-endian, without leading zero bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaPublicKey {
    /// The modulus, big-endian, no leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.n
    }

    /// The public exponent, big-endian, no leading zeros.
    pub fn exponent(&self) -> &[u8] {
        &self.e
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        bit_len(&self.n)
    }

    fn new(n: &[u8], e: &[u8]) -> Result<Self, JwkError> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = bit_len(n);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) || n.last().is_some_and(|b| b & 1 == 0) {
            return Err(JwkError::RsaModulus { bits });
        }
        // Exponents in [3, 2^33) and odd: the range both default backends accept.
        let e_ok = !e.is_empty()
            && e.len() <= 5
            && e.last().is_some_and(|b| b & 1 == 1)
            && (e.len() < 5 || e[0] < 2)
            && (e.len() > 1 || e[0] >= 3);
        if !e_ok {
            return Err(JwkError::RsaExponent);
        }
        Ok(Self {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }
}

/// A NIST curve for ECDSA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcCurve {
    /// P-256 (secp256r1), for ES256.
    P256,
    /// P-384 (secp384r1), for ES384.
    P384,
}

impl EcCurve {
    /// The JWK `crv` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
        }
    }

    /// The size of one coordinate in bytes.
    pub const fn coordinate_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
        }
    }
}

/// An elliptic-curve public key given by its affine coordinates.
///
/// Only the sizes are checked here; whether the point is on the curve is checked by the verifier
/// when it builds the key.
#[derive(Clone, PartialEq, Eq)]
pub struct EcPublicKey {
    curve: EcCurve,
    x: Vec<u8>,
    y: Vec<u8>,
}

impl EcPublicKey {
    /// The curve.
    pub fn curve(&self) -> EcCurve {
        self.curve
    }

    /// The x coordinate, big-endian, full length.
    pub fn x(&self) -> &[u8] {
        &self.x
    }

    /// The y coordinate, big-endian, full length.
    pub fn y(&self) -> &[u8] {
        &self.y
    }

    /// Writes the SEC1 uncompressed point (`04 ‖ x ‖ y`) into `out` and returns the used prefix;
    /// `out` needs 97 bytes for any supported curve.
    pub fn write_sec1_uncompressed<'o>(&self, out: &'o mut [u8; 97]) -> &'o [u8] {
        let len = 1 + 2 * self.curve.coordinate_len();
        out[0] = 0x04;
        out[1..1 + self.x.len()].copy_from_slice(&self.x);
        out[1 + self.x.len()..len].copy_from_slice(&self.y);
        &out[..len]
    }
}

/// An Ed25519 public key (RFC 8037 `OKP` with `crv: Ed25519`).
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519PublicKey {
    x: [u8; 32],
}

impl Ed25519PublicKey {
    /// The 32-byte encoded point.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.x
    }
}

/// The key material of a [`Jwk`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwkKey {
    /// `kty: RSA`.
    Rsa(RsaPublicKey),
    /// `kty: EC` with P-256 or P-384.
    Ec(EcPublicKey),
    /// `kty: OKP` with Ed25519.
    Ed25519(Ed25519PublicKey),
}

impl JwkKey {
    /// The JWK `kty` name.
    pub fn kty(&self) -> &'static str {
        match self {
            JwkKey::Rsa(_) => "RSA",
            JwkKey::Ec(_) => "EC",
            JwkKey::Ed25519(_) => "OKP",
        }
    }

    fn describe(&self) -> String {
        match self {
            JwkKey::Rsa(k) => format!("RSA {} bits", k.bits()),
            JwkKey::Ec(k) => format!("EC {}", k.curve.as_str()),
            JwkKey::Ed25519(_) => "OKP Ed25519".to_owned(),
        }
    }
}

/// Why a key does not fit an algorithm (the key is fine, just not for this token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyMismatch {
    /// The key's type or curve cannot produce this algorithm's signatures.
    #[error("a {found} key cannot verify {alg}")]
    KeyType {
        /// The algorithm.
        alg: JwsAlgorithm,
        /// The key's type (and curve or size).
        found: String,
    },
    /// The key is pinned to another algorithm by its `alg`.
    #[error("the key is for `{key_alg}`, not {alg}")]
    Algorithm {
        /// The algorithm wanted.
        alg: JwsAlgorithm,
        /// The key's `alg`.
        key_alg: String,
    },
    /// The key's `use` is not `sig`.
    #[error("the key's use is `{key_use}`, not `sig`")]
    Use {
        /// The key's `use`.
        key_use: String,
    },
    /// The key's `key_ops` does not include `verify`.
    #[error("the key's `key_ops` does not include `verify`")]
    Operations,
}

/// A public JSON Web Key usable for signature verification.
///
/// ```
/// use matrix_oidc_core::oidc::{Jwk, JwkKey, JwsAlgorithm};
/// let jwk = Jwk::from_json(br#"{"kty":"OKP","crv":"Ed25519","kid":"a",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#).unwrap();
/// assert_eq!(jwk.kid(), Some("a"));
/// assert!(matches!(jwk.key(), JwkKey::Ed25519(_)));
/// assert!(jwk.check_usable_for(JwsAlgorithm::EdDsa).is_ok());
/// assert!(jwk.check_usable_for(JwsAlgorithm::Es256).is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    key: JwkKey,
    kid: Option<String>,
    alg: Option<String>,
    key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    prepared: PreparedSlot,
}

/// A verifier's parsed form of one key (see [`Jwk::with_prepared`]). Not part of the key's
/// identity: keys compare equal, serialize and print the same whether or not one was prepared.
///
/// The unwind-safety bounds keep `Jwk` (and the key sets and caches holding it) `UnwindSafe` and
/// `RefUnwindSafe`, as they were before the slot existed.
#[derive(Default)]
struct PreparedSlot(OnceLock<Box<dyn Any + Send + Sync + UnwindSafe + RefUnwindSafe>>);

impl PreparedSlot {
    fn get<T: Any>(&self) -> Option<Option<&T>> {
        let stored: &(dyn Any + Send + Sync) = &**self.0.get()?;
        Some(stored.downcast_ref::<T>())
    }
}

impl Clone for PreparedSlot {
    // The parsed form is cheap to rebuild and may not be `Clone`: a copy starts empty.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for PreparedSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PreparedSlot {}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("key", &self.key.describe())
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("use", &self.key_use)
            .field("key_ops", &self.key_ops)
            .finish()
    }
}

impl Jwk {
    /// An RSA key from its modulus and exponent (big-endian; leading zeros are dropped).
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, JwkError> {
        Ok(Self::bare(JwkKey::Rsa(RsaPublicKey::new(n, e)?)))
    }

    /// An EC key from its full-length coordinates.
    pub fn ec(curve: EcCurve, x: &[u8], y: &[u8]) -> Result<Self, JwkError> {
        for (name, c) in [("x", x), ("y", y)] {
            if c.len() != curve.coordinate_len() {
                return Err(JwkError::CoordinateLength {
                    name,
                    expected: curve.coordinate_len(),
                    found: c.len(),
                });
            }
        }
        Ok(Self::bare(JwkKey::Ec(EcPublicKey {
            curve,
            x: x.to_vec(),
            y: y.to_vec(),
        })))
    }

    /// An Ed25519 key from its 32-byte encoding.
    pub fn ed25519(x: &[u8]) -> Result<Self, JwkError> {
        let x: [u8; 32] = x.try_into().map_err(|_| JwkError::CoordinateLength {
            name: "x",
            expected: 32,
            found: x.len(),
        })?;
        Ok(Self::bare(JwkKey::Ed25519(Ed25519PublicKey { x })))
    }

    fn bare(key: JwkKey) -> Self {
        Self {
            key,
            kid: None,
            alg: None,
            key_use: None,
            key_ops: None,
            prepared: PreparedSlot::default(),
        }
    }

    /// Sets the key id.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Pins the key to one algorithm (`alg`).
    pub fn with_alg(mut self, alg: impl Into<String>) -> Self {
        self.alg = Some(alg.into());
        self
    }

    /// Sets `use` (`sig` for signing keys).
    pub fn with_use(mut self, key_use: impl Into<String>) -> Self {
        self.key_use = Some(key_use.into());
        self
    }

    /// Sets `key_ops`.
    pub fn with_key_ops(mut self, ops: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.key_ops = Some(ops.into_iter().map(Into::into).collect());
        self
    }

    /// The key material.
    pub fn key(&self) -> &JwkKey {
        &self.key
    }

    /// The key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is pinned to, if any (verbatim).
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// The intended use (`sig`, `enc`), if any.
    pub fn key_use(&self) -> Option<&str> {
        self.key_use.as_deref()
    }

    /// The permitted operations, if any.
    pub fn key_ops(&self) -> Option<&[String]> {
        self.key_ops.as_deref()
    }

    /// Runs `use_key` on a [`JwsVerifier`](super::JwsVerifier)'s parsed form of this key, made by
    /// `prepare` on first use and kept with the key from then on.
    ///
    /// This is how a backend avoids rebuilding its key object (a big-number modulus, a
    /// decompressed curve point) for every token: the form lives as long as this `Jwk`, i.e. as
    /// long as the [`JwkSet`] that a [`JwksCache`](super::JwksCache) holds, and a refetched set
    /// (a key rotation) starts without any. One form is kept per key, the first prepared: a
    /// second backend with another type `T` used on the same key prepares its own on each call.
    /// A failed preparation is not kept, so it fails the same way on the next call.
    ///
    /// ```
    /// use matrix_oidc_core::oidc::{Jwk, JwkKey};
    /// let jwk = Jwk::ed25519(&[7; 32]).unwrap();
    /// let mut builds = 0;
    /// for _ in 0..3 {
    ///     let first = jwk.with_prepared(
    ///         |key| -> Result<[u8; 32], ()> {
    ///             builds += 1;
    ///             match key { JwkKey::Ed25519(k) => Ok(*k.as_bytes()), _ => Err(()) }
    ///         },
    ///         |bytes| bytes[0],
    ///     );
    ///     assert_eq!(first, Ok(7));
    /// }
    /// assert_eq!(builds, 1);
    /// ```
    pub fn with_prepared<T, R, E>(
        &self,
        prepare: impl FnOnce(&JwkKey) -> Result<T, E>,
        use_key: impl FnOnce(&T) -> R,
    ) -> Result<R, E>
    where
        T: Any + Send + Sync + UnwindSafe + RefUnwindSafe,
    {
        if let Some(stored) = self.prepared.get::<T>() {
            return match stored {
                Some(form) => Ok(use_key(form)),
                None => prepare(&self.key).map(|form| use_key(&form)),
            };
        }
        let form = prepare(&self.key)?;
        let result = use_key(&form);
        // Kept for the next call; if another thread stored a form meanwhile, either is as good.
        let _ = self.prepared.0.set(Box::new(form));
        Ok(result)
    }

    /// Whether this key may verify a signature made with `alg`: the key type and curve fit the
    /// algorithm, `alg` (if set) names it, `use` (if set) is `sig`, `key_ops` (if set) has `verify`.
    pub fn check_usable_for(&self, alg: JwsAlgorithm) -> Result<(), KeyMismatch> {
        let fits = matches!(
            (alg.key_family(), &self.key),
            (KeyFamily::Rsa, JwkKey::Rsa(_)) | (KeyFamily::Ed25519, JwkKey::Ed25519(_))
        ) || matches!((alg.key_family(), &self.key),
            (KeyFamily::P256, JwkKey::Ec(k)) if k.curve == EcCurve::P256)
            || matches!((alg.key_family(), &self.key),
            (KeyFamily::P384, JwkKey::Ec(k)) if k.curve == EcCurve::P384);
        if !fits {
            return Err(KeyMismatch::KeyType {
                alg,
                found: self.key.describe(),
            });
        }
        if let Some(key_alg) = &self.alg {
            if key_alg != alg.as_str() {
                return Err(KeyMismatch::Algorithm {
                    alg,
                    key_alg: short(key_alg),
                });
            }
        }
        if let Some(u) = &self.key_use {
            if u != "sig" {
                return Err(KeyMismatch::Use { key_use: short(u) });
            }
        }
        if let Some(ops) = &self.key_ops {
            if !ops.iter().any(|o| o == "verify") {
                return Err(KeyMismatch::Operations);
            }
        }
        Ok(())
    }

    /// Parses one JWK from JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwkError> {
        let map = json::parse_object(bytes).map_err(|_| JwkError::NotAnObject)?;
        Self::from_map(map)
    }

    /// Parses one JWK from a JSON value.
    pub fn from_value(value: Value) -> Result<Self, JwkError> {
        match value {
            Value::Object(map) => Self::from_map(map),
            _ => Err(JwkError::NotAnObject),
        }
    }

    fn from_map(mut map: Map<String, Value>) -> Result<Self, JwkError> {
        if let Some(member) = PRIVATE_MEMBERS.into_iter().find(|m| map.contains_key(*m)) {
            return Err(JwkError::PrivateKeyMaterial { member });
        }
        let string = |map: &mut Map<String, Value>, name: &'static str| {
            json::take_string(map, name).map_err(|_| JwkError::InvalidMember {
                name,
                expected: "a string",
            })
        };
        let bytes =
            |map: &mut Map<String, Value>, name: &'static str| -> Result<Vec<u8>, JwkError> {
                let s = string(map, name)?.ok_or(JwkError::MissingMember { name })?;
                decode(&s, JwsPart::Header).map_err(|_| JwkError::InvalidMember {
                    name,
                    expected: "unpadded base64url",
                })
            };
        let kty = string(&mut map, "kty")?.ok_or(JwkError::MissingMember { name: "kty" })?;
        let key = match kty.as_str() {
            "RSA" => {
                let n = bytes(&mut map, "n")?;
                let e = bytes(&mut map, "e")?;
                JwkKey::Rsa(RsaPublicKey::new(&n, &e)?)
            }
            "EC" => {
                let crv =
                    string(&mut map, "crv")?.ok_or(JwkError::MissingMember { name: "crv" })?;
                let curve = match crv.as_str() {
                    "P-256" => EcCurve::P256,
                    "P-384" => EcCurve::P384,
                    _ => {
                        return Err(JwkError::UnsupportedCurve {
                            kty: "EC",
                            crv: short(&crv),
                        });
                    }
                };
                let x = bytes(&mut map, "x")?;
                let y = bytes(&mut map, "y")?;
                Jwk::ec(curve, &x, &y)?.key
            }
            "OKP" => {
                let crv =
                    string(&mut map, "crv")?.ok_or(JwkError::MissingMember { name: "crv" })?;
                if crv != "Ed25519" {
                    return Err(JwkError::UnsupportedCurve {
                        kty: "OKP",
                        crv: short(&crv),
                    });
                }
                let x = bytes(&mut map, "x")?;
                Jwk::ed25519(&x)?.key
            }
            other => {
                return Err(JwkError::UnsupportedKeyType { kty: short(other) });
            }
        };
        let kid = string(&mut map, "kid")?;
        let alg = string(&mut map, "alg")?;
        let key_use = string(&mut map, "use")?;
        let key_ops =
            json::take_string_array(&mut map, "key_ops").map_err(|_| JwkError::InvalidMember {
                name: "key_ops",
                expected: "an array of strings",
            })?;
        if let Some(ops) = &key_ops {
            let repeated = ops.iter().enumerate().any(|(i, o)| ops[..i].contains(o));
            // RFC 7517 §4.3: `use: sig` with only encryption operations is contradictory.
            let contradicts_use = key_use.as_deref() == Some("sig")
                && !ops.is_empty()
                && ops.iter().all(|o| o != "verify" && o != "sign");
            if repeated || contradicts_use {
                return Err(JwkError::InconsistentUsage);
            }
        }
        Ok(Self {
            key,
            kid,
            alg,
            key_use,
            key_ops,
            prepared: PreparedSlot::default(),
        })
    }

    /// The public JWK as JSON (what [`Jwk::from_value`] reads back).
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("kty".into(), self.key.kty().into());
        match &self.key {
            JwkKey::Rsa(k) => {
                map.insert("n".into(), encode(&k.n).into());
                map.insert("e".into(), encode(&k.e).into());
            }
            JwkKey::Ec(k) => {
                map.insert("crv".into(), k.curve.as_str().into());
                map.insert("x".into(), encode(&k.x).into());
                map.insert("y".into(), encode(&k.y).into());
            }
            JwkKey::Ed25519(k) => {
                map.insert("crv".into(), "Ed25519".into());
                map.insert("x".into(), encode(&k.x).into());
            }
        }
        json::put(&mut map, "kid", self.kid.clone());
        json::put(&mut map, "alg", self.alg.clone());
        json::put(&mut map, "use", self.key_use.clone());
        json::put(&mut map, "key_ops", self.key_ops.clone());
        Value::Object(map)
    }
}

impl Serialize for Jwk {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Jwk {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = json::StrictObject::deserialize(d)?;
        Jwk::from_map(v.0).map_err(serde::de::Error::custom)
    }
}

/// A key of a set that is not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IgnoredKey {
    /// The key's position in the set's `keys` array.
    pub index: usize,
    /// Its `kid`, when it had a string one.
    pub kid: Option<String>,
    /// Why it is not used.
    pub reason: IgnoreReason,
}

/// Why a key of a set is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// The key itself is unusable.
    Invalid(JwkError),
    /// The set has more than [`MAX_KEYS_PER_SET`] keys.
    TooManyKeys,
}

/// A JWK Set document could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkSetError {
    /// Not a JSON object with unique member names.
    #[error("the key set is not a JSON object: {reason}")]
    Json {
        /// What the parser said.
        reason: String,
    },
    /// No `keys` array.
    #[error("the key set has no `keys` array")]
    MissingKeys,
}

/// A JSON Web Key Set: the usable keys in document order, and the ignored ones with reasons.
///
/// Keys may share a `kid` (a provider in the middle of a rotation, or one `kid` for an RSA and an
/// EC key); selection then filters by algorithm and tries what remains in document order, so the
/// outcome never depends on hashing or timing.
///
/// ```
/// use matrix_oidc_core::oidc::JwkSet;
/// let set = JwkSet::from_json(br#"{"keys":[
///   {"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
///   {"kty":"oct","kid":"b","k":"c2VjcmV0"}
/// ]}"#).unwrap();
/// assert_eq!(set.keys().len(), 1);
/// assert_eq!(set.ignored()[0].kid.as_deref(), Some("b"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JwkSet {
    keys: Vec<Jwk>,
    ignored: Vec<IgnoredKey>,
}

impl JwkSet {
    /// A set of the given keys.
    pub fn from_keys(keys: Vec<Jwk>) -> Self {
        Self {
            keys,
            ignored: Vec::new(),
        }
    }

    /// Parses a JWK Set document (`{"keys":[…]}`), ignoring keys that cannot be used.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwkSetError> {
        let mut map = json::parse_object(bytes).map_err(|reason| JwkSetError::Json { reason })?;
        let Some(Value::Array(items)) = map.remove("keys") else {
            return Err(JwkSetError::MissingKeys);
        };
        let mut set = Self::default();
        for (index, item) in items.into_iter().enumerate() {
            let kid = item.get("kid").and_then(Value::as_str).map(short);
            if set.keys.len() >= MAX_KEYS_PER_SET {
                set.ignored.push(IgnoredKey {
                    index,
                    kid,
                    reason: IgnoreReason::TooManyKeys,
                });
                continue;
            }
            match Jwk::from_value(item) {
                Ok(k) => set.keys.push(k),
                Err(e) => set.ignored.push(IgnoredKey {
                    index,
                    kid,
                    reason: IgnoreReason::Invalid(e),
                }),
            }
        }
        Ok(set)
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The keys that were not usable, with reasons.
    pub fn ignored(&self) -> &[IgnoredKey] {
        &self.ignored
    }

    /// Whether the set has no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The usable keys with this `kid`, in document order.
    pub fn with_kid<'s>(&'s self, kid: &'s str) -> impl Iterator<Item = &'s Jwk> + 's {
        self.keys.iter().filter(move |k| k.kid() == Some(kid))
    }
}

impl Serialize for JwkSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Doc<'a> {
            keys: &'a [Jwk],
        }
        Doc { keys: &self.keys }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for JwkSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let bytes = serde_json::to_vec(&v).map_err(serde::de::Error::custom)?;
        JwkSet::from_json(&bytes).map_err(serde::de::Error::custom)
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

fn bit_len(b: &[u8]) -> usize {
    match b.first() {
        None => 0,
        Some(&first) => (b.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    pub(crate) fn rsa_n(bits: usize) -> Vec<u8> {
        let mut n = vec![0xa5u8; bits / 8];
        n[0] = 0xc1;
        if let Some(last) = n.last_mut() {
            *last |= 1;
        }
        n
    }

    #[test]
    fn parses_each_key_type() {
        let n = encode(&rsa_n(2048));
        let p256 = encode(&[7u8; 32]);
        let p384 = encode(&[7u8; 48]);
        let doc = format!(
            r#"{{"keys":[
            {{"kty":"RSA","kid":"r","n":"{n}","e":"AQAB","alg":"RS256","use":"sig"}},
            {{"kty":"EC","kid":"e","crv":"P-256","x":"{p256}","y":"{p256}"}},
            {{"kty":"EC","kid":"f","crv":"P-384","x":"{p384}","y":"{p384}","key_ops":["verify"]}},
            {{"kty":"OKP","kid":"o","crv":"Ed25519","x":"{ED_X}"}}
            ]}}"#
        );
        let set = JwkSet::from_json(doc.as_bytes()).unwrap();
        assert_eq!(set.keys().len(), 4, "{:?}", set.ignored());
        assert!(matches!(set.keys()[0].key(), JwkKey::Rsa(k) if k.bits() == 2048));
        assert!(matches!(set.keys()[2].key(), JwkKey::Ec(k) if k.curve() == EcCurve::P384));
        // Round trip through serde keeps every key.
        let json = serde_json::to_string(&set).unwrap();
        let back: JwkSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn unusable_keys_are_ignored_with_reasons() {
        let small = encode(&rsa_n(1024));
        let big = encode(&rsa_n(8200));
        let good = encode(&rsa_n(2048));
        let even = {
            let mut n = rsa_n(2048);
            if let Some(l) = n.last_mut() {
                *l &= 0xfe;
            }
            encode(&n)
        };
        let doc = format!(
            r#"{{"keys":[
            {{"kty":"RSA","n":"{small}","e":"AQAB"}},
            {{"kty":"RSA","n":"{big}","e":"AQAB"}},
            {{"kty":"RSA","n":"{good}","e":"AQ"}},
            {{"kty":"RSA","n":"{good}","e":"Ag"}},
            {{"kty":"RSA","n":"{even}","e":"AQAB"}},
            {{"kty":"RSA","n":"{good}","e":"AQAB","d":"AQAB"}},
            {{"kty":"oct","k":"AAAA"}},
            {{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}},
            {{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}},
            {{"kty":"OKP","crv":"X25519","x":"{ED_X}"}},
            {{"kty":"OKP","crv":"Ed25519","x":"{ED_X}="}},
            {{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","key_ops":["verify","verify"]}},
            {{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","use":"sig","key_ops":["encrypt"]}},
            {{"kty":"OKP","crv":"Ed25519"}},
            {{"kty":1}},
            "not a key"
            ]}}"#
        );
        let set = JwkSet::from_json(doc.as_bytes()).unwrap();
        assert!(set.is_empty());
        let reasons: Vec<_> = set
            .ignored()
            .iter()
            .map(|i| match &i.reason {
                IgnoreReason::Invalid(e) => e.clone(),
                IgnoreReason::TooManyKeys => panic!("not expected"),
            })
            .collect();
        assert!(matches!(reasons[0], JwkError::RsaModulus { bits: 1024 }));
        assert!(matches!(reasons[1], JwkError::RsaModulus { bits: 8200 }));
        assert_eq!(reasons[2], JwkError::RsaExponent);
        assert_eq!(reasons[3], JwkError::RsaExponent);
        assert!(matches!(reasons[4], JwkError::RsaModulus { .. }));
        assert_eq!(reasons[5], JwkError::PrivateKeyMaterial { member: "d" });
        assert_eq!(reasons[6], JwkError::PrivateKeyMaterial { member: "k" });
        assert!(matches!(reasons[7], JwkError::UnsupportedCurve { .. }));
        assert!(matches!(
            reasons[8],
            JwkError::CoordinateLength { name: "x", .. }
        ));
        assert!(matches!(reasons[9], JwkError::UnsupportedCurve { .. }));
        assert!(matches!(
            reasons[10],
            JwkError::InvalidMember { name: "x", .. }
        ));
        assert_eq!(reasons[11], JwkError::InconsistentUsage);
        assert_eq!(reasons[12], JwkError::InconsistentUsage);
        assert_eq!(reasons[13], JwkError::MissingMember { name: "x" });
        assert!(matches!(
            reasons[14],
            JwkError::InvalidMember { name: "kty", .. }
        ));
        assert_eq!(reasons[15], JwkError::NotAnObject);
    }

    #[test]
    fn set_level_errors_and_limits() {
        assert!(matches!(
            JwkSet::from_json(b"[]"),
            Err(JwkSetError::Json { .. })
        ));
        assert_eq!(
            JwkSet::from_json(br#"{"keys":{}}"#),
            Err(JwkSetError::MissingKeys)
        );
        let one = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}"}}"#);
        let doc = format!(
            r#"{{"keys":[{}]}}"#,
            vec![one; MAX_KEYS_PER_SET + 2].join(",")
        );
        let set = JwkSet::from_json(doc.as_bytes()).unwrap();
        assert_eq!(set.keys().len(), MAX_KEYS_PER_SET);
        assert_eq!(set.ignored().len(), 2);
        assert_eq!(set.ignored()[0].reason, IgnoreReason::TooManyKeys);
    }

    #[test]
    fn usability_for_algorithms() {
        let rsa = Jwk::rsa(&rsa_n(2048), &[1, 0, 1]).unwrap();
        assert!(rsa.check_usable_for(JwsAlgorithm::Ps512).is_ok());
        assert!(matches!(
            rsa.check_usable_for(JwsAlgorithm::Es256),
            Err(KeyMismatch::KeyType { .. })
        ));
        let p384 = Jwk::ec(EcCurve::P384, &[1; 48], &[2; 48]).unwrap();
        assert!(p384.check_usable_for(JwsAlgorithm::Es384).is_ok());
        assert!(p384.check_usable_for(JwsAlgorithm::Es256).is_err());
        let pinned = rsa.clone().with_alg("RS256");
        assert!(pinned.check_usable_for(JwsAlgorithm::Rs256).is_ok());
        assert!(matches!(
            pinned.check_usable_for(JwsAlgorithm::Ps256),
            Err(KeyMismatch::Algorithm { .. })
        ));
        assert!(matches!(
            rsa.clone()
                .with_use("enc")
                .check_usable_for(JwsAlgorithm::Rs256),
            Err(KeyMismatch::Use { .. })
        ));
        assert_eq!(
            rsa.clone()
                .with_key_ops(["encrypt"])
                .check_usable_for(JwsAlgorithm::Rs256),
            Err(KeyMismatch::Operations)
        );
        assert!(
            rsa.with_key_ops(["verify"])
                .check_usable_for(JwsAlgorithm::Rs256)
                .is_ok()
        );
    }

    #[test]
    fn leading_zeros_are_dropped_and_sec1_is_built() {
        let mut n = vec![0, 0];
        n.extend(rsa_n(2048));
        let k = Jwk::rsa(&n, &[0, 1, 0, 1]).unwrap();
        let JwkKey::Rsa(r) = k.key() else { panic!() };
        assert_eq!(r.modulus().len(), 256);
        assert_eq!(r.exponent(), &[1, 0, 1]);
        let ec = EcPublicKey {
            curve: EcCurve::P256,
            x: vec![1; 32],
            y: vec![2; 32],
        };
        let mut buf = [0u8; 97];
        let p = ec.write_sec1_uncompressed(&mut buf);
        assert_eq!(p.len(), 65);
        assert_eq!((p[0], p[1], p[64]), (4, 1, 2));
    }

    #[test]
    fn prepared_forms_are_kept_per_key() {
        let jwk = Jwk::ed25519(&[9; 32]).unwrap().with_kid("k");
        let builds = std::cell::Cell::new(0);
        let prepare = |key: &JwkKey| -> Result<u32, &'static str> {
            builds.set(builds.get() + 1);
            match key {
                JwkKey::Ed25519(k) => Ok(u32::from(k.as_bytes()[0])),
                _ => Err("not Ed25519"),
            }
        };
        assert_eq!(jwk.with_prepared(prepare, |v| *v + 1), Ok(10));
        assert_eq!(jwk.with_prepared(prepare, |v| *v + 2), Ok(11));
        assert_eq!(builds.get(), 1);
        // Another backend's type on the same key: built each time, the first form stays.
        let other = |_: &JwkKey| -> Result<String, ()> { Ok("other".to_owned()) };
        assert_eq!(jwk.with_prepared(other, |s| s.len()), Ok(5));
        assert_eq!(jwk.with_prepared(prepare, |v| *v), Ok(9));
        assert_eq!(builds.get(), 1);
        // A copy, an equal key parsed again and a new set start without a form, and compare equal.
        let copy = jwk.clone();
        assert_eq!(copy, jwk);
        assert_eq!(copy.with_prepared(prepare, |v| *v), Ok(9));
        assert_eq!(builds.get(), 2);
        // A failed preparation is not kept.
        let failing = Jwk::ed25519(&[1; 32]).unwrap();
        let attempts = std::cell::Cell::new(0);
        for _ in 0..2 {
            let r = failing.with_prepared(
                |_| -> Result<u8, &'static str> {
                    attempts.set(attempts.get() + 1);
                    Err("bad point")
                },
                |v| *v,
            );
            assert_eq!(r, Err("bad point"));
        }
        assert_eq!(attempts.get(), 2);
        fn shareable<T: Send + Sync + UnwindSafe + RefUnwindSafe>() {}
        shareable::<JwkSet>();
    }

    #[test]
    fn debug_is_compact() {
        let k = Jwk::ed25519(&[9; 32]).unwrap().with_kid("k");
        let s = format!("{k:?}");
        assert!(s.contains("OKP Ed25519") && s.contains("\"k\""), "{s}");
    }
}
