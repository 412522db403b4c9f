//! Reads a metadata document straight from its bytes into per-field slots, without building a
//! `serde_json::Value` first.
//!
//! The result must be exactly what [`Partial::parse`](super::Partial) makes of the same document parsed
//! as a `Value`, problems included (the tests and the `metadata` fuzz target compare the two). That
//! decides the shape of this reader:
//! - every member goes through serde_json's `deserialize_any`, as it does when a `Value` is built, so
//!   the same documents are rejected with the same messages (an out-of-range number or a lone surrogate
//!   in a member nobody reads still fails the parse; serde's `IgnoredAny` would let them through);
//! - a repeated member replaces the earlier one (a `Value` map keeps the last), rather than serde
//!   derive's "duplicate field" error;
//! - a member of the wrong type is recorded, not returned as an error, so that every field's problem
//!   is reported by name and in field order, as before;
//! - members that no typed field names are only checked here; [`ExtraMembers`] builds them when read.

use super::extra::ExtraMembers;
use super::{ListValue, MetadataError, MetadataField, Partial};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use url::{Position, Url};

/// The URL fields by slot index (what `classify` and `take_partial` assume; checked by a test).
#[cfg(test)]
const URL_FIELDS: [MetadataField; 12] = [
    MetadataField::Issuer,
    MetadataField::AuthorizationEndpoint,
    MetadataField::TokenEndpoint,
    MetadataField::RevocationEndpoint,
    MetadataField::RegistrationEndpoint,
    MetadataField::DeviceAuthorizationEndpoint,
    MetadataField::IntrospectionEndpoint,
    MetadataField::PushedAuthorizationRequestEndpoint,
    MetadataField::UserinfoEndpoint,
    MetadataField::JwksUri,
    MetadataField::EndSessionEndpoint,
    MetadataField::AccountManagementUri,
];

/// The list fields by slot index.
#[cfg(test)]
const LIST_FIELDS: [MetadataField; 9] = [
    MetadataField::ResponseTypesSupported,
    MetadataField::GrantTypesSupported,
    MetadataField::ResponseModesSupported,
    MetadataField::CodeChallengeMethodsSupported,
    MetadataField::AccountManagementActionsSupported,
    MetadataField::PromptValuesSupported,
    MetadataField::ScopesSupported,
    MetadataField::TokenEndpointAuthMethodsSupported,
    MetadataField::IdTokenSigningAlgValuesSupported,
];

const ACCOUNT_URI: usize = 11;
const ACCOUNT_ACTIONS: usize = 4;

/// What a member name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Url(usize),
    List(usize),
    Flag,
    UnstableAccountUri,
    UnstableAccountActions,
    Unnamed,
}

fn classify(name: &str) -> Key {
    match name {
        "issuer" => Key::Url(0),
        "authorization_endpoint" => Key::Url(1),
        "token_endpoint" => Key::Url(2),
        "revocation_endpoint" => Key::Url(3),
        "registration_endpoint" => Key::Url(4),
        "device_authorization_endpoint" => Key::Url(5),
        "introspection_endpoint" => Key::Url(6),
        "pushed_authorization_request_endpoint" => Key::Url(7),
        "userinfo_endpoint" => Key::Url(8),
        "jwks_uri" => Key::Url(9),
        "end_session_endpoint" => Key::Url(10),
        "account_management_uri" => Key::Url(ACCOUNT_URI),
        "response_types_supported" => Key::List(0),
        "grant_types_supported" => Key::List(1),
        "response_modes_supported" => Key::List(2),
        "code_challenge_methods_supported" => Key::List(3),
        "account_management_actions_supported" => Key::List(ACCOUNT_ACTIONS),
        "prompt_values_supported" => Key::List(5),
        "scopes_supported" => Key::List(6),
        "token_endpoint_auth_methods_supported" => Key::List(7),
        "id_token_signing_alg_values_supported" => Key::List(8),
        "authorization_response_iss_parameter_supported" => Key::Flag,
        super::UNSTABLE_ACCOUNT_URI => Key::UnstableAccountUri,
        super::UNSTABLE_ACCOUNT_ACTIONS => Key::UnstableAccountActions,
        _ => Key::Unnamed,
    }
}

/// One member's value, as far as its field cares. `Absent` (never seen) differs from `Null` only for
/// the MSC4191 fallback, which looks at whether the stable name is present at all.
#[derive(Debug, Default)]
enum Slot<'de> {
    #[default]
    Absent,
    Null,
    Bool(bool),
    Str(Cow<'de, str>),
    /// An array; `None` when an element is not a string.
    Strings(Option<Vec<ListValue>>),
    /// A number, an object, or an array where a list was not asked for.
    Other,
}

/// Every member the typed fields read, and whether there are others.
#[derive(Debug, Default)]
pub(super) struct Slots<'de> {
    urls: [Slot<'de>; 12],
    lists: [Slot<'de>; 9],
    flag: Slot<'de>,
    unstable_uri: Slot<'de>,
    unstable_actions: Slot<'de>,
    unnamed: bool,
}

/// Reads `json` into `slots` (filled in place: the slots are large, and moving them costs more than
/// the caller lending them). `Ok(Some(kind))`: valid JSON, but not an object, and what it is
/// instead ("an array", …). `Err` is serde_json's syntax error, the same one
/// `from_slice::<Value>` gives.
pub(super) fn read<'de>(
    json: &'de [u8],
    slots: &mut Slots<'de>,
) -> Result<Option<&'static str>, serde_json::Error> {
    // One UTF-8 check of the whole document costs less than serde_json's check of each string
    // (≈ 150 of them). Outside strings, JSON is ASCII, so a valid document passes it; one that does
    // not is read from bytes, for serde_json's own error (and its position).
    match std::str::from_utf8(json) {
        Ok(text) => read_from(serde_json::Deserializer::from_str(text), slots),
        Err(_) => read_from(serde_json::Deserializer::from_slice(json), slots),
    }
}

fn read_from<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    slots: &mut Slots<'de>,
) -> Result<Option<&'static str>, serde_json::Error> {
    let root = (&mut de).deserialize_any(RootVisitor(slots))?;
    de.end()?;
    Ok(root)
}

impl<'de> Slots<'de> {
    /// The typed fields, taken out of the slots (which are left empty), with each problem in the
    /// order `Partial::parse` reports them; the unnamed members stay in `json` for [`ExtraMembers`].
    ///
    /// `expected_issuer` only spares work: an `issuer` spelled exactly as it is serialized is taken
    /// as a copy of it (see [`issuer_url`]); whether the two match is `check`'s business.
    pub(super) fn take_partial(
        &mut self,
        json: &[u8],
        expected_issuer: Option<&Url>,
        problems: &mut Vec<MetadataError>,
    ) -> Partial {
        use MetadataField as F;
        // MSC4191: the unstable name stands in for an absent stable one.
        let mut unnamed = self.unnamed;
        for (stable, unstable) in [
            (&mut self.urls[ACCOUNT_URI], &mut self.unstable_uri),
            (&mut self.lists[ACCOUNT_ACTIONS], &mut self.unstable_actions),
        ] {
            match (&*stable, &*unstable) {
                (_, Slot::Absent) => {}
                (Slot::Absent, _) => *stable = std::mem::take(unstable),
                _ => unnamed = true,
            }
        }

        let mut p = Partial::default();
        let mut r = SlotReader {
            problems,
            malformed: &mut p.malformed,
        };
        let [
            issuer,
            authorization,
            token,
            revocation,
            registration,
            device,
            introspection,
            par,
            userinfo,
            jwks,
            end_session,
            account,
        ] = std::mem::take(&mut self.urls);
        let [
            response_types,
            grant_types,
            response_modes,
            pkce,
            account_actions,
            prompts,
            scopes,
            token_auth,
            id_token_algs,
        ] = std::mem::take(&mut self.lists);
        // The field order of `Partial::parse`.
        p.issuer = match (issuer, expected_issuer) {
            (Slot::Str(s), Some(expected)) => r.url_with(F::Issuer, s, |s| {
                issuer_url(s, expected).map_or_else(|| Url::parse(s), Ok)
            }),
            (issuer, _) => r.url(F::Issuer, issuer, None),
        };
        let base = p.issuer.as_ref();
        p.authorization_endpoint = r.url(F::AuthorizationEndpoint, authorization, base);
        p.token_endpoint = r.url(F::TokenEndpoint, token, base);
        p.revocation_endpoint = r.url(F::RevocationEndpoint, revocation, base);
        p.registration_endpoint = r.url(F::RegistrationEndpoint, registration, base);
        p.response_types_supported = r.list(F::ResponseTypesSupported, response_types);
        p.grant_types_supported = r.list(F::GrantTypesSupported, grant_types);
        p.response_modes_supported = r.list(F::ResponseModesSupported, response_modes);
        p.code_challenge_methods_supported = r.list(F::CodeChallengeMethodsSupported, pkce);
        p.device_authorization_endpoint = r.url(F::DeviceAuthorizationEndpoint, device, base);
        p.introspection_endpoint = r.url(F::IntrospectionEndpoint, introspection, base);
        p.pushed_authorization_request_endpoint =
            r.url(F::PushedAuthorizationRequestEndpoint, par, base);
        p.userinfo_endpoint = r.url(F::UserinfoEndpoint, userinfo, base);
        p.jwks_uri = r.url(F::JwksUri, jwks, base);
        p.end_session_endpoint = r.url(F::EndSessionEndpoint, end_session, base);
        p.account_management_uri = r.url(F::AccountManagementUri, account, base);
        p.account_management_actions_supported =
            r.list(F::AccountManagementActionsSupported, account_actions);
        p.prompt_values_supported = r.list(F::PromptValuesSupported, prompts);
        p.scopes_supported = r.list(F::ScopesSupported, scopes);
        p.token_endpoint_auth_methods_supported =
            r.list(F::TokenEndpointAuthMethodsSupported, token_auth);
        p.id_token_signing_alg_values_supported =
            r.list(F::IdTokenSigningAlgValuesSupported, id_token_algs);
        p.authorization_response_iss_parameter_supported = r.flag(
            F::AuthorizationResponseIssParameterSupported,
            std::mem::take(&mut self.flag),
        );
        if unnamed {
            p.extra = ExtraMembers::lazy(json);
        }
        p
    }
}

/// `Reader` of `Partial::parse`, over slots.
struct SlotReader<'a> {
    problems: &'a mut Vec<MetadataError>,
    malformed: &'a mut Vec<MetadataField>,
}

impl SlotReader<'_> {
    fn wrong(&mut self, field: MetadataField, expected: &'static str) {
        self.malformed.push(field);
        self.problems
            .push(MetadataError::WrongType { field, expected });
    }

    /// `base` is the issuer, when it parsed: see [`parse_url`].
    fn url(&mut self, field: MetadataField, slot: Slot<'_>, base: Option<&Url>) -> Option<Url> {
        match slot {
            Slot::Absent | Slot::Null => None,
            Slot::Str(s) => self.url_with(field, s, |s| parse_url(s, base)),
            Slot::Bool(_) | Slot::Strings(_) | Slot::Other => {
                self.wrong(field, "a URL string");
                None
            }
        }
    }

    /// The URL `parse` makes of the string `s`, or its problem recorded.
    fn url_with(
        &mut self,
        field: MetadataField,
        s: Cow<'_, str>,
        parse: impl FnOnce(&str) -> Result<Url, url::ParseError>,
    ) -> Option<Url> {
        match parse(&s) {
            Ok(u) => Some(u),
            Err(e) => {
                self.malformed.push(field);
                self.problems.push(MetadataError::InvalidUrl {
                    field,
                    value: crate::error::truncate(s.into_owned(), 256),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    fn list(&mut self, field: MetadataField, slot: Slot<'_>) -> Option<Vec<ListValue>> {
        match slot {
            Slot::Absent | Slot::Null => None,
            Slot::Strings(Some(items)) => Some(items),
            Slot::Strings(None) | Slot::Bool(_) | Slot::Str(_) | Slot::Other => {
                self.wrong(field, "an array of strings");
                None
            }
        }
    }

    fn flag(&mut self, field: MetadataField, slot: Slot<'_>) -> bool {
        match slot {
            Slot::Absent | Slot::Null => false,
            Slot::Bool(b) => b,
            Slot::Strings(_) | Slot::Str(_) | Slot::Other => {
                self.wrong(field, "a boolean");
                false
            }
        }
    }
}

/// `Some(Url::parse(s))` when `s` is exactly how `expected`, an `http`/`https` URL, is serialized:
/// then it is a copy of `expected` (parsing a special URL's serialization gives that URL back, the
/// URL standard's round-trip property), made without parsing. The issuer a client expects is usually
/// the one the document names, in the same spelling.
fn issuer_url(s: &str, expected: &Url) -> Option<Url> {
    (matches!(expected.scheme(), "https" | "http") && expected.has_host() && s == expected.as_str())
        .then(|| expected.clone())
}

/// `Url::parse(s)`, the same value, more cheaply when `s` is on the issuer's origin (the usual case):
/// `base.join(path)` then reuses the issuer's parsed scheme and host instead of parsing them again
/// (host parsing, with its IDNA mapping, is the larger part of the cost).
///
/// The shortcut is taken only where both give the same URL: `base` is an `http`/`https` URL with a
/// host, `s` starts with exactly its serialized scheme and authority (so the authority `Url::parse`
/// would read is that one), followed by a path that starts with a single `/` and holds only printable
/// ASCII. The last two conditions keep `join` from reading the path as a scheme-relative reference
/// (`//host`, `/\host`, or `/<tab>/host` once the parser drops tabs and newlines).
pub(super) fn parse_url(s: &str, base: Option<&Url>) -> Result<Url, url::ParseError> {
    if let Some((base, path)) = base.and_then(|b| Some((b, path_on_origin(b, s)?))) {
        if let Ok(joined) = join_presized(base, path, s.len()) {
            return Ok(joined);
        }
    }
    Url::parse(s)
}

/// `base.join(path)`, with `path` padded by trailing spaces to `len` bytes when that fits a small
/// buffer. The URL parser drops trailing spaces (WHATWG URL: leading and trailing C0 control or space
/// are removed), so the URL is the same; the padding only makes the parser's first allocation, sized
/// by its input, large enough for base and path together, sparing the two reallocations `join`
/// otherwise makes as it copies the base in front of the path.
fn join_presized(base: &Url, path: &str, len: usize) -> Result<Url, url::ParseError> {
    let mut buf = [b' '; 192];
    let padded = buf
        .get_mut(..len)
        .and_then(|b| b.split_at_mut_checked(path.len()));
    if let Some((head, _)) = padded {
        head.copy_from_slice(path.as_bytes());
        if let Some(text) = buf.get(..len).and_then(|b| std::str::from_utf8(b).ok()) {
            return base.join(text);
        }
    }
    base.join(path)
}

/// The path-absolute rest of `s` after `base`'s scheme and authority, when [`parse_url`] may join it.
fn path_on_origin<'s>(base: &Url, s: &'s str) -> Option<&'s str> {
    if !matches!(base.scheme(), "https" | "http") || !base.has_host() {
        return None;
    }
    let path = s.strip_prefix(&base[..Position::BeforePath])?;
    let bytes = path.as_bytes();
    let single_slash = bytes.first() == Some(&b'/') && !matches!(bytes.get(1), Some(b'/' | b'\\'));
    (single_slash && bytes.iter().all(|b| (0x21..=0x7e).contains(b))).then_some(path)
}

/// `s` as a list value: a static string when it is a registered value (no allocation, and nothing
/// to free when the metadata is dropped), else owned.
fn list_value(s: Cow<'_, str>) -> ListValue {
    match registered(&s) {
        Some(known) => ListValue::Borrowed(known),
        None => ListValue::Owned(s.into_owned()),
    }
}

/// The values registered (IANA OAuth and JOSE registries, OpenID Connect, the Matrix specification
/// and MSC4191) for the lists the typed fields hold, which make up nearly every list value servers
/// send.
fn registered(s: &str) -> Option<&'static str> {
    Some(match s {
        // response_types_supported
        "code" => "code",
        "token" => "token",
        "id_token" => "id_token",
        "code id_token" => "code id_token",
        "code token" => "code token",
        "id_token token" => "id_token token",
        "code id_token token" => "code id_token token",
        // grant_types_supported
        "authorization_code" => "authorization_code",
        "implicit" => "implicit",
        "refresh_token" => "refresh_token",
        "password" => "password",
        "client_credentials" => "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code" => {
            "urn:ietf:params:oauth:grant-type:device_code"
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        }
        "urn:ietf:params:oauth:grant-type:token-exchange" => {
            "urn:ietf:params:oauth:grant-type:token-exchange"
        }
        "urn:openid:params:grant-type:ciba" => "urn:openid:params:grant-type:ciba",
        // response_modes_supported
        "query" => "query",
        "fragment" => "fragment",
        "form_post" => "form_post",
        "jwt" => "jwt",
        "query.jwt" => "query.jwt",
        "fragment.jwt" => "fragment.jwt",
        "form_post.jwt" => "form_post.jwt",
        // code_challenge_methods_supported
        "plain" => "plain",
        "S256" => "S256",
        // account_management_actions_supported
        "org.matrix.profile" => "org.matrix.profile",
        "org.matrix.devices_list" => "org.matrix.devices_list",
        "org.matrix.device_view" => "org.matrix.device_view",
        "org.matrix.device_delete" => "org.matrix.device_delete",
        "org.matrix.sessions_list" => "org.matrix.sessions_list",
        "org.matrix.session_view" => "org.matrix.session_view",
        "org.matrix.session_end" => "org.matrix.session_end",
        "org.matrix.account_deactivate" => "org.matrix.account_deactivate",
        "org.matrix.cross_signing_reset" => "org.matrix.cross_signing_reset",
        // prompt_values_supported (and `none` of the other lists)
        "none" => "none",
        "login" => "login",
        "consent" => "consent",
        "select_account" => "select_account",
        "create" => "create",
        // scopes_supported
        "openid" => "openid",
        "profile" => "profile",
        "email" => "email",
        "address" => "address",
        "phone" => "phone",
        "offline_access" => "offline_access",
        "urn:matrix:client:api:*" => "urn:matrix:client:api:*",
        "urn:matrix:org.matrix.msc2967.client:api:*" => {
            "urn:matrix:org.matrix.msc2967.client:api:*"
        }
        // token_endpoint_auth_methods_supported
        "client_secret_basic" => "client_secret_basic",
        "client_secret_post" => "client_secret_post",
        "client_secret_jwt" => "client_secret_jwt",
        "private_key_jwt" => "private_key_jwt",
        "tls_client_auth" => "tls_client_auth",
        "self_signed_tls_client_auth" => "self_signed_tls_client_auth",
        // id_token_signing_alg_values_supported
        "RS256" => "RS256",
        "RS384" => "RS384",
        "RS512" => "RS512",
        "PS256" => "PS256",
        "PS384" => "PS384",
        "PS512" => "PS512",
        "ES256" => "ES256",
        "ES384" => "ES384",
        "ES512" => "ES512",
        "ES256K" => "ES256K",
        "EdDSA" => "EdDSA",
        "Ed25519" => "Ed25519",
        "HS256" => "HS256",
        "HS384" => "HS384",
        "HS512" => "HS512",
        _ => return None,
    })
}

/// What to do with strings and arrays: the three ways a member is read.
#[derive(Clone, Copy)]
enum Mode {
    /// A member nobody reads: checked, nothing kept.
    Skip,
    /// A URL or flag field: strings kept, arrays only checked.
    Scalar,
    /// A list field: arrays of strings kept.
    List,
}

/// Reads one JSON value in a [`Mode`]; every JSON type is accepted (a type mismatch is a [`Slot`]).
#[derive(Clone, Copy)]
struct Member(Mode);

impl<'de> DeserializeSeed<'de> for Member {
    type Value = Slot<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Member {
    type Value = Slot<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Slot::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Slot::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Slot::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Slot::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Slot::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Slot::Other)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(match self.0 {
            Mode::Skip => Slot::Other,
            Mode::Scalar | Mode::List => Slot::Str(Cow::Borrowed(v)),
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(match self.0 {
            Mode::Skip => Slot::Other,
            Mode::Scalar | Mode::List => Slot::Str(Cow::Owned(v.to_owned())),
        })
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(match self.0 {
            Mode::Skip => Slot::Other,
            Mode::Scalar | Mode::List => Slot::Str(Cow::Owned(v)),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        match self.0 {
            Mode::Skip => {
                while seq.next_element_seed(Member(Mode::Skip))?.is_some() {}
                Ok(Slot::Other)
            }
            Mode::Scalar => {
                while seq.next_element_seed(Member(Mode::Skip))?.is_some() {}
                Ok(Slot::Strings(None))
            }
            Mode::List => {
                // Most lists have a handful of values: one allocation holds them.
                let mut items = Some(Vec::with_capacity(8));
                // After the first element that is not a string, the rest is only checked.
                loop {
                    let mode = if items.is_some() {
                        Mode::Scalar
                    } else {
                        Mode::Skip
                    };
                    match seq.next_element_seed(Member(mode))? {
                        None => break,
                        Some(Slot::Str(s)) => {
                            if let Some(items) = &mut items {
                                items.push(list_value(s));
                            }
                        }
                        Some(_) => items = None,
                    }
                }
                Ok(Slot::Strings(items))
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry_seed(Member(Mode::Skip), Member(Mode::Skip))?
            .is_some()
        {}
        Ok(Slot::Other)
    }
}

/// Reads a member name into a [`Key`] without keeping it.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(classify(v))
    }
}

/// The document: an object read into [`Slots`], anything else named.
struct RootVisitor<'a, 'de>(&'a mut Slots<'de>);

impl RootVisitor<'_, '_> {
    fn not_object<E>(kind: &'static str) -> Result<Option<&'static str>, E> {
        Ok(Some(kind))
    }
}

impl<'de> Visitor<'de> for RootVisitor<'_, 'de> {
    type Value = Option<&'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Self::not_object("null")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Self::not_object("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Self::not_object("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Self::not_object("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Self::not_object("a number")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Self::not_object("a string")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(Member(Mode::Skip))?.is_some() {}
        Self::not_object("an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let slots = self.0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            // A repeated member overwrites its slot: the last one counts, as in a `Value` map.
            match key {
                Key::Url(i) => put(
                    &mut slots.urls,
                    i,
                    map.next_value_seed(Member(Mode::Scalar))?,
                ),
                Key::List(i) => put(
                    &mut slots.lists,
                    i,
                    map.next_value_seed(Member(Mode::List))?,
                ),
                Key::Flag => slots.flag = map.next_value_seed(Member(Mode::Scalar))?,
                Key::UnstableAccountUri => {
                    slots.unstable_uri = map.next_value_seed(Member(Mode::Scalar))?;
                }
                Key::UnstableAccountActions => {
                    slots.unstable_actions = map.next_value_seed(Member(Mode::List))?;
                }
                Key::Unnamed => {
                    slots.unnamed = true;
                    map.next_value_seed(Member(Mode::Skip))?;
                }
            }
        }
        Ok(None)
    }
}

fn put<'de>(slots: &mut [Slot<'de>], i: usize, value: Slot<'de>) {
    if let Some(slot) = slots.get_mut(i) {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `MetadataField::ALL` lists every variant in report order: `ExtraMembers` leaves out exactly
    /// these names. A new variant stops this match from compiling, a reminder to add it to `ALL`.
    #[test]
    fn all_fields_are_listed() {
        use MetadataField as F;
        let position = |f: F| match f {
            F::Issuer => 0,
            F::AuthorizationEndpoint => 1,
            F::TokenEndpoint => 2,
            F::RevocationEndpoint => 3,
            F::RegistrationEndpoint => 4,
            F::ResponseTypesSupported => 5,
            F::GrantTypesSupported => 6,
            F::ResponseModesSupported => 7,
            F::CodeChallengeMethodsSupported => 8,
            F::DeviceAuthorizationEndpoint => 9,
            F::IntrospectionEndpoint => 10,
            F::PushedAuthorizationRequestEndpoint => 11,
            F::UserinfoEndpoint => 12,
            F::JwksUri => 13,
            F::EndSessionEndpoint => 14,
            F::AccountManagementUri => 15,
            F::AccountManagementActionsSupported => 16,
            F::PromptValuesSupported => 17,
            F::ScopesSupported => 18,
            F::TokenEndpointAuthMethodsSupported => 19,
            F::IdTokenSigningAlgValuesSupported => 20,
            F::AuthorizationResponseIssParameterSupported => 21,
        };
        for (i, f) in F::ALL.into_iter().enumerate() {
            assert_eq!(position(f), i, "{f}");
        }
    }

    /// A registered value is taken as the same text, anything else (case differs, padding) is owned.
    #[test]
    fn list_values_keep_their_text() {
        for s in [
            "code",
            "S256",
            "urn:ietf:params:oauth:grant-type:device_code",
            "org.matrix.cross_signing_reset",
            "HS512",
        ] {
            assert_eq!(registered(s), Some(s));
            assert!(
                matches!(list_value(Cow::Owned(s.to_owned())), ListValue::Borrowed(v) if v == s)
            );
        }
        for s in ["s256", "code ", "", "urn:matrix:client:api:*x", "x-custom"] {
            assert_eq!(registered(s), None, "{s:?}");
            assert!(matches!(list_value(Cow::Borrowed(s)), ListValue::Owned(v) if v == s));
        }
    }

    #[test]
    fn every_field_name_has_its_slot() {
        for field in MetadataField::ALL {
            let key = classify(field.as_str());
            let named = match key {
                Key::Url(i) => URL_FIELDS.get(i),
                Key::List(i) => LIST_FIELDS.get(i),
                Key::Flag => Some(&MetadataField::AuthorizationResponseIssParameterSupported),
                _ => None,
            };
            assert_eq!(named, Some(&field), "{field}");
        }
        assert_eq!(URL_FIELDS[ACCOUNT_URI], MetadataField::AccountManagementUri);
        assert_eq!(
            LIST_FIELDS[ACCOUNT_ACTIONS],
            MetadataField::AccountManagementActionsSupported
        );
        assert_eq!(
            classify(super::super::UNSTABLE_ACCOUNT_URI),
            Key::UnstableAccountUri
        );
        assert_eq!(classify("Issuer"), Key::Unnamed);
    }

    /// A copy of the expected issuer is `Url::parse`'s value, field for field (`Debug` shows them).
    #[test]
    fn issuer_url_equals_url_parse() {
        for expected in [
            "https://auth.example.org/",
            "https://auth.example.org",
            "https://auth.example.org/realms/x",
            "https://auth.example.org/realms/x/",
            "http://127.0.0.1:3000/",
            "https://user:pw@auth.example.org:8443/a?b#c",
            "https://[::1]:8443/a/",
            "https://1.2.3.4/",
            "https://0x7f.1/",
            "https://xn--bcher-kva.example/",
            "https://bücher.example/%7e/ä b/./../c",
            "HTTPS://Auth.Example.ORG:443/x?",
            "https://auth.example.org/#",
        ] {
            let e = Url::parse(expected).unwrap();
            let s = e.as_str();
            let got = issuer_url(s, &e).unwrap();
            assert_eq!(
                format!("{got:?}"),
                format!("{:?}", Url::parse(s).unwrap()),
                "{expected}"
            );
            assert_eq!(
                issuer_url(expected.trim_end_matches('/'), &e).is_some(),
                s == expected.trim_end_matches('/')
            );
        }
        let e = Url::parse("https://auth.example.org/").unwrap();
        for other in [
            "https://auth.example.org",
            "https://AUTH.example.org/",
            "https://auth.example.org/ ",
        ] {
            assert_eq!(issuer_url(other, &e), None, "{other}");
        }
        let opaque = Url::parse("mailto:a@example.org").unwrap();
        assert_eq!(issuer_url(opaque.as_str(), &opaque), None);
    }

    /// Longer than `join_presized`'s buffer.
    const LONG_PATH: &str = "/oauth2/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/token";

    /// The shortcut gives `Url::parse`'s value, and its conditions hold where they must.
    #[test]
    fn parse_url_equals_url_parse() {
        let bases = [
            "https://auth.example.org/",
            "https://auth.example.org",
            "https://auth.example.org/realms/x/",
            "http://127.0.0.1:3000/",
            "https://user:pw@auth.example.org:8443/a?b#c",
            "https://[::1]/",
            "https://xn--bcher-kva.example/",
        ];
        let rests = [
            "/",
            "/oauth2/token",
            "/a/../b",
            "/a/./b/%2e%2e/c",
            "/x?y=1#z",
            "/x#",
            "/x?",
            "/%41",
            "/a b",
            "/a\tb",
            "/\t/evil.example/x",
            "//evil.example/x",
            "/\\evil.example/x",
            "/ü",
            "/x\n",
            " /x",
            "",
            "?q",
            "#f",
            ":443/x",
            ":8443/x",
            "@evil.example/x",
            ".evil.example/x",
            "/a|b",
            "/a^b`c{d}",
            "/a\\b",
            "/x ",
            LONG_PATH,
        ];
        // Paths around the size of `join_presized`'s buffer, on a 24-byte origin.
        let sized: Vec<String> = (165..=170).map(|n| format!("/{}", "a".repeat(n))).collect();
        for base in bases {
            let b = Url::parse(base).unwrap();
            for rest in rests
                .iter()
                .copied()
                .chain(sized.iter().map(String::as_str))
            {
                let prefix = &b[..Position::BeforePath];
                for s in [format!("{prefix}{rest}"), format!("{base}{rest}")] {
                    let expected = Url::parse(&s);
                    let got = parse_url(&s, Some(&b));
                    assert_eq!(
                        format!("{got:?}"),
                        format!("{expected:?}"),
                        "{s:?} on {base}"
                    );
                }
            }
        }
        let b = Url::parse("https://auth.example.org/").unwrap();
        assert_eq!(
            path_on_origin(&b, "https://auth.example.org/oauth2/token"),
            Some("/oauth2/token")
        );
        for not_joined in [
            "https://auth.example.org//evil.example/",
            "https://auth.example.org/\\evil.example/",
            "https://auth.example.org/\t/evil.example/",
            "https://auth.example.org.evil.example/",
            "https://auth.example.org:443/",
            "https://AUTH.example.org/",
            "http://auth.example.org/",
        ] {
            assert_eq!(path_on_origin(&b, not_joined), None, "{not_joined}");
        }
        let opaque = Url::parse("mailto:a@example.org").unwrap();
        assert_eq!(path_on_origin(&opaque, "mailto:a@example.org/x"), None);
    }
}
