//! Claims: the validated contents of an ID token and of a userinfo response.
//!
//! Claims the validation depends on (`iss`, `sub`, `aud`, times, `nonce`, hashes) are parsed
//! strictly: a wrong type is an error naming the claim. Profile claims (OpenID Connect Core §5.1)
//! are parsed leniently: a provider that sends `email_verified: "true"` still logs in, and a value of
//! an unexpected type stays in `extra` instead of being dropped.

use super::json::{self, TypeMismatch};
use crate::{Secret, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A claim had the wrong JSON type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the claim `{claim}` must be {expected}")]
pub struct ClaimTypeError {
    /// The claim.
    pub claim: &'static str,
    /// What it must be.
    pub expected: &'static str,
}

fn typed<T>(claim: &'static str, r: Result<T, TypeMismatch>) -> Result<T, ClaimTypeError> {
    r.map_err(|m| ClaimTypeError {
        claim,
        expected: m.expected.as_str(),
    })
}

/// A postal address (OpenID Connect Core §5.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Address {
    /// The full address for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// Street, house number, etc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// City or locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// State, province, prefecture or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The standard profile claims of OpenID Connect Core §5.1 (besides `sub`). Every field is
/// optional; language-tagged variants (`name#de`) stay in the owner's `extra`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ProfileClaims {
    /// Full name.
    pub name: Option<String>,
    /// Given name(s).
    pub given_name: Option<String>,
    /// Surname(s).
    pub family_name: Option<String>,
    /// Middle name(s).
    pub middle_name: Option<String>,
    /// Casual name.
    pub nickname: Option<String>,
    /// The name the user prefers to be shown (not unique, not stable).
    pub preferred_username: Option<String>,
    /// Profile page URL.
    pub profile: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Web page or blog URL.
    pub website: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Whether the provider verified the e-mail address.
    pub email_verified: Option<bool>,
    /// Gender.
    pub gender: Option<String>,
    /// Birthday (`YYYY-MM-DD`, `0000-MM-DD` or `YYYY`).
    pub birthdate: Option<String>,
    /// Time zone (IANA name).
    pub zoneinfo: Option<String>,
    /// Locale (BCP 47).
    pub locale: Option<String>,
    /// Phone number.
    pub phone_number: Option<String>,
    /// Whether the provider verified the phone number.
    pub phone_number_verified: Option<bool>,
    /// Postal address.
    pub address: Option<Address>,
    /// When the profile was last updated.
    pub updated_at: Option<Timestamp>,
}

const PROFILE_STRINGS: [&str; 15] = [
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
];

impl ProfileClaims {
    /// Moves the profile claims out of `map`, leaving anything of an unexpected type behind.
    pub(crate) fn take_from(map: &mut Map<String, Value>) -> Self {
        let mut strings: [Option<String>; 15] = Default::default();
        for (slot, name) in strings.iter_mut().zip(PROFILE_STRINGS) {
            *slot = json::take_string_lenient(map, name);
        }
        let [
            name,
            given_name,
            family_name,
            middle_name,
            nickname,
            preferred_username,
            profile,
            picture,
            website,
            email,
            gender,
            birthdate,
            zoneinfo,
            locale,
            phone_number,
        ] = strings;
        let email_verified = json::take_bool(map, "email_verified", true).ok().flatten();
        let phone_number_verified = json::take_bool(map, "phone_number_verified", true)
            .ok()
            .flatten();
        let address = match map.remove("address") {
            Some(v @ Value::Object(_)) => match serde_json::from_value::<Address>(v.clone()) {
                Ok(a) => Some(a),
                Err(_) => {
                    map.insert("address".to_owned(), v);
                    None
                }
            },
            Some(other) => {
                map.insert("address".to_owned(), other);
                None
            }
            None => None,
        };
        let updated_at = match map.get("updated_at") {
            Some(Value::Number(_)) => json::take_numeric_date(map, "updated_at").ok().flatten(),
            _ => None,
        };
        Self {
            name,
            given_name,
            family_name,
            middle_name,
            nickname,
            preferred_username,
            profile,
            picture,
            website,
            email,
            email_verified,
            gender,
            birthdate,
            zoneinfo,
            locale,
            phone_number,
            phone_number_verified,
            address,
            updated_at,
        }
    }

    pub(crate) fn put_into(&self, map: &mut Map<String, Value>) {
        let strings = [
            &self.name,
            &self.given_name,
            &self.family_name,
            &self.middle_name,
            &self.nickname,
            &self.preferred_username,
            &self.profile,
            &self.picture,
            &self.website,
            &self.email,
            &self.gender,
            &self.birthdate,
            &self.zoneinfo,
            &self.locale,
            &self.phone_number,
        ];
        for (value, name) in strings.into_iter().zip(PROFILE_STRINGS) {
            json::put(map, name, value.clone());
        }
        json::put(map, "email_verified", self.email_verified);
        json::put(map, "phone_number_verified", self.phone_number_verified);
        if let Some(a) = &self.address {
            if let Ok(v) = serde_json::to_value(a) {
                map.insert("address".to_owned(), v);
            }
        }
        json::put(
            map,
            "updated_at",
            self.updated_at.map(json::numeric_date_value),
        );
    }
}

/// The claims of a validated ID token.
///
/// Serializes to (and deserializes from) the JWT claims-set shape, so a store can keep the previous
/// token's claims for [`validate_refreshed_id_token`](super::validate_refreshed_id_token).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user's stable identifier at this issuer.
    pub sub: String,
    /// Audiences (a single string in the token becomes a one-element list).
    pub aud: Vec<String>,
    /// Expiry.
    pub exp: Timestamp,
    /// Issue time.
    pub iat: Timestamp,
    /// Not-before time.
    pub nbf: Option<Timestamp>,
    /// When the user authenticated.
    pub auth_time: Option<Timestamp>,
    /// The nonce of the authorization request.
    pub nonce: Option<Secret>,
    /// Authorized party.
    pub azp: Option<String>,
    /// Authentication context class reference.
    pub acr: Option<String>,
    /// Authentication methods.
    pub amr: Option<Vec<String>>,
    /// Session id (front/back-channel logout).
    pub sid: Option<String>,
    /// Access token hash.
    pub at_hash: Option<String>,
    /// Code hash.
    pub c_hash: Option<String>,
    /// Standard profile claims.
    pub profile: ProfileClaims,
    /// Every other claim, verbatim.
    pub extra: Map<String, Value>,
}

/// Why an ID token's claims set could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// A required claim is absent.
    #[error("the claim `{0}` is missing")]
    Missing(&'static str),
    /// A claim has the wrong type.
    #[error(transparent)]
    Type(#[from] ClaimTypeError),
    /// `sub` is empty.
    #[error("the claim `sub` is empty")]
    EmptySubject,
    /// `aud` is an empty list.
    #[error("the claim `aud` is empty")]
    EmptyAudience,
}

impl IdTokenClaims {
    /// Reads a JWT claims set as ID-token claims (types only; nothing is validated here).
    pub fn from_map(map: Map<String, Value>) -> Result<Self, ClaimsError> {
        Self::from_slots(ClaimSlots::from_map(map))
    }

    /// Reads the claims straight from the JSON of a payload, as [`from_map`](Self::from_map)
    /// would from the parsed object, without building that object first. `Err(Ok(reason))` is a
    /// JSON error (not an object, duplicate member), `Err(Err(_))` a claim error.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<Self, Result<String, ClaimsError>> {
        let slots = json::parse_with::<ClaimSlots>(bytes).map_err(Ok)?;
        Self::from_slots(slots).map_err(Err)
    }

    /// The one place where claim types are checked, in a fixed order (so that of two wrong claims
    /// the same one is always reported, whichever way the claims were read).
    fn from_slots(s: ClaimSlots) -> Result<Self, ClaimsError> {
        let ClaimSlots {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf,
            auth_time,
            nonce,
            azp,
            acr,
            amr,
            sid,
            at_hash,
            c_hash,
            extra: mut map,
        } = s;
        let iss = typed("iss", json::string_value(iss))?.ok_or(ClaimsError::Missing("iss"))?;
        let sub = typed("sub", json::string_value(sub))?.ok_or(ClaimsError::Missing("sub"))?;
        if sub.is_empty() {
            return Err(ClaimsError::EmptySubject);
        }
        let aud =
            typed("aud", json::string_or_array_value(aud))?.ok_or(ClaimsError::Missing("aud"))?;
        if aud.is_empty() {
            return Err(ClaimsError::EmptyAudience);
        }
        let exp = typed("exp", json::numeric_date_of(exp))?.ok_or(ClaimsError::Missing("exp"))?;
        let iat = typed("iat", json::numeric_date_of(iat))?.ok_or(ClaimsError::Missing("iat"))?;
        let nbf = typed("nbf", json::numeric_date_of(nbf))?;
        let auth_time = typed("auth_time", json::numeric_date_of(auth_time))?;
        let nonce = typed("nonce", json::string_value(nonce))?.map(Secret::new);
        let azp = typed("azp", json::string_value(azp))?;
        let acr = typed("acr", json::string_value(acr))?;
        let amr = typed("amr", json::string_array_value(amr))?;
        let sid = typed("sid", json::string_value(sid))?;
        let at_hash = typed("at_hash", json::string_value(at_hash))?;
        let c_hash = typed("c_hash", json::string_value(c_hash))?;
        let profile = if map.is_empty() {
            ProfileClaims::default()
        } else {
            ProfileClaims::take_from(&mut map)
        };
        Ok(Self {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf,
            auth_time,
            nonce,
            azp,
            acr,
            amr,
            sid,
            at_hash,
            c_hash,
            profile,
            extra: map,
        })
    }

    /// The claims as a JWT claims-set JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = self.extra.clone();
        map.insert("iss".into(), self.iss.clone().into());
        map.insert("sub".into(), self.sub.clone().into());
        map.insert("aud".into(), self.aud.clone().into());
        map.insert("exp".into(), json::numeric_date_value(self.exp));
        map.insert("iat".into(), json::numeric_date_value(self.iat));
        json::put(&mut map, "nbf", self.nbf.map(json::numeric_date_value));
        json::put(
            &mut map,
            "auth_time",
            self.auth_time.map(json::numeric_date_value),
        );
        json::put(
            &mut map,
            "nonce",
            self.nonce.as_ref().map(|n| n.expose().to_owned()),
        );
        json::put(&mut map, "azp", self.azp.clone());
        json::put(&mut map, "acr", self.acr.clone());
        json::put(&mut map, "amr", self.amr.clone());
        json::put(&mut map, "sid", self.sid.clone());
        json::put(&mut map, "at_hash", self.at_hash.clone());
        json::put(&mut map, "c_hash", self.c_hash.clone());
        self.profile.put_into(&mut map);
        map
    }
}

impl Serialize for IdTokenClaims {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for IdTokenClaims {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = json::StrictObject::deserialize(d)?.0;
        IdTokenClaims::from_map(map).map_err(serde::de::Error::custom)
    }
}

/// The claims an ID token is validated on, each in its own slot as read (not yet type-checked),
/// and every other claim in `extra`.
#[derive(Default)]
struct ClaimSlots {
    iss: Option<Value>,
    sub: Option<Value>,
    aud: Option<Value>,
    exp: Option<Value>,
    iat: Option<Value>,
    nbf: Option<Value>,
    auth_time: Option<Value>,
    nonce: Option<Value>,
    azp: Option<Value>,
    acr: Option<Value>,
    amr: Option<Value>,
    sid: Option<Value>,
    at_hash: Option<Value>,
    c_hash: Option<Value>,
    extra: Map<String, Value>,
}

impl ClaimSlots {
    fn slot(&mut self, name: &str) -> Option<&mut Option<Value>> {
        Some(match name {
            "iss" => &mut self.iss,
            "sub" => &mut self.sub,
            "aud" => &mut self.aud,
            "exp" => &mut self.exp,
            "iat" => &mut self.iat,
            "nbf" => &mut self.nbf,
            "auth_time" => &mut self.auth_time,
            "nonce" => &mut self.nonce,
            "azp" => &mut self.azp,
            "acr" => &mut self.acr,
            "amr" => &mut self.amr,
            "sid" => &mut self.sid,
            "at_hash" => &mut self.at_hash,
            "c_hash" => &mut self.c_hash,
            _ => return None,
        })
    }

    fn from_map(mut map: Map<String, Value>) -> Self {
        let mut s = Self::default();
        for name in [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "auth_time",
            "nonce",
            "azp",
            "acr",
            "amr",
            "sid",
            "at_hash",
            "c_hash",
        ] {
            if let (Some(slot), Some(v)) = (s.slot(name), map.remove(name)) {
                *slot = Some(v);
            }
        }
        s.extra = map;
        s
    }
}

impl<'de> Deserialize<'de> for ClaimSlots {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SlotsVisitor;
        impl<'de> serde::de::Visitor<'de> for SlotsVisitor {
            type Value = ClaimSlots;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<ClaimSlots, A::Error> {
                let mut s = ClaimSlots::default();
                while let Some(json::Key(name)) = access.next_key()? {
                    if let Some(slot) = s.slot(&name) {
                        if slot.is_some() {
                            return Err(json::duplicate(&name));
                        }
                        *slot = Some(access.next_value()?);
                    } else {
                        if s.extra.contains_key(&*name) {
                            return Err(json::duplicate(&name));
                        }
                        let value: Value = access.next_value()?;
                        s.extra.insert(name.into_owned(), value);
                    }
                }
                Ok(s)
            }
        }
        deserializer.deserialize_map(SlotsVisitor)
    }
}

/// The claims of a userinfo response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserInfo {
    /// Subject; always equal to the ID token's `sub` once validated.
    pub sub: String,
    /// Standard profile claims.
    pub profile: ProfileClaims,
    /// Every other claim, verbatim (for signed responses this includes `iss` and `aud`).
    pub extra: Map<String, Value>,
}

impl UserInfo {
    pub(crate) fn from_map(mut map: Map<String, Value>) -> Result<Self, ClaimsError> {
        let sub =
            typed("sub", json::take_string(&mut map, "sub"))?.ok_or(ClaimsError::Missing("sub"))?;
        if sub.is_empty() {
            return Err(ClaimsError::EmptySubject);
        }
        let profile = ProfileClaims::take_from(&mut map);
        Ok(Self {
            sub,
            profile,
            extra: map,
        })
    }

    /// The claims as a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = self.extra.clone();
        map.insert("sub".into(), self.sub.clone().into());
        self.profile.put_into(&mut map);
        map
    }
}

impl Serialize for UserInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(s)
    }
}

impl<'de> Deserialize<'de> for UserInfo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = json::StrictObject::deserialize(d)?.0;
        UserInfo::from_map(map).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Result<IdTokenClaims, ClaimsError> {
        IdTokenClaims::from_map(json::parse_object(json.as_bytes()).unwrap())
    }

    const BASE: &str = r#""iss":"https://id.example","sub":"u1","aud":"c","exp":2000,"iat":1000"#;

    #[test]
    fn strict_claims_are_typed() {
        let c = claims(&format!("{{{BASE}}}")).unwrap();
        assert_eq!(c.aud, vec!["c".to_owned()]);
        assert_eq!(c.exp, Timestamp::from_unix_seconds(2000));
        for (json, claim) in [
            (r#"{"iss":1}"#, "iss"),
            (
                r#"{"iss":"i","sub":"s","aud":"a","exp":"2000","iat":1}"#,
                "exp",
            ),
            (
                r#"{"iss":"i","sub":"s","aud":[1],"exp":2000,"iat":1}"#,
                "aud",
            ),
            (
                r#"{"iss":"i","sub":"s","aud":"a","exp":2000,"iat":1,"nonce":5}"#,
                "nonce",
            ),
        ] {
            match claims(json) {
                Err(ClaimsError::Type(e)) => assert_eq!(e.claim, claim, "{json}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        assert_eq!(
            claims(r#"{"iss":"i","aud":"a","exp":1,"iat":1}"#),
            Err(ClaimsError::Missing("sub"))
        );
        assert_eq!(
            claims(r#"{"iss":"i","sub":"","aud":"a","exp":1,"iat":1}"#),
            Err(ClaimsError::EmptySubject)
        );
        assert_eq!(
            claims(r#"{"iss":"i","sub":"s","aud":[],"exp":1,"iat":1}"#),
            Err(ClaimsError::EmptyAudience)
        );
        assert_eq!(
            claims(r#"{"iss":"i","sub":"s","aud":"a","iat":1}"#),
            Err(ClaimsError::Missing("exp"))
        );
    }

    #[test]
    fn profile_claims_are_lenient_and_nothing_is_lost() {
        let c = claims(&format!(
            r#"{{{BASE},"email":"a@b.c","email_verified":"true","name":7,
            "address":{{"country":"NZ"}},"updated_at":"yesterday","name#de":"N","custom":[1]}}"#
        ))
        .unwrap();
        assert_eq!(c.profile.email.as_deref(), Some("a@b.c"));
        assert_eq!(c.profile.email_verified, Some(true));
        assert_eq!(c.profile.name, None);
        assert_eq!(c.extra["name"], 7);
        assert_eq!(
            c.profile
                .address
                .as_ref()
                .and_then(|a| a.country.as_deref()),
            Some("NZ")
        );
        assert_eq!(c.extra["updated_at"], "yesterday");
        assert!(c.extra.contains_key("name#de") && c.extra.contains_key("custom"));
    }

    #[test]
    fn serde_round_trip_in_jwt_shape() {
        let c = claims(&format!(
            r#"{{{BASE},"nonce":"n","auth_time":999.5,"amr":["pwd"],"given_name":"G","x":{{"y":1}}}}"#
        ))
        .unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["aud"], serde_json::json!(["c"]));
        assert_eq!(json["exp"], 2000);
        assert_eq!(json["auth_time"], 999.5);
        assert_eq!(json["nonce"], "n");
        let back: IdTokenClaims = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        assert!(!format!("{c:?}").contains("\"n\""));
    }

    /// The direct reading used by ID-token validation and the map-based one give the same claims
    /// and the same errors, whatever the input.
    #[test]
    fn reading_from_json_equals_reading_from_the_map() {
        let cases = [
            format!("{{{BASE}}}"),
            format!(
                r#"{{{BASE},"nonce":"n","auth_time":999.5,"amr":["pwd"],"sid":"s","azp":"c"}}"#
            ),
            r#"{"iss":"i","sub":"s","aud":["c","d"],"exp":1,"iat":1}"#.to_owned(),
            format!(r#"{{{BASE},"email":"a@b.c","email_verified":"true","name":7,"x":{{"y":1}}}}"#),
            format!(r#"{{{BASE},"address":{{"country":"NZ"}},"updated_at":-5,"name#de":"N"}}"#),
            format!(r#"{{{BASE},"at_hash":"h","c_hash":"c","nbf":1,"acr":"0"}}"#),
            format!(r#"{{{BASE},"iss":"twice"}}"#),
            format!(r#"{{{BASE},"custom":1,"custom":2}}"#),
            format!(r#"{{{BASE},"\u0069ss":"escaped duplicate"}}"#),
            format!(r#"{{{BASE},"\u0078":"escaped extra"}}"#),
            format!(r#"{{{BASE},"nonce":5,"nbf":"late"}}"#),
            format!(r#"{{{BASE},"amr":"pwd"}}"#),
            format!(r#"{{{BASE}}} trailing"#),
            r#"{"iss":1,"sub":2}"#.to_owned(),
            r#"{"sub":"","iss":"i","aud":"a","exp":1,"iat":1}"#.to_owned(),
            r#"{"iss":"i","sub":"s","aud":[],"exp":1,"iat":1}"#.to_owned(),
            r#"{"iss":"i","sub":"s","aud":"a","exp":-1,"iat":1}"#.to_owned(),
            r#"{}"#.to_owned(),
            r#"[]"#.to_owned(),
            r#""str""#.to_owned(),
            r#"{"iss":"i","#.to_owned(),
        ];
        let mut outcomes = [0; 3];
        for case in &cases {
            let via_map = json::parse_object(case.as_bytes()).map(IdTokenClaims::from_map);
            let direct = IdTokenClaims::from_json(case.as_bytes());
            match (via_map, direct) {
                (Ok(Ok(a)), Ok(b)) => {
                    assert_eq!(a, b, "{case}");
                    outcomes[0] += 1;
                }
                (Ok(Err(a)), Err(Err(b))) => {
                    assert_eq!(a, b, "{case}");
                    outcomes[1] += 1;
                }
                (Err(a), Err(Ok(b))) => {
                    assert_eq!(a, b, "{case}");
                    outcomes[2] += 1;
                }
                (a, b) => panic!("{case}: {a:?} / {b:?}"),
            }
        }
        // Valid sets, claim errors and JSON errors are all among the cases.
        assert_eq!(outcomes, [7, 7, 7]);
    }

    #[test]
    fn userinfo_requires_sub() {
        let u =
            UserInfo::from_map(json::parse_object(br#"{"sub":"a","email":"e"}"#).unwrap()).unwrap();
        assert_eq!(u.profile.email.as_deref(), Some("e"));
        assert_eq!(
            UserInfo::from_map(json::parse_object(br#"{"email":"e"}"#).unwrap()),
            Err(ClaimsError::Missing("sub"))
        );
    }
}
